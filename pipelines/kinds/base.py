"""What a kind's module may ask of the engine that runs or compiles it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from aws.environments import Environment
    from foundation.home import Home
    from pipelines.cache import StepCache
    from pipelines.graph import StepGraph
    from pipelines.records import Outcome, RunRecord
    from pipelines.registry_worker import RegistryWorker
    from pipelines.spec import PathRef, Pipeline, ProcessingStep, StepOutput, TrainingStep


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

    def run_code_step(self, name: str, step: ProcessingStep | TrainingStep, record: RunRecord) -> Outcome:
        """Run a step's code in a step process, with the cache, retries and all-or-nothing outputs of any."""

    def run_search(self, name: str, step: TrainingStep, record: RunRecord) -> Outcome:
        """A training step's hyperparameter search: its trials as code steps, the best one's outcome the step's."""


class SageMakerCompiler(Protocol):
    """What a kind's SageMaker compilation may ask of the compiler (pipelines/sagemaker/compiler.py)."""

    pipeline: Pipeline
    env: Environment
    graph: StepGraph
    session: Any  # the SDK's PipelineSession
    source_sha256: str
    steps: dict[str, Any]  # the SDK's step objects compiled so far, by name
    helpers: list[Any]  # the SDK's steps that kinds compiled besides their own (a transform's model, a shards step)

    def value(self, value: Any) -> Any:
        """A literal, a pipeline parameter, or a JsonGet of a report value."""

    def text(self, value: Any) -> Any:
        """A value as text (SageMaker resolves a non-string parameter through a one-part Std:Join)."""

    def output_uri(self, name: str, step_output: StepOutput) -> Any:
        """Where a step's output lands in S3 (a property of the step that writes it)."""

    archive_uri: str  # the source archive the containers run (a processing input, a training channel)
    entry_uri: str  # processing_entry.py, which starts a processing step's module
    parameters: dict[str, Any]  # the SDK's pipeline parameters, by name
    property_files: dict[tuple[str, str], Any]  # the SDK's PropertyFile of each (step, report)
    notes: list[str]  # what the compilation leaves out, said to the user

    def image(self, instance_type: str) -> str:
        """The project's runtime image for an instance type, in the environment's account and region."""

    def model_builder(self, instance_type: str, model: StepOutput) -> Any:
        """The SDK's ModelBuilder of a trained model output, in the project's serving image."""

    def instance_type(self, name: str, step: Any, default: str) -> str:
        """The environment's instance type for the step, else the step's own, else `default`."""

    def instance_count(self, name: str, step: Any) -> int:
        """The environment's number of instances for the step, else the step's own."""

    def uploaded(self, ref: PathRef) -> str:
        """Where a file or folder of the project is uploaded with the pipeline (its S3 URI)."""

    def cache_config(self, step: Any) -> Any:
        """The step's SageMaker step caching, as its `cache` says."""

    def retry(self, step: Any) -> list:
        """The step's retry policies (SageMaker's StepRetryPolicy), none for a single attempt."""
