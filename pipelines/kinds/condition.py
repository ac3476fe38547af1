"""A condition step: judges report values against thresholds; its outcome picks the branch that runs. On
SageMaker a ConditionStep, compiled after its branches' steps (they must exist as objects first)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipelines.records import Outcome
from pipelines.reports import judge
from pipelines.spec import ConditionStep

if TYPE_CHECKING:
    from pipelines.kinds.base import LocalRun, SageMakerCompiler
    from pipelines.records import RunRecord

SPEC = ConditionStep


def run_local(run: LocalRun, name: str, step: ConditionStep, record: RunRecord) -> Outcome:
    outcome, checks, said = judge(step, lambda operand: run.operand(operand, record))
    not_taken = step.else_steps if outcome else step.if_steps
    return Outcome(
        status="succeeded",
        reason=said,
        details={"outcome": outcome, "conditions": checks},
        skips=dict.fromkeys(not_taken, f"condition '{name}' was {str(outcome).lower()}"),
    )


def compile_sagemaker(compiler: SageMakerCompiler, name: str, step: ConditionStep) -> list[Any]:
    from sagemaker.core.workflow import conditions
    from sagemaker.mlops.workflow import ConditionStep as SageMakerConditionStep

    kinds = {
        "eq": conditions.ConditionEquals,
        "gt": conditions.ConditionGreaterThan,
        "ge": conditions.ConditionGreaterThanOrEqualTo,
        "lt": conditions.ConditionLessThan,
        "le": conditions.ConditionLessThanOrEqualTo,
    }
    built = []
    for condition in step.conditions:
        left, right = compiler.value(condition.left), compiler.value(condition.right)
        if condition.op == "ne":
            built.append(conditions.ConditionNot(expression=conditions.ConditionEquals(left=left, right=right)))
        else:
            built.append(kinds[condition.op](left=left, right=right))
    return [
        SageMakerConditionStep(
            name=name,
            description=step.description or None,
            conditions=built,
            depends_on=step.depends_on or None,
            if_steps=[compiler.steps[s] for s in step.if_steps],
            else_steps=[compiler.steps[s] for s in step.else_steps],
        )
    ]
