"""The predict API's backend in the cloud: a SageMaker endpoint called through sagemaker-runtime.

It answers the same calls as the local EndpointService, so the FastAPI app is the same; SageMaker itself
routes between production variants, shifts traffic in deployments and captures data, so this side only
invokes, times and counts."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from inference.endpoints import Variant
from inference.metrics import VariantStats
from inference.predictor import Prediction
from inference.service import ModelFailed

_VERSIONED = re.compile(r"(?P<model>.+)-v(?P<version>\d+)$")  # variants are named MODEL-vVERSION by pravah deploy


class SageMakerEndpointService:
    capture = None  # the endpoint's DataCaptureConfig captures on the SageMaker side

    def __init__(self, endpoint: str, runtime_client, sagemaker_client=None):
        self.endpoint, self.runtime, self.sagemaker = endpoint, runtime_client, sagemaker_client
        self.stats: dict[str, VariantStats] = {}
        self.weights: dict[str, float] = {}

    async def start(self, address: str = "") -> None:
        return None

    async def stop(self) -> None:
        return None

    @property
    def ready(self) -> bool:
        return True  # the endpoint's health is SageMaker's to report; a failed call answers 500 with its reason

    async def predict(self, text: str) -> tuple[Variant, Prediction, float]:
        variant, predictions, milliseconds = await self._invoke([text])
        return variant, predictions[0], milliseconds

    async def predict_many(self, texts: list[str]) -> tuple[Variant, list[Prediction]]:
        variant, predictions, _ = await self._invoke(texts)
        return variant, predictions

    async def _invoke(self, texts: list[str]) -> tuple[Variant, list[Prediction], float]:
        from botocore.exceptions import BotoCoreError, ClientError

        started = time.perf_counter()
        try:
            answer = await asyncio.to_thread(
                self.runtime.invoke_endpoint, EndpointName=self.endpoint, ContentType="application/json",
                Accept="application/json", Body=json.dumps({"inputs": texts}, ensure_ascii=False),
            )  # fmt: skip
            body = json.loads(answer["Body"].read())
            predictions = [Prediction.from_result(p) for p in body["predictions"]]
        except (ClientError, BotoCoreError) as exc:
            self._observe("unknown", started, ok=False)
            raise ModelFailed(f"the SageMaker endpoint '{self.endpoint}' failed: {exc}") from None
        except (ValueError, KeyError, TypeError) as exc:
            self._observe("unknown", started, ok=False)
            raise ModelFailed(
                f"the SageMaker endpoint '{self.endpoint}' answered in an unknown shape ({exc})"
            ) from None
        name = answer.get("InvokedProductionVariant", "unknown")
        return self._variant(name), predictions, self._observe(name, started, ok=True)

    def _observe(self, variant: str, started: float, ok: bool) -> float:
        milliseconds = (time.perf_counter() - started) * 1000
        self.stats.setdefault(variant, VariantStats()).observe(milliseconds, ok)
        return milliseconds

    @staticmethod
    def _variant(name: str) -> Variant:
        match = _VERSIONED.fullmatch(name)
        model, version = (match["model"], int(match["version"])) if match else (name, 0)
        return Variant(name=name, model=model, version=version, artifact="", digest="")

    def model_info(self) -> dict[str, Any]:
        if self.sagemaker is None:
            return {"endpoint": self.endpoint, "variants": []}
        described = self.sagemaker.describe_endpoint(EndpointName=self.endpoint)
        variants = [
            {"name": v["VariantName"], "modelVersion": str(self._variant(v["VariantName"]).version),
             "weight": float(v.get("CurrentWeight", 0))}
            for v in described.get("ProductionVariants", [])
        ]  # fmt: skip
        main = max(variants, key=lambda v: v["weight"], default=None)
        return {"endpoint": self.endpoint, "status": described.get("EndpointStatus"),
                "modelName": self._variant(main["name"]).model if main else None,
                "modelVersion": main["modelVersion"] if main else None, "variants": variants}  # fmt: skip
