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

PACKAGES = ("pipelines", "steps", "training", "inference", "monitoring", "configs")
CONTAINER = Path("pipelines") / "container"


@dataclass(frozen=True)
class SourceArchive:
    data: bytes
    sha256: str

    @property
    def key(self) -> str:
        return f"pravah/source/{self.sha256[:16]}"


def build_source_archive(root: Path) -> SourceArchive:
    """A tar.gz of the code packages and configs, with `requirements.txt` (the steps' libraries) and
    `pravah_train.py` (the training entry) at its top, as SageMaker's training toolkit expects them."""
    files: dict[str, bytes] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in {".pyc", ".pyo"}:
                files[path.relative_to(root).as_posix()] = path.read_bytes()
    files["requirements.txt"] = (root / "requirements" / "steps.txt").read_bytes()
    files["pravah_train.py"] = (root / CONTAINER / "train_entry.py").read_bytes()
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zipped, tarfile.open(fileobj=zipped, mode="w") as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(files[name]), 0o644, 0
            tar.addfile(info, io.BytesIO(files[name]))
    data = buffer.getvalue()
    return SourceArchive(data, hashlib.sha256(data).hexdigest())
