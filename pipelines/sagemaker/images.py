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
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from pipelines.errors import PravahError
from pipelines.sagemaker.containers import tail

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
    """The virtualenv standing in for `image_uri` with `requirements` installed: its folder (python in bin/).
    Built on first use, under a lock, and marked ready only when complete, so a killed build is redone."""
    python = image_python(image_uri)
    interpreter = shutil.which(f"python{python}")
    if interpreter is None:
        raise PravahError(f"image {image_uri} runs Python {python}, and there is no python{python} on PATH to stand "
                          f"in for it (install Python {python})")  # fmt: skip
    key = hashlib.sha256("\n".join([python, *TOOLKITS]).encode() + b"\n" + requirements).hexdigest()[:16]
    folder = cache_root() / f"py{python}-{key}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (folder / READY).is_file():
            return folder
        shutil.rmtree(folder, ignore_errors=True)
        say(f"building the stand-in for Python {python} images in {folder} (once; a few minutes)")
        requirements_file = folder.parent / f"{folder.name}.requirements.txt"
        requirements_file.write_bytes(requirements)
        for command in ([interpreter, "-m", "venv", str(folder)],
                        [str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet",
                         *TOOLKITS, "-r", str(requirements_file)]):  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                shutil.rmtree(folder, ignore_errors=True)
                raise PravahError(f"building the image stand-in failed ({' '.join(command[:4])} ...):\n"
                                  + tail(done.stderr or done.stdout))  # fmt: skip
        (folder / READY).write_text(image_uri + "\n")
        return folder
