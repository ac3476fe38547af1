"""Step kinds, one module each, holding how the kind runs on the local engine (the runner calls
`LOCAL[type(step)]`) and how it compiles to a SageMaker step (the compiler calls `SAGEMAKER[type(step)]`). So
far the kinds that run no code of the user's: condition, register and fail; processing and training steps are
still the runner's (its processes) and the compiler's own, and the emulator executes the compiled definition
by SageMaker's step types (issue 33 carries the rest)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pipelines.kinds import condition, fail, register
from pipelines.spec import ConditionStep, FailStep, RegisterStep

if TYPE_CHECKING:
    from pipelines.kinds.base import LocalRun, SageMakerCompiler
    from pipelines.records import Outcome, RunRecord


LOCAL: dict[type, Callable[[LocalRun, str, Any, RunRecord], Outcome]] = {
    ConditionStep: condition.run_local,
    RegisterStep: register.run_local,
    FailStep: fail.run_local,
}

SAGEMAKER: dict[type, Callable[[SageMakerCompiler, str, Any], Any]] = {
    ConditionStep: condition.compile_sagemaker,
    RegisterStep: register.compile_sagemaker,
    FailStep: fail.compile_sagemaker,
}
