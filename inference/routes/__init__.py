"""The predict API's routes, one router per resource (predictions, batches, operations). Each route finds the
endpoint's service, keys and limits in `request.app.state.serving`, which `create_app` (inference/app.py) sets."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from inference.auth import ApiError, Authenticator, RateLimiter
from inference.batch import BatchJobs
from inference.config import ServingConfig
from inference.inputs import InputRefused, Limits
from inference.service import EndpointService

API = "/api/v1/ml"


@dataclass
class Serving:
    """What the routes of one endpoint's app share."""

    endpoint: str
    config: ServingConfig
    service: EndpointService
    auth: Authenticator
    limiter: RateLimiter
    batches: BatchJobs
    limits: Limits
    responses: Counter[int]  # answers by status, counted by the guard (inference/guard.py) for /metrics


def serving(request: Request) -> Serving:
    return request.app.state.serving


def caller(request: Request) -> str:
    """Who calls (ApiError 401 when no key or token holds), within their rate limit. A plain call in each
    route rather than a FastAPI dependency, which costs a resolution per request; the OpenAPI document
    shows the schemes all the same (inference/openapi.py)."""
    key = token = None
    for name, value in request.scope["headers"]:  # one pass over the raw headers (names come lower-cased)
        if name == b"x-api-key" and key is None:
            key = value.decode("latin-1")
        elif name == b"authorization" and token is None:
            token = value.decode("latin-1")
    shared = serving(request)
    who = shared.auth.caller(key, token, request.scope.get("aws.event"))
    shared.limiter.take(who)
    return who


def readable(router: Any, path: str, **options) -> Callable:
    """A GET route that answers HEAD too (HEAD left out of the OpenAPI document, where it would repeat GET's
    operation); `router` is an APIRouter or the app."""

    def register(function):
        router.head(path, **(options | {"include_in_schema": False}))(function)
        return router.get(path, **options)(function)

    return register


def refusal(refused: InputRefused) -> ApiError:
    """A request's refused fields as one 400 (at most 100 of them named)."""
    details = [{"field": field, "message": message} for field, message in refused.details[:100]]
    message = details[0]["message"] if len(details) == 1 else f"{len(refused.details)} fields cannot be taken"
    return ApiError(400, "VALIDATION_ERROR", message, details)
