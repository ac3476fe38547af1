"""The pages of the SageMaker account's view (console/account.py), under /sagemaker: read-only, so no form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from console import drawing
from console.account import AccountView


def account_router(account: AccountView, page: Callable[..., HTMLResponse]) -> APIRouter:
    router = APIRouter(prefix="/sagemaker")

    @router.get("", response_class=HTMLResponse)
    def executions_page(request: Request):
        return page(request, "account_runs.html", executions=account.executions(), account=_named(account))

    @router.get("/execution", response_class=HTMLResponse)
    def execution_page(request: Request, arn: str):
        execution = account.execution(arn)
        picture = drawing.graph(execution.steps, execution.edges, f"the step graph of {execution.arn}")
        return page(request, "account_run.html", execution=execution, graph=picture, account=_named(account))

    @router.get("/models", response_class=HTMLResponse)
    def models_page(request: Request, name: str = "", status: str = ""):
        versions = account.registry().list(name or None, status or None)
        chosen = {"name": name, "status": status}
        return page(request, "account_models.html", versions=versions, chosen=chosen, account=_named(account))

    @router.get("/endpoints", response_class=HTMLResponse)
    def endpoints_page(request: Request):
        return page(request, "account_endpoints.html", endpoints=account.endpoints(), account=_named(account))

    return router


def _named(account: AccountView) -> dict[str, Any]:
    return {"region": account.environment.region, "account": account.environment.account}
