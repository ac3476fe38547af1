"""The project's code as one reproducible archive for SageMaker's containers: the same bytes for the same
sources (sorted entries, fixed times and owners), so its SHA-256 names its S3 key and an unchanged project
uploads nothing new."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

# the packages of Pravah's code that the containers run (step, training and serving code, and what it imports:
# tests/test_container_requirements.py checks that no module they import lies outside them)
PACKAGES = ("foundation", "artifact", "steps", "training", "inference")
CODE_ROOT = Path(__file__).resolve().parents[2]  # where those packages are
CONTAINER = Path(__file__).resolve().parent / "container"  # the images' Dockerfiles and entry programs
SOURCE_CHANNEL = "pravah-source"  # the archive's processing input and training channel (container/program.py)


@dataclass(frozen=True)
class SourceArchive:
    data: bytes
    sha256: str

    @property
    def key(self) -> str:
        return f"pravah/source/{self.sha256[:16]}"


def build_source_archive(root: Path) -> SourceArchive:
    """A tar.gz of Pravah's code packages and the configs of the project at `root`: what a processing job runs
    (its `pravah-source` input), a training job runs (its `pravah-source` channel) and a trained model carries
    in its `code/` folder. The libraries are the runtime image's."""
    files: dict[str, bytes] = {}
    for base, folder in [*((CODE_ROOT, package) for package in PACKAGES), (root, "configs")]:
        for path in sorted((base / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in {".pyc", ".pyo"}:
                files[path.relative_to(base).as_posix()] = path.read_bytes()
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zipped, tarfile.open(fileobj=zipped, mode="w") as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(files[name]), 0o644, 0
            tar.addfile(info, io.BytesIO(files[name]))
    data = buffer.getvalue()
    return SourceArchive(data, hashlib.sha256(data).hexdigest())


@dataclass(frozen=True)
class Upload:
    s3_uri: str
    data: bytes = b""
    path: Path | None = None  # a file or folder to upload under s3_uri (else `data` is the object)

    def objects(self) -> list[tuple[str, bytes]]:
        """(key, body) of each object: `data` at the URI itself, a file under it by its name, a folder's files
        under it by their paths in the folder."""
        from aws.requests import s3_location

        prefix = s3_location(self.s3_uri)[1].rstrip("/")
        if self.path is None:
            return [(prefix, self.data)]
        if self.path.is_file():
            return [(f"{prefix}/{self.path.name}", self.path.read_bytes())]
        return [
            (f"{prefix}/{file.relative_to(self.path).as_posix()}", file.read_bytes())
            for file in sorted(self.path.rglob("*"))
            if file.is_file()
        ]
