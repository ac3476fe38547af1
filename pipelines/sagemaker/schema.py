"""Validation of a compiled definition against AWS's public pipeline-definition JSON Schema
(`schemas/sagemaker-pipeline-definition.schema.json` beside this file, Version 2020-12-01; its provenance in
SOURCE.md).

The schema lags what SageMaker accepts and the SDK writes. Each relaxation below names the point and why;
nothing else is loosened. The first five are listed in the schema's SOURCE.md; the last four were found here
by validating Pravah's own definitions."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

SCHEMA_NAME = "sagemaker-pipeline-definition.schema.json"


def schema_path() -> Path:
    """$PRAVAH_PIPELINE_SCHEMA, else the copy that travels with the code (schemas/ beside this file)."""
    import os

    given = os.environ.get("PRAVAH_PIPELINE_SCHEMA")
    path = Path(given) if given else Path(__file__).resolve().parent / "schemas" / SCHEMA_NAME
    if not path.is_file():
        from foundation.errors import PravahError

        raise PravahError(f"no pipeline-definition schema at {path}" + (" (PRAVAH_PIPELINE_SCHEMA)" if given else ""))
    return path


def _top_level_configs(schema: dict) -> str:
    string = {"$ref": "#/definitions/StringArgumentValue"}
    schema["properties"]["PipelineExperimentConfig"] = {
        "oneOf": [
            {"type": "null"},
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["ExperimentName", "TrialName"],
                "properties": {"ExperimentName": string, "TrialName": string},
            },
        ]
    }
    text = {"type": "string"}
    schema["properties"]["MlflowConfig"] = {
        "oneOf": [
            {"type": "null"},
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["MlflowResourceArn"],
                "properties": {"MlflowResourceArn": text, "MlflowExperimentName": text},
            },
        ]
    }
    return "top level: the SDK also writes PipelineExperimentConfig and MlflowConfig (each null or its own fields)"


def _property_files(schema: dict) -> str:
    schema["definitions"]["ProcessingStep"]["properties"]["PropertyFiles"] = {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["PropertyFileName", "OutputName", "FilePath"],
            "additionalProperties": False,
            "properties": {
                "PropertyFileName": {"type": "string"},
                "OutputName": {"type": "string"},
                "FilePath": {"type": "string"},
            },
        },
    }
    return "Processing step: PropertyFiles (how a condition reads a step's JSON report) is missing"


def _json_get(schema: dict) -> str:
    definitions = schema["definitions"]
    definitions["JsonGetFunction"] = {
        "type": "object",
        "required": ["Std:JsonGet"],
        "additionalProperties": False,
        "properties": {
            "Std:JsonGet": {
                "type": "object",
                "required": ["PropertyFile", "Path"],
                "additionalProperties": False,
                "properties": {"PropertyFile": {"$ref": "#/definitions/GetFunction"}, "Path": {"type": "string"}},
            }
        },
    }
    for condition, operand in (
        ("BinaryCondition", "LeftValue"),
        ("BinaryCondition", "RightValue"),
        ("InCondition", "Value"),
    ):  # a condition's operands only (and a Join's parts)
        found = definitions[condition]["properties"][operand]
        combinator = "anyOf" if "anyOf" in found else "oneOf"
        found[combinator] = [*found[combinator], {"$ref": "#/definitions/JsonGetFunction"}]
    return "Std:JsonGet (a value read from a PropertyFile) is not defined: a condition's operand may be one"


def _compression_type(schema: dict) -> str:
    output = schema["definitions"]["TrainingStep"]["properties"]["Arguments"]["properties"]["OutputDataConfig"]
    output["properties"]["CompressionType"] = {"type": "string", "enum": ["GZIP", "NONE"]}
    return "Training step: OutputDataConfig.CompressionType (a CreateTrainingJob field) is missing"


def _register_fields(schema: dict) -> str:
    arguments = schema["definitions"]["RegisterModelStep"]["properties"]["Arguments"]["properties"]
    arguments["ModelApprovalStatus"] = {"$ref": "#/definitions/StringArgumentValue"}
    arguments["SkipModelValidation"] = {"$ref": "#/definitions/StringArgumentValue"}
    arguments["CustomerMetadataProperties"] = {
        "type": "object",
        "maxProperties": 50,
        "additionalProperties": {"$ref": "#/definitions/StringArgumentValue"},
    }
    container = arguments["InferenceSpecification"]["properties"]["Containers"]["items"]
    string = {"$ref": "#/definitions/StringArgumentValue"}
    container["properties"]["Environment"] = {"type": "object", "additionalProperties": string}
    return (
        "RegisterModel: ModelApprovalStatus, SkipModelValidation, CustomerMetadataProperties (CreateModelPackage "
        "fields), containers' Environment"
    )


def _retry_exception_types(schema: dict) -> str:
    retry = schema["definitions"]["RetryPolicy"]["properties"]
    retry["ExceptionType"] = {"type": "array", "minItems": 1, "items": retry["ExceptionType"]}
    return "found here: a retry policy's ExceptionType is a list of types (the SDK writes one, AWS documents one)"


def _join(schema: dict) -> str:
    definitions = schema["definitions"]
    value = {
        "anyOf": [
            {"type": ["string", "number", "boolean"]},
            {"$ref": "#/definitions/GetFunction"},
            {"$ref": "#/definitions/JsonGetFunction"},
            {"$ref": "#/definitions/JoinFunction"},
        ]
    }
    definitions["JoinFunction"] = {
        "type": "object",
        "required": ["Std:Join"],
        "additionalProperties": False,
        "properties": {
            "Std:Join": {
                "type": "object",
                "required": ["Values"],
                "additionalProperties": False,
                "properties": {"On": {"type": "string"}, "Values": {"type": "array", "items": value}},
            }
        },
    }
    definitions["StringArgumentValue"] = {
        "oneOf": [*definitions["StringArgumentValue"]["oneOf"], {"$ref": "#/definitions/JoinFunction"}]
    }
    return (
        "found here: a string argument may be a Std:Join (S3 URIs per execution, messages), and the schema's "
        "own JoinFunction puts On and Values outside `properties`, so it checks nothing"
    )


def _tuning(schema: dict) -> str:
    definitions = schema["definitions"]
    output = definitions["HyperParameterTrainingJobDefinition"]["properties"]["OutputDataConfig"]
    output["properties"]["CompressionType"] = {"type": "string", "enum": ["GZIP", "NONE"]}
    config = definitions["TuningStep"]["properties"]["Arguments"]["properties"]["HyperParameterTuningJobConfig"]
    config["properties"]["Strategy"]["enum"] = ["Bayesian", "Random", "Hyperband", "Grid"]
    config["properties"]["RandomSeed"] = {"type": "integer"}
    config["properties"]["ResourceLimits"]["required"] = ["MaxParallelTrainingJobs"]
    return (
        "found here: a Tuning step's training definition has OutputDataConfig.CompressionType, its config "
        "RandomSeed and the Grid and Hyperband strategies, and a grid leaves MaxNumberOfTrainingJobs out "
        "(CreateHyperParameterTuningJob fields)"
    )


def _model_data_url(schema: dict) -> str:
    container = schema["definitions"]["ContainerDefinition"]["properties"]
    container["ModelDataUrl"] = {"oneOf": [container["ModelDataUrl"], {"$ref": "#/definitions/GetFunction"}]}
    return (
        "found here: a Model step's container takes its ModelDataUrl from the training step that made the model "
        "(Steps.NAME.ModelArtifacts.S3ModelArtifacts), as AWS's own train-then-transform pipelines do"
    )


RELAXATIONS = (
    _top_level_configs,
    _property_files,
    _json_get,
    _compression_type,
    _register_fields,
    _retry_exception_types,
    _join,
    _tuning,
    _model_data_url,
)


def relaxed_schema(path: Path) -> tuple[dict[str, Any], list[str]]:
    """The published schema with exactly the relaxations above; and what each one was for."""
    schema = copy.deepcopy(json.loads(path.read_text()))
    return schema, [relax(schema) for relax in RELAXATIONS]


def validate_definition(definition: dict[str, Any], path: Path) -> list[str]:
    """Every way `definition` breaks the (relaxed) schema, as `location: message` lines; empty when valid."""
    import jsonschema

    schema, _ = relaxed_schema(path)
    validator = jsonschema.Draft7Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(definition), key=lambda e: list(e.absolute_path)):
        deepest = min(error.context, key=lambda e: -len(e.absolute_path)) if error.context else error
        where = "/".join(str(part) for part in deepest.absolute_path) or "(top)"
        problems.append(f"{where}: {deepest.message[:300]}")
    return problems
