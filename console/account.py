"""The console's view of an environment's SageMaker account (`pravah ui --target sagemaker`): its pipelines'
executions, each with its graph drawn from the definition that execution ran, the model packages and the
endpoints with their variants' traffic. Every request goes through `aws/requests.py`, checked against botocore's
service model before it is sent; nothing here changes the account."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from foundation.errors import PravahError

EXECUTIONS_PER_PIPELINE = 20  # the newest of each pipeline; ListPipelineExecutions pages past these
PIPELINES_SHOWN = 100


@dataclass
class Execution:
    arn: str
    pipeline: str
    status: str
    started: str
    described: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, tuple[str, str]] = field(default_factory=dict)  # name: (type, status)
    edges: list[list[str]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # ListPipelineExecutionSteps' summaries
    unanswered: str | None = None  # why the steps' states could not be read


class AccountView:
    def __init__(self, aws: Any):
        self.aws = aws
        self.environment = aws.environment

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        return self.aws.call("sagemaker", operation, **params)

    def executions(self) -> list[Execution]:
        """The newest executions of every pipeline in the account's region, newest first."""
        from pipelines.sagemaker.pipeline import executions

        pipelines = self._call("list_pipelines", SortBy="CreationTime", SortOrder="Descending", MaxResults=100)
        found = []
        for pipeline in pipelines.get("PipelineSummaries", [])[:PIPELINES_SHOWN]:
            name = pipeline["PipelineName"]
            for summary in executions(self.aws, name, EXECUTIONS_PER_PIPELINE):
                found.append(
                    Execution(
                        summary["PipelineExecutionArn"],
                        name,
                        summary.get("PipelineExecutionStatus", "?"),
                        _when(summary.get("StartTime")),
                    )
                )
        return sorted(found, key=lambda execution: execution.started, reverse=True)

    def execution(self, arn: str) -> Execution:
        """An execution, its graph from the definition it ran and each step's state as SageMaker reports it (an ARN
        that is not one is refused by the request's check against the service model)."""
        from aws.definition import all_steps, edges
        from pipelines.sagemaker.pipeline import status

        described = status(self.aws, arn)
        definition = json.loads(
            self._call("describe_pipeline_definition_for_execution", PipelineExecutionArn=arn)["PipelineDefinition"]
        )
        execution = Execution(
            arn,
            described.get("PipelineArn", "").rsplit("/", 1)[-1],
            described.get("PipelineExecutionStatus", "?"),
            _when(described.get("CreationTime")),
            described=described,
            edges=edges(definition),
        )
        states: dict[str, str] = {}
        try:
            answer = self._call("list_pipeline_execution_steps", PipelineExecutionArn=arn, SortOrder="Ascending")
            execution.rows = answer.get("PipelineExecutionSteps", [])
            states = {row["StepName"]: row.get("StepStatus", "?") for row in execution.rows}
        except PravahError as exc:  # an account (or an emulation of one) that does not answer it still has a graph
            execution.unanswered = str(exc)
        execution.steps = {
            step["Name"]: (step["Type"], _STATES.get(states.get(step["Name"], ""), "pending"))
            for step in all_steps(definition)
        }
        return execution

    def endpoints(self) -> list[dict[str, Any]]:
        """Each endpoint described: its status, variants with their weights and instances, a deployment under way."""
        answer = self._call("list_endpoints", SortBy="CreationTime", SortOrder="Descending", MaxResults=100)
        return [
            self._call("describe_endpoint", EndpointName=summary["EndpointName"])
            for summary in answer.get("Endpoints", [])
        ]

    def registry(self):
        from registry import open_registry

        return open_registry("sagemaker", region=self.environment.region)


_STATES = {  # SageMaker's step states, as the console's colours name them
    "Starting": "running",
    "Executing": "running",
    "Stopping": "running",
    "Succeeded": "succeeded",
    "Failed": "failed",
    "Stopped": "failed",
}


def account_of(where) -> AccountView | None:
    """What the console shows of a target: the SageMaker account's view, or nothing more for the local folder."""
    return AccountView(where.aws()) if where.target == "sagemaker" else None


def _when(value: Any) -> str:
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else str(value or "")
