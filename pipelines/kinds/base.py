"""What every kind's module may ask of the engine that runs it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from foundation.home import Home
    from pipelines.cache import StepCache
    from pipelines.graph import StepGraph
    from pipelines.records import RunRecord
    from pipelines.registry_worker import RegistryWorker
    from pipelines.spec import Pipeline


class LocalRun(Protocol):
    """What a kind's local execution may ask of the run it belongs to (the runner provides it)."""

    home: Home
    pipeline: Pipeline
    graph: StepGraph
    cache: StepCache
    registry: RegistryWorker
    register: bool  # False: an experiment run, no registry version is made
    code: dict[str, Any]  # the code steps' fingerprints, by step name

    def value(self, value: Any, record: RunRecord) -> Any:
        """A literal, or the run's value of a parameter reference."""

    def operand(self, value: Any, record: RunRecord) -> Any:
        """`value`, or the value a report reference reads from an upstream step's output."""

    def cache_check(self, name: str, key: str, components: dict, cacheable: bool) -> tuple[Any, str]:
        """An intact earlier result for this key, or why the step must run."""
