"""The project's own container images: every image a step, a model or a job runs in is declared here, built from
a Dockerfile of this repository (`make images ENVIRONMENT=...` builds and pushes them to the environment's ECR)
and named by a tag that is the digest of what the build reads, so a definition names exactly the image its
libraries (and, for the monitoring image, its code) were built into, and an image that was not rebuilt after a
change is a tag that does not exist yet.

- `pravah-runtime`: processing steps, training jobs and the models' endpoints and Batch Transform jobs on CPU
  instances: Python 3.11 with exactly the lock's versions of what step, training and serving code imports,
  torch's CPU build included, and `program.py` as its entry (SageMaker's `train` and `serve`).
- `pravah-runtime-gpu`: the same on GPU instances (ml.g*, ml.p*), with PyPI's CUDA build of torch (it carries
  its CUDA libraries; SageMaker's GPU hosts give the driver).
- `pravah-monitoring`: the monitoring pipeline's drift job.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

CODE_ROOT = Path(__file__).resolve().parents[1]  # the build context of every image
CONTAINER = Path("pipelines") / "sagemaker" / "container"


@dataclass(frozen=True)
class DeclaredImage:
    repository: str
    dockerfile: Path  # relative to CODE_ROOT

    @property
    def tag(self) -> str:
        return image_tag(self.dockerfile)


IMAGES = {
    "runtime": DeclaredImage("pravah-runtime", CONTAINER / "runtime.Dockerfile"),
    "runtime-gpu": DeclaredImage("pravah-runtime-gpu", CONTAINER / "runtime-gpu.Dockerfile"),
    "monitoring": DeclaredImage("pravah-monitoring", CONTAINER / "monitoring.Dockerfile"),
}
GPU_FAMILIES = re.compile(r"^ml\.(g|p)\d")  # SageMaker's GPU instance families


def image_tag(dockerfile: Path, root: Path = CODE_ROOT) -> str:
    """The digest of the Dockerfile and of every file its COPY lines and `pip install -r` read in the build
    context `root` (what a build of it depends on), as 16 hex digits."""
    digest = hashlib.sha256()
    for path in [dockerfile, *build_inputs(dockerfile, root)]:
        digest.update(path.as_posix().encode() + b"\0" + (root / path).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def build_inputs(dockerfile: Path, root: Path = CODE_ROOT) -> list[Path]:
    """The files of the build context `root` that a Dockerfile's COPY lines and `-r` options read, sorted."""
    found: set[Path] = set()
    for line in (root / dockerfile).read_text().splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        named = words[1:-1] if words[0] == "COPY" else [w for i, w in enumerate(words) if i and words[i - 1] == "-r"]
        for name in named:
            path = root / name
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            found |= {p.relative_to(root) for p in files if "__pycache__" not in p.parts}
    return sorted(found)


def image_uri(account: str, region: str, name: str) -> str:
    image = IMAGES[name]
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{image.repository}:{image.tag}"


def runtime_for(instance_type: str) -> str:
    """The runtime image's name for an instance type: the GPU build on a GPU instance."""
    return "runtime-gpu" if GPU_FAMILIES.match(instance_type) else "runtime"


def declared_tags() -> dict[str, str]:
    """Each declared repository's current tag."""
    return {image.repository: image.tag for image in IMAGES.values()}
