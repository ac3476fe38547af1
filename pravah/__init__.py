"""Pravah's Python client: what the command line does, for notebooks and scripts.

    import pravah

    project = pravah.Project()                      # found as `pravah` finds it: the nearest folder with configs/
    run = project.run("text-classifier", params={"min_macro_f1": 0.6}, overrides={"train.C": 20})
    run.status, run.metrics["evaluate"], run.outputs["train"]["model"]   # a folder of the project's store
    project.runs()[0].id == project.get_run("latest").id
    for version in project.models("text-classifier"):
        print(version.version, version.status, version.gate_score())
    project.approve("text-classifier", 1, reason="beats the baseline")
    project.predict("text-classifier", 1, ["India won the cricket match"])[0]["prediction"]
    project.endpoints()                             # each endpoint's variants, deployment and server

Everything it returns is a plain value (dataclasses, dicts, paths); errors a user can fix are `PravahError`s
with the same message the command line prints. The client reads and writes the same records as the command line,
so both can be used on one project at once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from foundation.errors import PravahError
from foundation.home import Home, project_root

if TYPE_CHECKING:
    from inference.endpoints import EndpointState
    from pipelines.records import RunRecord
    from registry.versions import ModelVersion

__all__ = ["PravahError", "Project", "Run"]


@dataclass(frozen=True)
class Run:
    """One pipeline run, as its record holds it (`record` has every field `pravah runs show --json` prints)."""

    record: RunRecord

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self.record.parameters)

    @property
    def steps(self) -> dict[str, str]:
        """Each step's status: succeeded, cached, failed, skipped or not-run."""
        return {name: step.status for name, step in self.record.steps.items()}

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        """Each step's metrics (its reports' numbers, flattened: `multiclass_classification_metrics.macro_f1`)."""
        return {name: dict(step.metrics) for name, step in self.record.steps.items() if step.metrics}

    @property
    def outputs(self) -> dict[str, dict[str, Path]]:
        """Each step's outputs: name -> the folder holding it (never rewritten once written)."""
        return {
            name: {output: Path(found.path) for output, found in step.outputs.items()}
            for name, step in self.record.steps.items()
            if step.outputs
        }

    @property
    def registered(self) -> dict[str, Any] | None:
        """The registry version the run made or found (name, version, approval_status), if any."""
        return next((s.details["registered"] for s in self.record.steps.values() if "registered" in s.details), None)


class Project:
    """A project folder (the one holding `configs/`) and its store of records, models and endpoints."""

    def __init__(self, folder: str | os.PathLike | None = None, home: str | os.PathLike | None = None):
        """`folder`: the project (default: as `pravah` finds it); `home`: where its records are (default:
        PRAVAH_HOME, else the project's .pravah)."""
        if folder is not None:
            root = Path(folder).expanduser().resolve()
            if not (root / "configs").is_dir():
                raise PravahError(f"{root}: not a project folder (no configs/ in it); `pravah init` makes one")
            os.environ["PRAVAH_PROJECT"] = str(root)  # as `pravah --project`: for this process and its steps'
        self.folder = project_root()
        self.home = Home.resolve(home)

    @property
    def tracking_uri(self) -> str:
        """MLflow's store of this project's runs and registry (for `mlflow.set_tracking_uri`)."""
        return self.home.tracking_uri

    # -- runs ---------------------------------------------------------------------------------------------------
    def run(
        self,
        pipeline: str,
        params: Mapping[str, Any] | None = None,
        overrides: Mapping[str, Any] | None = None,
        *,
        use_cache: bool = True,
        register: bool = True,
    ) -> Run:
        """Run a pipeline as `pravah run` does (`params`: -p, `overrides`: --set STEP.KEY); a failed run raises
        StepFailed, its record kept (`get_run("latest")`)."""
        from pipelines.contract import as_argument
        from pipelines.runner import LocalRunner
        from pipelines.specfile import load_pipeline

        spec = load_pipeline(pipeline, {key: as_argument(value) for key, value in (overrides or {}).items()})
        runner = LocalRunner(spec, self.home, use_cache=use_cache, register=register)
        return Run(runner.run(spec.resolve_parameters(dict(params or {}))))

    def runs(self, limit: int = 20) -> list[Run]:
        """Recent runs, newest first."""
        from pipelines.records import RunStore

        return [Run(record) for record in RunStore(self.home).all()[:limit]]

    def get_run(self, run_id: str = "latest") -> Run:
        """A run by its id, `latest` or a unique start of an id."""
        from pipelines.records import RunStore

        return Run(RunStore(self.home).load(run_id))

    def compile(self, pipeline: str, environment: str = "dev") -> dict[str, Any]:
        """The SageMaker pipeline definition for an environment (configs/environments/NAME.yaml), as `pravah
        compile` makes it: checked against the published schema and SageMaker's service model (a problem raises)."""
        from aws.environments import load_environment
        from pipelines.sagemaker.compiler import compile_pipeline
        from pipelines.specfile import load_pipeline

        spec = load_pipeline(pipeline)
        return compile_pipeline(spec, load_environment(environment, spec.project_root)).definition

    # -- the registry -------------------------------------------------------------------------------------------
    def models(self, name: str | None = None, status: str | None = None) -> list[ModelVersion]:
        """Registered versions (of one model, with one status), as `pravah models list` shows them."""
        return self._registry().list(name, status)

    def model(self, name: str, version: int) -> ModelVersion:
        return self._registry().get(name, version)

    def approve(self, name: str, version: int, reason: str) -> ModelVersion:
        from registry.versions import APPROVED, change_status

        return change_status(self._registry(), name, version, APPROVED, reason)

    def reject(self, name: str, version: int, reason: str) -> ModelVersion:
        from registry.versions import REJECTED, change_status

        return change_status(self._registry(), name, version, REJECTED, reason)

    def predict(self, model: str, version: int, inputs: Sequence[Any], top_k: int = 3) -> list[dict[str, Any]]:
        """Score texts (or a table model's rows, as a DataFrame) with a registered version, in this process: each
        answer as the API's `result` (label, confidence, alternatives; a regression's value)."""
        from artifact.predictor import Predictor
        from inference.endpoints import registered_variant

        return Predictor(Path(registered_variant(self.home, model, version).artifact)).results(inputs, top_k)

    def create_api_key(self, name: str) -> str:
        """A new key for the predict API (as `pravah keys create`): its secret, shown this once."""
        from inference.keys import KeyStore

        return KeyStore(self.home).create(name)

    def monitor(self, endpoint: str, start: datetime, end: datetime) -> dict[str, dict[str, Any]]:
        """As `pravah monitor run`: each variant's captured traffic in the window judged against the baseline of
        the version it serves (settings in configs/monitoring.yaml); by variant, its figures (records, each
        feature's drift score, violations, alert, where its report is)."""
        from monitoring.config import load_monitoring_config
        from monitoring.monitor import run_monitor

        return run_monitor(self.home, endpoint, load_monitoring_config(), start, end)

    # -- endpoints ----------------------------------------------------------------------------------------------
    def endpoints(self) -> list[EndpointState]:
        """Every local endpoint: variants and weights, the deployment in progress, the server serving it."""
        from inference.endpoints import EndpointStore

        store = EndpointStore(self.home)
        return [store.read(name) for name in store.names()]

    def endpoint(self, name: str) -> EndpointState:
        from inference.endpoints import EndpointStore

        return EndpointStore(self.home).read(name)

    def _registry(self):
        from registry import open_registry

        return open_registry(home=self.home)
