"""Local endpoints: production variants (a registry version each, with a traffic weight) and blue/green
deployments that move traffic to a new variant step by step, watching alarms, as SageMaker's
`update_endpoint` with a `BlueGreenUpdatePolicy` does.

One JSON file per endpoint under `<home>/endpoints/` holds the state. `pravah deploy` and
`pravah endpoints rollback` only *request* changes there; the server that serves the endpoint carries them
out (it has the new variant loaded and sees its errors and latency), so traffic shifts without a restart.
"""

from __future__ import annotations

import fcntl
import json
import re
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from foundation.errors import PravahError, did_you_mean
from foundation.home import Home, write_json_atomic
from foundation.processes import process_alive

STRATEGIES = ("all-at-once", "canary", "linear")
ACTIVE = ("requested", "in_progress")
_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")  # SageMaker's endpoint name rule


@dataclass
class Variant:
    name: str
    model: str
    version: int
    artifact: str  # the verified local artifact folder
    digest: str
    weight: float = 0.0  # percent of traffic
    metrics: dict[str, float] = field(default_factory=dict)  # the registry's, on the test split
    gate_metric: str | None = None  # the metric its quality gate judged


@dataclass
class Alarms:
    max_error_rate: float
    max_p99_ms: float
    min_requests: int


@dataclass
class Deployment:
    id: str
    target: Variant
    strategy: str
    schedule: list[float]  # the new variant's share of traffic at each step; the last is 100
    wait_seconds: float
    alarms: Alarms
    status: str = "requested"  # requested, in_progress, completed, rolled_back, failed
    step: int = -1
    step_started_at: float | None = None
    requested_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    reason: str = ""
    rollback_requested: str | None = None
    holding: bool = False  # the step's wait is over, but too few requests reached the new variant to judge it
    events: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def log(self, message: str) -> None:
        self.events.append(f"{time.strftime('%H:%M:%S')} {message}")


@dataclass
class Shadow:
    """A variant that gets a copy of a share of production requests, after they are answered; its answers are
    captured and compared, never returned (SageMaker's shadow variants)."""

    variant: Variant
    sample_percent: float
    started_at: float = field(default_factory=time.time)


@dataclass
class EndpointState:
    name: str
    variants: list[Variant] = field(default_factory=list)
    deployment: Deployment | None = None
    shadow: Shadow | None = None
    history: list[dict[str, Any]] = field(default_factory=list)  # finished deployments, newest last
    shadowed: list[str] = field(default_factory=list)  # every variant that has been a shadow, oldest first
    served_by: dict[str, Any] | None = None  # pid and address of the server, while one runs

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)

    @property
    def serving(self) -> bool:
        return bool(self.served_by) and process_alive(int(self.served_by["pid"]))

    def shadow_variants(self) -> set[str]:
        """The variants whose every answer was a copy, never returned: the shadow now, and past shadows that
        never took production traffic (a promoted or canaried one did)."""
        production = {v.name for v in self.variants} | {h["target"] for h in self.history}
        production |= {h["replaced"]["name"] for h in self.history if h.get("replaced")}
        current = {self.shadow.variant.name} if self.shadow else set()
        return current | (set(self.shadowed) - production)

    def describe_server(self) -> str:
        if not (self.serving and self.served_by):
            return "not served"
        return f"served at {self.served_by.get('address') or '?'} (pid {self.served_by['pid']})"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EndpointState:
        deployment = data.get("deployment")
        if deployment:
            deployment = Deployment(
                **{**deployment, "target": Variant(**deployment["target"]), "alarms": Alarms(**deployment["alarms"])}
            )
        shadow = data.get("shadow")
        if shadow:
            shadow = Shadow(**{**shadow, "variant": Variant(**shadow["variant"])})
        return cls(
            name=data["name"],
            variants=[Variant(**v) for v in data.get("variants", [])],
            deployment=deployment,
            shadow=shadow,
            history=data.get("history", []),
            shadowed=data.get("shadowed", []),
            served_by=data.get("served_by"),
        )


class EndpointStore:
    def __init__(self, home: Home):
        self.folder = home.root / "endpoints"

    def path(self, name: str) -> Path:
        """The endpoint's state file; a name from a command line or a web form never leaves the folder."""
        if not _NAME.fullmatch(name):
            raise PravahError(f"endpoint name '{name[:80]}': letters, digits and '-', at most 63 characters")
        return self.folder / f"{name}.json"

    def shadow_report_path(self, name: str) -> Path:
        """The figures of the endpoint's (last) shadow variant, written by its server."""
        return self.folder / "shadow" / f"{name}.json"

    def shadow_report(self, name: str) -> dict[str, Any] | None:
        """The figures its server last wrote for the endpoint's (last) shadow, None if none were written."""
        path = self.shadow_report_path(name)
        if not path.is_file():
            return None
        try:
            report = json.loads(path.read_text())
            report["variant"], report["running"], report["skipped"], report["segments"]["all"]  # what is shown
        except (ValueError, TypeError, KeyError) as exc:
            raise PravahError(f"{path}: not a shadow report written by pravah serve ({exc!r})") from None
        return report

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.folder.glob("*.json"))

    def read(self, name: str) -> EndpointState:
        path = self.path(name)
        if not path.is_file():
            known = self.names()
            hint = did_you_mean(name, known) or (f" (endpoints: {', '.join(known)})" if known else "")
            raise PravahError(f"no endpoint '{name}'{hint}; create one with pravah deploy {name} --model ...")
        try:
            state = EndpointState.from_json(json.loads(path.read_text()))
        except (ValueError, TypeError, KeyError) as exc:
            raise PravahError(f"{path}: not an endpoint file written by pravah ({exc})") from None
        if state.served_by and not self.marks_this_folder(state.served_by):
            state.served_by = None  # a copy's mark (a restored backup, another machine): its pid is not our server
        return state

    def folder_id(self) -> str:
        """The endpoints folder's device and inode: what a server's mark names, since a copy of the folder (a
        restored backup, whose paths are rewritten to its new place) is another folder with the same text."""
        found = self.folder.stat()
        return f"{found.st_dev}:{found.st_ino}"

    def marks_this_folder(self, served_by: dict[str, Any]) -> bool:
        """Whether a server's mark was made by a server of this folder, on this machine (marks written before
        they named the folder count as this folder's)."""
        same_folder = served_by.get("folder_id", self.folder_id()) == self.folder_id()
        return same_folder and served_by.get("host", socket.gethostname()) == socket.gethostname()

    def mtime(self, name: str) -> int | None:
        try:
            return self.path(name).stat().st_mtime_ns
        except FileNotFoundError:
            return None

    @contextmanager
    def update(self, name: str, create: bool = False) -> Iterator[EndpointState]:
        """The state under the endpoint's lock, written back (atomically) when the block ends without error."""
        self.path(name)  # a valid name, before its lock file is made
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / f".{name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self.read(name) if (self.path(name).is_file() or not create) else EndpointState(name)
            before = asdict(state) if self.path(name).is_file() else None
            yield state
            if asdict(state) != before:  # an unchanged state is not rewritten: its readers poll the file's time
                write_json_atomic(self.path(name), asdict(state))


def plan(strategy: str, canary_percent: float, linear_step_percent: float) -> list[float]:
    """The new variant's traffic share at each step."""
    if strategy == "all-at-once":
        return [100.0]
    if strategy == "canary":
        return [canary_percent, 100.0]
    if strategy == "linear":
        steps, share = [], 0.0
        while share + linear_step_percent < 100:
            share += linear_step_percent
            steps.append(round(share, 6))
        return [*steps, 100.0]
    raise PravahError(f"unknown strategy '{strategy}'{did_you_mean(strategy, STRATEGIES)} ({', '.join(STRATEGIES)})")


def request_deployment(
    store: EndpointStore,
    endpoint: str,
    target: Variant | None,
    strategy: str,
    schedule: list[float],
    wait_seconds: float,
    alarms: Alarms,
) -> Deployment:
    """Record a deployment for the serving process to carry out. One at a time per endpoint. No target: the
    endpoint's shadow variant is promoted (its shadow ends as the deployment starts)."""
    with store.update(endpoint, create=target is not None) as state:
        if target is None:
            if state.shadow is None:
                raise PravahError(f"endpoint '{endpoint}' has no shadow variant to promote")
            target = state.shadow.variant
        _check_deployable(state, target)
        if state.shadow and state.shadow.variant.name == target.name:  # promoted: it answers now
            state.shadow = None
        deployment = Deployment(_deployment_id(), target, strategy, schedule, wait_seconds, alarms)
        deployment.log(f"requested {target.name} ({strategy}, steps {schedule}, wait {wait_seconds:g}s)")
        state.deployment = deployment
    return deployment


def _check_deployable(state: EndpointState, target: Variant) -> None:
    endpoint = state.name
    if state.deployment and state.deployment.active:
        raise PravahError(
            f"endpoint '{endpoint}' has a deployment in progress ({state.deployment.id}, "
            f"{state.deployment.target.name}); wait for it or run pravah endpoints rollback {endpoint}"
        )
    current = state.variant(target.name)
    if current and current.weight == 100:
        raise PravahError(f"endpoint '{endpoint}' already serves {target.name} with all its traffic")
    for serving in (v for v in state.variants if v.weight > 0 and v.name != target.name):
        if _reads(serving) != _reads(target):  # one request body per endpoint: text or table rows
            raise PravahError(
                f"endpoint '{endpoint}' serves {serving.name}, a model that reads "
                f"{_reads(serving)}, and {target.name} reads {_reads(target)}: deploy it to an "
                "endpoint of its own"
            )


def request_shadow(store: EndpointStore, endpoint: str, target: Variant, sample_percent: float) -> Shadow:
    """Give `target` a copy of `sample_percent` of the endpoint's requests (replacing any earlier shadow)."""
    with store.update(endpoint) as state:
        if not state.variants:
            raise PravahError(f"endpoint '{endpoint}' serves no variant yet: deploy one before shadowing it")
        if state.variant(target.name):
            raise PravahError(f"endpoint '{endpoint}' already serves {target.name}: a shadow is another version")
        _check_deployable(state, target)
        state.shadow = Shadow(target, sample_percent)
        if target.name not in state.shadowed:
            state.shadowed.append(target.name)
        return state.shadow


def stop_shadow(store: EndpointStore, endpoint: str) -> Shadow:
    """End the endpoint's shadow variant (production traffic is untouched)."""
    with store.update(endpoint) as state:
        if state.shadow is None:
            raise PravahError(f"endpoint '{endpoint}' has no shadow variant")
        shadow, state.shadow = state.shadow, None
        return shadow


def _reads(variant: Variant) -> str:
    """What a variant's model takes in a request: text or table rows."""
    from artifact.contract import MANIFEST, input_columns

    try:
        manifest = json.loads((Path(variant.artifact) / MANIFEST).read_text())
    except (OSError, ValueError):
        return "text"  # an artifact not on this machine (a SageMaker one): as the API's cloud backend takes it
    return "text" if input_columns(manifest) is None else "table rows"


def request_rollback(store: EndpointStore, endpoint: str, reason: str) -> str:
    """Stop the deployment in progress (traffic returns to the old variant), or, when none is in progress,
    deploy the variant that the last completed deployment replaced, all at once."""
    with store.update(endpoint) as state:
        if state.deployment and state.deployment.active:
            state.deployment.rollback_requested = reason
            return f"rollback of {state.deployment.id} requested"
        previous = next(
            (h["replaced"] for h in reversed(state.history) if h["status"] == "completed" and h.get("replaced")), None
        )
        if previous is None:
            raise PravahError(f"endpoint '{endpoint}': no deployment in progress and no earlier variant to go back to")
        target = Variant(**{**previous, "weight": 0.0})
        assert state.deployment is not None  # a completed deployment in the history was the state's deployment
        # going back to a version that served before, on the operator's word: no traffic is needed to judge it
        alarms = Alarms(**{**asdict(state.deployment.alarms), "min_requests": 0})
        deployment = Deployment(_deployment_id(), target, "all-at-once", [100.0], 0.0, alarms)
        deployment.log(f"rollback to {target.name} requested: {reason}")
        state.deployment = deployment
        return f"redeploying {target.name} ({deployment.id})"


def _deployment_id() -> str:
    return f"d-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


_VERSIONED = re.compile(r"(?P<model>.+)-v(?P<version>\d+)$")


def versioned_name(model: str, version: int) -> str:
    """What serves a registry version is named MODEL-vVERSION: a local variant, a SageMaker model."""
    return f"{model}-v{version}"


def version_of_name(name: str) -> tuple[str, int] | None:
    """(model, version) that a MODEL-vVERSION name says, or None."""
    found = _VERSIONED.fullmatch(name)
    return (found["model"], int(found["version"])) if found else None


def registered_variant(home: Home, model: str, version: int) -> Variant:
    """A registry version as a variant: approved, and its artifact verified against the registered digest."""
    from registry import open_registry
    from registry.mlflow_backend import verified_artifacts
    from registry.versions import check_deployable

    registered = open_registry(home=home).get(model, version)
    check_deployable(registered)
    found = verified_artifacts(model, f"version {version}", registered.source, registered.digest)
    return Variant(
        name=versioned_name(model, version),
        model=model,
        version=version,
        artifact=found["path"],
        digest=found["digest"],
        metrics=registered.metrics,
        gate_metric=registered.lineage.get("gate_metric"),
    )


def follow(
    store: EndpointStore, endpoint: str, deployment_id: str, say: Callable[[str], None], poll_seconds: float = 0.25
) -> Deployment:
    """Print a deployment's events as the server records them, until it ends (or its server stops)."""
    shown = 0
    while True:
        state = store.read(endpoint)
        deployment = state.deployment
        if deployment is None or deployment.id != deployment_id:
            raise PravahError(f"deployment {deployment_id} was replaced on endpoint '{endpoint}'")
        for event in deployment.events[shown:]:
            say(event)
        shown = len(deployment.events)
        if not deployment.active:
            return deployment
        if not state.serving:
            say(f"the server of '{endpoint}' stopped; the deployment goes on when pravah serve {endpoint} runs")
            return deployment
        time.sleep(poll_seconds)
