from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The offline SIB-200 mirror (CI and the Makefile set PRAVAH_DATA_MIRROR)."""
    path = Path(os.environ.get("PRAVAH_DATA_MIRROR") or REPO.parent / "shared" / "datasets" / "sib-200")
    if not (path / "data" / "annotated").is_dir():
        pytest.fail(f"the SIB-200 mirror is not at {path}: set PRAVAH_DATA_MIRROR")
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def project(tmp_path: Path):
    """A throwaway project: write configs and step modules into it, get the spec path back."""
    root = tmp_path / "project"
    (root / "configs" / "pipelines").mkdir(parents=True)

    def write(relative: str, text: str) -> Path:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    write.root = root  # type: ignore[attr-defined]
    return write
