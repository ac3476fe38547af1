"""A step kind is one module: a kind defined in this file alone (its spec class, registered with `step_kind`, and
how it runs locally) is read, checked, drawn and run by the loader, the graph and the runner, none of which
names it; and every kind module in pipelines/kinds/ answers the interface they loop over."""

from __future__ import annotations

from dataclasses import field, fields
from typing import Literal

import pytest

from foundation.home import Home
from pipelines import kinds
from pipelines.graph import StepGraph
from pipelines.records import Outcome
from pipelines.runner import LocalRunner
from pipelines.spec import STEP_KINDS, ReportRef, SpecError, StepOutput, spec_class, step_kind
from pipelines.specfile import load_pipeline


@spec_class
class CountStep:
    """Counts the files of another step's output, and says so in its outcome."""

    kind: Literal["count"]
    source: StepOutput
    note: ReportRef | None = None
    depends_on: list[str] = field(default_factory=list)


def run_count(run, name: str, step: CountStep, record) -> Outcome:
    from pathlib import Path

    folder = Path(record.steps[step.source.step].outputs[step.source.output].path)
    return Outcome(status="succeeded", details={"files": sum(1 for p in folder.rglob("*") if p.is_file())})


@pytest.fixture
def count_kind(monkeypatch):
    """The kind, registered as a module of pipelines/kinds/ registers its own, and taken away afterwards."""
    step_kind(CountStep)
    monkeypatch.setitem(kinds.LOCAL, CountStep, run_count)
    yield
    STEP_KINDS.remove(CountStep)


SPEC = """
name: counting
steps:
  make:
    kind: processing
    code: makefiles
    outputs: {data: processed/data}
  count:
    kind: count
    source: make.data
"""

MAKEFILES = """
import sys
from pathlib import Path


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[argv.index("--processing-root") + 1])
    for n in range(3):
        (root / "output" / "data" / f"{n}.txt").write_text(str(n))


if __name__ == "__main__":
    main()
"""


def test_a_kind_defined_outside_the_engines_is_read_checked_drawn_and_run(count_kind, project, home):
    spec = project("configs/pipelines/counting.yaml", SPEC)
    project("makefiles.py", MAKEFILES)
    pipeline = load_pipeline(spec)
    graph = StepGraph.build(pipeline)
    assert [(e.upstream, e.downstream, e.label) for e in graph.edges] == [("make", "count", "data → source")]
    record = LocalRunner(pipeline, Home(home), max_parallel=2).run({})
    assert record.steps["count"].status == "succeeded" and record.steps["count"].details == {"files": 3}

    wrong = SPEC.replace("make.data", "make.dta") + "    note: {step: maek, report: r, path: a}\n"
    broken = project("configs/pipelines/broken.yaml", wrong)
    with pytest.raises(SpecError) as found:
        load_pipeline(broken)
    said = str(found.value)  # its references checked as any kind's, with their places
    assert "broken.yaml:9 steps.count.source: step 'make' has no output 'dta'; did you mean 'data'?" in said, said
    assert "broken.yaml:10 steps.count.note.step: unknown step 'maek'; did you mean 'make'?" in said, said


def test_an_unknown_kind_names_the_registered_ones(project):
    spec = project("configs/pipelines/odd.yaml", SPEC.replace("kind: count", "kind: cuont"))
    with pytest.raises(SpecError, match="unknown step kind 'cuont'; kinds: processing, training"):
        load_pipeline(spec)


def test_every_kind_module_answers_the_engines_interface():
    assert set(kinds.MODULES) >= {"processing", "training", "condition", "register", "fail", "transform"}
    for name, module in kinds.MODULES.items():
        assert module.SPEC in STEP_KINDS, f"pipelines/kinds/{name}.py: its SPEC is not a registered step kind"
        assert callable(module.run_local) and callable(module.compile_sagemaker), name
        if any(item.name == "outputs" for item in fields(module.SPEC)):
            assert callable(module.output_uri), f"{name}: a kind with outputs says where they land on SageMaker"
