"""The project folder: every artifact, record and log of local runs, laid out like the S3 bucket."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_HOME = ".pravah"


def project_root() -> Path:
    """The project folder, whose `configs/` holds its pipelines and settings: `--project` (PRAVAH_PROJECT), else
    the nearest folder from the working one upward that has a `configs/` folder, else the working folder."""
    given = os.environ.get("PRAVAH_PROJECT")
    if given:
        return Path(given).expanduser().resolve()
    here = Path.cwd()
    return next((folder for folder in (here, *here.parents) if (folder / "configs").is_dir()), here)


@dataclass(frozen=True)
class Home:
    """`raw/ processed/ models/ results/ logs/` as in the design doc, plus the runner's own books."""

    root: Path

    @classmethod
    def resolve(cls, explicit: str | os.PathLike | None = None) -> Home:
        """`--home`, else `PRAVAH_HOME`, else `.pravah` in the project folder (project_root)."""
        chosen = explicit or os.environ.get("PRAVAH_HOME") or project_root() / DEFAULT_HOME
        return cls(Path(chosen).expanduser().resolve())

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def step_log(self, run_id: str, step: str) -> Path:
        """A step's log in a run: what the runner writes and the live progress line shows the end of."""
        return self.logs / run_id / f"{step}.log"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def scratch(self) -> Path:
        """Where steps write before their outputs are moved into place: never read as results."""
        return self.root / ".scratch"

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def tracking_uri(self) -> str:
        return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def artifact_root(self) -> Path:
        return self.root / "mlartifacts"


def file_mask() -> int:
    """The process's umask, read without changing it (os.umask would, for a moment, for every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def write_json_atomic(path: Path, value: Any) -> None:
    """Write JSON so that readers see the old file or the new one, never half of either. Indented for people
    who read the project folder; orjson, as run records are written after every step."""
    import orjson

    write_bytes_atomic(
        path,
        orjson.dumps(
            value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY, default=str
        ),
    )


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old file or the new one, never half of either."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, then renamed into place
        "wb", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    )
    try:
        with handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), 0o666 & ~file_mask())  # as an ordinary write would (mkstemp makes 0600)
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def replace_folder(source: Path, final: Path) -> None:
    """Put the folder `source` at `final` by renames: readers find the old folder or the new one, whole."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        stale = final.with_name(f"{final.name}.replaced-{os.getpid()}-{time.monotonic_ns()}")
        final.rename(stale)
        source.rename(final)
        shutil.rmtree(stale, ignore_errors=True)
    else:
        source.rename(final)
