"""Step kinds, one module each: every module here but `base` is a kind, found by its name. A kind's module
says which spec class it runs (`SPEC`; a new kind defines its class there and registers it with
`pipelines.spec.step_kind`), how it runs on the local engine (`run_local`, called by the runner) and how it
compiles to SageMaker steps (`compile_sagemaker`, called by the compiler; `output_uri` where its outputs are
read downstream). The graph's edges and the loader's checks come from the spec's references, whatever the kind
(pipelines.spec.references); the emulator runs SageMaker's own step types, not ours.

What several kinds share stays with the engine and is asked for through the protocols in `base`: the runner's
code-step machinery (a step process, the cache, retries, outputs committed whole: processing, training and
transform run their code through it) and the compiler's values, uploads, instance types and images."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.kinds.base import LocalRun, SageMakerCompiler
    from pipelines.records import Outcome, RunRecord

MODULES: dict[str, ModuleType] = {
    found.name: importlib.import_module(f"{__name__}.{found.name}")
    for found in pkgutil.iter_modules(__path__)
    if found.name != "base"
}
BY_SPEC: dict[type, ModuleType] = {module.SPEC: module for module in MODULES.values()}

LOCAL: dict[type, Callable[[LocalRun, str, Any, RunRecord], Outcome]] = {
    spec: module.run_local for spec, module in BY_SPEC.items()
}
SAGEMAKER: dict[type, Callable[[SageMakerCompiler, str, Any], list[Any]]] = {  # its SageMaker steps, its own last
    spec: module.compile_sagemaker for spec, module in BY_SPEC.items()
}
