"""The console's web app (FastAPI, Jinja2 templates): pages for runs, models and endpoints, the JSON the pages'
script polls to follow a run live, and the few actions, each a POST through the CLI's own code.

Safety: a POST needs the form's CSRF token to match its cookie (and a same-host Origin when the browser sends
one); bound beyond this machine, every request needs an API key of the project's (`pravah keys create`),
given once at /login; a path in a URL never reaches outside the project folder."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from console import drawing
from console.monitoring import MonitoringIndex
from console.runs import RunIndex, log_tail, seconds_between
from foundation.errors import PravahError
from foundation.home import Home

HERE = Path(__file__).resolve().parent
CSRF_COOKIE, KEY_COOKIE = "pravah_csrf", "pravah_key"
OPEN_PATHS = ("/login", "/static/")  # what a browser may load before it gave a key


def create_console(home: Home, require_key: bool = False, account: Any = None) -> FastAPI:
    """The console on the project folder; with `account` (console.account.AccountView), also the pages of that
    SageMaker account under /sagemaker."""
    app = FastAPI(title="Pravah console", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.account = account
    app.state.home, app.state.runs, app.state.require_key = home, RunIndex(home), require_key
    app.state.registry = None  # opened on first use: MLflow's import is seconds
    app.state.monitoring = MonitoringIndex(home)
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["seconds"] = lambda value: "-" if value is None else f"{value:,.1f} s"
    templates.env.filters["number"] = lambda value: f"{value:.4g}" if isinstance(value, int | float) else value
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def guard(request: Request, call_next):
        path = request.url.path
        if require_key and not path.startswith(OPEN_PATHS) and not _has_key(home, request):
            return RedirectResponse(f"/login?next={quote(path)}", status_code=303)
        if request.method == "POST" and not _same_origin(request):
            return plain_problem("a form from another site: refused", 403)
        request.state.csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        response = await call_next(request)
        if request.cookies.get(CSRF_COOKIE) != request.state.csrf:
            response.set_cookie(CSRF_COOKIE, request.state.csrf, httponly=True, samesite="strict")
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = "default-src 'self'; img-src 'self' data:; style-src 'self'"
        return response

    def page(request: Request, name: str, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {"csrf": request.state.csrf, **context})

    # -- runs -----------------------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def runs_page(request: Request, pipeline: str = "", status: str = "", q: str = ""):
        runs = app.state.runs.summaries(pipeline, status, q)
        pipelines = sorted({record.pipeline for record in app.state.runs.records()})
        chosen = {"pipeline": pipeline, "status": status, "q": q}
        return page(request, "runs.html", runs=runs[:200], total=len(runs), pipelines=pipelines, chosen=chosen)

    @app.get("/api/runs")
    def runs_json(pipeline: str = "", status: str = "", q: str = "", limit: int = 200):
        runs = app.state.runs.summaries(pipeline, status, q)
        return {"total": len(runs), "runs": [run.as_json() for run in runs[: max(1, min(limit, 1000))]]}

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, run_id: str):
        record = _run(app, run_id)
        others = [r for r in app.state.runs.summaries(record.pipeline) if r.id != record.id][:20]
        pictures = {"graph": drawing.step_graph(record), "timeline": drawing.timeline(record)}
        reports = _reports(home, record)
        searches, languages = _searches(record), _per_language(record)
        return page(
            request,
            "run.html",
            run=record,
            others=others,
            reports=reports,
            searches=searches,
            languages=languages,
            **pictures,
        )

    @app.get("/api/runs/{run_id}")
    def run_json(run_id: str):
        record = _run(app, run_id)
        steps = {
            name: {
                "status": step.status,
                "kind": step.kind,
                "duration_s": step.duration_s or seconds_between(step.started_at, step.ended_at),
                "reason": step.reason,
                "cache_hit": step.cache_hit,
                "error": step.error,
                "metrics": step.metrics,
            }
            for name, step in record.steps.items()
        }
        return {
            "id": record.id,
            "status": record.status,
            "duration_s": record.duration_s,
            "error": record.error,
            "steps": steps,
            "timeline": drawing.timeline(record),
            "reports": [{"output": output, "file": file, "url": url} for output, file, url in _reports(home, record)],
        }

    @app.get("/api/runs/{run_id}/log/{step}")
    def run_log(run_id: str, step: str, offset: int = 0):
        record = _run(app, run_id)
        if step not in record.steps:
            raise PravahError(f"run {run_id} has no step '{step}'")
        text, next_offset = log_tail(home, record, step, max(offset, 0))
        return {"text": text, "offset": next_offset}

    @app.get("/compare", response_class=HTMLResponse)
    def compare_page(request: Request, a: str, b: str):
        left, right = _run(app, a), _run(app, b)
        return page(request, "compare.html", left=left, right=right, rows=_comparison(left, right))

    # -- models ---------------------------------------------------------------------------------------------
    @app.get("/models", response_class=HTMLResponse)
    def models_page(request: Request, name: str = "", status: str = ""):
        versions = registry_of(app).list(name or None, status or None)
        return page(request, "models.html", versions=versions, chosen={"name": name, "status": status})

    @app.get("/models/{name}/{version}", response_class=HTMLResponse)
    def model_page(request: Request, name: str, version: int, said: str = ""):
        from inference.endpoints import EndpointStore
        from registry.model_card import card_folder

        found = registry_of(app).get(name, version)
        card = card_folder(home, name, version) / "card.html"
        card_url = f"/files/{card.relative_to(home.root)}" if card.is_file() else None
        store = EndpointStore(home)
        shown = [store.read(endpoint) for endpoint in store.names()]
        serving = [e for e in shown if any(v.model == name and v.version == version for v in e.variants)]
        run_id = found.lineage.get("run_id") or ""
        run = (f"run {run_id}", f"/runs/{run_id}") if app.state.runs.get(run_id) else (f"run {run_id or '?'}", None)
        graph = drawing.lineage(
            [
                [(f"data {(found.lineage.get('data_sha256') or '?')[:12]}", None)],
                [run],
                [(f"{name} version {version}", None)],
                [(f"endpoint {e.name}", "/endpoints") for e in serving] or [("no endpoint serves it", None)],
            ]
        )
        return page(request, "model.html", v=found, card_url=card_url, lineage=graph, said=said)

    @app.post("/models/{name}/{version}/status")
    async def change_model_status(request: Request, name: str, version: int):
        from registry.versions import change_status

        form = await _form(request, "status", "reason")
        changed = change_status(registry_of(app), name, version, form["status"], form["reason"] or "from the console")
        said = f"version {changed.version} is now {changed.status}"
        return RedirectResponse(f"/models/{quote(name)}/{version}?said={quote(said)}", status_code=303)

    @app.post("/models/{name}/{version}/deploy")
    async def deploy_version(request: Request, name: str, version: int):
        """Deploy the version to an endpoint by a strategy, with configs/serving.yaml's steps and alarms: the same
        request `pravah deploy` makes (the endpoint's server takes its steps)."""
        from cloud.targets import LocalEndpoints, Release, RolloutChoices
        from inference.config import load_serving_config

        form = await _form(request, "endpoint", "strategy")
        choices = RolloutChoices(strategy=form["strategy"] or None)
        release = Release.from_settings(form["endpoint"], name, version, load_serving_config(None), choices, False)
        said: list[str] = []
        LocalEndpoints(home).deploy(release, said.append)
        return RedirectResponse(f"/endpoints?said={quote(said[0] if said else 'requested')}", status_code=303)

    # -- endpoints ------------------------------------------------------------------------------------------
    @app.get("/endpoints", response_class=HTMLResponse)
    def endpoints_page(request: Request, said: str = ""):
        from inference.endpoints import EndpointStore

        store = EndpointStore(home)
        shown = [store.read(name) for name in store.names()]
        charts = {e.name: _traffic_charts(home, e.name) for e in shown}
        shadows = {e.name: store.shadow_report(e.name) for e in shown}
        return page(request, "endpoints.html", endpoints=shown, charts=charts, shadows=shadows, said=said)

    @app.post("/endpoints/{endpoint}/rollback")
    async def rollback(request: Request, endpoint: str):
        from inference.endpoints import EndpointStore, request_rollback

        form = await _form(request, "reason")
        said = request_rollback(EndpointStore(home), endpoint, form["reason"] or "rolled back from the console")
        return RedirectResponse(f"/endpoints?said={quote(said)}", status_code=303)

    # -- monitoring -----------------------------------------------------------------------------------------
    @app.get("/monitoring", response_class=HTMLResponse)
    def monitoring_page(request: Request, endpoint: str = "", before: int = 0):
        from console import monitoring

        index = app.state.monitoring
        endpoints = index.endpoints()
        chosen = endpoint or (endpoints[0] if endpoints else "")
        if chosen and chosen not in endpoints:
            raise PravahError(f"no monitoring of an endpoint '{chosen}' (monitored: {', '.join(endpoints) or 'none'})")
        shown, total = index.windows(chosen, before) if chosen else ([], 0)
        before = max(before, 0)
        return page(
            request,
            "monitoring.html",
            endpoints=endpoints,
            chosen=chosen,
            heatmap=monitoring.heatmap(shown),
            accuracy=monitoring.accuracy_chart(shown),
            mix=monitoring.language_mix(shown),
            rows=list(reversed(monitoring.accuracy_rows(shown))),
            alerts=index.alerts(chosen)[:20] if chosen else [],
            older=before + monitoring.SHOWN if total - before > monitoring.SHOWN else None,
            newer=max(before - monitoring.SHOWN, 0) if before > 0 else None,
            total=total,
        )

    # -- events, schedules, backups -------------------------------------------------------------------------
    @app.get("/events", response_class=HTMLResponse)
    def events_page(request: Request):
        from console.events import feed

        found = feed(home, app.state.runs, registry_of(app), app.state.monitoring)
        return page(request, "events.html", events=found)

    @app.get("/schedules", response_class=HTMLResponse)
    def schedules_page(request: Request):
        from foundation.backup import backups_folder, list_backups
        from monitoring.schedules import ScheduleStore

        schedules = ScheduleStore(home).all()
        folder = backups_folder(home)
        backups = list_backups(folder) if folder.is_dir() else []
        return page(request, "schedules.html", schedules=schedules, backups=backups, folder=folder)

    # -- files, login, errors -------------------------------------------------------------------------------
    @app.get("/favicon.ico", include_in_schema=False)
    def icon():  # what a browser asks for on the project's own pages (reports) that name no icon
        return FileResponse(HERE / "static" / "icon.svg", media_type="image/svg+xml")

    @app.get("/files/{relative:path}")
    def project_file(relative: str):
        path = (home.root / relative).resolve()
        if not path.is_relative_to(home.root.resolve()) or not path.is_file():
            return plain_problem(f"no file {relative!r} in the project folder", 404)
        return FileResponse(path)

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/"):
        return page(request, "login.html", next=next if next.startswith("/") else "/")

    @app.post("/login")
    async def login(request: Request):
        from inference.keys import KeyStore

        form = await _form(request, "key", "next")
        key, next = form["key"], form["next"]
        if KeyStore(home).check(key) is None:
            return plain_problem("that key is not one of this project's (pravah keys list)", 403)
        response = RedirectResponse(next if next.startswith("/") and not next.startswith("//") else "/", 303)
        response.set_cookie(KEY_COOKIE, key, httponly=True, samesite="strict")
        return response

    @app.exception_handler(PravahError)
    async def refused(request: Request, exc: PravahError):
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": str(exc)}, status_code=400 if exc.exit_code != 404 else 404)
        return templates.TemplateResponse(
            request, "problem.html", {"csrf": request.state.csrf, "problem": str(exc)}, status_code=400
        )

    if account is not None:
        from console.account_pages import account_router

        app.include_router(account_router(account, page))
    return app


MAX_FORM_BYTES = 16_384


async def _form(request: Request, *fields: str) -> dict[str, str]:
    """A posted form's fields (URL-encoded, small, UTF-8), after its CSRF token is found to be the one its page
    set in the cookie: a form posted from elsewhere has none. Missing fields are empty."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise PravahError("a form is posted as application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise PravahError(f"a form of more than {MAX_FORM_BYTES:,} bytes: refused")
    try:
        given = {key: values[0] for key, values in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
    except UnicodeDecodeError:
        raise PravahError("the form is not UTF-8") from None
    expected = request.cookies.get(CSRF_COOKIE)
    if not expected or not secrets.compare_digest(expected.encode(), given.get("csrf", "").encode()):
        raise PravahError("this form has expired or came from elsewhere: reload the page and try again")
    return {name: given.get(name, "").strip() for name in fields}


def plain_problem(text: str, status: int) -> Response:
    return Response(text + "\n", status_code=status, media_type="text/plain; charset=utf-8")


def _has_key(home: Home, request: Request) -> bool:
    from inference.keys import KeyStore

    given = request.cookies.get(KEY_COOKIE) or request.headers.get("authorization", "").removeprefix("Bearer ")
    return bool(given) and KeyStore(home).check(given) is not None


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host")


def _run(app: FastAPI, run_id: str):
    record = app.state.runs.get(run_id)
    if record is None:
        raise PravahError(f"no run {run_id!r} in this project (pravah runs list)")
    return record


def registry_of(app: FastAPI):
    from registry import open_registry

    if app.state.registry is None:
        app.state.registry = open_registry(home=app.state.home)
    return app.state.registry


CHARTS = {  # a measure's chart: its label and unit
    "requests_per_s": ("requests", "req/s"),
    "p50_ms": ("p50 latency", "ms"),
    "p99_ms": ("p99 latency", "ms"),
    "error_rate": ("error rate", ""),
}


def _traffic_charts(home: Home, endpoint: str) -> dict[str, str]:
    from console.traffic import traffic

    measures = traffic(home, endpoint)
    return {CHARTS[m][0]: drawing.line_chart(lines, *CHARTS[m]) for m, lines in measures.items()}


def _searches(record) -> list[dict[str, Any]]:
    """Each hyperparameter search of the run: its trials best first, and a scatter per hyperparameter."""
    from pipelines.sweep import ranked

    found = []
    for name, step in record.steps.items():
        search = step.details.get("search")
        if not search:
            continue
        trials = ranked(search["trials"], search["goal"])
        parameters = sorted({key for trial in trials for key in trial.get("params", {})})
        plots = {key: drawing.scatter(trials, key, search["objective"]) for key in parameters}
        found.append({"step": name, **search, "trials": trials, "parameters": parameters, "plots": plots})
    return found


def _per_language(record) -> dict[str, dict[str, Any]]:
    """An evaluation's scores per language (its evaluation.json's `per_language`), by step."""
    import json

    found = {}
    for name, step in record.steps.items():
        for written in step.outputs.values():
            report = Path(written.path) / "evaluation.json"
            if "evaluation.json" in written.files and report.is_file():
                try:
                    languages = json.loads(report.read_text(encoding="utf-8")).get("per_language") or {}
                except (OSError, ValueError):
                    continue
                if languages:
                    found[name] = languages
    return found


REPORT_FILES = (".html", ".png", ".svg", ".json")  # what a browser shows in place


def _reports(home: Home, record) -> list[tuple[str, str, str]]:
    """(step.output, file, URL) of every report a step wrote into the project folder."""
    found = []
    for name, step in record.steps.items():
        for output, written in step.outputs.items():
            folder = Path(written.path)
            if not folder.is_relative_to(home.root):
                continue
            for file in sorted(written.files):
                if file.endswith(REPORT_FILES):
                    url = f"/files/{quote(str(folder.relative_to(home.root) / file))}"
                    found.append((f"{name}.{output}", file, url))
    return found


def _comparison(left, right) -> list[tuple[str, Any, Any]]:
    """What differs and what is the same between two runs, row by row: the spec, parameters, each step's
    inputs' data, code and metrics."""
    rows: list[tuple[str, Any, Any]] = [
        ("pipeline", left.pipeline, right.pipeline),
        ("spec", left.spec_hash[:12], right.spec_hash[:12]),
        ("status", left.status, right.status),
        ("duration", left.duration_s, right.duration_s),
    ]
    for name in sorted(set(left.parameters) | set(right.parameters)):
        rows.append((f"parameter {name}", left.parameters.get(name), right.parameters.get(name)))
    for step in [*left.steps, *(s for s in right.steps if s not in left.steps)]:
        a, b = left.steps.get(step), right.steps.get(step)
        rows.append((f"{step}: status", a and a.status, b and b.status))
        rows.append((f"{step}: cache key", a and (a.cache_key or "")[:12], b and (b.cache_key or "")[:12]))
        for metric in sorted(set(a.metrics if a else {}) | set(b.metrics if b else {})):
            rows.append((f"{step}: {metric}", a and a.metrics.get(metric), b and b.metrics.get(metric)))
    return rows
