"""AWS environments (`configs/environments/NAME.yaml`): account, region, role, bucket, instance types and
approval rules, for everything that talks to SageMaker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from foundation.errors import PravahError, did_you_mean
from foundation.home import project_root
from foundation.settings import ConfigSection, load_validated

FOLDER = Path("configs") / "environments"


class InstanceTypes(ConfigSection):
    processing: str = "ml.m5.large"  # every processing step that names none
    training: str = "ml.m5.xlarge"  # every training step that names none
    endpoint: str = "ml.c5.xlarge"  # endpoints, and the real-time types a registered model supports
    transform: str = "ml.m5.xlarge"  # Batch Transform (the design doc's 6.3.2)


class PipelineSettings(ConfigSection):
    """What one pipeline needs in this environment: parameter defaults of the cloud (an S3 URI where the spec's
    default is a local path, a bigger model) and instance types of named steps (a GPU for training)."""

    parameters: dict[str, str | int | float | bool] = Field(default_factory=dict)
    instance_types: dict[str, str] = Field(default_factory=dict)
    # instances of named steps: above one, a step that declares `shards` splits its input among them
    instance_counts: dict[str, Annotated[int, Field(ge=1, le=100)]] = Field(default_factory=dict)


class EndpointScaling(ConfigSection):
    """Application Auto Scaling of an endpoint's instances (the design doc's 6.3.1): between `min_instances`
    and `max_instances`, tracking invocations per instance per minute. A canary or linear deployment needs a
    fleet of at least two instances (each step at most half of it, as AWS requires)."""

    min_instances: int = Field(1, ge=1)
    max_instances: int = Field(5, ge=1)
    invocations_per_instance: float = Field(1000, gt=0)
    scale_in_cooldown_seconds: int = Field(300, ge=0)
    scale_out_cooldown_seconds: int = Field(60, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> EndpointScaling:
        if self.max_instances < self.min_instances:
            raise ValueError(f"max_instances {self.max_instances} is below min_instances {self.min_instances}")
        return self


class Observability(ConfigSection):
    """The cloud side's logs and alarms (the design doc's section 9)."""

    log_retention_days: Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653] = 30
    alarm_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")  # subscribed to the alarm topic
    capture_retention_days: int = Field(90, ge=1)  # Data Capture and monitoring reports in the bucket (bootstrap)


class Replication(ConfigSection):
    """Cross-region or cross-account copies of the bucket (S3 replication), for disaster recovery."""

    destination_bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    role_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")  # S3 assumes it to replicate


class Approval(ConfigSection):
    auto_approve: bool = False


class Environment(ConfigSection):
    account: str = Field(pattern=r"^\d{12}$")
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    role_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    instance_types: InstanceTypes = InstanceTypes()
    endpoint_scaling: EndpointScaling = EndpointScaling()
    observability: Observability = Observability()
    replication: Replication | None = None  # the bucket is always versioned; replicated when this is set
    approval: Approval = Approval()
    pipelines: dict[str, PipelineSettings] = Field(default_factory=dict)
    # the monitoring pipelines' image, built from pipelines/sagemaker/container/monitoring.Dockerfile
    # (`make images`); by default the account's ECR repository pravah-monitoring at its Dockerfile's digest
    monitoring_image: str | None = Field(default=None, pattern=r"^\S+/\S+:\S+$")
    # instances of each drift job: above one, a scan step splits the window's captured files among them and
    # a judge step merges what they counted (the same verdicts as one instance)
    monitoring_instances: int = Field(1, ge=1, le=100)

    @model_validator(mode="after")
    def _own_role(self) -> Environment:
        role_account = self.role_arn.split(":")[4]
        if role_account != self.account:
            raise ValueError(
                f"role_arn {self.role_arn} is a role of account {role_account}, not of this environment's "
                f"account {self.account}: SageMaker assumes roles of its own account only"
            )
        return self

    @property
    def monitoring_image_uri(self) -> str:
        from aws.images import image_uri

        return self.monitoring_image or image_uri(self.account, self.region, "monitoring")

    def for_pipeline(self, name: str) -> PipelineSettings:
        return self.pipelines.get(name, PipelineSettings())


def load_environment(name_or_path: str, root: Path | None = None) -> Environment:
    """`dev` (configs/environments/dev.yaml) or a YAML path."""
    path = Path(name_or_path)
    if path.suffix not in {".yaml", ".yml"}:
        folder = (root or project_root()) / FOLDER
        path = folder / f"{name_or_path}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in folder.glob("*.yaml"))
            raise PravahError(
                f"no environment '{name_or_path}'{did_you_mean(name_or_path, known)} "
                f"(environments: {', '.join(known) or 'none'} in {folder})"
            )
    return load_validated(path, Environment)
