"""The project's images (aws/images.py) as the emulator runs them, without Docker: each built from its own
Dockerfile, read instruction by instruction: a virtualenv of its FROM's Python holding what its `RUN pip install
-r` lines install, the files its COPY lines put under its WORKDIR (mounted there when a job runs), its ENV and
its ENTRYPOINT. Nothing else of Pravah's environment is in it, so a library the code imports but the image's
requirements leave out fails here as it would on AWS; an image the project does not declare is refused.

A virtualenv is built once per (Python, requirements) and kept under the user's cache folder, like a pulled
image; the files are copied again at each build, since they are the working tree's.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from emulator.containers import BuiltImage, tail
from foundation.errors import PravahError

READY = ".pravah-image-ready"


def cache_root() -> Path:
    """`PRAVAH_IMAGE_CACHE`, else the user's cache folder: kept across clones and runs, as pulled images are."""
    if os.environ.get("PRAVAH_IMAGE_CACHE"):
        return Path(os.environ["PRAVAH_IMAGE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pravah" / "images"


def declared_image(uri: str, say: Callable[[str], None] = print) -> BuiltImage:
    """The project's image that `uri` names (its repository and current tag), built as the emulator runs it."""
    from aws.definition_rules import ECR_IMAGE
    from aws.images import CODE_ROOT, IMAGES

    found = ECR_IMAGE.match(uri)
    for image in IMAGES.values():
        if found and found["repository"] == image.repository and found["tag"] == image.tag:
            return built_image(CODE_ROOT / image.dockerfile, CODE_ROOT, say)
    names = ", ".join(f"{i.repository}:{i.tag}" for i in IMAGES.values())
    raise PravahError(
        f"image {uri} is not one of the project's images ({names}): the emulator runs only what "
        "this repository's Dockerfiles build"
    )


@dataclass(frozen=True)
class Dockerfile:
    """What the emulator reads of a Dockerfile: its base image's Python, WORKDIR, ENV, COPY lines (sources and
    destination, relative to the build context and to WORKDIR), what its `RUN pip install -r` lines install and
    its ENTRYPOINT."""

    path: Path
    python: str
    workdir: str
    environment: dict[str, str]
    copies: list[tuple[list[str], str]]
    requirements: bytes
    entrypoint: list[str]


def read_dockerfile(path: Path, context: Path) -> Dockerfile:
    """Only what such an image needs is understood (FROM python:X.Y..., WORKDIR, ENV, COPY, RUN pip install with
    its -r files, ENTRYPOINT in exec form); anything else is refused rather than ignored, so that the emulated
    image stays the image AWS would run. pip's other options (an extra index) are the build's, not the image's."""
    python, workdir, environment, copies, requirements, entrypoint = None, "/", {}, [], b"", []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        instruction, _, rest = line.strip().partition(" ")
        words = shlex.split(rest)
        if instruction == "FROM" and (found := re.fullmatch(r"python:(\d+\.\d+)(-[\w.-]+)?", rest.strip())):
            python = found[1]
        elif instruction == "WORKDIR" and len(words) == 1:
            workdir = words[0]
        elif instruction == "ENV" and all("=" in word for word in words):
            environment.update(word.split("=", 1) for word in words)
        elif instruction == "COPY" and len(words) >= 2:
            if words[-1].startswith("/"):
                raise PravahError(f"{path}:{number}: COPY to {words[-1]}: only paths under WORKDIR are emulated")
            copies.append((words[:-1], words[-1]))
        elif instruction == "RUN" and words[:2] == ["pip", "install"] and "-r" in words:
            for index, word in enumerate(words[:-1]):
                if word == "-r":
                    requirements += (context / words[index + 1]).read_bytes()
        elif instruction == "ENTRYPOINT" and rest.strip().startswith("["):
            entrypoint = json.loads(rest)
        else:
            raise PravahError(f"{path}:{number}: the emulator does not build '{line.strip()}'")
    if python is None:
        raise PravahError(f"{path}: no FROM python:X.Y line: the image's Python is unknown")
    return Dockerfile(path, python, workdir, environment, copies, requirements, entrypoint)


def copy_files(dockerfile: Dockerfile, context: Path, files: Path) -> None:
    """Do the Dockerfile's COPY lines into `files` (standing for its WORKDIR), as Docker copies: a folder's
    contents into the destination, several sources or a destination ending in / into that folder."""
    for sources, destination in dockerfile.copies:
        target = files / destination
        for source in sources:
            path = context / source
            if not path.exists():
                raise PravahError(f"{dockerfile.path}: COPY {source}: no such file in the build context {context}")
            into = target / path.name if destination.endswith("/") or len(sources) > 1 else target
            if path.is_dir():
                shutil.copytree(path, into, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, into)


def built_image(path: Path, context: Path, say: Callable[[str], None] = print) -> BuiltImage:
    """The Dockerfile at `path` (build context: `context`) built as the emulator runs it."""
    dockerfile = read_dockerfile(path, context)
    venv = _virtualenv(dockerfile.python, dockerfile.requirements, str(path), say)
    files = _files(dockerfile, context)
    return BuiltImage(venv, files, dockerfile.workdir, dockerfile.environment, dockerfile.entrypoint)


def _files(dockerfile: Dockerfile, context: Path) -> Path:
    """The files the COPY lines put in the image, copied from the working tree at each build and kept by their
    content's digest: a build never changes a folder that a job of another build (another process's) reads."""
    from foundation.fingerprint import hash_tree

    root = cache_root() / "files"
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".copying-", dir=root))
    copy_files(dockerfile, context, staging)
    files = root / hash_tree(staging).digest[:16]
    try:
        staging.rename(files)
    except OSError:  # the same files, kept by an earlier build
        shutil.rmtree(staging, ignore_errors=True)
    return files


def _virtualenv(python: str, requirements: bytes, image: str, say: Callable[[str], None]) -> Path:
    """A virtualenv of `python` holding `requirements`. Built on first use, under a lock, and marked ready only
    when complete, so a killed build is redone."""
    interpreter = shutil.which(f"python{python}")
    if interpreter is None:
        raise PravahError(
            f"image {image} runs Python {python}, and there is no python{python} on PATH to stand "
            f"in for it (install Python {python})"
        )
    key = hashlib.sha256(python.encode() + b"\n" + requirements).hexdigest()[:16]
    folder = cache_root() / f"py{python}-{key}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (folder / READY).is_file():
            return folder
        shutil.rmtree(folder, ignore_errors=True)
        say(f"building the stand-in for {image} (Python {python}) in {folder} (once; a few minutes)")
        requirements_file = folder.parent / f"{folder.name}.requirements.txt"
        requirements_file.write_bytes(requirements)
        for command in (
            [interpreter, "-m", "venv", str(folder)],
            [str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet", "-r", str(requirements_file)],
        ):
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                shutil.rmtree(folder, ignore_errors=True)
                raise PravahError(
                    f"building the image stand-in failed ({' '.join(command[:4])} ...):\n"
                    + tail(done.stderr or done.stdout)
                )
        (folder / READY).write_text(image + "\n")
        return folder
