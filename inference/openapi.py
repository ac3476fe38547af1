"""What the predict API's OpenAPI document shows beyond FastAPI's own: the request bodies, read by the routes
themselves (inference/inputs.py), as the served model reads them (its text, or its table row's columns and
types), and the callers' credentials, checked by the routes themselves."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
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
    "ApiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "a key from `pravah keys create NAME`",
    },
    "Bearer": {"type": "http", "scheme": "bearer", "description": "a JWT from the configured issuer"},
}
SECURED = {"security": [{"ApiKey": []}, {"Bearer": []}]}


def document(
    app: FastAPI, models: list[type[BaseModel]], columns: Callable[[], Columns], secured: tuple[str, ...] = ()
) -> None:
    """The OpenAPI document with what the routes read themselves: the request bodies' schemas (an input as
    the served model reads it: its text, or its table row's columns and types) and the security schemes;
    `secured` GET paths ask for a key in this app only (the routes are shared by every app)."""
    generate = app.openapi
    documents: dict[str, dict[str, Any]] = {}  # the document for the columns served now

    def openapi() -> dict[str, Any]:
        served = columns()
        key = json.dumps(served)
        if key not in documents:
            app.openapi_schema = None
            document = generate()
            components = document.setdefault("components", {})
            _, definitions = models_json_schema(
                [(m, "validation") for m in models], ref_template="#/components/schemas/{model}"
            )
            components.setdefault("schemas", {}).update(definitions["$defs"])
            components["securitySchemes"] = SECURITY_SCHEMES
            _show_input(components["schemas"], served)
            for path in secured:
                document["paths"][path]["get"].update(SECURED)
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
    schemas["Features"] = {
        "type": "object",
        "additionalProperties": False,
        "required": list(types),
        "description": "The row's values by column (null where a value is unknown)",
        "properties": {name: {"anyOf": kinds} for name, kinds in types.items()},
    }


ASSETS = Path(fastapi_offline.__file__).parent / "static"  # swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js


def serve_docs(app: FastAPI, readable: Callable) -> None:
    """/docs (Swagger UI) and /redoc (ReDoc) with their scripts served from /docs/assets rather than a CDN
    (FastAPI's own pages would load them from jsDelivr: blank without internet). `readable` registers GET and
    HEAD, as the API's other pages."""
    app.mount("/docs/assets", StaticFiles(directory=ASSETS), name="docs-assets")

    def prefix(request: Request) -> str:
        return request.scope.get("root_path", "")  # behind API Gateway's stage, for example

    @readable("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = prefix(request)
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
            swagger_js_url=f"{root}/docs/assets/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs/assets/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs/assets/favicon.png",
        )

    @readable("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @readable("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = prefix(request)
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}/docs/assets/redoc.standalone.js",
            redoc_favicon_url=f"{root}/docs/assets/favicon.png",
            with_google_fonts=False,
        )
