"""The predict API's backend in the cloud: a SageMaker endpoint called through sagemaker-runtime.

It answers the same calls as the local EndpointService, so the FastAPI app is the same; SageMaker itself
routes between production variants, shifts traffic in deployments and captures data, so this side only
invokes, times and counts."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from aws.requests import s3_location
from inference.endpoints import Variant, version_of_name
from inference.inputs import Columns
from inference.metrics import VariantStats
from inference.service import ModelFailed

log = logging.getLogger("pravah.serving")
MODELS_READ_EVERY = 60.0  # seconds: which model each variant serves is read from the endpoint's config this often


def _request_body(items: list[Any]) -> dict[str, Any]:
    """What the serving container's input_fn takes: {"inputs": [texts]} or, for a table's model, {"instances":
    [{column: value}]}."""
    return {"instances": items} if items and isinstance(items[0], dict) else {"inputs": items}


class SageMakerEndpointService:
    capture = None  # the endpoint's DataCaptureConfig captures on the SageMaker side
    shadow = shadow_stats = None  # a shadow variant (ShadowProductionVariants) is copied to by SageMaker itself

    def __init__(
        self, endpoint: str, runtime_client, sagemaker_client=None, s3_client=None, input_uri: str | None = None
    ):
        """`input_uri`: the endpoint's input description that `pravah deploy --target sagemaker` writes (a
        table's columns, or text); without it, the endpoint is taken to serve text."""
        self.endpoint, self.runtime, self.sagemaker = endpoint, runtime_client, sagemaker_client
        self.s3, self.input_uri = s3_client, input_uri
        self.stats: dict[str, VariantStats] = {}
        self.weights: dict[str, float] = {}
        self._model_of: dict[str, str] = {}  # variant name (AllTraffic) -> model name (text-classifier-v3)
        self._models_read = -MODELS_READ_EVERY
        self._columns: Columns = None
        self._input_read = -MODELS_READ_EVERY

    async def start(self, address: str = "") -> None:
        return None

    async def stop(self) -> None:
        return None

    def input_columns(self) -> Columns:
        """The served model's columns (None: text), as the deploy described them; read again once a minute (a
        deployment may bring new columns). Until a description can be read, the last one read holds."""
        from botocore.exceptions import BotoCoreError, ClientError

        if self.input_uri and time.monotonic() - self._input_read >= MODELS_READ_EVERY:
            bucket, key = s3_location(self.input_uri)
            try:
                self._columns = json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())["columns"]
            except (ClientError, BotoCoreError, ValueError, KeyError) as exc:
                log.warning("the input description %s cannot be read: %s", self.input_uri, exc)
            self._input_read = time.monotonic()
        return self._columns

    @property
    def ready(self) -> bool:
        return True  # the endpoint's health is SageMaker's to report; a failed call answers 500 with its reason

    async def predict(self, item: Any) -> tuple[Variant, dict[str, Any], float]:
        """One text or table row (values by column): the variant that answered, its `result`, milliseconds."""
        variant, results, milliseconds = await self._invoke([item])
        return variant, results[0], milliseconds

    async def _invoke(self, items: list[Any]) -> tuple[Variant, list[dict[str, Any]], float]:
        from botocore.exceptions import BotoCoreError, ClientError

        started = time.perf_counter()
        try:
            answer = await asyncio.to_thread(
                self.runtime.invoke_endpoint,
                EndpointName=self.endpoint,
                ContentType="application/json",
                Accept="application/json",
                Body=json.dumps(_request_body(items), ensure_ascii=False),
            )
            results = json.loads(answer["Body"].read())["predictions"]
            if not all(isinstance(r, dict) and "prediction" in r for r in results):
                raise ValueError("no 'prediction' in its results")
        except (ClientError, BotoCoreError) as exc:
            self._observe("unknown", started, ok=False)
            raise ModelFailed(f"the SageMaker endpoint '{self.endpoint}' failed: {exc}") from None
        except (ValueError, KeyError, TypeError) as exc:
            self._observe("unknown", started, ok=False)
            raise ModelFailed(
                f"the SageMaker endpoint '{self.endpoint}' answered in an unknown shape ({exc})"
            ) from None
        name = answer.get("InvokedProductionVariant", "unknown")
        if self._models_stale():  # a thread only once a minute, not on every prediction
            await asyncio.to_thread(self._read_models)
        return self._variant(name), results, self._observe(name, started, ok=True)

    def _read_models(self, described: dict[str, Any] | None = None) -> None:
        """Which model each variant serves (from `described`, the endpoint's description, when the caller has
        it): the variant is named AllTraffic, its model MODEL-vVERSION. During a blue/green update both fleets
        answer as the same variant; the version shown is the endpoint's current config's until it completes."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            described = described or self.sagemaker.describe_endpoint(EndpointName=self.endpoint)
            config = self.sagemaker.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
            self._model_of = {v["VariantName"]: v["ModelName"] for v in config.get("ProductionVariants", [])}
        except (ClientError, BotoCoreError, KeyError):
            pass  # the version is shown as unknown (0) until the next read succeeds
        self._models_read = time.monotonic()

    def _models_stale(self) -> bool:
        return self.sagemaker is not None and time.monotonic() - self._models_read >= MODELS_READ_EVERY

    def _observe(self, variant: str, started: float, ok: bool) -> float:
        milliseconds = (time.perf_counter() - started) * 1000
        self.stats.setdefault(variant, VariantStats()).observe(milliseconds, ok)
        return milliseconds

    def _variant(self, name: str) -> Variant:
        model, version = version_of_name(self._model_of.get(name, name)) or (name, 0)
        return Variant(name=name, model=model, version=version, artifact="", digest="")

    def model_info(self) -> dict[str, Any]:
        if self.sagemaker is None:
            return {"endpoint": self.endpoint, "variants": []}
        described = self.sagemaker.describe_endpoint(EndpointName=self.endpoint)
        self._read_models(described)
        variants = [
            {
                "name": v["VariantName"],
                "modelVersion": str(self._variant(v["VariantName"]).version),
                "weight": float(v.get("CurrentWeight", 0)),
            }
            for v in described.get("ProductionVariants", [])
        ]
        main = max(variants, key=lambda v: v["weight"], default=None)
        return {
            "endpoint": self.endpoint,
            "status": described.get("EndpointStatus"),
            "modelName": self._variant(main["name"]).model if main else None,
            "modelVersion": main["modelVersion"] if main else None,
            "variants": variants,
        }
