"""The predict API's bodies: the OpenAPI document is generated from these, the routes answer in their shape."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Alternative(BaseModel):
    value: str
    confidence: float


class Result(BaseModel):
    prediction: str | float = Field(description="The label (a classification) or the value (a regression)")
    confidence: float | None = Field(description="The label's probability; null for a regression")
    alternatives: list[Alternative]


class PredictResponse(BaseModel):
    predictionId: str
    result: Result
    processingTime: float = Field(description="Milliseconds")
    modelVersion: str
    timestamp: str


class BatchAccepted(BaseModel):
    batchId: str
    status: str
    refused: int = Field(description="Items that cannot be scored: each has its error in the results")
    estimatedCompletionTime: str
    statusUrl: str


class BatchItemResult(BaseModel):
    index: int = Field(description="The item's place in the batch's inputs")
    predictionId: str | None = Field(None, description="What labels name later (pravah monitor labels add)")
    prediction: str | float | None = None
    confidence: float | None = None
    alternatives: list[Alternative] | None = None
    error: dict[str, str] | None = Field(None, description="Why this item was not scored: code, field, message")


class BatchResults(BaseModel):
    batchId: str
    results: list[BatchItemResult] = Field(description="One per input, in input order")


class BatchStatus(BaseModel):
    batchId: str
    status: str
    total: int
    refused: int
    submittedAt: str
    estimatedCompletionTime: str
    completedAt: str | None = None
    modelVersion: str | None = None
    error: str | None = None
    callbackUrl: str | None = None
    callbackStatus: str | None = None
    resultsUrl: str | None = None


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail]
    timestamp: str
    requestId: str


class ErrorResponse(BaseModel):
    error: ErrorBody


ERRORS = {status: {"model": ErrorResponse} for status in (400, 401, 403, 404, 413, 429, 500, 501, 503)}
