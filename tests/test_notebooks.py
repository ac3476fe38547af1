"""The notebooks run, in order, on small data, offline, and are kept in git without outputs."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from tests.support import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_notebooks_are_stored_without_outputs():
    assert [n.name for n in NOTEBOOKS] == [
        "01-explore-data.ipynb",
        "02-experiment.ipynb",
        "03-run-pipeline.ipynb",
        "04-monitoring.ipynb",
    ]
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: outputs in git"


@pytest.mark.slow
def test_every_notebook_runs(tmp_path, mirror, monkeypatch):
    monkeypatch.setenv("PRAVAH_HOME", str(tmp_path / "home"))  # one project for all four, as a user's
    monkeypatch.setenv("PRAVAH_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("PRAVAH_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        NotebookClient(
            notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
        ).execute()
        errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
        assert not errors, f"{path.name}: {errors}"
    assert (tmp_path / "home" / "monitoring" / "notebook").is_dir(), "notebook 04 ran the monitoring job"
