"""One endpoint being served: its variants loaded, requests routed by weight, failures of a new variant
answered by the old one, and deployments carried out as the endpoint's state file asks.

Framework-free: the FastAPI app (inference/app.py) is only its HTTP face.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artifact.contract import input_columns
from foundation.errors import PravahError
from foundation.home import Home
from inference.batching import MicroBatcher
from inference.capture import CaptureWriter
from inference.config import ServingConfig
from inference.endpoints import Alarms, EndpointStore, Variant, Verdict, advance, fail
from inference.inputs import Columns, Limits
from inference.metrics import VariantStats, quantiles
from inference.scoring import OnlineActivity, ScoringProcess

log = logging.getLogger("pravah.serving")
CONTROL_INTERVAL = 0.25  # seconds between looks at the state file and the alarms


class ModelFailed(Exception):
    """The model raised on an input, and no other variant could answer it."""


class NotReady(Exception):
    """No variant is loaded yet."""


@dataclass
class Loaded:
    variant: Variant
    scorer: ScoringProcess
    batcher: MicroBatcher
    batch_scorer: ScoringProcess | None = None  # batch prediction's own process, started by the first batch
    batch_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def batch_scoring(self, top_k: int, activity: OnlineActivity) -> ScoringProcess:
        """Batches score in a process of their own, at a lower CPU priority and only while online scoring is
        quiet: online requests never queue behind a batch in the scoring pipe, nor share the CPU with it."""
        async with self.batch_lock:
            if self.batch_scorer is None:
                self.batch_scorer = await ScoringProcess(self.variant.artifact, top_k, True, activity).start()
        return self.batch_scorer

    async def close(self) -> None:
        for scorer in (self.scorer, self.batch_scorer):
            if scorer is not None:
                await scorer.close()


class EndpointService:
    def __init__(self, home: Home, endpoint: str, config: ServingConfig):
        self.home, self.endpoint, self.config = home, endpoint, config
        self.store = EndpointStore(home)
        self.loaded: dict[str, Loaded] = {}
        self.stats: dict[str, VariantStats] = {}
        self.weights: dict[str, float] = {}
        self.capture = (
            CaptureWriter(home.root / "capture", endpoint, config.capture.sampling_percent,
                          config.capture.buffer_records, config.capture.flush_seconds)
            if config.capture.enabled else None
        )  # fmt: skip
        self._routes: list[tuple[float, Loaded]] = []
        self._seen_mtime: int | None = None
        self._deploying = False  # a deployment is in progress: look at its alarms on every tick
        self._control: asyncio.Task | None = None
        self._intake: ScoringProcess | None = None  # checks batch bodies, started by the first batch
        self.online_activity = OnlineActivity()  # what online scorers report and batch scorers yield to
        self._intake_lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------------------------
    async def start(self, address: str = "") -> None:
        with self.store.update(self.endpoint, create=True) as state:
            if state.serving and state.served_by and state.served_by.get("pid") != os.getpid():
                raise PravahError(f"endpoint '{self.endpoint}' is already {state.describe_server()}")
            state.served_by = {"pid": os.getpid(), "host": socket.gethostname(), "address": address,
                               "since": time.time()}  # fmt: skip
        await self.sync()
        self._control = asyncio.create_task(self._control_loop())

    async def stop(self) -> None:
        if self._control:
            self._control.cancel()
        with self.store.update(self.endpoint) as state:
            if state.served_by and state.served_by.get("pid") == os.getpid():
                state.served_by = None
        if self.capture:
            self.capture.close()
        for loaded in self.loaded.values():
            await loaded.close()
        if self._intake is not None:
            await self._intake.close()

    @property
    def ready(self) -> bool:
        return bool(self._routes)

    # -- predictions -----------------------------------------------------------------------------------------
    async def predict(self, item: Any) -> tuple[Variant, dict[str, Any], float]:
        """One text or table row (values by column): the variant that answered, its `result`, milliseconds. A
        failing variant's request goes to another."""
        tried: list[str] = []
        for chosen in self._candidates():
            started = time.perf_counter()
            try:
                prediction = await chosen.batcher.submit(item)
            except Exception as exc:
                self._observe(chosen.variant.name, started, ok=False)
                log.warning("variant %s failed: %s", chosen.variant.name, exc, extra={"variant": chosen.variant.name})
                tried.append(chosen.variant.name)
                continue
            return chosen.variant, prediction, self._observe(chosen.variant.name, started, ok=True)
        raise ModelFailed(f"the model failed on this input (variants tried: {', '.join(tried)})")

    async def check_batch(self, folder: Path, limits: Limits) -> dict[str, Any]:
        """A batch body's item counts, read and checked against the served model's columns by the intake
        process (InputRefused when nothing in it can be scored)."""
        async with self._intake_lock:
            if self._intake is None:
                self._intake = await ScoringProcess(None, self.config.api.top_k).start()
        return await self._intake.batch(folder, limits, "check", self.input_columns())

    async def score_batch(self, folder: Path, limits: Limits) -> Variant:
        """Score a checked batch into its results file; the variant that did it (another, if one fails)."""
        for chosen in self._candidates():
            try:
                capture = self.capture and {"folder": str(self.capture.root / self.endpoint / chosen.variant.name),
                                            "sampling": self.capture.sampling}  # fmt: skip
                scorer = await chosen.batch_scoring(self.config.api.top_k, self.online_activity)
                counts = await scorer.batch(folder, limits, "score", capture=capture or None)
                stats = self.stats.setdefault(chosen.variant.name, VariantStats())
                stats.batch_items += counts["total"] - counts["refused"]
                return chosen.variant
            except Exception as exc:
                log.warning("variant %s failed on a batch: %s", chosen.variant.name, exc)
        raise ModelFailed("the model failed on this batch")

    def _candidates(self) -> list[Loaded]:
        """The routed variant first, then the others by weight (the fallbacks)."""
        if not self._routes:
            raise NotReady("no model is loaded yet")
        if len(self._routes) == 1:
            return [self._routes[0][1]]
        pick = random.random() * 100.0
        chosen = next((loaded for bound, loaded in self._routes if pick < bound), self._routes[-1][1])
        others = sorted((o for _, o in self._routes if o is not chosen), key=lambda o: -o.variant.weight)
        return [chosen, *others]

    def _observe(self, variant: str, started: float, ok: bool) -> float:
        milliseconds = (time.perf_counter() - started) * 1000
        self.stats.setdefault(variant, VariantStats()).observe(milliseconds, ok)
        return milliseconds

    def input_columns(self) -> Columns:
        """What the endpoint's model reads: None for text, else a table row's columns (the main variant's; a
        deployment cannot mix the two, inference/endpoints.py)."""
        return input_columns(self._main().scorer.manifest) if self._routes else None

    def _main(self) -> Loaded:
        return max((loaded for _, loaded in self._routes), key=lambda loaded: loaded.variant.weight)

    def model_info(self) -> dict[str, Any]:
        if not self._routes:
            raise NotReady("no model is loaded yet")
        main = self._main()
        manifest = main.scorer.manifest
        columns = input_columns(manifest)
        return {
            "endpoint": self.endpoint,
            "modelName": main.variant.model,
            "modelVersion": str(main.variant.version),
            "family": manifest.get("family"),
            "task": manifest.get("task", "classification"),
            "metrics": main.variant.metrics or manifest.get("validation_metrics", {}),
            "metricsSplit": "test" if main.variant.metrics else "validation",
            "gateMetric": main.variant.gate_metric,
            "languages": manifest.get("languages", []),
            "labels": manifest.get("labels", []),
            "input": {"kind": "text"} if columns is None else {"kind": "table", "columns": columns},
            "variants": [
                {"name": v.variant.name, "modelVersion": str(v.variant.version), "weight": v.variant.weight}
                for _, v in self._routes
            ],
        }

    # -- deployments -------------------------------------------------------------------------------------------
    async def _control_loop(self) -> None:
        while True:
            await asyncio.sleep(CONTROL_INTERVAL)
            try:
                await self.sync()
            except Exception:  # the loop must outlive one bad look at the state file
                log.exception("endpoint control failed")

    async def sync(self) -> None:
        """Load what the state names, take one deployment decision, route as the state says."""
        if self.store.mtime(self.endpoint) == self._seen_mtime and not self._deploying:
            return  # nothing changed and nothing to watch: the file is not read again
        state = self.store.read(self.endpoint)
        active = state.deployment if state.deployment and state.deployment.active else None
        wanted = [*state.variants, *([active.target] if active else [])]
        for variant in wanted:
            if variant.name not in self.loaded:
                try:
                    scorer = await ScoringProcess(
                        variant.artifact, self.config.api.top_k, activity=self.online_activity
                    ).start()
                    self.loaded[variant.name] = Loaded(variant, scorer, MicroBatcher(scorer.predict))
                except Exception as exc:
                    log.error("cannot load %s: %s", variant.name, exc)
                    if active and variant.name == active.target.name:
                        self._fail_deployment(active.id, f"cannot load {variant.name}: {exc}")
                        return
        with self.store.update(self.endpoint) as state:
            if advance(state, self._judge):
                deployment = state.deployment
                log.info("deployment %s: %s", deployment.id, deployment.events[-1] if deployment.events else "")
            self._route(state.variants)
            self._deploying = bool(state.deployment and state.deployment.active)
            keep = {v.name for v in state.variants} | ({state.deployment.target.name} if self._deploying else set())
        for name in set(self.loaded) - keep:
            await self.loaded.pop(name).close()
        self._seen_mtime = self.store.mtime(self.endpoint)

    def _route(self, variants: list[Variant]) -> None:
        routes, bound = [], 0.0
        for variant in variants:
            loaded = self.loaded.get(variant.name)
            if loaded is None or variant.weight <= 0:
                continue
            loaded.variant = variant
            bound += variant.weight
            routes.append((bound, loaded))
        if routes:  # bounds to a 0..100 scale whatever the weights add up to
            routes = [(b * 100.0 / bound, loaded) for b, loaded in routes]
        self._routes = routes
        self.weights = {v.name: v.weight for v in variants}

    def _judge(self, variant: str, since: float, alarms: Alarms) -> Verdict:
        requests, errors, latencies = self.stats.setdefault(variant, VariantStats()).since(since)
        if requests == 0 or requests < alarms.min_requests:
            return Verdict(None, requests)
        if errors / requests > alarms.max_error_rate:
            return Verdict(f"error rate {errors / requests:.1%} > {alarms.max_error_rate:.1%} "
                           f"({errors} of {requests} requests)", requests)  # fmt: skip
        p99 = quantiles(latencies, (0.99,))[0.99]
        if p99 > alarms.max_p99_ms:
            return Verdict(f"p99 latency {p99:.0f} ms > {alarms.max_p99_ms:g} ms over {requests} requests", requests)
        return Verdict(None, requests)

    def _fail_deployment(self, deployment_id: str, reason: str) -> None:
        with self.store.update(self.endpoint) as state:
            if state.deployment and state.deployment.id == deployment_id and state.deployment.active:
                fail(state, reason)
