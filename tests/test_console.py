"""The console's pages and guards, in process (tests/test_console_browser.py clicks through them in Chromium):
runs listed and drawn from their records, reports served from the project folder and nothing outside it,
state-changing forms that need their page's CSRF token, and an API key when the console is open beyond this
machine."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from console.app import CSRF_COOKIE, create_console
from console.server import serve_console
from foundation.errors import PravahError
from foundation.home import Home
from inference.metrics import SERIES_SECONDS, SeriesWriter
from pipelines.records import OutputRecord, RunRecord, StepRecord
from tests.support import deploy_small_model


def write_run(home: Home, run_id: str, status: str = "succeeded", **changes) -> RunRecord:
    """A run record as the runner writes one: make -> train, with a report in make's output."""
    output = home.root / "processed" / "data" / run_id
    output.mkdir(parents=True, exist_ok=True)
    (output / "report.html").write_text("<p>a report</p>")
    record = RunRecord(
        id=run_id,
        pipeline="tiny",
        spec_path="/nowhere/tiny.yaml",
        spec_hash="s" * 64,
        parameters={"factor": 2.0},
        status=status,
        started_at="2026-12-07T10:00:00.000+00:00",
        ended_at="2026-12-07T10:00:04.000+00:00",
        duration_s=4.0,
        steps={
            "make": StepRecord(
                name="make",
                kind="processing",
                status="succeeded",
                started_at="2026-12-07T10:00:00.100+00:00",
                ended_at="2026-12-07T10:00:01.000+00:00",
                outputs={"data": OutputRecord(path=str(output), digest="d", files={"report.html": "x"})},
            ),
            "train": StepRecord(
                name="train",
                kind="training",
                status="cached" if status == "succeeded" else "failed",
                cache_hit=status == "succeeded",
                metrics={"validation.macro_f1": 0.81},
                started_at="2026-12-07T10:00:01.000+00:00",
                ended_at="2026-12-07T10:00:04.000+00:00",
            ),
        },
        edges=[["make", "train", "data → train"]],
        **changes,
    )
    home.runs.mkdir(parents=True, exist_ok=True)
    (home.runs / f"{run_id}.json").write_text(json.dumps(record, default=lambda o: o.__dict__))
    return record


def write_windows(home: Home, endpoint: str, count: int) -> None:
    """Monitoring windows as the monitoring job leaves them: the last one's script drifted, with its alert."""
    for number in range(count):
        day, hour = divmod(number, 24)
        name = f"{2026 + day // 336}{1 + day // 28 % 12:02d}{1 + day % 28:02d}T{hour:02d}0000Z"
        folder = home.root / "monitoring" / endpoint / "runs" / name / "prod"
        folder.mkdir(parents=True)
        drifted = number == count - 1
        script = {"method": "jensenshannon", "score": 0.4 if drifted else 0.02, "threshold": 0.1, "drift": drifted}
        length = {"method": "wasserstein", "score": 0.05, "threshold": 0.1, "drift": False}
        features = {"script": {"feature": "script", **script}, "text_length": {"feature": "text_length", **length}}
        metrics = {
            "records": 120,
            "features": features,
            "language_mix": {"hin_Deva": 0.5, "eng_Latn": 0.5},
            "estimated_performance": {"accuracy": {"value": 0.81}},
            "model_quality": {"accuracy": 0.79} if number == 0 else None,
            "violations": int(drifted),
        }
        (folder / "metrics.json").write_text(json.dumps(metrics))
        (folder / "drift_report.html").write_text("<p>evidently</p>")
    alerts = home.root / "monitoring" / "alerts"
    alerts.mkdir(parents=True, exist_ok=True)
    alert = {"endpoint": endpoint, "at": "2026-12-07T12:00:00+00:00", "violations": [{"feature_name": "script"}]}
    (alerts / f"20261207T120000-{endpoint}.json").write_text(json.dumps(alert))


@pytest.fixture
def console(tmp_path) -> tuple[TestClient, Home]:
    home = Home(tmp_path / "home")
    write_run(home, "20261207-100000-aaaa")
    write_run(home, "20261207-110000-bbbb", status="failed", error="step 'train' failed: boom")
    return TestClient(create_console(home)), home


def test_runs_are_listed_filtered_and_drawn_from_their_records(console):
    client, _ = console
    page = client.get("/")
    assert page.status_code == 200 and page.text.count("<tr data-run=") == 2
    assert "validation.macro_f1 0.81" in page.text
    failed = client.get("/", params={"status": "failed"}).text
    assert "20261207-110000-bbbb" in failed and "20261207-100000-aaaa" not in failed
    assert client.get("/api/runs", params={"q": "aaaa"}).json()["total"] == 1
    run = client.get("/runs/20261207-100000-aaaa").text
    assert 'data-step="make"' in run and 'class="step state-cached"' in run and "marker-end" in run  # an edge
    assert 'href="/files/processed/data/20261207-100000-aaaa/report.html"' in run
    assert client.get("/files/processed/data/20261207-100000-aaaa/report.html").text == "<p>a report</p>"
    live = client.get("/api/runs/20261207-110000-bbbb").json()
    assert live["steps"]["train"]["status"] == "failed" and live["error"] == "step 'train' failed: boom"
    compared = client.get("/compare", params={"a": "20261207-100000-aaaa", "b": "20261207-110000-bbbb"}).text
    assert '<tr class="differs"><th>train: status</th><td>cached</td><td>failed</td>' in compared, compared


@pytest.mark.parametrize(
    "path",
    [
        "/files/..%2F..%2Fetc%2Fpasswd",
        "/files/%2Fetc%2Fpasswd",
        "/files/processed/../../outside.txt",
        "/files/link-out/secret.txt",
        "/files/processed",
    ],
)
def test_no_path_reaches_outside_the_project_folder(console, tmp_path, path):
    client, home = console
    (tmp_path / "outside.txt").write_text("TOPSECRET")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "secret.txt").write_text("TOPSECRET")
    if not (home.root / "link-out").exists():
        os.symlink(tmp_path / "elsewhere", home.root / "link-out")
    answer = client.get(path)
    assert answer.status_code == 404 and "TOPSECRET" not in answer.text


@pytest.mark.parametrize("run_id", ["../../etc", "20261207-100000-zzzz", "x" * 5000, "%00"])
def test_an_unknown_or_hostile_run_id_is_a_clear_refusal(console, run_id):
    client, _ = console
    page = client.get(f"/runs/{run_id}")
    assert page.status_code in {400, 404} and "Traceback" not in page.text
    assert client.get(f"/api/runs/{run_id}").status_code in {400, 404}


def test_a_change_needs_the_forms_token_and_a_same_site_origin(tmp_path):
    home, _ = deploy_small_model(tmp_path, "web")
    client = TestClient(create_console(home))
    token = client.get("/endpoints").cookies.get(CSRF_COOKIE) or client.cookies.get(CSRF_COOKIE)
    assert token
    forged = client.post("/endpoints/web/rollback", data={"reason": "x", "csrf": "guessed"})
    assert forged.status_code == 400 and "came from elsewhere" in forged.text
    foreign = client.post(
        "/endpoints/web/rollback", data={"reason": "x", "csrf": token}, headers={"Origin": "http://evil.example"}
    )
    assert foreign.status_code == 403
    huge = client.post("/endpoints/web/rollback", data={"reason": "x" * 20_000, "csrf": token})
    assert huge.status_code == 400 and "bytes" in huge.text
    done = client.post("/endpoints/web/rollback", data={"reason": "a test", "csrf": token}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].startswith("/endpoints?said=")
    hostile = client.post("/models/topics/1/deploy", data={"endpoint": "../../x", "strategy": "canary", "csrf": token})
    assert hostile.status_code == 400 and "letters, digits and" in hostile.text
    assert not (home.root.parent / "x.json").exists()
    wrong = client.post("/models/topics/1/status", data={"status": "Approved", "reason": "", "csrf": token})
    assert wrong.status_code == 400 and "Traceback" not in wrong.text  # already approved: the registry's rule


def test_beyond_this_machine_every_page_needs_a_project_key(tmp_path):
    home, key = deploy_small_model(tmp_path, "web")
    client = TestClient(create_console(home, require_key=True))
    assert client.get("/", follow_redirects=False).headers["location"] == "/login?next=/"
    assert client.get("/api/runs", follow_redirects=False).status_code == 303
    token = client.get("/login").cookies.get(CSRF_COOKIE) or client.cookies.get(CSRF_COOKIE)
    assert client.post("/login", data={"key": "wrong", "next": "/", "csrf": token}).status_code == 403
    signed = client.post("/login", data={"key": key, "next": "//evil.example", "csrf": token}, follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"] == "/"
    assert client.get("/endpoints").status_code == 200
    bearer = TestClient(create_console(home, require_key=True))
    assert bearer.get("/api/runs", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_the_console_will_not_open_beyond_this_machine_without_a_key(tmp_path):
    with pytest.raises(PravahError, match="needs an API key to sign in with: create one first"):
        serve_console(Home(tmp_path / "home"), "0.0.0.0", 0)


def test_the_console_ships_its_own_script_and_style_and_loads_nothing_from_elsewhere():
    folder = Path(__file__).resolve().parents[1] / "console"
    for path in [*folder.glob("templates/*.html"), *folder.glob("static/*")]:
        text = path.read_text()
        assert "http://" not in text.replace("http://www.w3.org", "") and "https://" not in text, path


def test_monitoring_windows_are_drawn_as_a_heatmap_with_the_language_mix_and_alerts(console):
    client, home = console
    assert "no endpoint has been monitored yet" in client.get("/monitoring").text
    write_windows(home, "prod", 3)
    page = client.get("/monitoring").text
    assert page.count('class="cell level-') == 6  # 2 features x 3 windows
    assert 'class="cell level-10 drifted" data-feature="script" data-window="20260101T020000Z"' in page, page
    assert 'href="/files/monitoring/prod/runs/20260101T020000Z/prod/drift_report.html"' in page
    assert "hin_Deva" in page and "0.81" in page and "0.79" in page and "script" in page.split('id="alerts"')[1]
    accuracy = page.split('id="accuracy"')[1].split("</svg>")[0]
    assert 'data-variant="estimated (prod)"' in accuracy and 'data-variant="measured (prod)"' in accuracy
    assert client.get("/monitoring", params={"endpoint": "nope"}).status_code == 400
    write_windows(home, "busy", 60)  # more than a page: the newest 48, then the 12 before them
    newest = client.get("/monitoring", params={"endpoint": "busy"}).text
    assert newest.count('class="cell level-') == 96 and "60 judged windows" in newest and "before=48" in newest
    older = client.get("/monitoring", params={"endpoint": "busy", "before": 48}).text
    assert older.count('class="cell level-') == 24 and "before=0" in older


def write_traffic(home: Home, endpoint: str, points: int) -> None:
    """An endpoint's series as its server writes them, a point every 10 s: two variants, the second slower."""
    import time

    from inference.metrics import VariantStats

    writer = SeriesWriter(home.root / "endpoints", endpoint)
    start = writer.last = time.time() - points * SERIES_SECONDS
    for number in range(1, points + 1):
        stats = {"topics-v1": VariantStats(), "topics-v2": VariantStats()}
        for variant, milliseconds in (("topics-v1", 4.0), ("topics-v2", 9.0)):
            for request in range(20 + number):
                stats[variant].recent.append((writer.last + 1, milliseconds + request % 3, request % 10 != 0))
        assert writer.maybe_write(stats, now=start + number * SERIES_SECONDS)


def test_an_endpoints_traffic_over_time_is_kept_by_its_server_and_charted(tmp_path):
    home, _ = deploy_small_model(tmp_path, "web")
    writer = SeriesWriter(home.root / "endpoints", "web")
    assert not writer.maybe_write({}, now=writer.last + 1)  # not yet an interval
    write_traffic(home, "web", 30)
    [day] = (home.root / "endpoints" / "series" / "web").glob("*.jsonl")
    first = json.loads(day.read_text().splitlines()[0])
    assert first["variant"] == "topics-v1" and first["requests"] == 21 and first["errors"] == 3
    figures = {"requests": 40, "agreement": 0.925, "error_rate": 0.0, "p50_ms": 3.2, "p99_ms": 9.1}
    segments = {"all": figures, "language:hin_Deva": figures}
    shadow = {"variant": "topics-v2", "running": True, "skipped": 0, "segments": segments}
    (home.root / "endpoints" / "shadow").mkdir(parents=True)
    (home.root / "endpoints" / "shadow" / "web.json").write_text(json.dumps(shadow))
    client = TestClient(create_console(home))
    page = client.get("/endpoints").text
    assert page.count('<svg class="chart"') == 4 and 'data-variant="topics-v2"' in page
    assert "req/s" in page and "p99 latency, last 24 hours" in page
    assert "<td>language:hin_Deva</td><td>40</td>" in page and "92.5%" in page  # the shadow's agreement
    version = client.get("/models/topics/1").text
    assert 'class="graph lineage"' in version and "endpoint web" not in version  # requested, not yet serving


def test_a_searchs_trials_are_ranked_and_plotted_and_an_evaluation_shown_per_language(console):
    client, home = console
    trials = [
        {"trial": 0, "params": {"C": 1.0, "family": "sklearn-text"}, "value": 0.61, "status": "succeeded"},
        {"trial": 1, "params": {"C": 10.0, "family": "torch-text"}, "value": 0.66, "status": "succeeded"},
        {"trial": 2, "params": {"C": 30.0, "family": "sklearn-text"}, "value": None, "status": "failed"},
    ]
    objective = {"objective": "training.validation.macro_f1", "goal": "maximize", "strategy": "bayesian"}
    search = {**objective, "stopped_early": False, "best_trial": 1, "trials": trials}
    record = write_run(home, "20261207-120000-cccc")
    record.steps["train"].details = {"search": search}
    evaluation = home.root / "results" / "evaluation"
    evaluation.mkdir(parents=True)
    scores = {
        "hin_Deva": {"accuracy": {"value": 0.7}, "macro_f1": {"value": 0.68}},
        "eng_Latn": {"accuracy": {"value": 0.8}, "macro_f1": {"value": 0.79}},
    }
    (evaluation / "evaluation.json").write_text(json.dumps({"per_language": scores}))
    files = {"evaluation.json": "x"}
    record.steps["make"].outputs["evaluation"] = OutputRecord(path=str(evaluation), digest="e", files=files)
    (home.runs / f"{record.id}.json").write_text(json.dumps(record, default=lambda o: o.__dict__))
    page = client.get(f"/runs/{record.id}").text
    table = page.split('id="trials-train"')[1].split("</table>")[0]
    assert table.index("<td>1</td><td>1</td><td>0.66</td>") < table.index("<td>2</td><td>0</td><td>0.61</td>")
    assert 'class="best"' in table and page.count('class="trial"') == 4  # 2 finished trials x 2 hyperparameters
    languages = page.split('id="languages-make"')[1].split("</table>")[0]
    assert "<th>hin_Deva</th><td>0.7</td><td>0.68</td>" in languages, languages


def test_one_feed_says_what_happened_and_the_schedules_page_what_runs_when(console):
    from monitoring.schedules import ScheduleStore

    client, home = console
    write_windows(home, "prod", 2)
    ScheduleStore(home).add("monitor", "prod", None, "1h", "hourly-prod")
    feed = client.get("/events").text
    rows = feed.split('id="events-table"')[1]
    assert rows.index("drift alert") < rows.index("run failed")  # newest first: the alert came after the run
    assert "tiny: step &#39;train&#39; failed: boom" in rows and 'href="/runs/20261207-110000-bbbb"' in rows
    schedules = client.get("/schedules").text
    assert "hourly-prod" in schedules and "monitor prod" in schedules and "every 3600 s" in schedules
    assert "none yet" in schedules  # no backup made


def test_new_events_are_sent_once_to_a_webhook_and_a_wrong_target_is_named(console, tmp_path):
    import http.server
    import threading

    from console.events import feed
    from console.monitoring import MonitoringIndex
    from console.notify import load_notification_settings, notify
    from console.runs import RunIndex

    _, home = console
    received: list[dict] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = tmp_path / "notifications.yaml"
    config.write_text(f"targets: [json://127.0.0.1:{server.server_address[1]}/hook]\n")
    settings = load_notification_settings(config)

    def events():
        return feed(home, RunIndex(home), None, MonitoringIndex(home))

    try:
        assert notify(home, settings, events(), print, everything=False) == 0  # the past is taken as known
        write_windows(home, "prod", 1)  # a drift alert, new
        assert notify(home, settings, events(), print, everything=False) == 1
        assert notify(home, settings, events(), print, everything=False) == 0  # sent once
        from monitoring.schedules import ScheduleStore

        added = ScheduleStore(home).add("notify", str(config), None, "1m", None)
        assert added.command(home)[-4:] == ["events", "notify", "--config", str(config)]  # what the scheduler runs
    finally:
        server.shutdown()
    [sent] = received
    assert sent["title"] == "pravah: drift alert" and "prod: script" in sent["message"]
    config.write_text("targets: [nothing-like-a-url]\nevents: [drift alarm]\n")
    with pytest.raises(PravahError, match=r"notifications.yaml:2 events: 'drift alarm' is not an event"):
        load_notification_settings(config)
    config.write_text("targets: [nothing-like-a-url]\n")
    with pytest.raises(PravahError, match=r"targets\[0\] is not a URL Apprise can send to"):
        notify(home, load_notification_settings(config), events(), print, everything=True)
