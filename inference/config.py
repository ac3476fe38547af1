"""The serving settings (`configs/serving.yaml`): API limits, auth, rate limits, data capture and the
defaults of `pravah deploy`. Every field has a default, so the file only says what a team changes."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, HttpUrl

from foundation.settings import ConfigSection, load_settings

DEFAULT_PATH = Path("configs") / "serving.yaml"


class ApiSettings(ConfigSection):
    max_body_bytes: int = Field(65_536, gt=0)
    max_batch_body_bytes: int = Field(6_291_456, gt=0)  # batch-predict bodies (Lambda's own limit is 6 MB)
    max_text_chars: int = Field(5_000, gt=0)
    max_batch_items: int = Field(1_000, gt=0)
    top_k: int = Field(3, ge=1, le=20)
    body_timeout_seconds: float = Field(10, gt=0)  # a body that has not arrived by then is answered 408
    header_timeout_seconds: float = Field(10, gt=0)  # headers that have not arrived by then: 408, connection closed
    keep_alive_seconds: int = Field(5, ge=1)  # an idle connection is closed after this
    max_connections: int = Field(1_000, ge=1)  # beyond this many connections at once, 503
    metrics_need_key: bool = False  # /metrics open (a local Prometheus), or only for callers with a key or token


class JwtSettings(ConfigSection):
    issuer: str
    audience: str | None = None
    jwks_url: HttpUrl
    algorithms: list[str] = Field(default_factory=lambda: ["RS256"])


class AuthSettings(ConfigSection):
    api_keys: bool = True  # `X-API-Key` with keys made by `pravah keys create`
    jwt: JwtSettings | None = None  # `Authorization: Bearer` tokens from an issuer (Cognito in the cloud)
    gateway: bool = False  # behind API Gateway (Lambda): the gateway checked the key or token already


class RateLimitSettings(ConfigSection):
    requests_per_second: float = Field(1_000, gt=0)  # per key or token subject (the design doc's figure)
    burst: int = Field(1_000, ge=1)


class CaptureSettings(ConfigSection):
    enabled: bool = True
    sampling_percent: float = Field(100, ge=0, le=100)
    buffer_records: int = Field(10_000, ge=1)  # beyond this, records are dropped (and counted), never waited for
    flush_seconds: float = Field(1.0, gt=0)


class AlarmSettings(ConfigSection):
    max_error_rate: float = Field(0.05, ge=0, le=1)
    max_p99_ms: float = Field(1_000, gt=0)
    # fewer requests than this in a wait interval: too few to judge, the step is held; 0 judges on whatever came
    min_requests: int = Field(20, ge=0)


class DeploySettings(ConfigSection):
    strategy: str = Field("canary", pattern="^(all-at-once|canary|linear)$")
    canary_percent: float = Field(10, gt=0, lt=100)
    linear_step_percent: float = Field(25, gt=0, lt=100)
    wait_seconds: float = Field(60, ge=0)
    alarms: AlarmSettings = AlarmSettings()


class BatchSettings(ConfigSection):
    enabled: bool = True  # off on Lambda: a container cannot finish work after it answered
    allow_loopback_callbacks: bool = False  # plain http to 127.0.0.1 / ::1, for tests and local tools
    keep_days: float = Field(7, gt=0)  # a finished batch's body, results and status are deleted after this


class ServingConfig(ConfigSection):
    api: ApiSettings = ApiSettings()
    auth: AuthSettings = AuthSettings()
    rate_limit: RateLimitSettings = RateLimitSettings()
    capture: CaptureSettings = CaptureSettings()
    deploy: DeploySettings = DeploySettings()
    batch: BatchSettings = BatchSettings()


def load_serving_config(path: Path | None = None) -> ServingConfig:
    return load_settings(path, ServingConfig, DEFAULT_PATH)
