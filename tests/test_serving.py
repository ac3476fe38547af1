"""The predict API and blue/green endpoints, over real HTTP against `pravah serve`, on a model the default
pipeline trained on SIB-200."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import httpx
import pytest

from foundation.home import Home
from inference.endpoints import EndpointStore
from pipelines.records import RunStore
from tests.support import captured, deploy_default_model, register_copy, run_cli, serve, split_texts, wait_for

pytestmark = pytest.mark.slow
API = "/api/v1/ml"
HINDI = "भारत ने क्रिकेट मैच में ऑस्ट्रेलिया को हराया"
ENGLISH = "The parliament passed the new election law after a long debate"


@pytest.fixture(scope="module")
def served(tmp_path_factory, mirror):
    """The default pipeline's model, approved, deployed to endpoint `prod` and served."""
    home = tmp_path_factory.mktemp("serving") / "home"
    key, requested = deploy_default_model(home, mirror, "app")
    assert "starts when pravah serve prod runs" in requested.stdout, requested.stderr
    server = serve(home, "prod", key)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def production_on_version_1(served):
    """Each test finds the endpoint as the module's fixture made it, whatever ran before it: version 1 holds all
    traffic, no deployment is in progress and no shadow runs (a test that deploys may leave another state)."""
    yield
    store = EndpointStore(Home(served.home))

    def settled():
        state = store.read("prod")
        return not (state.deployment and state.deployment.active) and state

    if not settled():  # a deployment in progress (a rollback's redeployment waits for traffic): stopped
        assert run_cli(served.home, "endpoints", "rollback", "prod", "--reason", "the next test").returncode == 0
    state = wait_for(settled, "the endpoint's deployment to end")
    if state.shadow:
        assert run_cli(served.home, "endpoints", "stop-shadow", "prod").returncode == 0
    if [(v.name, v.weight) for v in state.variants] != [("text-classifier-v1", 100.0)]:
        line = "deploy prod --model text-classifier --version 1 --strategy all-at-once --wait 0 --min-requests 0"
        back = run_cli(served.home, *line.split())
        assert back.returncode == 0, back.stdout + back.stderr
    wait_for(lambda: (s := settled()) and not s.shadow and len(s.variants) == 1, "version 1 alone again")


def artifact_of_first_run(home: Path) -> Path:
    record = RunStore(Home(home)).all()[-1]
    return Path(record.steps["train"].outputs["model"].path)


def test_predict_answers_in_the_design_docs_shape(served):
    with served.client() as client:
        answer = client.post(
            f"{API}/predict",
            json={"input": {"text": HINDI, "metadata": {"language": "hi"}}},
            headers={"X-Request-ID": "req-test-1"},
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"predictionId", "result", "processingTime", "modelVersion", "timestamp"}
    assert body["result"]["prediction"] == "sports" and 0 < body["result"]["confidence"] <= 1
    assert len(body["result"]["alternatives"]) == 2 and body["modelVersion"] == "1"
    assert answer.headers["x-request-id"] == "req-test-1"
    logged = wait_for(
        lambda: [line for line in served.log_lines() if line["requestId"] == "req-test-1"], "the request's log line"
    )
    assert logged[0]["message"] == "Prediction completed" and logged[0]["function"] == "ml-inference"
    assert set(logged[0]["metadata"]) == {"processingTime", "modelVersion", "confidence"}
    info = httpx.get(f"{served.url}{API}/model-info", headers={"X-API-Key": served.key}).json()
    assert info["family"] == "sklearn-text" and set(info["languages"]) == {"hin_Deva", "eng_Latn"}
    assert "sports" in info["labels"] and info["metrics"]["macro_f1"] > 0.5


def test_bad_requests_get_the_right_4xx_in_the_error_format(served):
    predict = f"{served.url}{API}/predict"
    key = {"X-API-Key": served.key}
    cases = [
        (dict(content=b'{"input": {"text": ', headers={**key, "content-type": "application/json"}), 400, "body"),
        (dict(json={"input": {"text": 5}}, headers=key), 400, "input.text"),
        (dict(json={"input": {"text": "   "}}, headers=key), 400, "input.text"),
        (
            dict(json={"input": {"text": "x", "metadata": {"language": "klingon"}}}, headers=key),
            400,
            "input.metadata.language",
        ),
        (dict(json={"input": {"text": "x" * 70_000}}, headers=key), 413, None),
        (dict(json={"input": {"text": "x"}}), 401, None),
        (dict(json={"input": {"text": "x"}}, headers={"X-API-Key": "pvh_000000000000_" + "a" * 43}), 401, None),
        (dict(content=b"text=x", headers={**key, "content-type": "application/x-www-form-urlencoded"}), 415, None),
    ]
    for kwargs, status, field in cases:
        answer = httpx.post(predict, **kwargs)
        assert answer.status_code == status, (kwargs, answer.text)
        error = answer.json()["error"]
        assert set(error) == {"code", "message", "details", "timestamp", "requestId"}
        if field:
            assert field in [d["field"] for d in error["details"]], error
    too_many = {"inputs": [{"text": "x"}] * 1001}
    answer = httpx.post(f"{served.url}{API}/batch-predict", json=too_many, headers=key)
    assert answer.status_code == 400 and "at most 1000" in answer.json()["error"]["message"]
    assert httpx.get(f"{served.url}{API}/nothing", headers=key).status_code == 404
    assert httpx.get(f"{served.url}/health").json() == {"status": "ok"}, "the server stays up"


def test_a_revoked_key_stops_working_at_once(served):
    extra = run_cli(served.home, "keys", "create", "short-lived").stdout.strip()
    body = {"input": {"text": ENGLISH}}
    assert httpx.post(f"{served.url}{API}/predict", json=body, headers={"X-API-Key": extra}).status_code == 200
    assert run_cli(served.home, "keys", "revoke", "short-lived").returncode == 0
    refused = httpx.post(f"{served.url}{API}/predict", json=body, headers={"X-API-Key": extra})
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]["message"]
    assert "short-lived" in run_cli(served.home, "keys", "list").stdout
    assert "pvh_" not in (served.home / "serving" / "api-keys.json").read_text(), "only hashes are stored"


def test_batch_predict_reports_status_and_results_to_its_caller_only(served):
    texts = [HINDI, ENGLISH] * 50
    with served.client() as client:
        private = client.post(
            f"{API}/batch-predict", json={"inputs": [{"text": "x"}], "callbackUrl": "https://10.1.2.3/x"}
        )
        assert private.status_code == 400 and private.json()["error"]["details"][0]["field"] == "callbackUrl"
        loopback = "http://127.0.0.1:9/done"
        refused = client.post(f"{API}/batch-predict", json={"inputs": [{"text": "x"}], "callbackUrl": loopback})
        assert refused.status_code == 400, "loopback callbacks are off unless the config allows them"
        accepted = client.post(f"{API}/batch-predict", json={"inputs": [{"text": t} for t in texts]})
        assert accepted.status_code == 202
        status_url = accepted.json()["statusUrl"]
        status = wait_for(
            lambda: (found := client.get(status_url).json())["status"] != "processing" and found, "the batch job to end"
        )
        assert status["status"] == "completed" and status["total"] == 100
        results = client.get(status["resultsUrl"]).json()["results"]
        assert [r["index"] for r in results] == list(range(100))
        assert results[0]["prediction"] == "sports"
        other = run_cli(served.home, "keys", "create", "other-app").stdout.strip()
        assert httpx.get(f"{served.url}{status_url}", headers={"X-API-Key": other}).status_code == 403


def test_capture_is_written_in_sagemakers_format(served):
    with served.client() as client:
        answers = [client.post(f"{API}/predict", json={"input": {"text": text}}) for text in (HINDI, ENGLISH)]
    assert [a.status_code for a in answers] == [200, 200]
    english_id = answers[1].json()["predictionId"]
    folder = served.home / "capture" / "prod" / "text-classifier-v1"
    by_id = wait_for(
        lambda: (records := captured(folder)) and english_id in records and records,
        "the capture thread to write the English request",
    )
    files = sorted(folder.rglob("*.jsonl"))
    assert all(len(f.relative_to(folder).parts) == 5 for f in files), "yyyy/mm/dd/hh/file"
    english = by_id[english_id]
    assert json.loads(english["captureData"]["endpointInput"]["data"]) == {"input": {"text": ENGLISH}}
    output = json.loads(english["captureData"]["endpointOutput"]["data"])
    assert output["predictionId"] == english["eventMetadata"]["eventId"]
    assert english["captureData"]["endpointInput"]["encoding"] == "JSON" and "inferenceTime" in english["eventMetadata"]
    metrics = httpx.get(f"{served.url}/metrics").text
    assert 'pravah_requests_total{endpoint="prod",variant="text-classifier-v1"}' in metrics
    assert 'quantile="0.99"' in metrics and "pravah_capture_written_total" in metrics


def test_canary_promotes_a_good_version_and_rolls_back_a_broken_one_without_losing_requests(served, tmp_path):
    artifact = artifact_of_first_run(served.home)
    good = register_copy(served.home, artifact, tmp_path / "v2", "retrained")
    broken = register_copy(served.home, artifact, tmp_path / "v3", "broken", family="tests.faulty_family")
    stop = threading.Event()
    answers: list[tuple[int, str]] = []

    def traffic():
        with served.client() as client:
            n = 0
            while not stop.is_set():
                n += 1
                text = f"{ENGLISH} {n}" if n % 2 else HINDI  # half of them with a digit: the broken model fails those
                try:  # a dropped, unanswered or unreadable answer counts as lost; nothing ends this thread early
                    answer = client.post(f"{API}/predict", json={"input": {"text": text}})
                    answers.append((answer.status_code, answer.json().get("modelVersion", "")))
                except Exception as exc:
                    answers.append((0, repr(exc)))

    malformed: list[int] = []

    def hostile():  # text no model can take (a lone surrogate): refused before scoring, never the canary's error
        with served.client() as client:
            while not stop.is_set():
                body = b'{"input": {"text": "\\ud800 match"}}'
                answer = client.post(f"{API}/predict", content=body, headers={"Content-Type": "application/json"})
                malformed.append(answer.status_code)
                stop.wait(0.005)  # a few hundred a second: under the key's rate limit (1,000/s), which answers 429

    senders = [threading.Thread(target=traffic) for _ in range(3)] + [threading.Thread(target=hostile)]
    for sender in senders:
        sender.start()
    try:
        # judged on errors: a p99 alarm far above what a loaded machine takes (the latency alarm has its own test)
        deploy = ("deploy", "prod", "--model", "text-classifier", "--max-p99-ms", "60000", "--version")
        promoted = run_cli(
            served.home, *deploy, str(good), "--canary-percent", "30", "--wait", "2", "--min-requests", "5"
        )
        assert promoted.returncode == 0, promoted.stdout + promoted.stderr
        assert f"step 1/2: text-classifier-v{good} at 30% of traffic" in promoted.stdout
        judged = re.search(r"step 1/2 judged on (\d+) requests: no alarm", promoted.stdout)
        assert judged and int(judged.group(1)) >= 5, "the canary step was judged, on at least --min-requests"
        assert promoted.stdout.strip().endswith("completed")
        linear = ("--strategy", "linear", "--linear-step", "20", "--wait", "30", "--min-requests", "10")
        rolled = run_cli(served.home, *deploy, str(broken), *linear)
    finally:
        stop.set()
        for sender in senders:
            sender.join()
    assert rolled.returncode == 1 and "rolled_back" in rolled.stdout and "error rate" in rolled.stdout, rolled.stdout
    state = EndpointStore(Home(served.home)).read("prod")
    assert [(v.name, v.weight) for v in state.variants] == [(f"text-classifier-v{good}", 100.0)]
    assert len(answers) > 50
    assert len(malformed) > 20 and set(malformed) == {400}, "malformed traffic is the client's error, not the model's"
    assert all(status == 200 for status, _ in answers), "no request lost: the old variant answers for the broken one"
    assert {version for _, version in answers} >= {"1", str(good)}
    shown = run_cli(served.home, "endpoints", "show", "prod")
    listed = shown.stdout
    assert shown.returncode == 0 and "rolled_back" in listed and "completed" in listed, listed + shown.stderr
    back = run_cli(served.home, "endpoints", "rollback", "prod", "--reason", "drill")
    assert "redeploying text-classifier-v1" in back.stdout
    variants = wait_for(
        lambda: (
            (found := [v.name for v in EndpointStore(Home(served.home)).read("prod").variants])
            == ["text-classifier-v1"]
            and found
        ),
        "the server to carry out the rollback",
    )
    assert variants == ["text-classifier-v1"]


def test_a_slow_version_is_rolled_back_on_the_p99_latency_alarm(served, tmp_path):
    before = [(v.name, v.weight) for v in EndpointStore(Home(served.home)).read("prod").variants]
    slow = register_copy(
        served.home, artifact_of_first_run(served.home), tmp_path / "slow", "slow", family="tests.slow_family"
    )
    stop = threading.Event()
    statuses: list[int] = []

    def traffic():
        with served.client() as client:
            while not stop.is_set():
                statuses.append(client.post(f"{API}/predict", json={"input": {"text": ENGLISH}}).status_code)

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        alarms = "--min-requests 5 --max-p99-ms 150 --max-error-rate 0.5"
        rolled = run_cli(
            served.home,
            *f"deploy prod --model text-classifier --version {slow} --canary-percent 50 --wait 120 {alarms}".split(),
        )
    finally:
        stop.set()
        sender.join()
    assert rolled.returncode == 1 and "rolled_back" in rolled.stdout, rolled.stdout + rolled.stderr
    assert re.search(r"p99 latency \d+ ms > 150 ms", rolled.stdout), rolled.stdout
    assert [(v.name, v.weight) for v in EndpointStore(Home(served.home)).read("prod").variants] == before
    assert set(statuses) == {200}, "slow is not wrong: every request was answered"


def test_deploy_mistakes_are_clear_errors(served, tmp_path):
    unknown = run_cli(served.home, "deploy", "prod", "--model", "text-classifier", "--version", "99")
    assert unknown.returncode == 2 and "no version 99" in unknown.stderr and "Traceback" not in unknown.stderr
    pending = register_copy(served.home, artifact_of_first_run(served.home), tmp_path / "pending", "new", approve=False)
    refused = run_cli(served.home, "deploy", "prod", "--model", "text-classifier", "--version", str(pending))
    assert refused.returncode == 2 and "only an approved version can be deployed" in refused.stderr
    port = served.url.rsplit(":", 1)[1]
    again = run_cli(served.home, "serve", "prod", "--port", "0")  # one server per endpoint
    assert again.returncode == 2 and f"'prod' is already served at {served.url}" in again.stderr
    assert run_cli(served.home, "deploy", "staging", "--model", "text-classifier", "--version", "1").returncode == 0
    for bad_port, said in ((port, "Address already in use"), ("99999", "port must be 0-65535")):
        refused = run_cli(served.home, "serve", "staging", "--port", bad_port)
        assert refused.returncode == 2 and f"cannot listen on 127.0.0.1 port {bad_port}" in refused.stderr
        assert said in refused.stderr and "Traceback" not in refused.stderr
    listed = run_cli(served.home, "endpoints", "list").stdout
    assert listed.startswith("prod: text-classifier-v") and f"served at {served.url}" in listed
    shown = run_cli(served.home, "endpoints", "show", "prdo")
    assert shown.returncode == 2 and "did you mean 'prod'" in shown.stderr
    strategy = run_cli(served.home, "deploy", "prod", "--model", "text-classifier", "--version", "1", "--wait", "-5")
    assert strategy.returncode == 2 and "out of range" in strategy.stderr


def english_only_model(home: Path, mirror: Path, folder: Path) -> int:
    """A real candidate that differs from production: sklearn-text trained on SIB-200's English alone (it cannot
    read Hindi), registered and approved; its version."""
    import pandas as pd

    from artifact.contract import seal
    from training import sklearn_text

    rows = split_texts(mirror, "eng_Latn", "train")
    model = sklearn_text.fit(pd.DataFrame({"text": [r["text"] for r in rows]}), [r["label"] for r in rows], {})
    (folder / "model").mkdir(parents=True)
    sklearn_text.save(model, folder / "model")
    manifest = {"family": "sklearn-text", "loader": sklearn_text.__name__, "training_data_sha256": "e" * 64}
    seal(folder / "model", manifest, sklearn_text.classes(model))
    return register_copy(home, folder / "model", folder / "registered", "english only")


def shadow_report(home: Path) -> dict:
    path = EndpointStore(Home(home)).shadow_report_path("prod")
    return json.loads(path.read_text()) if path.is_file() else {}


def test_a_shadow_variant_gets_copies_compared_by_language_and_is_promoted(served, tmp_path, mirror):
    home, production = served.home, EndpointStore(Home(served.home)).read("prod").variants
    candidate = english_only_model(home, mirror, tmp_path / "english")
    name = f"text-classifier-v{candidate}"
    line = f"deploy prod --model text-classifier --version {candidate} --strategy shadow --sample-percent 100"
    requested = run_cli(home, *line.split())
    assert requested.returncode == 0 and f"{name} gets a copy of 100%" in requested.stdout, requested.stderr
    wait_for(lambda: shadow_report(home).get("loaded"), "the shadow to be loaded")
    rows = [row for language in ("hin_Deva", "eng_Latn") for row in split_texts(mirror, language)[:60]]
    answers = {}
    with served.client() as client:
        for row in rows:
            body = {"input": {"text": row["text"], "metadata": {"language": row["language"]}}}
            answer = client.post(f"{API}/predict", json=body)
            assert answer.status_code == 200, answer.text
            answers[answer.json()["predictionId"]] = (row["language"], answer.json())
    assert {body["modelVersion"] for _, body in answers.values()} == {str(v.version) for v in production}, (
        "a shadow's answers are never returned"
    )
    report = wait_for(
        lambda: (r := shadow_report(home)) and r["segments"]["all"]["requests"] == len(rows) and r,
        "the shadow's figures for every copy",
    )
    copies = wait_for(
        lambda: len(found := captured(home / "capture" / "prod" / name)) == len(rows) and found,
        "the shadow's answers in the capture",
    )
    assert set(copies) == set(answers), "each copy is captured under the production answer's predictionId"
    for language in ("hin_Deva", "eng_Latn"):
        ids = [i for i, (lang, _) in answers.items() if lang == language]
        shadowed = [json.loads(copies[i]["captureData"]["endpointOutput"]["data"]) for i in ids]
        assert {s["modelVersion"] for s in shadowed} == {str(candidate)}
        same = sum(
            s["result"]["prediction"] == answers[i][1]["result"]["prediction"]
            for i, s in zip(ids, shadowed, strict=True)
        )
        shown = report["segments"][f"language:{language}"]
        assert shown["requests"] == 60 and shown["error_rate"] == 0 and shown["p99_ms"] > 0
        assert shown["agreement"] == pytest.approx(same / 60), "agreement is what the two variants' answers say"
    segments = report["segments"]
    assert segments["language:eng_Latn"]["agreement"] > segments["language:hin_Deva"]["agreement"], (
        "a model trained on English alone agrees with production on English more than on Hindi"
    )
    text = httpx.get(f"{served.url}/metrics").text
    assert f'pravah_shadow_agreement_ratio{{endpoint="prod",variant="{name}",segment="language:hin_Deva"}}' in text
    shown = run_cli(home, "endpoints", "show", "prod").stdout
    assert f"shadow: {name}, a copy of 100% of requests" in shown and "language:eng_Latn" in shown

    # a failing shadow fails only itself; stopping one leaves production as it was
    faulty = register_copy(
        home, artifact_of_first_run(home), tmp_path / "faulty", "faulty", family="tests.faulty_family"
    )
    assert (
        run_cli(
            home, "deploy", "prod", "--model", "text-classifier", "--version", str(faulty), "--strategy", "shadow"
        ).returncode
        == 0
    )
    wait_for(
        lambda: (r := shadow_report(home)).get("variant") == f"text-classifier-v{faulty}" and r["loaded"],
        "the new shadow to be loaded",
    )  # copies sent while it loads are skipped (and counted)
    with served.client() as client:
        statuses = [
            client.post(f"{API}/predict", json={"input": {"text": f"{ENGLISH} {n}"}}).status_code for n in range(10)
        ]
    assert statuses == [200] * 10
    failed = wait_for(lambda: (r := shadow_report(home))["segments"]["all"]["requests"] == 10 and r, "10 copies")
    assert failed["segments"]["all"]["error_rate"] == 1.0
    stopped = run_cli(home, "endpoints", "stop-shadow", "prod")
    assert stopped.returncode == 0 and "production traffic is unchanged" in stopped.stdout
    assert wait_for(lambda: not shadow_report(home)["running"], "the server to end the shadow") is True
    assert EndpointStore(Home(home)).read("prod").variants == production
    again = run_cli(home, "endpoints", "stop-shadow", "prod")
    assert again.returncode == 2 and "has no shadow variant" in again.stderr

    # promoted: a blue/green deployment of the shadow, which ends it
    run_cli(home, "deploy", "prod", "--model", "text-classifier", "--version", str(candidate), "--strategy", "shadow")
    promoted = run_cli(
        home, "endpoints", "promote", "prod", "--strategy", "all-at-once", "--wait", "0", "--min-requests", "0"
    )
    assert promoted.returncode == 0 and promoted.stdout.strip().endswith("completed"), promoted.stdout
    state = EndpointStore(Home(home)).read("prod")
    assert [(v.name, v.weight) for v in state.variants] == [(name, 100.0)] and state.shadow is None
    run_cli(home, "endpoints", "rollback", "prod", "--reason", "the test ends")
    report = EndpointStore(Home(home)).shadow_report_path("prod")
    kept = report.read_bytes()
    report.write_text('{"variant": "x", "running": tr')  # damaged by hand
    try:
        broken = run_cli(home, "endpoints", "show", "prod")
    finally:
        report.write_bytes(kept)  # the module's later tests show this endpoint (this damage failed the canary's)
    assert broken.returncode == 2 and "not a shadow report written by pravah serve" in broken.stderr
    assert "Traceback" not in broken.stderr
