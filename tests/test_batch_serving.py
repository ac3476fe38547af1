"""Batches on a live server: online requests do not wait behind a batch, which is scored in a process of its
own only while online scoring is quiet; a killed server's unfinished batch is finished by the next; finished
batches are deleted after their days; a held status request is answered when the server stops."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from foundation.home import Home
from inference.app import create_app
from inference.config import ServingConfig
from inference.endpoints import Alarms, EndpointStore, registered_variant, request_deployment
from inference.keys import KeyStore
from inference.server import build_server
from tests.support import deploy_small_model, make_artifact, markers_folder, running, wait_for

pytestmark = pytest.mark.slow
API = "/api/v1/ml"


def test_online_requests_do_not_wait_behind_a_batch_and_a_killed_server_finishes_it(tmp_path, monkeypatch):
    """A batch is scored in a process of its own: an online request asked while a batch is being scored is
    answered before that batch's scoring ends. A server killed while it scores a batch scores it again when it
    is started again (the body is kept with the batch)."""
    from tests.support import register_copy, serve

    home = tmp_path / "home"
    markers = markers_folder(tmp_path, monkeypatch, "BATCH_MARKERS")  # the batch is scored until released
    artifact = make_artifact(tmp_path / "artifact", "batches")
    version = register_copy(home, artifact, tmp_path / "v", "batches", family="tests.batch_marking_family")
    request_deployment(
        EndpointStore(Home(home)),
        "mixed",
        registered_variant(Home(home), "text-classifier", version),
        "all-at-once",
        [100.0],
        0,
        Alarms(0.05, 1000, 20),
    )
    key = KeyStore(Home(home)).create("app")
    server = serve(home, "mixed", key)
    try:
        with server.client() as client:
            inputs = [{"text": f"goal match team {i}"} for i in range(500)]
            accepted = client.post(f"{API}/batch-predict", json={"inputs": inputs})
            assert accepted.status_code == 202, accepted.text
            wait_for(lambda: (markers / "batch-started").exists(), "the batch to be scored")
            online = client.post(f"{API}/predict", json={"input": {"text": "goal match team"}})
            assert online.status_code == 200, online.text
            assert not (markers / "batch-ended").exists(), "answered while the batch was still being scored"
        server.process.kill()
        server.process.wait()
        status = home / "batch" / accepted.json()["batchId"] / "status.json"
        assert json.loads(status.read_text())["status"] == "processing"
        (markers / "release").touch()
        server = serve(home, "mixed", key)
        with server.client() as client:
            found = wait_for(lambda: json.loads(status.read_text())["status"] != "processing", "the batch again", 180)
            assert found and json.loads(status.read_text())["status"] == "completed", status.read_text()
            results = client.get(f"{API}/batch/{accepted.json()['batchId']}/results").json()["results"]
            assert [r["index"] for r in results] == list(range(500)) and all("prediction" in r for r in results)
    finally:
        server.stop()


def test_the_server_deletes_finished_batches_after_their_days_and_keeps_unfinished_ones(tmp_path):
    import os

    from inference.batch import BatchJob, BatchJobs

    home, key = deploy_small_model(tmp_path, "sweep")
    kept = BatchJobs(home, allow_loopback_callbacks=False, keep_days=1)  # batches as an earlier server left them
    for batch_id, status, age_days in [
        ("a0000000-0000-0000-0000-000000000001", "completed", 2),
        ("a0000000-0000-0000-0000-000000000002", "failed", 2),
        ("a0000000-0000-0000-0000-000000000003", "processing", 2),
        ("a0000000-0000-0000-0000-000000000004", "completed", 0),
    ]:
        kept._save(BatchJob(batch_id, "key:a", 1, status, "2026-12-01T00:00:00Z", "2026-12-01T00:00:01Z"))
        (kept.folder / batch_id / "request.json").write_text('{"inputs": [{"text": "goal"}]}')
        for path in (kept.folder / batch_id).iterdir():
            os.utime(path, (time.time() - age_days * 86_400,) * 2)
    (kept.folder / "a0000000-0000-0000-0000-000000000005").mkdir()  # being checked: its body not written yet
    with running(home, "sweep", ServingConfig(batch={"keep_days": 1})) as (_, url, _):
        accepted = httpx.post(
            f"{url}{API}/batch-predict", json={"inputs": [{"text": "goal"}]}, headers={"X-API-Key": key}
        )
        assert accepted.status_code == 202, accepted.text
        # the unfinished one is kept (and scored again at start), and so is the one being checked
        left = {f"a0000000-0000-0000-0000-00000000000{n}" for n in (3, 4, 5)} | {accepted.json()["batchId"]}
        wait_for(lambda: {path.name for path in kept.folder.iterdir()} == left, "the server's sweep")


def test_a_batch_process_scores_only_while_online_scoring_is_quiet(tmp_path):
    """A batch process starts each chunk only when no online call is in flight (told through the server's
    OnlineActivity, across processes); long texts make short chunks, so an online request never waits long."""
    import asyncio

    from inference.batch import BatchScorer
    from inference.inputs import Limits
    from inference.scoring import OnlineActivity, ScoringProcess

    LIMITS = Limits(max_text_chars=5_000, max_batch_items=1_000)

    artifact = make_artifact(tmp_path / "artifact", "quiet")
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "request.json").write_text(json.dumps({"inputs": [{"text": "goal " * 800} for _ in range(10)]}))

    async def scenario() -> None:
        activity = OnlineActivity()
        activity.change(+1)  # an online call in flight, as the server's online scorer reports it
        in_flight_since = time.monotonic()
        batches = await ScoringProcess(artifact, 3, background=True, activity=activity).start()
        try:
            scoring = asyncio.ensure_future(batches.batch(folder, LIMITS, "score"))
            while activity.last_held() < in_flight_since:  # the batch process holds its first chunk back
                assert not scoring.done(), f"scored without waiting for the online call: {scoring.result()}"
                await asyncio.sleep(0.01)
            assert not scoring.done() and not (folder / "results.json").exists(), "scored beside an online call"
            activity.change(-1)
            assert (await asyncio.wait_for(scoring, 120))["total"] == 10
        finally:
            await batches.close()

    asyncio.run(scenario())
    chunks: list[int] = []
    from artifact.predictor import Predictor

    scorer = BatchScorer(Predictor(artifact), 3, before_chunk=lambda: chunks.append(len(chunks)))
    scorer.score(folder, LIMITS)
    assert len(chunks) == 3, "4,000-character texts go four to a chunk of at most 16,000 characters"


def test_a_held_status_request_is_answered_when_the_server_stops(tmp_path, monkeypatch):
    """Long polling holds a status request until its batch ends; a server told to stop (uvicorn's should_exit,
    which the app sees through build_server, as Ctrl-C on `pravah serve` sets it) answers what it holds instead
    of waiting out the 30 s, so that clients do not hold up a shutdown."""
    from tests.support import register_copy

    markers = markers_folder(tmp_path, monkeypatch, "BATCH_MARKERS")  # the batch is scored until released
    artifact = make_artifact(tmp_path / "artifact", "held")
    version = register_copy(tmp_path / "home", artifact, tmp_path / "v", "held", family="tests.batch_marking_family")
    home = Home(tmp_path / "home")
    request_deployment(
        EndpointStore(home),
        "held",
        registered_variant(home, "text-classifier", version),
        "all-at-once",
        [100.0],
        0,
        Alarms(0.05, 1000, 20),
    )
    headers = {"X-API-Key": KeyStore(home).create("app")}
    try:
        with running(home, "held", ServingConfig()) as (server, url, _):
            inputs = [{"text": f"goal match team {i}"} for i in range(200)]
            accepted = httpx.post(f"{url}{API}/batch-predict", json={"inputs": inputs}, headers=headers)
            wait_for(lambda: (markers / "batch-started").exists(), "the batch to be scored")
            answers: list[httpx.Response] = []
            held = threading.Thread(
                target=lambda: answers.append(
                    httpx.get(f"{url}{accepted.json()['statusUrl']}?wait=30", headers=headers, timeout=25)
                )
            )
            held.start()
            wait_for(lambda: server.server_state.tasks, "the status request to be in the app")  # nothing else is
            server.should_exit = True
            held.join()  # a server that waited out the 30 s fails the client's 25 s timeout here
            assert answers and answers[0].json()["status"] == "processing", "answered while the batch still runs"
            (markers / "release").touch()
    finally:
        (markers / "release").touch()
    config = ServingConfig()
    built = build_server(create_app(home, "api", config), config)
    assert built.config.app.state.server is built, "what the status route looks at"
