"""The model artifact every family writes: model files, `labels.json`, a `model.json` manifest and
`SHA256SUMS` over every file. Loading verifies the sums first, so a tampered file is refused."""

from __future__ import annotations

import json
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType
from typing import Any

from foundation.errors import PravahError
from foundation.fingerprint import hash_file

CHECKSUMS = "SHA256SUMS"
MANIFEST = "model.json"
SERVING_CODE = "code"  # the serving container's code, in an artifact trained on SageMaker


class ArtifactError(PravahError):
    """A model artifact is missing, incomplete or does not match its checksums."""


def library_versions(*distributions: str) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in distributions:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def seal(model_dir: Path, manifest: dict[str, Any], labels: list[str]) -> None:
    """Write labels, manifest and the checksum of every file in the folder (written last)."""
    (model_dir / "labels.json").write_text(json.dumps(labels, ensure_ascii=False, indent=2))
    (model_dir / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2, default=str))
    _write_checksums(model_dir)


def add_serving_code(model_dir: Path, code_dir: Path) -> None:
    """Put the code that serves the model into the artifact's `code/` folder, under the checksums: SageMaker's
    inference containers take their handlers and requirements.txt from `code/` in model.tar.gz (the training
    image's submit directory is not theirs to read)."""
    import shutil

    shutil.copytree(code_dir, model_dir / SERVING_CODE, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _write_checksums(model_dir)


def _write_checksums(model_dir: Path) -> None:
    files = sorted(p for p in model_dir.rglob("*") if p.is_file() and p.name != CHECKSUMS)
    lines = [f"{hash_file(p)}  {p.relative_to(model_dir)}" for p in files]
    (model_dir / CHECKSUMS).write_text("\n".join(lines) + "\n")


def open_artifact(model_dir: Path) -> dict[str, Any]:
    """Verify every checksum and return the manifest (with `labels`); raise ArtifactError otherwise."""
    sums = model_dir / CHECKSUMS
    if not sums.is_file():
        raise ArtifactError(f"{model_dir}: not a model artifact (no {CHECKSUMS})")
    listed = set()
    for line in sums.read_text().splitlines():
        expected, _, relative = line.partition("  ")
        listed.add(relative)
        path = model_dir / relative
        if not path.is_file():
            raise ArtifactError(f"{model_dir}: {relative} is missing")
        if hash_file(path) != expected:
            raise ArtifactError(f"{model_dir}: {relative} does not match its checksum: refusing to load it")
    extra = (
        {str(p.relative_to(model_dir)) for p in model_dir.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
        - listed
        - {CHECKSUMS}
    )  # bytecode of code/'s imports
    if extra:
        raise ArtifactError(f"{model_dir}: files not covered by {CHECKSUMS}: {', '.join(sorted(extra))}")
    manifest = json.loads((model_dir / MANIFEST).read_text())
    manifest["labels"] = json.loads((model_dir / "labels.json").read_text())
    return manifest


def unpack_model_archive(archive: Path, target: Path) -> Path:
    """A model.tar.gz (how SageMaker hands a model over) unpacked into `target`, refusing members that would land
    outside it; `target`."""
    import tarfile

    try:
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise ArtifactError(f"{archive}: cannot unpack the model archive ({exc})") from None
    return target


def input_columns(manifest: dict[str, Any]) -> list[dict[str, str]] | None:
    """What the model reads from a request: None for text (`input.text`), else the table row's columns, each
    {name, type} with type number, integer, boolean, string or any (`input.features`)."""
    features = manifest.get("features") or ["text"]
    if features == ["text"]:
        return None
    return manifest.get("input_schema") or [{"name": name, "type": "any"} for name in features]


JSON_TYPES = {"number": (int, float), "integer": (int,), "boolean": (bool,), "string": (str,)}


def value_problem(value: Any, kind: str) -> str | None:
    """Why a JSON value cannot be a column of this type (`any` takes any single value), or None; a null is a
    missing value, which the model's imputation fills."""
    if value is None:
        return None
    wrong_type = kind in JSON_TYPES and not isinstance(value, JSON_TYPES[kind])
    if wrong_type or (kind in JSON_TYPES and isinstance(value, bool) and kind != "boolean"):
        return f"must be a {kind}, not {json.dumps(value)[:40]}"
    if not isinstance(value, str | int | float):
        return "must be a single value (a number, string or boolean)"
    return None


def row_problem(row: dict[str, Any], columns: list[dict[str, str]]) -> str | None:
    """The first reason a table row cannot be scored by a model reading `columns`, or None."""
    known = {column["name"]: column["type"] for column in columns}
    unknown = [name for name in row if name not in known]
    if unknown:
        return f"{unknown[0]}: not a column the model reads (it reads {', '.join(known)})"
    for name, kind in known.items():
        if name not in row:
            return f"{name}: required ({kind}; null if unknown)"
        if problem := value_problem(row[name], kind):
            return f"{name}: {problem}"
    return None


def column_types(frame) -> list[dict[str, str]]:
    """The input schema of a training frame's columns, as input_columns reads it back."""
    kinds = {"b": "boolean", "i": "integer", "u": "integer", "f": "number"}
    return [{"name": str(name), "type": kinds.get(frame[name].dtype.kind, "string")} for name in frame.columns]


def loader_of(manifest: dict[str, Any]) -> ModuleType:
    """The module that loads the artifact's model, as its manifest names it (MLflow's `loader_module`): a
    built-in family's module or a team's own. An artifact sealed before manifests named their loader names it
    only when its family is a module path."""
    import importlib

    family = str(manifest.get("family", ""))
    name = manifest.get("loader") or (family if "." in family else None)
    if name is None:
        raise ArtifactError(
            f"the artifact of family '{family}' names no loader module (it was sealed before model.json named "
            "one): train it again to serve it"
        )
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ArtifactError(f"the artifact's loader module '{name}' cannot be imported: {exc}") from None
