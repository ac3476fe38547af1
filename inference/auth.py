"""Who is calling: an API key (`X-API-Key`) or a JWT bearer token from the configured issuer; and how
often they may call (a token bucket per caller)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from inference.config import AuthSettings, RateLimitSettings
from inference.keys import KeyStore


class ApiError(Exception):
    """An error answered in the design doc's format: status, code, message, per-field details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.headers = details or [], headers or {}

    @classmethod
    def invalid(cls, field: str, message: str) -> ApiError:
        """A 400 for one field of the request."""
        return cls(400, "VALIDATION_ERROR", message, [{"field": field, "message": message}])


class Authenticator:
    def __init__(self, settings: AuthSettings, keys: KeyStore):
        self.settings, self.keys = settings, keys
        self._jwks = None
        if settings.jwt:
            import jwt  # lazy: only with JWT configured

            self._jwks = jwt.PyJWKClient(str(settings.jwt.jwks_url), cache_keys=True, lifespan=300)

    def caller(self, api_key: str | None, authorization: str | None, gateway_event: dict | None = None) -> str:
        """The caller's identity (`key:<name>`, `jwt:<sub>`, `gateway:<id>`); ApiError 401 when none holds."""
        if self.settings.gateway and gateway_event is not None:
            return f"gateway:{_gateway_identity(gateway_event)}"
        if api_key is not None and self.settings.api_keys:
            key = self.keys.check(api_key)
            if key is None:
                raise ApiError(
                    401,
                    "UNAUTHORIZED",
                    "the API key is not valid (unknown or revoked)",
                    [{"field": "X-API-Key", "message": "unknown or revoked key"}],
                )
            return f"key:{key.name}"
        if authorization is not None and self._jwks is not None:
            return f"jwt:{self._subject(authorization)}"
        accepted = " or ".join(
            ([] if not self.settings.api_keys else ["an X-API-Key header"])
            + ([] if self._jwks is None else ["an Authorization: Bearer token"])
        )
        raise ApiError(
            401,
            "UNAUTHORIZED",
            f"authentication required: send {accepted or 'credentials'}",
            headers={"WWW-Authenticate": "Bearer" if self._jwks else "ApiKey"},
        )

    def _subject(self, authorization: str) -> str:
        import jwt

        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "UNAUTHORIZED", "the Authorization header must be 'Bearer <token>'")
        settings = self.settings.jwt
        assert settings is not None and self._jwks is not None
        try:
            signing_key = self._jwks.get_signing_key_from_jwt(token)
            options = {"require": ["exp", "iss", "sub"], "verify_aud": settings.audience is not None}
            claims = jwt.decode(
                token,
                signing_key.key,
                algorithms=settings.algorithms,
                issuer=settings.issuer,
                audience=settings.audience,
                options=options,
            )
        except jwt.PyJWKClientError as exc:
            raise ApiError(401, "UNAUTHORIZED", f"the token's signing key cannot be found ({exc})") from None
        except jwt.InvalidTokenError as exc:
            raise ApiError(401, "UNAUTHORIZED", f"the token is not valid: {exc}") from None
        return str(claims["sub"])


def _gateway_identity(event: dict) -> str:
    """Who API Gateway let through: the authorizer's subject, else the API key's id, else the source IP
    (payload 1.0 has requestContext.identity and authorizer.claims; 2.0 has authorizer.jwt.claims)."""
    context = event.get("requestContext") or {}
    authorizer = context.get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims") or authorizer.get("claims") or {}
    identity = context.get("identity") or {}
    http = context.get("http") or {}
    return str(
        claims.get("sub") or identity.get("apiKeyId") or identity.get("sourceIp") or http.get("sourceIp") or "anonymous"
    )


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per caller: `requests_per_second` sustained, `burst` at once."""

    def __init__(self, settings: RateLimitSettings):
        self.rate, self.burst = settings.requests_per_second, float(settings.burst)
        self._buckets: dict[str, _Bucket] = {}

    def take(self, caller: str) -> None:
        now = time.monotonic()
        bucket = self._buckets.setdefault(caller, _Bucket(self.burst, now))
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens < 1.0:
            retry_after = max(1, math.ceil((1.0 - bucket.tokens) / self.rate))
            raise ApiError(
                429,
                "RATE_LIMITED",
                f"more than {self.rate:g} requests per second; retry later",
                headers={"Retry-After": str(retry_after)},
            )
        bucket.tokens -= 1.0
