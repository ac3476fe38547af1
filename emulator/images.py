"""Stand-ins for SageMaker's framework images, without Docker: a virtualenv of the image's own Python version
holding the containers' open-source toolkits (the ones the PyTorch images run: `sagemaker-training` starts a
training job, `sagemaker-inference` serves a model) and what the source archive's requirements.txt installs,
which is what a job of the real image runs on once its entry has installed them.

A stand-in is built once per (Python, toolkits, requirements) and kept under the user's cache folder, like a
pulled image. Nothing else of Pravah's environment is in it, so a library the code imports but the container
requirements leave out fails here as it would on AWS.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from emulator.containers import BuiltImage, tail
from foundation.errors import PravahError

TOOLKITS = ("sagemaker-training==5.1.4", "sagemaker-inference==1.10.1")
READY = ".pravah-image-ready"


def image_python(image_uri: str) -> str:
    """The Python an image runs, read from its tag (`...:2.5.1-cpu-py311-ubuntu22.04-sagemaker` → 3.11)."""
    found = re.search(r"-py(\d)(\d+)", image_uri.rsplit(":", 1)[-1])
    if not found:
        raise PravahError(f"image {image_uri}: its tag names no Python version (-pyXY)")
    return f"{found[1]}.{found[2]}"


def cache_root() -> Path:
    """`PRAVAH_IMAGE_CACHE`, else the user's cache folder: kept across clones and runs, as pulled images are."""
    if os.environ.get("PRAVAH_IMAGE_CACHE"):
        return Path(os.environ["PRAVAH_IMAGE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pravah" / "images"


def stand_in(image_uri: str, requirements: bytes, say: Callable[[str], None] = print) -> Path:
    """The virtualenv standing in for the framework image `image_uri` with `requirements` installed: its
    folder (python in bin/)."""
    return _virtualenv(image_python(image_uri), [*TOOLKITS], requirements, image_uri, say)


@dataclass(frozen=True)
class Dockerfile:
    """What the emulator reads of a Dockerfile: its base image's Python, WORKDIR, ENV, COPY lines (sources and
    destination, relative to the build context and to WORKDIR) and what its `RUN pip install -r` installs."""

    path: Path
    python: str
    workdir: str
    environment: dict[str, str]
    copies: list[tuple[list[str], str]]
    requirements: bytes


def read_dockerfile(path: Path, context: Path) -> Dockerfile:
    """Only what such an image needs is understood (FROM python:X.Y..., WORKDIR, ENV, COPY, RUN pip install -r
    FILE, ENTRYPOINT); anything else is refused rather than ignored, so that the emulated image stays the image
    AWS would run."""
    python, workdir, environment, copies, requirements = None, "/", {}, [], b""
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
            requirements += (context / words[words.index("-r") + 1]).read_bytes()
        elif instruction != "ENTRYPOINT":
            raise PravahError(f"{path}:{number}: the emulator does not build '{line.strip()}'")
    if python is None:
        raise PravahError(f"{path}: no FROM python:X.Y line: the image's Python is unknown")
    return Dockerfile(path, python, workdir, environment, copies, requirements)


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
    files = cache_root() / "files" / hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    shutil.rmtree(files, ignore_errors=True)  # the files are the working tree's: copied again at each build
    copy_files(dockerfile, context, files)
    venv = _virtualenv(dockerfile.python, [], dockerfile.requirements, str(path), say)
    return BuiltImage(venv, files, dockerfile.workdir, dockerfile.environment)


def _virtualenv(python: str, packages: list[str], requirements: bytes, image: str,
                say: Callable[[str], None]) -> Path:  # fmt: skip
    """A virtualenv of `python` holding `packages` and `requirements`. Built on first use, under a lock, and
    marked ready only when complete, so a killed build is redone."""
    interpreter = shutil.which(f"python{python}")
    if interpreter is None:
        raise PravahError(f"image {image} runs Python {python}, and there is no python{python} on PATH to stand "
                          f"in for it (install Python {python})")  # fmt: skip
    key = hashlib.sha256("\n".join([python, *packages]).encode() + b"\n" + requirements).hexdigest()[:16]
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
        for command in ([interpreter, "-m", "venv", str(folder)],
                        [str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet",
                         *packages, "-r", str(requirements_file)]):  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                shutil.rmtree(folder, ignore_errors=True)
                raise PravahError(f"building the image stand-in failed ({' '.join(command[:4])} ...):\n"
                                  + tail(done.stderr or done.stdout))  # fmt: skip
        (folder / READY).write_text(image + "\n")
        return folder
