"""Step kinds, one module each, holding how the kind runs on the local engine (the runner calls
`LOCAL[type(step)]`). So far the kinds that run no code of the user's: condition, register and fail;
processing and training steps run through the runner's own processes (pipelines/runner.py). The SageMaker
compiler and the emulator still dispatch on kinds themselves (issue 33 carries the rest)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pipelines.kinds import condition, fail, register
from pipelines.spec import ConditionStep, FailStep, RegisterStep

if TYPE_CHECKING:
    from pipelines.kinds.base import LocalRun
    from pipelines.records import Outcome, RunRecord


LOCAL: dict[type, Callable[[LocalRun, str, Any, RunRecord], Outcome]] = {
    ConditionStep: condition.run_local,
    RegisterStep: register.run_local,
    FailStep: fail.run_local,
}
