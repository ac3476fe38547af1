"""A fail step: ends the run as failed, with its message (SageMaker's FailStep)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.records import Outcome
from pipelines.spec import FailStep

if TYPE_CHECKING:
    from pipelines.kinds.base import LocalRun
    from pipelines.records import RunRecord


def run_local(run: LocalRun, name: str, step: FailStep, record: RunRecord) -> Outcome:
    message = " ".join(str(run.operand(part, record)) for part in step.message)
    return Outcome(status="failed", error=message, details={"message": message})
