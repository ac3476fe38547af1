"""One feed of what happened in the project, newest first, read from what each part already records: runs
that failed or whose quality gate rejected the model (run records), versions awaiting approval (the registry),
deployments that ended, completed or rolled back (endpoint states), drift alerts (monitoring), and what each
schedule did last (the schedule store)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from foundation.home import Home

SEVERITY = ("bad", "warn", "ok")


@dataclass
class Event:
    at: str  # ISO 8601, UTC
    kind: str  # run failed, gate rejected, awaits approval, deployment completed / rolled back, drift alert, schedule
    title: str
    link: str
    severity: str = "ok"  # one of SEVERITY, for its colour


def feed(home: Home, runs, registry, monitoring, limit: int = 200) -> list[Event]:
    from inference.endpoints import EndpointStore
    from monitoring.schedules import ScheduleStore

    found: list[Event] = []
    for record in runs.records():
        if record.status in {"failed", "interrupted"}:
            gate = [s for s in record.steps.values() if s.kind == "fail" and s.status == "failed"]
            kind, severity = ("gate rejected", "warn") if gate else (f"run {record.status}", "bad")
            said = ((gate[0].error if gate else record.error) or record.status).splitlines()[0]
            title = f"{record.pipeline}: {said[:200]}"
            found.append(Event(record.ended_at or record.started_at, kind, title, f"/runs/{record.id}", severity))
    for version in registry.list(None, "PendingManualApproval") if registry is not None else []:
        link = f"/models/{version.name}/{version.version}"
        title = f"{version.name} version {version.version} awaits approval"
        found.append(Event(version.created_at or "", "awaits approval", title, link, "warn"))
    store = EndpointStore(home)
    for name in store.names():
        for finished in store.read(name).history:
            at = datetime.fromtimestamp(finished["finished_at"], UTC).isoformat(timespec="seconds")
            severity = "ok" if finished["status"] == "completed" else "bad"
            title = f"{name}: {finished['target']} {finished['status'].replace('_', ' ')} ({finished['reason']})"
            found.append(Event(at, f"deployment {finished['status'].replace('_', ' ')}", title, "/endpoints", severity))
    for endpoint in monitoring.endpoints():
        for alert in monitoring.alerts(endpoint):
            features = ", ".join(v.get("feature_name", "?") for v in alert.get("violations", []))
            shadow = " (shadow)" if alert.get("shadow") else ""
            link = f"/monitoring?endpoint={endpoint}"
            found.append(Event(alert.get("at", ""), "drift alert", f"{endpoint}{shadow}: {features}", link, "bad"))
    for schedule in ScheduleStore(home).all():
        if schedule.last_run:
            severity = "ok" if (schedule.last_outcome or "").startswith(("ok", "succeeded", "exit 0")) else "warn"
            title = f"{schedule.name} ({schedule.kind} {schedule.target}): {schedule.last_outcome or 'ran'}"
            found.append(Event(schedule.last_run, "schedule ran", title, "/schedules", severity))
    return sorted(found, key=lambda event: _moment(event.at), reverse=True)[:limit]


def _moment(at: str) -> datetime:
    try:
        moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
