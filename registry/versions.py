"""The model registry's one interface and its rules, for both backends (`mlflow_backend.py`, `sagemaker_backend.py`).

A version carries its artifact location and checksums, its evaluation metrics, and its lineage: the
pipeline run, data and code hashes that made it. Its approval status moves only along the rules of
`check_transition`, each move recorded with who, when and why; only an approved version may hold the
`champion` alias or be deployed.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from foundation.errors import PravahError, did_you_mean

PENDING, APPROVED, REJECTED = "PendingManualApproval", "Approved", "Rejected"
APPROVAL_STATUSES = (PENDING, APPROVED, REJECTED)
ALIASES = ("champion", "challenger")


class RegistryError(PravahError):
    """A registry request that cannot be honoured: said plainly, exit code 2."""


@dataclass
class ModelVersion:
    name: str
    version: int
    status: str
    source: str  # where the artifact is (a folder URI or s3://)
    digest: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    lineage: dict[str, str] = field(default_factory=dict)  # run id, data, code and spec hashes
    history: list[dict[str, str]] = field(default_factory=list)  # status changes: status, by, at, reason
    aliases: list[str] = field(default_factory=list)
    created_at: str | None = None

    def gate_score(self) -> tuple[str, float | None]:
        """The metric the version's quality gate judged (its lineage names it; macro_f1 for versions registered
        before it did) and its value on the test split."""
        gate = self.lineage.get("gate_metric") or "macro_f1"
        return gate, self.metrics.get(gate, self.metrics.get(f"multiclass_classification_metrics.{gate}"))


class ModelRegistry(Protocol):
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
    ) -> ModelVersion: ...
    def get(self, name: str, version: int) -> ModelVersion: ...
    def list(self, name: str | None = None, status: str | None = None) -> list[ModelVersion]: ...
    def set_status(self, name: str, version: int, status: str, reason: str) -> ModelVersion: ...
    def set_alias(self, name: str, alias: str, version: int) -> None: ...


def who() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def prefixed(properties: dict[str, str], prefix: str, kind: type, skip: Collection[str] = ()) -> dict:
    """The properties (tags, metadata) whose key starts with `prefix`, without it."""
    found = {key.removeprefix(prefix): value for key, value in properties.items() if key.startswith(prefix)}
    return {key: kind(value) for key, value in found.items() if key not in skip}


def check_transition(model: ModelVersion, target: str) -> None:
    """Approve only what is pending; reject what is pending or approved; never the same status twice."""
    if target not in APPROVAL_STATUSES:
        raise RegistryError(f"'{target}' is not an approval status{did_you_mean(target, APPROVAL_STATUSES)}")
    if model.status == target:
        raise RegistryError(f"{model.name} version {model.version} is already {target}")
    if target == APPROVED and model.status == REJECTED:
        last = model.history[-1] if model.history else {}
        because = f" ({last.get('reason')}, by {last.get('by')} at {last.get('at')})" if last else ""
        raise RegistryError(
            f"{model.name} version {model.version} was rejected{because}: a rejected version cannot be approved; "
            "register a new version instead"
        )
    if target == PENDING:
        raise RegistryError("a version cannot go back to PendingManualApproval")


def check_alias(model: ModelVersion, alias: str) -> None:
    if alias not in ALIASES:
        raise RegistryError(f"unknown alias '{alias}'{did_you_mean(alias, ALIASES)} (aliases: {', '.join(ALIASES)})")
    if alias == "champion" and model.status != APPROVED:
        raise RegistryError(
            f"{model.name} version {model.version} is {model.status}: only an approved version can become champion "
            f"({_way_forward(model)})"
        )


def check_deployable(model: ModelVersion) -> None:
    if model.status != APPROVED:
        raise RegistryError(
            f"{model.name} version {model.version} is {model.status}: only an approved version can be deployed "
            f"({_way_forward(model)})"
        )


def _way_forward(model: ModelVersion) -> str:
    """A hint that can be followed: a pending version can be approved, a rejected one never."""
    if model.status == REJECTED:
        return (
            f"a rejected version cannot be approved; the approved ones: pravah models list {model.name} "
            f"--status {APPROVED}"
        )
    return f"approve it first: pravah models approve {model.name} {model.version} --reason ..."


def change_status(registry: ModelRegistry, name: str, version: int, status: str, reason: str) -> ModelVersion:
    """The approval workflow's one entry: check the rule, then record the change."""
    if not reason.strip():
        raise RegistryError("give a --reason: it is recorded with who and when")
    check_transition(registry.get(name, version), status)
    return registry.set_status(name, version, status, reason)


def assign_alias(registry: ModelRegistry, name: str, alias: str, version: int) -> None:
    check_alias(registry.get(name, version), alias)
    registry.set_alias(name, alias, version)
