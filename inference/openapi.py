"""What the predict API's OpenAPI document shows beyond FastAPI's own: the request bodies, read by the routes
themselves (inference/inputs.py), as the served model reads them (its text, or its table row's columns and
types), and the callers' credentials, checked by the routes themselves."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from inference.inputs import Columns


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a route that reads its body itself (inference/inputs.py), so that the
    document shows the model (its schema is added by document)."""
    reference = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": reference}}}}


# The callers' credentials, as the OpenAPI document shows them (checked by `caller` in each route)
SECURITY_SCHEMES = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
               "description": "a key from `pravah keys create NAME`"},
    "Bearer": {"type": "http", "scheme": "bearer", "description": "a JWT from the configured issuer"},
}  # fmt: skip
SECURED = {"security": [{"ApiKey": []}, {"Bearer": []}]}


def document(app: FastAPI, models: list[type[BaseModel]], columns: Callable[[], Columns]) -> None:
    """The OpenAPI document with what the routes read themselves: the request bodies' schemas (an input as
    the served model reads it: its text, or its table row's columns and types) and the security schemes."""
    generate = app.openapi
    documents: dict[str, dict[str, Any]] = {}  # the document for the columns served now

    def openapi() -> dict[str, Any]:
        served = columns()
        key = json.dumps(served)
        if key not in documents:
            app.openapi_schema = None
            document = generate()
            components = document.setdefault("components", {})
            _, definitions = models_json_schema([(m, "validation") for m in models],
                                                ref_template="#/components/schemas/{model}")  # fmt: skip
            components.setdefault("schemas", {}).update(definitions["$defs"])
            components["securitySchemes"] = SECURITY_SCHEMES
            _show_input(components["schemas"], served)
            documents.clear()
            documents[key] = document
        return documents[key]

    app.openapi = openapi  # type: ignore[method-assign]


def _show_input(schemas: dict[str, Any], columns: Columns) -> None:
    """PredictInput as the served model reads it: `text`, or `features` with the model's columns."""
    shown = schemas["PredictInput"]
    if columns is None:
        shown["properties"].pop("features")
        shown["properties"]["text"] = {"type": "string", "description": "The text to classify"}
        shown["required"] = ["text"]
        return
    shown["properties"].pop("text")
    shown["properties"]["features"] = {"$ref": "#/components/schemas/Features"}
    shown["required"] = ["features"]
    types = {c["name"]: [{"type": c["type"]}, {"type": "null"}] if c["type"] != "any" else [{}] for c in columns}
    schemas["Features"] = {"type": "object", "additionalProperties": False, "required": list(types),
                           "description": "The row's values by column (null where a value is unknown)",
                           "properties": {name: {"anyOf": kinds} for name, kinds in types.items()}}  # fmt: skip
