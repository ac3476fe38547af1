"""The floor of the serving benchmark: the same FastAPI + uvicorn stack, the same request body parsed by
the same model, answering a constant (no auth, no model, no capture)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from inference.app import NO_OPENTELEMETRY
from inference.inputs import PredictRequest

app = FastAPI(telemetry=NO_OPENTELEMETRY)  # as the API's own app
ANSWER = {
    "predictionId": "0",
    "result": {"prediction": "politics", "confidence": 1.0, "alternatives": []},
    "processingTime": 0.0,
    "modelVersion": "0",
    "timestamp": "2026-01-01T00:00:00Z",
}


@app.post("/api/v1/ml/predict")
async def predict(body: PredictRequest) -> JSONResponse:
    return JSONResponse(ANSWER)


@app.get("/health")
async def health() -> dict:
    return {"status": "ok"}
