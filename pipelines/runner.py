"""The local runner: walks the step graph, runs independent steps in parallel, each in its own process
with the SageMaker container contract on local folders, and records everything it does.

Outputs are written to a scratch folder and moved into place only when the step succeeds, so a crash
or `kill -9` never leaves a half output that a later run could take for a result.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from foundation.errors import PravahError, StepFailed
from foundation.fingerprint import code_fingerprint, hash_json, hash_tree
from foundation.home import Home
from pipelines import contract, kinds
from pipelines.cache import StepCache, verify_output
from pipelines.graph import StepGraph
from pipelines.outputs import commit_outputs, empty_output
from pipelines.processes import Ended, StepLauncher, describe_exit
from pipelines.records import DONE, Outcome, RunRecord, RunStore, StepRecord, new_run_id, now
from pipelines.registry_worker import RegistryWorker
from pipelines.reports import read_report_value, report_metrics
from pipelines.spec import (
    CodeStep,
    ModelRef,
    ParamRef,
    PathRef,
    Pipeline,
    ProcessingStep,
    RegisterStep,
    ReportRef,
    StepOutput,
    TrainingStep,
)
from pipelines.stepcode import step_code_problems
from pipelines.sweep import objective_reader, run_search


class RunInterrupted(StepFailed):
    exit_code = 130


class LocalRunner:
    def __init__(
        self,
        pipeline: Pipeline,
        home: Home,
        *,
        use_cache: bool = True,
        max_parallel: int | None = None,
        progress: Any = None,
        registry: RegistryWorker | None = None,
        register: bool = True,
    ):
        self.pipeline = pipeline
        self.home = home
        self.graph = StepGraph.build(pipeline)
        self.use_cache = use_cache
        self.register = register  # False: an experiment; its register steps are skipped, no version is made
        self.max_parallel = max_parallel or os.cpu_count() or 1
        self.store = RunStore(home)
        self.cache = StepCache(home)
        self.progress = progress
        self.registry = registry or RegistryWorker(home)
        self.code_problems = step_code_problems(pipeline)  # each such step fails when its turn comes
        self.code = {
            name: code_fingerprint(step.code)
            for name, step in pipeline.steps.items()
            if isinstance(step, ProcessingStep | TrainingStep) and name not in self.code_problems
        }
        self.launcher = StepLauncher(preload=self._shared_imports())
        self.record: RunRecord | None = None  # the run being executed, or the last one

    # -- entry points ---------------------------------------------------------------------------

    def run(self, parameters: dict[str, Any]) -> RunRecord:
        record = RunRecord(
            id=new_run_id(),
            pipeline=self.pipeline.name,
            spec_path=str(self.pipeline.path.resolve()),
            spec_hash=self.pipeline.source_hash,
            spec_file_hash=self.pipeline.file_hash,
            parameters=parameters,
            options={"use_cache": self.use_cache, "register": self.register, "overrides": self.pipeline.overrides},
            steps={name: StepRecord(name=name, kind=self.pipeline.steps[name].kind) for name in self.graph.steps},
            edges=[[edge.upstream, edge.downstream, edge.label] for edge in self.graph.edges],
        )
        return self._execute(record)

    def resume(self, run_id: str) -> RunRecord:
        """Run again only the steps that did not succeed, and everything downstream of them."""
        record = self.store.load(run_id)
        if record.status == "running":
            raise PravahError(f"run {run_id} is still running (pid {record.pid} on {record.host})")
        if record.status == "succeeded":
            raise PravahError(f"run {run_id} succeeded: there is nothing to resume")
        if record.spec_hash != self.pipeline.source_hash:
            raise PravahError(
                f"{self.pipeline.path} changed since run {run_id} started: start a new run instead of resuming"
            )
        broken = {
            name
            for name, step in record.steps.items()
            if step.status not in DONE | {"skipped"}
            or (step.status in DONE and not all(verify_output(o) for o in step.outputs.values()))
        }
        for name in self.graph.descendants(broken):
            record.steps[name] = StepRecord(name=name, kind=self.pipeline.steps[name].kind)
        self.use_cache = record.options.get("use_cache", self.use_cache)  # resumed as it was run
        self.register = record.options.get("register", self.register)
        record.status, record.error, record.pid, record.ended_at = "running", None, os.getpid(), None
        record.resumed_at.append(now())
        return self._execute(record)

    # -- the scheduling loop --------------------------------------------------------------------

    def _execute(self, record: RunRecord) -> RunRecord:
        self.record = record
        self.store.clean_scratch()
        started = time.monotonic()
        self.store.save(record)
        self._notify("run_started", record, self.graph)
        failure: StepFailed | None = None
        running: dict[Future, str] = {}
        pool = ThreadPoolExecutor(self.max_parallel, thread_name_prefix="step")
        try:
            while True:
                if failure is None:
                    for name in (ready := self._ready(record, set(running.values()))):
                        record.steps[name].status, record.steps[name].started_at = "running", now()
                        self._notify("step_started", name)
                        running[pool.submit(self._run_step, name, record)] = name
                    if ready:
                        self.store.save(record)
                if not running:
                    break
                # with a timeout: a Ctrl-C that lands on another thread is acted on here within a second (a wait
                # without one is not interrupted by a signal handled elsewhere)
                finished, _ = wait(running, timeout=1.0, return_when=FIRST_COMPLETED)
                for future in finished:
                    name = running.pop(future)
                    outcome = future.result()
                    self._apply(record, name, outcome)
                    if outcome.status == "failed" and failure is None:
                        failure = StepFailed(f"step '{name}' failed: {outcome.error}")
                    self.store.save(record)
                    self._notify("step_finished", record, name, outcome)
        except KeyboardInterrupt:
            self.launcher.stop_all()
            for future, name in running.items():
                future.cancel()
                record.steps[name].status, record.steps[name].error = "failed", "interrupted"
            failure = RunInterrupted(f"interrupted; continue with: pravah run --resume {record.id}")
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self.launcher.close()
            self.registry.close()
        return self._finish(record, failure, time.monotonic() - started)

    def _finish(self, record: RunRecord, failure: StepFailed | None, elapsed: float) -> RunRecord:
        for step in record.steps.values():
            if step.status in {"pending", "running"}:
                step.status = "not-run"
                step.reason = step.reason or "an upstream step failed"
        record.status = "interrupted" if isinstance(failure, RunInterrupted) else "failed" if failure else "succeeded"
        record.error = str(failure) if failure else None
        record.ended_at = now()
        record.duration_s = round(elapsed + (record.duration_s or 0.0), 3)
        self.store.save(record)
        self._notify("run_finished", record)
        shutil.rmtree(self.home.scratch / record.id, ignore_errors=True)
        if failure:
            raise failure
        return record

    def _ready(self, record: RunRecord, running: set[str]) -> list[str]:
        self._propagate_skips(record)
        return [
            name
            for name in self.graph.steps
            if record.steps[name].status == "pending"
            and name not in running
            and all(record.steps[up].status in DONE for up in self.graph.upstream[name])
        ]

    def _propagate_skips(self, record: RunRecord) -> None:
        """A step none of whose branches was taken is skipped, and so is everything after it."""
        for name in self.graph.steps:
            step = record.steps[name]
            if step.status == "pending" and any(
                record.steps[up].status == "skipped" for up in self.graph.upstream[name]
            ):
                step.status, step.reason = "skipped", "an upstream step was skipped"

    def _apply(self, record: RunRecord, name: str, outcome: Outcome) -> None:
        step = record.steps[name]
        for attribute in (
            "status",
            "attempts",
            "cache_key",
            "cache_hit",
            "reason",
            "outputs",
            "metrics",
            "details",
            "error",
            "log",
            "duration_s",
            "params",
            "peak_memory_mb",
        ):
            setattr(step, attribute, getattr(outcome, attribute))
        step.ended_at = now()
        for target, reason in outcome.skips.items():  # a condition's branch not taken
            record.steps[target].status, record.steps[target].reason = "skipped", reason

    def _notify(self, event: str, *args: Any) -> None:
        if self.progress is not None:
            getattr(self.progress, event)(*args)

    # -- one step ---------------------------------------------------------------------------------

    def _run_step(self, name: str, record: RunRecord) -> Outcome:
        started = time.monotonic()
        step = self.pipeline.steps[name]
        try:
            if name in self.code_problems:
                raise StepFailed(self.code_problems[name])
            outcome = kinds.LOCAL[type(step)](self, name, step, record)
        except StepFailed as exc:
            outcome = Outcome(status="failed", error=str(exc))
        outcome.duration_s = round(time.monotonic() - started, 3)
        return outcome

    def value(self, value: Any, record: RunRecord) -> Any:
        return record.parameters[value.param] if isinstance(value, ParamRef) else value

    def operand(self, value: Any, record: RunRecord) -> Any:
        if isinstance(value, ReportRef):
            report = self.pipeline.steps[value.step].reports[value.report]
            output = record.steps[value.step].outputs[report.output]
            return read_report_value(Path(output.path) / report.file, value.path)
        return self.value(value, record)

    def _input_path(self, name: str, ref: Any, record: RunRecord) -> tuple[Path | None, str]:
        """Where an input is, and its content digest; no path for a model alias nobody holds."""
        if isinstance(ref, StepOutput):
            output = record.steps[ref.step].outputs[ref.output]
            return Path(output.path), output.digest
        if isinstance(ref, ModelRef):
            found = self.registry.resolve(model_name=str(self.value(ref.model, record)), alias=ref.alias)
            return (Path(found["path"]), found["digest"]) if found else (None, f"no {ref.alias}")
        if isinstance(ref, PathRef):
            path = self.pipeline.project_root / ref.path
        else:
            path = Path(str(record.parameters[ref.param])).expanduser()
        if not path.exists():
            raise StepFailed(f"input '{name}': no file or folder {path}")
        return path, hash_tree(path).digest

    def run_code_step(
        self,
        name: str,
        step: CodeStep,
        record: RunRecord,
        sampled: dict[str, Any] | None = None,
        label: str | None = None,
    ) -> Outcome:
        """Run a processing or training step (a search's trial: with `sampled` hyperparameters, logged as `label`;
        a kind that runs code of its own, as transform does, gives its job as a processing step)."""
        label = label or name
        inputs = {n: self._input_path(n, ref, record) for n, ref in step.inputs.items()}
        raw_values = step.arguments if isinstance(step, ProcessingStep) else step.hyperparameters
        values = {key: self.value(value, record) for key, value in raw_values.items()} | (sampled or {})
        code = self.code.get(name) or code_fingerprint(step.code)
        components = {
            "definition": {
                "kind": step.kind,
                "code": step.code,
                "values": values,
                "outputs": {n: o.area for n, o in step.outputs.items()},
            },
            "inputs": {n: digest for n, (_, digest) in inputs.items()},
            "code": code.files,
            "libraries": code.libraries,
        }
        key = hash_json(components)
        params = {**values, "code": step.code}
        hit, reason = self.cache_check(name, key, components, step.cache)
        if hit:
            run_id, outputs, _ = hit
            return Outcome(
                status="cached",
                cache_key=key,
                cache_hit=True,
                reason=f"from run {run_id}",
                outputs=outputs,
                metrics=report_metrics(step, outputs),
                params=params,
            )
        if any(isinstance(s, RegisterStep) and s.model.step == name for s in self.pipeline.steps.values()):
            self.registry.warm()  # MLflow's start-up (3 CPU-s) overlaps the training of the model it registers

        log_path = self.home.step_log(record.id, label)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        error, peak_memory_mb = "", None
        for attempt in range(1, step.retry.max_attempts + 1):
            if self.launcher.stopped:  # interrupted: no retry, no further trial of a search
                raise RunInterrupted("interrupted")
            sandbox = self.home.scratch / record.id / label / f"attempt-{attempt}"
            shutil.rmtree(sandbox, ignore_errors=True)
            sandbox.mkdir(parents=True)
            paths = {n: path for n, (path, _) in inputs.items() if path is not None}
            if isinstance(step, ProcessingStep):
                invocation = contract.processing(step.code, sandbox, paths, list(step.outputs), values)
            else:
                invocation = contract.training(step.code, sandbox, paths, values, self.max_parallel)
            ended = self._spawn(invocation, log_path, f"{label} attempt {attempt}")
            peak_memory_mb = max(peak_memory_mb or 0.0, ended.peak_mb or 0.0) or None
            required = ["model"] if isinstance(step, TrainingStep) else list(step.outputs)  # SageMaker's output data
            error = describe_exit(ended.code, log_path) if ended.code else empty_output(invocation, required)
            if not error:
                outputs = commit_outputs(self.home, self.pipeline.name, name, key, step, invocation)
                if step.cache:
                    self.cache.store(key, self.pipeline.name, name, record.id, outputs, components)
                shutil.rmtree(sandbox, ignore_errors=True)
                return Outcome(
                    status="succeeded",
                    attempts=attempt,
                    cache_key=key,
                    reason=reason,
                    outputs=outputs,
                    metrics=report_metrics(step, outputs),
                    log=str(log_path),
                    params=params,
                    peak_memory_mb=peak_memory_mb,
                )
            shutil.rmtree(sandbox, ignore_errors=True)
            if attempt < step.retry.max_attempts:
                time.sleep(step.retry.backoff_seconds * step.retry.backoff_rate ** (attempt - 1))
        return Outcome(
            status="failed",
            attempts=step.retry.max_attempts,
            cache_key=key,
            reason=reason,
            error=error,
            log=str(log_path),
            params=params,
            peak_memory_mb=peak_memory_mb,
        )

    def run_search(self, name: str, step: TrainingStep, record: RunRecord) -> Outcome:
        """The step's hyperparameter search (pipelines/sweep.py); the best trial's outcome is the step's."""
        search = step.search

        def trial(number: int, sampled: dict[str, Any]) -> Outcome:
            return self.run_code_step(name, step, record, sampled, f"{name}.trial-{number}")

        found = run_search(
            search,
            min(search.parallel, self.max_parallel),
            trial,
            objective_reader(step),
            lambda *event: self._notify("trial_finished", name, *event),
        )
        details = {"search": found.details(search)}
        if found.best is None:
            first = found.trials[0].outcome.error
            return Outcome(
                status="failed", error=f"all {len(found.trials)} trials failed; trial 1: {first}", details=details
            )
        best, cached = found.best.outcome, all(trial.outcome.cache_hit for trial in found.trials)
        return Outcome(
            status="cached" if cached else "succeeded",
            cache_key=best.cache_key,
            cache_hit=cached,
            reason=f"best of {len(found.trials)} trials: trial {found.best.number}, {search.objective.metric} = "
            f"{found.best.value:.4g}",
            outputs=best.outputs,
            details=details,
            log=best.log,
            metrics=best.metrics | {"search.best_value": found.best.value, "search.best_trial": found.best.number},
            params=best.params | {"search.trial": found.best.number},
            peak_memory_mb=max((t.outcome.peak_memory_mb or 0.0 for t in found.trials), default=0.0) or None,
        )

    def cache_check(self, name: str, key: str, components: dict, cacheable: bool) -> tuple[Any, str]:
        """An intact earlier result for this key, or why the step must run."""
        if not self.use_cache:
            return None, "--no-cache"
        if not cacheable:
            return None, "cache: false in the spec"
        hit = self.cache.lookup(key)
        return (hit, "") if hit else (None, self.cache.explain_miss(self.pipeline.name, name, components))

    def _spawn(self, invocation: contract.Invocation, log_path: Path, title: str) -> Ended:
        with log_path.open("a", encoding="utf-8") as log:
            log.write(f"=== {now()} {title}: {invocation}\n")
        env = {"PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg", **invocation.env}
        return self.launcher.run(invocation.module, invocation.args, env, self.pipeline.project_root, log_path)

    def _shared_imports(self) -> set[str]:
        """Third-party modules that more than one code step imports: the step server imports them once, while
        it waits for steps (the first ones do not wait for them)."""
        counts = Counter(module for code in self.code.values() for module in code.third_party)
        return {module for module, count in counts.items() if count > 1}
