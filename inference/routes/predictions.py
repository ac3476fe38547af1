"""Predictions one text (or row) at a time, and the model behind them."""

from __future__ import annotations

import logging

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from inference.auth import ApiError
from inference.bodies import ERRORS, PredictResponse
from inference.capture import new_id
from inference.inputs import InputRefused, PredictRequest, read_predict
from inference.openapi import SECURED, request_body
from inference.routes import API, caller, readable, refusal, serving
from inference.service import ModelFailed, NotReady, answer_body

log = logging.getLogger("pravah.serving")
router = APIRouter()


@router.post(
    f"{API}/predict",
    response_model=PredictResponse,
    responses=ERRORS,
    tags=["predictions"],
    openapi_extra=request_body(PredictRequest) | SECURED,
)
async def predict(request: Request):
    """Classify one text: the label, its confidence and the next most likely labels."""  # see guard.Guard.direct
    who = caller(request)
    service, limits = (shared := serving(request)).service, shared.limits
    try:
        item, sent = read_predict(await request.body(), limits, service.input_columns())
    except InputRefused as exc:
        raise refusal(exc) from None
    variant, result, milliseconds = await _answer(service.predict(item))
    answer = answer_body(new_id(), result, milliseconds, variant.version)
    content = orjson.dumps(answer)
    if service.capture:
        service.capture.offer(variant.name, answer["predictionId"], sent, content.decode())
    if service.shadow:  # scored once this task yields: after the answer is on its way
        service.copy_to_shadow(item, sent, answer)
    if log.isEnabledFor(logging.INFO):
        metadata = {
            "processingTime": answer["processingTime"],
            "modelVersion": variant.name,
            "confidence": result["confidence"],
        }
        log.info(
            "Prediction completed", extra={"requestId": request.state.request_id, "userId": who, "metadata": metadata}
        )
    return Response(content, media_type="application/json")


@readable(router, f"{API}/model-info", responses=ERRORS, tags=["model"], openapi_extra=SECURED)
async def model_info(request: Request):
    """The model behind the endpoint: name, version, family, metrics, languages, labels, variants."""
    caller(request)
    try:
        return JSONResponse(serving(request).service.model_info())
    except NotReady as exc:
        raise ApiError(503, "SERVICE_UNAVAILABLE", str(exc), headers={"Retry-After": "1"}) from None


async def _answer(prediction):
    try:
        return await prediction
    except NotReady as exc:
        raise ApiError(503, "SERVICE_UNAVAILABLE", str(exc), headers={"Retry-After": "1"}) from None
    except ModelFailed as exc:
        raise ApiError(500, "MODEL_ERROR", str(exc)) from None
