"""What CreatePipeline and the start of a step refuse that no service model says: the definition's references
between steps, and the account and region of the roles and images it names.

- `DependsOn` and every property reference (`Get: Steps.NAME...`) must name a step of the pipeline
  (CreatePipeline: "Step NAME is not defined in the pipeline").
- `Std:JsonGet` reads a PropertyFile that its step declares (CreatePipeline refuses an undeclared one).
- A role is assumed by SageMaker in the pipeline's own account: a role ARN of another account fails the job
  (SageMaker cannot pass a role of another account).
- An image is pulled from ECR in the job's region (SageMaker pulls no image across regions); an image of the
  pipeline's own account must be one the project declares (aws/images.py), at the tag its Dockerfile gives
  now (the digest of what its build reads: another tag was built from other files, or never); an image of
  SageMaker's framework repositories must be one that AWS publishes: the registry account of that region and
  a tag of the SDK's own image list (its `image_uris`), or one of AWS's longer tags of it
  (`2.5.1-cpu-py311` and `2.5.1-cpu-py311-ubuntu22.04-sagemaker`, a suffix that is not checked).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[^:@]+)(?::(?P<tag>[^@]+))?(?:@.+)?$"
)
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(?P<account>\d{12}):role/")
IMAGE_KEYS = {"ImageUri", "TrainingImage", "Image"}
STEP_REFERENCE = re.compile(r"^Steps\.(?P<step>[^.\[]+)")


def rule_problems(definition: dict[str, Any], account: str, region: str) -> list[str]:
    """Every reference, role and image of the definition that CreatePipeline or the job start would refuse."""
    from aws.definition import all_steps

    steps = {step["Name"]: step for step in all_steps(definition)}
    problems: list[str] = []
    for name, step in steps.items():
        where = f"step {name}"
        for needed in step.get("DependsOn", []):
            if needed not in steps:
                problems.append(f"{where}: DependsOn names '{needed}', which is not a step of the pipeline")
        arguments = {key: value for key, value in step.items() if key not in ("Name", "DependsOn")}
        if step["Type"] == "Condition":  # its branches are steps of their own, checked as such
            arguments["Arguments"] = {"Conditions": step["Arguments"].get("Conditions", [])}
        _walk(arguments, where, steps, account, region, problems)
    return problems


def _walk(value: Any, where: str, steps: dict, account: str, region: str, problems: list[str], key: str = "") -> None:
    if isinstance(value, dict):
        if len(value) == 1 and "Get" in value and isinstance(value["Get"], str):
            found = STEP_REFERENCE.match(value["Get"])
            if found and found["step"] not in steps:
                problems.append(f"{where}: the property reference {value['Get']} names no step of the pipeline")
            return
        if len(value) == 1 and "Std:JsonGet" in value:
            _json_get(value["Std:JsonGet"], where, steps, problems)
            return
        for member, item in value.items():
            _walk(item, where, steps, account, region, problems, member)
    elif isinstance(value, list):
        for item in value:
            _walk(item, where, steps, account, region, problems, key)
    elif isinstance(value, str) and key.endswith("RoleArn"):
        role = ROLE_ARN.match(value)
        if role and role["account"] != account:
            problems.append(
                f"{where}: {key} {value} is a role of account {role['account']}, not of this "
                f"pipeline's account {account}: SageMaker assumes roles of its own account only"
            )
    elif isinstance(value, str) and key in IMAGE_KEYS:
        problems += [f"{where}: {problem}" for problem in image_problems(value, region, account)]


def _json_get(argument: dict[str, Any], where: str, steps: dict, problems: list[str]) -> None:
    reference = (argument.get("PropertyFile") or {}).get("Get", "") if isinstance(argument, dict) else ""
    step_name, _, file_name = reference.removeprefix("Steps.").partition(".PropertyFiles.")
    if step_name not in steps:
        problems.append(f"{where}: JsonGet reads {reference}, of no step of the pipeline")
        return
    declared = [f["PropertyFileName"] for f in steps[step_name].get("PropertyFiles", [])]
    if file_name not in declared:
        problems.append(
            f"{where}: JsonGet reads property file '{file_name}', which step {step_name} does not "
            f"declare (its property files: {', '.join(declared) or 'none'})"
        )


def image_problems(uri: str, region: str, account: str | None = None) -> list[str]:
    """What SageMaker would refuse of an image URI for a job in `region` (of `account`)."""
    found = ECR_IMAGE.match(uri)
    if not found:
        return [f"image {uri} is not an ECR image URI (ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY:TAG)"]
    if found["region"] != region:
        return [
            f"image {uri} is in {found['region']}: SageMaker pulls images from the job's own region ({region}) only"
        ]
    if found["account"] == account:
        return own_image_problems(uri, found["repository"], found["tag"])
    configs = _configs_of(found["repository"])
    if not configs:
        return []  # another account's repository: not this project's to know
    tag = found["tag"] or "latest"
    published = published_images(found["repository"], region, tag)
    accounts = {ECR_IMAGE.match(image)["account"] for image in published}
    if accounts and found["account"] not in accounts:
        return [
            f"image {uri} is of account {found['account']}: SageMaker's {found['repository']} images in "
            f"{region} are in account {', '.join(sorted(accounts))}"
        ]
    if not any(uri == image or uri.startswith(f"{image}-") for image in published):  # AWS's longer tags too
        versions = sorted({version for _, _, version, _, _ in configs}, key=_version_key)
        shown = ", ".join(sorted(tail.rsplit("/", 1)[-1] for tail in published)) or (
            f"none of that version; versions: {', '.join(versions[-6:])}"
        )
        return [
            f"image {uri}: SageMaker publishes no such {found['repository']} image in {region} (its "
            f"images of that version there: {shown})"
        ]
    return []


def own_image_problems(uri: str, repository: str, tag: str | None) -> list[str]:
    """An image of the pipeline's own account: one the project declares, at the tag of its Dockerfile now."""
    from aws.images import declared_tags

    declared = declared_tags()
    if repository not in declared:
        return [f"image {uri}: {repository} is not one of the project's images ({', '.join(sorted(declared))})"]
    if tag != declared[repository]:
        return [
            f"image {uri}: the project's {repository} is tagged {declared[repository]} now (the digest of its "
            f"Dockerfile and what the build reads); {tag} was built from other files, or never: "
            "make images ENVIRONMENT=... builds and pushes it"
        ]
    return []


def _version_key(version: str) -> tuple:
    return tuple(int(part) if part.isdigit() else 0 for part in re.split(r"[.-]", version))


@cache
def published_images(repository: str, region: str, tag: str) -> frozenset[str]:
    """The image URIs of `repository` whose framework version the tag names that the SageMaker SDK knows AWS
    publishes in `region` (its image_uris configuration, each built by its own `retrieve`)."""
    from sagemaker.core import image_uris

    uris: set[str] = set()
    for framework, scope, version, base, config in _configs_of(repository):
        named = re.search(rf"(^|[^0-9.]){re.escape(version)}([^0-9.]|$)", tag)
        if region not in config.get("registries", {}) or not named:
            continue
        processors = config.get("processors") or ["cpu", "gpu"]
        for processor in processors:
            instance_type = {"cpu": "ml.m5.xlarge", "gpu": "ml.g5.xlarge"}.get(processor)
            if instance_type is None:
                continue
            for py_version in config.get("py_versions") or [None]:
                try:
                    uris.add(
                        image_uris.retrieve(
                            framework=framework,
                            region=region,
                            version=version,
                            py_version=py_version,
                            instance_type=instance_type,
                            image_scope=scope,
                            base_framework_version=base,
                        )
                    )
                except ValueError:
                    continue
    return frozenset(uris)


@cache
def _configs_of(repository: str) -> list[tuple[str, str, str, str | None, dict[str, Any]]]:
    """(framework, scope, version, base framework version, config) of each SDK image config whose repository
    is `repository`."""
    from sagemaker.core import image_uris

    found = []
    for path in sorted((Path(image_uris.__file__).parent / "image_uri_config").glob("*.json")):
        document = json.loads(path.read_text())
        if "versions" in document:  # one configuration for every scope it names
            scopes = {scope: document for scope in document.get("scope", ["training"])}
        else:
            scopes = {scope: section for scope, section in document.items() if isinstance(section, dict)}
        for scope, section in scopes.items():
            for version, config in section.get("versions", {}).items():
                if not isinstance(config, dict):
                    continue
                nested = {None: config} if "repository" in config else config
                for base, inner in nested.items():
                    if isinstance(inner, dict) and inner.get("repository") == repository:
                        processors = (
                            inner.get("processors")
                            or section.get("processors")
                            or [*inner.get("container_version", {})]
                        )
                        found.append((path.stem, scope, version, base, {**inner, "processors": processors}))
    return found
