"""Where a noun of the CLI lives, the project folder (`local`) or the environment's SageMaker account
(`sagemaker`): one interface per noun with an implementation for each, chosen here from the target the user
gave, so that a command calls the interface and never asks which target it has. The registry's is
`registry.open_registry`; endpoints (a deployment) and batch scoring (a file scored without a server) are here,
each implementation a thin adapter over its room's code (`inference/` locally, `cloud/` on SageMaker)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from foundation.errors import PravahError

if TYPE_CHECKING:
    from foundation.home import Home
    from inference.config import ServingConfig
    from inference.endpoints import Alarms

Say = Callable[[str], None]


@dataclass(frozen=True)
class Where:
    """The target and what each needs: the project folder; the environment and whether to send changes."""

    target: str
    home: Home
    environment: str = "dev"
    dry_run: bool = False

    def aws(self) -> Any:
        from aws.environments import load_environment
        from aws.requests import Aws

        return Aws(load_environment(self.environment), dry_run=self.dry_run)


@dataclass(frozen=True)
class Release:
    """What `pravah deploy` asks for, whatever the target: a version to an endpoint, by a strategy."""

    endpoint: str
    model: str
    version: int
    plan: RolloutPlan  # the strategy, its traffic steps, waits and alarms
    capture_percent: float
    sample_percent: float  # a shadow's share of the requests
    follow: bool = True  # locally: print the steps as the server takes them, until the deployment ends

    @classmethod
    def from_settings(
        cls,
        endpoint: str,
        model: str,
        version: int,
        serving: ServingConfig,
        choices: RolloutChoices | None = None,
        follow: bool = True,
    ) -> Release:
        """The release that the CLI's options (or the console's form) ask for, configs/serving.yaml giving the rest:
        one reading of the settings for every caller."""
        chosen = choices or RolloutChoices()
        plan = rollout_plan(serving, chosen)
        if chosen.sample_percent is not None and plan.strategy != "shadow":
            raise PravahError("--sample-percent is for --strategy shadow")
        return cls(
            endpoint,
            model,
            version,
            plan,
            serving.capture.sampling_percent,
            within(chosen.sample_percent, 100.0, 0, 100),
            follow=follow,
        )


@dataclass(frozen=True)
class RolloutChoices:
    """What a user may choose for one rollout over configs/serving.yaml's deploy settings (None: the file's)."""

    strategy: str | None = None
    canary_percent: float | None = None
    linear_step: float | None = None
    wait_seconds: float | None = None
    max_error_rate: float | None = None
    max_p99_ms: float | None = None
    min_requests: int | None = None
    sample_percent: float | None = None


@dataclass(frozen=True)
class RolloutPlan:
    strategy: str  # all-at-once, canary, linear or shadow
    schedule: list[float]  # the traffic steps of a blue/green shift, in percent
    canary_percent: float
    linear_step: float
    wait_seconds: float
    alarms: Alarms


def rollout_plan(serving: ServingConfig, chosen: RolloutChoices) -> RolloutPlan:
    """A rollout's strategy, traffic steps, alarms and wait: the user's choices, checked, else the settings'."""
    from inference.endpoints import Alarms, plan

    settings = serving.deploy
    strategy = chosen.strategy or settings.strategy
    canary = within(chosen.canary_percent, settings.canary_percent, 0, 100)
    linear = within(chosen.linear_step, settings.linear_step_percent, 0, 100)
    alarms = Alarms(
        within(chosen.max_error_rate, settings.alarms.max_error_rate, 0, 1),
        within(chosen.max_p99_ms, settings.alarms.max_p99_ms, 0, None),
        int(within(chosen.min_requests, settings.alarms.min_requests, -1, None)),
    )
    schedule = [] if strategy == "shadow" else plan(strategy, canary, linear)
    wait = within(chosen.wait_seconds, settings.wait_seconds, -1, None)
    return RolloutPlan(strategy, schedule, canary, linear, wait, alarms)


def within(value: float | None, default: float, above: float, up_to: float | None) -> float:
    """A chosen value (or the settings' default), checked: above `above`, at most `up_to`."""
    chosen = default if value is None else value
    if chosen <= above or (up_to is not None and chosen > up_to):
        bounds = f"above {above:g}" + (f" and at most {up_to:g}" if up_to is not None else "")
        raise PravahError(f"{chosen:g} is out of range: it must be {bounds}")
    return chosen


class Endpoints(Protocol):
    def deploy(self, release: Release, say: Say) -> int:
        """Start the release; the exit code (1: it rolled back or failed)."""


@dataclass(frozen=True)
class ScoringJob:
    """What `pravah predict` asks for, whatever the target: a registered version over a file (or S3 prefix)."""

    model: str
    version: int | None
    alias: str | None
    source: str
    output: str
    top_k: int = 3
    content_type: str = "application/jsonlines"
    wait: bool = False


class BatchScoring(Protocol):
    def score(self, job: ScoringJob, say: Say, progress: Say) -> int:
        """Score it, saying the outcome and, as it goes, its progress; the exit code (1: no row could be scored)."""


class LocalEndpoints:
    """The project's endpoints, served by `pravah serve`, which takes a requested deployment's steps."""

    def __init__(self, home: Home):
        from inference.endpoints import EndpointStore

        self.home, self.store = home, EndpointStore(home)

    def deploy(self, release: Release, say: Say) -> int:
        from inference.endpoints import registered_variant, request_deployment, request_shadow

        target = registered_variant(self.home, release.model, release.version)
        plan = release.plan
        if plan.strategy == "shadow":
            shadow = request_shadow(self.store, release.endpoint, target, release.sample_percent)
            say(
                f"shadow: {target.name} gets a copy of {shadow.sample_percent:g}% of '{release.endpoint}' requests, "
                f"after they are answered; pravah endpoints show {release.endpoint} compares it, pravah endpoints "
                f"promote {release.endpoint} deploys it, pravah endpoints stop-shadow {release.endpoint} ends it"
            )
            return 0
        deployment = request_deployment(
            self.store,
            release.endpoint,
            target,
            plan.strategy,
            plan.schedule,
            plan.wait_seconds,
            plan.alarms,
        )
        return self.follow(release.endpoint, deployment, release.follow, say)

    def follow(self, endpoint: str, deployment: Any, until_done: bool, say: Say) -> int:
        """Say a requested deployment's steps as the server takes them, until it ends."""
        from inference.endpoints import follow

        say(
            f"deployment {deployment.id}: {deployment.target.name} to '{endpoint}' ({deployment.strategy}, "
            f"traffic steps {deployment.schedule}, {deployment.wait_seconds:g}s each)"
        )
        if not self.store.read(endpoint).serving:
            say(f"nothing serves '{endpoint}' now: the deployment starts when pravah serve {endpoint} runs")
            return 0
        if not until_done:
            return 0
        ended = follow(self.store, endpoint, deployment.id, say)
        say(f"deployment {ended.id}: {ended.status}" + (f" ({ended.reason})" if ended.reason else ""))
        return 0 if ended.status in {"completed", "requested", "in_progress"} else 1


class SageMakerEndpoints:
    """The account's endpoints: a blue/green update that SageMaker shifts, rolling back on an alarm."""

    def __init__(self, where: Where):
        self.aws = where.aws()

    def deploy(self, release: Release, say: Say) -> int:
        from cloud.deploy import Rollout, deploy
        from cloud.monitoring import upload_baseline_of

        plan = release.plan
        rollout = Rollout(
            plan.strategy,
            plan.canary_percent,
            plan.linear_step,
            plan.wait_seconds,
            plan.alarms,
            release.capture_percent,
            release.sample_percent,
        )
        done = deploy(self.aws, release.endpoint, release.model, release.version, rollout)
        dry = " (dry run: no change sent; reads ran)" if self.aws.dry_run else ""
        if done.get("shadow"):
            say(
                f"{release.endpoint}: {done['shadow']} is the shadow of production, copied "
                f"{rollout.sample_percent:g}% of the requests and captured, never answering (config "
                f"{done['endpoint_config']}); pravah deploy {release.endpoint} --target sagemaker --version "
                f"{release.version} promotes it{dry}"
            )
            return 0
        scaling = self.aws.environment.endpoint_scaling
        after = dry or "; SageMaker shifts the traffic, rolling back on an alarm"
        say(
            f"{done['action']} {release.endpoint} with {done['endpoint_config']} ({done['instances']} instances, "
            f"autoscaling {scaling.min_instances} to {scaling.max_instances}){after}"
        )
        upload_baseline_of(self.aws, release.endpoint, done["package"], None, say)
        return 0


class LocalBatchScoring:
    """A file scored on this machine with the registry's version, through the same Predictor as the endpoints."""

    def __init__(self, home: Home):
        self.home = home

    def score(self, job: ScoringJob, say: Say, progress: Say) -> int:
        from artifact.predictor import Predictor
        from inference.files import REPORTED, file_format, score_file
        from registry import open_registry
        from registry.mlflow_backend import verified_artifacts

        source, output = Path(job.source), Path(job.output)
        file_format(source), file_format(output)  # a wrong name fails before the model loads
        if source.resolve() == output.resolve():
            raise PravahError(f"{output}: the output would replace the input; give another file")
        registry = open_registry(home=self.home)
        if job.alias:
            found = registry.resolve_alias(job.model, job.alias)
            if found is None:
                raise PravahError(f"no version of '{job.model}' holds the alias '{job.alias}'")
            which = job.alias
        else:
            version = registry.get(job.model, job.version)
            which = f"version {job.version}"
            found = verified_artifacts(job.model, which, version.source, version.digest)
        progress(f"scoring {source} with {job.model} ({which}) ...")
        scored = score_file(Predictor(Path(found["path"])), source, output, job.top_k, progress=progress)
        for line, reason in scored.refused:
            progress(f"  line {line}: {reason}")
        if scored.refused_count > REPORTED:
            progress(f"  ... and {scored.refused_count - REPORTED:,} more rows refused")
        scored_rows = scored.rows - scored.refused_count
        say(f"{scored_rows:,} of {scored.rows:,} rows scored in {scored.seconds:.1f} s: {output}")
        return 0 if scored.rows > scored.refused_count else 1


class SageMakerBatchScoring:
    """An S3 prefix scored by a Batch Transform job of the version's package (S3 in, OBJECT.out beside)."""

    def __init__(self, where: Where):
        self.aws = where.aws()

    def score(self, job: ScoringJob, say: Say, progress: Say) -> int:
        from cloud import transform

        if job.alias:
            raise PravahError("--alias: SageMaker's model registry has no aliases; give --version")
        request = transform.transform(self.aws, job.model, job.version, job.source, job.output, job.content_type)
        name = request["TransformJobName"]
        if self.aws.dry_run:
            say(f"transform job {name} (dry run: no change sent; reads ran)")
            return 0
        say(
            f"started transform job {name}: {job.source} -> {job.output} (each input object's answers in "
            f"OBJECT.out), {request['TransformResources']['InstanceType']}"
        )
        if job.wait:
            described = transform.wait(self.aws, name)
            say(f"transform job {name} completed: {described['TransformOutput']['S3OutputPath']}")
        return 0


def endpoints(where: Where) -> Endpoints:
    return SageMakerEndpoints(where) if where.target == "sagemaker" else LocalEndpoints(where.home)


def batch_scoring(where: Where) -> BatchScoring:
    return SageMakerBatchScoring(where) if where.target == "sagemaker" else LocalBatchScoring(where.home)
