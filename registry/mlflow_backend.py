"""The MLflow backend of the model registry (`versions.py` holds the interface and its rules)."""

from __future__ import annotations

import fcntl
import json
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from foundation.errors import StepFailed, did_you_mean
from foundation.fingerprint import hash_tree
from foundation.home import Home
from registry.versions import APPROVAL_STATUSES, PENDING, REJECTED, ModelVersion, RegistryError, now, prefixed, who


class MlflowRegistry:
    """The MLflow Model Registry (SQLite under the project folder by default; any MLflow store URI works).

    The approval status and its history are version tags; registration holds a file lock so that two runs
    registering at the same moment never make two versions of one artifact (for a shared database server,
    MLflow's own version numbering still keeps versions unique, but the same artifact could be registered
    twice)."""

    def __init__(self, home: Home, client=None):
        from foundation.mlflow_store import connect

        self.home = home
        self.client = client or connect(home)

    def register(
        self,
        *,
        name: str,
        artifact: Path,
        digest: str,
        files: dict[str, str],
        metrics: dict[str, float],
        lineage: dict[str, str],
        status: str,
        parent_run_id: str | None = None,
    ) -> ModelVersion:
        from mlflow.exceptions import MlflowException

        if status not in APPROVAL_STATUSES:
            raise RegistryError(f"approval status '{status}' is not one of {', '.join(APPROVAL_STATUSES)}")
        if not artifact.is_dir() or hash_tree(artifact).digest != digest:
            raise RegistryError(f"model artifact {artifact} is missing or was modified since it was written")
        self.home.root.mkdir(parents=True, exist_ok=True)
        with (self.home.root / "registry.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self.client.create_registered_model(name)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            existing = self.client.search_model_versions(
                f"name = '{name}' and tags.`pravah.artifact_digest` = '{digest}'"
            )
            if existing:  # the same artifact again: no duplicate version
                return self._to_version(existing[0])
            run_id = parent_run_id or self._registration_run(name)
            self.home.scratch.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix="pyfunc-", dir=self.home.scratch) as folder:
                self.client.log_artifacts(run_id, str(save_pyfunc(artifact, Path(folder) / "model")), "model")
            source = f"{self.client.get_run(run_id).info.artifact_uri}/model"
            history = [{"status": status, "by": who(), "at": now(), "reason": "registered"}]
            tags = {
                "approval_status": status,
                "approval_history": json.dumps(history),
                "pravah.artifact_digest": digest,
                "pravah.artifact_path": str(artifact),
                "pravah.checksums": json.dumps(files)[:4900],
                **{f"pravah.{key}": value for key, value in lineage.items()},
                **{f"metric.{key}": f"{value:.6g}" for key, value in sorted(metrics.items())[:200]},
            }
            created = self.client.create_model_version(name, source, run_id=run_id, tags=tags)
            return self._to_version(created)

    def _registration_run(self, name: str) -> str:
        """A run to hold the artifact when registering outside a pipeline run."""
        experiment = self.client.get_experiment_by_name(f"{name}-registry")
        if experiment:
            experiment_id = experiment.experiment_id
        else:
            uri = (self.home.artifact_root / f"{name}-registry").as_uri()
            experiment_id = self.client.create_experiment(f"{name}-registry", artifact_location=uri)
        return self.client.create_run(experiment_id, run_name=f"register {name}").info.run_id

    def get(self, name: str, version: int) -> ModelVersion:
        from mlflow.exceptions import MlflowException

        try:
            return self._to_version(self.client.get_model_version(name, str(version)))
        except MlflowException as exc:
            if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
                known = [str(v.version) for v in self._search(f"name = '{name}'")]
                have = f"; versions: {', '.join(sorted(known, key=int))}" if known else "; it has no versions"
                raise RegistryError(f"no version {version} of model '{name}'{have}") from None
            raise

    def status_of(self, name: str, version: int, digest: str) -> str | None:
        """The version's approval status, if it exists and holds the artifact of `digest`; else None."""
        try:
            found = self.get(name, version)
        except RegistryError:
            return None
        return found.status if found.digest == digest else None

    def list(self, name: str | None = None, status: str | None = None) -> list[ModelVersion]:
        if status and status not in APPROVAL_STATUSES:
            raise RegistryError(f"'{status}' is not an approval status{did_you_mean(status, APPROVAL_STATUSES)}")
        filters = [f"name = '{name}'"] if name else []
        if status:
            filters.append(f"tags.approval_status = '{status}'")
        versions = [self._to_version(v) for v in self._search(" and ".join(filters))]
        # MLflow's search leaves versions' aliases out (get_model_version has them): take them from each model
        aliases: dict[tuple[str, int], list[str]] = {}
        for model in {v.name for v in versions}:
            for alias, version in (self.client.get_registered_model(model).aliases or {}).items():
                aliases.setdefault((model, int(version)), []).append(alias)
        for version in versions:
            version.aliases = sorted(aliases.get((version.name, version.version), []))
        return sorted(versions, key=lambda v: (v.name, v.version))

    def _search(self, filter_string: str):
        return self.client.search_model_versions(filter_string or None, max_results=10000)

    def set_status(self, name: str, version: int, status: str, reason: str) -> ModelVersion:
        current = self.get(name, version)
        history = [*current.history, {"status": status, "by": who(), "at": now(), "reason": reason}]
        self.client.set_model_version_tag(name, str(version), "approval_history", json.dumps(history))
        self.client.set_model_version_tag(name, str(version), "approval_status", status)
        if status == REJECTED:  # a rejected version holds no alias
            for alias in current.aliases:
                self.client.delete_registered_model_alias(name, alias)
        return self.get(name, version)

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self.client.set_registered_model_alias(name, alias, str(version))

    def card_sources(self, version: ModelVersion) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """What a version's model card is made of: its artifact's manifest (checksums verified) and the
        evaluation report its run wrote (None when that is not in this project folder)."""
        from artifact.contract import open_artifact
        from registry.model_card import evaluation_of

        written = version.lineage.get("artifact_path")
        folder = (
            Path(written) if written and Path(written).is_dir() else local_artifacts(version.source) / PYFUNC_ARTIFACT
        )
        return open_artifact(folder), evaluation_of(version.lineage)

    def save_card(self, version: ModelVersion, card: dict[str, Any], files: dict[str, str]) -> str:
        """Store a version's model card files with it: in its run's artifacts under `model_card/vN/`, which the
        version's `pravah.model_card` tag names; where they are."""
        run_id = self.client.get_model_version(version.name, str(version.version)).run_id
        folder = f"model_card/v{version.version}"
        for file_name, text in files.items():
            self.client.log_text(run_id, text, f"{folder}/{file_name}")
        location = f"{self.client.get_run(run_id).info.artifact_uri}/{folder}"
        self.client.set_model_version_tag(version.name, str(version.version), "pravah.model_card", location)
        return location

    @staticmethod
    def _to_version(raw) -> ModelVersion:
        tags = dict(raw.tags or {})
        return ModelVersion(
            name=raw.name,
            version=int(raw.version),
            status=tags.get("approval_status", PENDING),
            source=raw.source,
            digest=tags.get("pravah.artifact_digest"),
            metrics=prefixed(tags, "metric.", float),
            lineage=prefixed(tags, "pravah.", str, skip={"artifact_digest", "checksums", "model_card"}),
            history=json.loads(tags.get("approval_history", "[]")),
            aliases=list(getattr(raw, "aliases", []) or []),
            created_at=datetime.fromtimestamp(raw.creation_timestamp / 1000, UTC).isoformat(timespec="seconds"),
        )

    def resolve_alias(self, name: str, alias: str) -> dict[str, Any] | None:
        from mlflow.exceptions import MlflowException

        try:
            version = self.client.get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
                return None
            raise
        return verified_artifacts(name, alias, version.source, (version.tags or {}).get("pravah.artifact_digest"))


PYFUNC_ARTIFACT = Path("artifacts") / "model"  # where the Pravah artifact sits inside the MLflow model


def save_pyfunc(artifact: Path, target: Path) -> Path:
    """The artifact as an MLflow pyfunc model (signature, input example, the artifact itself inside)."""
    import mlflow.pyfunc
    import pandas as pd
    from mlflow.models import infer_signature

    from artifact import mlflow_model
    from artifact.predictor import Predictor

    saved_example = artifact / "input_example.json"  # two rows of the model's input, kept by training
    if saved_example.is_file():
        example = pd.read_json(saved_example, orient="records", dtype=False)
    else:
        example = pd.DataFrame({"text": ["भारत ने क्रिकेट मैच जीता", "The election results were announced today"]})
    output = mlflow_model.PravahModel.predict_with(Predictor(artifact), example)
    staged = target.parent / "staged" / PYFUNC_ARTIFACT.name  # MLflow keeps an artifact folder's own name
    shutil.copytree(artifact, staged)
    mlflow.pyfunc.save_model(
        str(target),
        python_model=mlflow_model.__file__,
        artifacts={mlflow_model.ARTIFACT: str(staged)},
        signature=infer_signature(example, output),
        input_example=example,
        pip_requirements=_requirements(artifact),
    )
    return target


def _requirements(artifact: Path) -> list[str]:
    """The libraries the model was trained with (its manifest lists them): given, so that MLflow does not
    infer them by loading the model in a subprocess (ten seconds per registration)."""
    from importlib.metadata import PackageNotFoundError, version

    libraries = json.loads((artifact / "model.json").read_text()).get("libraries", {})
    pins = {name: number for name, number in libraries.items() if name != "python"}
    for name in ("mlflow", "pandas", "pydantic", "pyyaml"):
        try:
            pins.setdefault(name, version(name))
        except PackageNotFoundError:
            continue
    return [f"{name}=={number}" for name, number in sorted(pins.items())]


def verified_artifacts(model_name: str, alias: str, source: str, expected: str | None) -> dict[str, Any]:
    path = local_artifacts(source)
    if (path / "MLmodel").is_file():
        path = path / PYFUNC_ARTIFACT
    if not path.is_dir():
        raise StepFailed(f"{model_name} ({alias}): its artifact {path} is missing")
    digest = hash_tree(path).digest
    if expected and digest != expected:
        raise StepFailed(f"{model_name} ({alias}): its artifact {path} was modified since it was registered")
    return {"path": str(path), "digest": digest}


def local_artifacts(source: str) -> Path:
    """A local folder with a version's artifacts: the folder itself for a file store, else a download."""
    parsed = urlparse(source)
    if parsed.scheme in {"", "file"}:
        return Path(unquote(parsed.path))
    import mlflow.artifacts

    return Path(mlflow.artifacts.download_artifacts(artifact_uri=source))
