"""What operators and load balancers ask: alive, ready, and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from inference.auth import ApiError
from inference.bodies import ErrorResponse
from inference.metrics import prometheus
from inference.routes import caller, readable, serving

router = APIRouter(tags=["operations"])


@readable(router, "/health")
async def health():
    """The process is alive."""
    return {"status": "ok"}


@readable(router, "/ready", responses={503: {"model": ErrorResponse}})
async def ready(request: Request):
    """A model is loaded and taking traffic."""
    service = serving(request).service
    if not service.ready:
        raise ApiError(503, "SERVICE_UNAVAILABLE", "no model is loaded yet", headers={"Retry-After": "1"})
    return {"status": "ready", "variants": service.weights}


@readable(router, "/metrics", response_class=PlainTextResponse)
async def metrics(request: Request):
    """Prometheus text: requests, errors, latency quantiles and traffic weight per variant (behind a key
    when `api.metrics_need_key`)."""
    shared = serving(request)
    if shared.config.api.metrics_need_key:
        caller(request)
    service, counters = shared.service, {}
    if service.capture:
        counters = {
            "capture_written_total": service.capture.written,
            "capture_dropped_total": service.capture.dropped,
            "capture_unsampled_total": service.capture.unsampled,
        }
    shadow = service.shadow_stats if service.shadow else None  # an ended shadow's figures: endpoints show
    text = prometheus(shared.endpoint, service.stats, service.weights, shared.responses, counters, shadow)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
