"""AWS environments (`configs/environments/NAME.yaml`): account, region, role, bucket, instance types and
approval rules, for everything that talks to SageMaker."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from pipelines.errors import PravahError, did_you_mean
from pipelines.yamlfile import ConfigSection, load_validated

FOLDER = Path("configs") / "environments"


class InstanceTypes(ConfigSection):
    processing: str = "ml.m5.large"
    training: str = "ml.m5.xlarge"
    endpoint: str = "ml.c5.xlarge"


class Approval(ConfigSection):
    auto_approve: bool = False


class Environment(ConfigSection):
    account: str = Field(pattern=r"^\d{12}$")
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    role_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    instance_types: InstanceTypes = InstanceTypes()
    approval: Approval = Approval()


def load_environment(name_or_path: str, root: Path | None = None) -> Environment:
    """`dev` (configs/environments/dev.yaml) or a YAML path."""
    path = Path(name_or_path)
    if path.suffix not in {".yaml", ".yml"}:
        folder = (root or Path.cwd()) / FOLDER
        path = folder / f"{name_or_path}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in folder.glob("*.yaml"))
            raise PravahError(f"no environment '{name_or_path}'{did_you_mean(name_or_path, known)} "
                              f"(environments: {', '.join(known) or 'none'} in {folder})")  # fmt: skip
    return load_validated(path, Environment)
