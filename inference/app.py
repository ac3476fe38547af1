"""The public predict API (the design doc's `/api/v1/ml/...`): FastAPI, served by uvicorn locally
(`pravah serve`) and by Lambda behind API Gateway in the cloud. The routes are in inference/routes/, one router
per resource; request ids, body limits and error answers in inference/guard.py."""

from __future__ import annotations

import logging
from collections import Counter
from contextlib import asynccontextmanager

from fastapi import FastAPI

from foundation.home import Home
from inference.auth import Authenticator, RateLimiter
from inference.batch import BatchJobs
from inference.config import ServingConfig
from inference.guard import Guard, install_error_handlers
from inference.inputs import BatchRequest, Limits, PredictRequest
from inference.keys import KeyStore
from inference.openapi import document, serve_docs
from inference.routes import API, Serving, batches, operations, predictions, readable
from inference.service import EndpointService

log = logging.getLogger("pravah.serving")
NO_OPENTELEMETRY = {"tracing": False, "metrics": False, "logs": False}  # /metrics and JSON logs are the API's own


def create_app(home: Home, endpoint: str, config: ServingConfig, service: EndpointService | None = None) -> FastAPI:
    service = service or EndpointService(home, endpoint, config)
    shared = Serving(
        endpoint=endpoint,
        config=config,
        service=service,
        auth=Authenticator(config.auth, KeyStore(home)),
        limiter=RateLimiter(config.rate_limit),
        batches=BatchJobs(home, config.batch.allow_loopback_callbacks, config.batch.keep_days),
        limits=Limits(config.api.max_text_chars, config.api.max_batch_items),
        responses=Counter(),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await service.start(address=app.state.address)
        if shared.batches.resume(service, shared.limits):
            log.info("scoring again the batches a stopped server left unfinished")
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="Pravah predict API",
        version="1.0.0",
        lifespan=lifespan,
        telemetry=NO_OPENTELEMETRY,
        docs_url=None,
        redoc_url=None,  # served from installed assets by serve_docs
        description=f"Predictions of endpoint `{endpoint}`. Errors: " + "`{error: {code, message, "
        "details: [{field, message}], timestamp, requestId}}`.",
    )
    app.state.address, app.state.serving = "", shared
    for resource in (predictions, batches, operations):
        app.include_router(resource.router)
    install_error_handlers(app)
    app.add_middleware(
        Guard,
        limits=(config.api.max_body_bytes, config.api.max_batch_body_bytes),
        responses=shared.responses,
        direct={("POST", f"{API}/predict"): predictions.predict},
    )
    secured = ("/metrics",) if config.api.metrics_need_key else ()
    document(app, [PredictRequest, BatchRequest], service.input_columns, secured)
    serve_docs(app, lambda path, **options: readable(app, path, **options))
    return app
