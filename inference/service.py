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

import orjson

from artifact.contract import input_columns
from artifact.text import dominant_scripts, language_code
from foundation.errors import PravahError
from foundation.home import Home, write_json_atomic
from foundation.jsonlog import utc_millis
from inference.batching import MicroBatcher
from inference.capture import CaptureWriter
from inference.config import ServingConfig
from inference.endpoints import Alarms, EndpointStore, Shadow, Variant
from inference.inputs import Columns, Limits
from inference.metrics import SeriesWriter, ShadowStats, VariantStats, quantiles
from inference.rollout import Verdict, advance, fail
from inference.scoring import OnlineActivity, ScoringProcess

log = logging.getLogger("pravah.serving")
CONTROL_INTERVAL = 0.25  # seconds between looks at the state file and the alarms
SHADOW_IN_FLIGHT = 64  # copies waiting for the shadow variant at most; more are skipped (and counted)
SHADOW_REPORT_SECONDS = 1.0  # how often the shadow's figures are written for `pravah endpoints show`


def answer_body(prediction_id: str, result: dict[str, Any], milliseconds: float, version: int) -> dict[str, Any]:
    """A prediction's answer, as the API returns it and as capture keeps it (a shadow's too)."""
    return {
        "predictionId": prediction_id,
        "result": result,
        "processingTime": round(milliseconds, 3),
        "modelVersion": str(version),
        "timestamp": utc_millis(),
    }


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
        self.series = SeriesWriter(self.store.folder, endpoint)
        self.weights: dict[str, float] = {}
        self.capture = (
            CaptureWriter(
                home.root / "capture",
                endpoint,
                config.capture.sampling_percent,
                config.capture.buffer_records,
                config.capture.flush_seconds,
            )
            if config.capture.enabled
            else None
        )
        self._routes: list[tuple[float, Loaded]] = []
        self._seen_mtime: int | None = None
        self._deploying = False  # a deployment is in progress: look at its alarms on every tick
        self._control: asyncio.Task | None = None
        self._intake: ScoringProcess | None = None  # checks batch bodies, started by the first batch
        self.online_activity = OnlineActivity()  # what online scorers report and batch scorers yield to
        self._intake_lock = asyncio.Lock()
        self.shadow: Shadow | None = None  # the shadow variant getting copies, once loaded
        self.shadow_stats: ShadowStats | None = None
        self.shadow_skipped = 0  # copies not sent: too many were waiting for the shadow
        self._copies: set[asyncio.Task] = set()
        self._shadow_written = (0, 0.0)  # (copies, time) of the last report written
        self._shadow_said_loaded = False  # whether a report said the shadow's model is loaded

    # -- lifecycle -------------------------------------------------------------------------------------------
    async def start(self, address: str = "") -> None:
        with self.store.update(self.endpoint, create=True) as state:
            if state.serving and state.served_by and state.served_by.get("pid") != os.getpid():
                raise PravahError(f"endpoint '{self.endpoint}' is already {state.describe_server()}")
            state.served_by = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "address": address,
                "folder_id": self.store.folder_id(),
                "since": time.time(),
            }
        await self.sync()
        self._control = asyncio.create_task(self._control_loop())

    async def stop(self) -> None:
        if self._control:
            self._control.cancel()
        with self.store.update(self.endpoint) as state:
            if state.served_by and state.served_by.get("pid") == os.getpid():
                state.served_by = None
        for copy in list(self._copies):
            copy.cancel()
        self._write_shadow_report(force=True)
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

    def copy_to_shadow(self, item: Any, sent: str, answer: dict[str, Any]) -> None:
        """Send a sampled copy of an answered request to the shadow variant, in the background: its answer is
        captured and compared with `answer`, never returned."""
        shadow = self.shadow
        if shadow is None or random.random() * 100.0 >= shadow.sample_percent:
            return
        loaded = self.loaded.get(shadow.variant.name)
        if loaded is None or len(self._copies) >= SHADOW_IN_FLIGHT:  # still loading, or too many copies waiting
            self.shadow_skipped += 1
            return
        copy = asyncio.get_running_loop().create_task(self._shadow_copy(loaded, item, sent, answer))
        self._copies.add(copy)
        copy.add_done_callback(self._copies.discard)

    async def _shadow_copy(self, loaded: Loaded, item: Any, sent: str, answer: dict[str, Any]) -> None:
        started = time.perf_counter()
        try:
            prediction, ok = await loaded.batcher.submit(item), True
        except Exception as exc:
            prediction, ok = None, False
            log.warning("shadow variant %s failed: %s", loaded.variant.name, exc)
        milliseconds = (time.perf_counter() - started) * 1000
        stats = self.shadow_stats
        if stats is None or stats.variant != loaded.variant.name:
            return  # the shadow ended or changed while this copy was scored
        agreed = ok and prediction["prediction"] == answer["result"]["prediction"]
        stats.observe(_segment(item, sent), milliseconds, ok, agreed)
        if ok and self.capture:
            shadow_answer = answer_body(answer["predictionId"], prediction, milliseconds, loaded.variant.version)
            self.capture.offer(loaded.variant.name, answer["predictionId"], sent, orjson.dumps(shadow_answer).decode())

    def shadow_report(self) -> dict[str, Any] | None:
        """The shadow's figures: its variant, sample, whether its model is loaded yet, copies skipped, and by
        segment what ShadowStats shows."""
        if self.shadow_stats is None:
            return None
        return {
            "variant": self.shadow_stats.variant,
            "endpoint": self.endpoint,
            "updated_at": time.time(),
            "sample_percent": self.shadow.sample_percent if self.shadow else None,
            "running": self.shadow is not None,  # a new shadow gets new figures (_shadow_to)
            "loaded": self.shadow_stats.variant in self.loaded,
            "skipped": self.shadow_skipped,
            "segments": self.shadow_stats.summary(),
        }

    def _write_shadow_report(self, force: bool = False) -> None:
        """The figures, for `pravah endpoints show`: when forced, else at most every SHADOW_REPORT_SECONDS and only
        after new copies (the count is looked at first: the report sorts every segment's latencies, on the loop)."""
        if self.shadow_stats is None:
            return
        copies, (written, at) = self.shadow_stats.requests.total() + self.shadow_skipped, self._shadow_written
        if force or (copies != written and time.time() - at >= SHADOW_REPORT_SECONDS):
            write_json_atomic(self.store.shadow_report_path(self.endpoint), self.shadow_report())
            self._shadow_written = (copies, time.time())

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
                capture = self.capture and {
                    "folder": str(self.capture.root / self.endpoint / chosen.variant.name),
                    "sampling": self.capture.sampling,
                }
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
                self._write_shadow_report()
                self.series.maybe_write(self.stats)
            except Exception:  # the loop must outlive one bad look at the state file
                log.exception("endpoint control failed")

    async def sync(self) -> None:
        """Load what the state names, take one deployment decision, route as the state says."""
        if self.store.mtime(self.endpoint) == self._seen_mtime and not self._deploying:
            return  # nothing changed and nothing to watch: the file is not read again
        state = self.store.read(self.endpoint)
        self._shadow_to(state.shadow)  # from the moment the state names it: copies sent while it loads are counted
        active = state.deployment if state.deployment and state.deployment.active else None
        wanted = [*state.variants, *([active.target] if active else [])]
        wanted += [state.shadow.variant] if state.shadow else []
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
                    if state.shadow and variant.name == state.shadow.variant.name:
                        self._end_shadow(variant.name)
                        return
        if self.shadow and self.shadow.variant.name in self.loaded and not self._shadow_said_loaded:
            self._shadow_said_loaded = True  # `endpoints show` and the tests see that copies now reach it
            self._write_shadow_report(force=True)
        with self.store.update(self.endpoint) as state:
            if advance(state, self._judge):
                deployment = state.deployment
                log.info("deployment %s: %s", deployment.id, deployment.events[-1] if deployment.events else "")
            self._route(state.variants)
            self._deploying = bool(state.deployment and state.deployment.active)
            keep = {v.name for v in state.variants} | ({state.deployment.target.name} if self._deploying else set())
            self._shadow_to(state.shadow)
            keep |= {state.shadow.variant.name} if state.shadow else set()
        for name in set(self.loaded) - keep:
            await self.loaded.pop(name).close()
        self._seen_mtime = self.store.mtime(self.endpoint)

    def _shadow_to(self, shadow: Shadow | None) -> None:
        """Follow the state's shadow: new figures for a new shadow variant; the last ones written when it ends."""
        started = shadow and (self.shadow is None or self.shadow.started_at != shadow.started_at)
        if started:
            self.shadow_stats, self.shadow_skipped = ShadowStats(shadow.variant.name), 0
            self._shadow_said_loaded = False
        ended, self.shadow = self.shadow and not shadow, shadow
        if started or ended:
            self._write_shadow_report(force=True)

    def _end_shadow(self, name: str) -> None:
        with self.store.update(self.endpoint) as state:
            if state.shadow and state.shadow.variant.name == name:
                state.shadow = None

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
            return Verdict(
                f"error rate {errors / requests:.1%} > {alarms.max_error_rate:.1%} ({errors} of {requests} requests)",
                requests,
            )
        p99 = quantiles(latencies, (0.99,))[0.99]
        if p99 > alarms.max_p99_ms:
            return Verdict(f"p99 latency {p99:.0f} ms > {alarms.max_p99_ms:g} ms over {requests} requests", requests)
        return Verdict(None, requests)

    def _fail_deployment(self, deployment_id: str, reason: str) -> None:
        with self.store.update(self.endpoint) as state:
            if state.deployment and state.deployment.id == deployment_id and state.deployment.active:
                fail(state, reason)


def _segment(item: Any, sent: str) -> str:
    """Which traffic a request is, as the drift job groups it: `language:CODE` when its metadata names one, else
    `script:NAME` of its text (`rows` for a table's)."""
    try:
        code = language_code(orjson.loads(sent)["input"]["metadata"]["language"])
    except (KeyError, TypeError, ValueError):
        code = None
    if code:
        return f"language:{code}"
    return f"script:{dominant_scripts([item])[0]}" if isinstance(item, str) else "rows"
