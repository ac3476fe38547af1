"""A condition step: judges report values against thresholds; its outcome picks the branch that runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.records import Outcome
from pipelines.reports import judge
from pipelines.spec import ConditionStep

if TYPE_CHECKING:
    from pipelines.kinds.base import LocalRun
    from pipelines.records import RunRecord


def run_local(run: LocalRun, name: str, step: ConditionStep, record: RunRecord) -> Outcome:
    outcome, checks, said = judge(step, lambda operand: run.operand(operand, record))
    return Outcome(status="succeeded", reason=said, details={"outcome": outcome, "conditions": checks})
