"""A fail step: ends the run as failed, with its message (SageMaker's FailStep)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipelines.records import Outcome
from pipelines.spec import FailStep

if TYPE_CHECKING:
    from pipelines.kinds.base import LocalRun, SageMakerCompiler
    from pipelines.records import RunRecord

SPEC = FailStep


def run_local(run: LocalRun, name: str, step: FailStep, record: RunRecord) -> Outcome:
    message = " ".join(str(run.operand(part, record)) for part in step.message)
    return Outcome(status="failed", error=message, details={"message": message})


def compile_sagemaker(compiler: SageMakerCompiler, name: str, step: FailStep) -> list[Any]:
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow import FailStep as SageMakerFailStep

    message = Join(on=" ", values=[compiler.text(part) for part in step.message])
    return [
        SageMakerFailStep(
            name=name, description=step.description or None, depends_on=step.depends_on or None, error_message=message
        )
    ]
