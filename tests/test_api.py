"""The predict API in-process and over a local socket: rate limits, JWTs, batch callbacks, the OpenAPI
contract under a property-based fuzz, and the deployment state machine."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import jwt
import pytest
import schemathesis
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from foundation.home import Home
from inference.app import create_app
from inference.config import ServingConfig
from inference.endpoints import Alarms, EndpointState, EndpointStore, Variant
from inference.rollout import Verdict, advance
from tests.support import captured, deploy_small_model, wait_for

API = "/api/v1/ml"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """A small real model, approved and deployed to endpoint `api`; and an API key."""
    return deploy_small_model(tmp_path_factory.mktemp("api"), "api")


def client(home: Home, **settings_) -> TestClient:
    return TestClient(create_app(home, "api", ServingConfig(**settings_)), raise_server_exceptions=False)


def predict(api: TestClient, headers: dict[str, str], text: str = "goal match team"):
    return api.post(f"{API}/predict", json={"input": {"text": text}}, headers=headers)


def test_rate_limit_answers_429_with_retry_after(deployed):
    home, key = deployed
    # a token every 100 s: the third request is refused however slowly the machine sends the three
    with client(home, rate_limit={"requests_per_second": 0.01, "burst": 2}) as api:
        statuses = [predict(api, {"X-API-Key": key}) for _ in range(3)]
    assert [s.status_code for s in statuses] == [200, 200, 429]
    assert int(statuses[2].headers["retry-after"]) >= 1
    assert statuses[2].json()["error"]["code"] == "RATE_LIMITED"


def counter(api: TestClient, name: str) -> int:
    line = next(line for line in api.get("/metrics").text.splitlines() if line.startswith(f"pravah_{name}{{"))
    return int(float(line.rsplit(" ", 1)[1]))


@pytest.mark.parametrize("percent", [0, 30, 100])
def test_capture_keeps_the_configured_share_of_requests(deployed, percent):
    home, key = deployed
    sent = 300
    with client(home, capture={"sampling_percent": percent}) as api:
        ids = {predict(api, {"X-API-Key": key}).json()["predictionId"] for _ in range(sent)}
        assert counter(api, "capture_unsampled_total") + counter(api, "capture_dropped_total") <= sent
        kept = sent - counter(api, "capture_unsampled_total")
        wait_for(lambda: counter(api, "capture_written_total") == kept, "the capture thread to write the sample")
    # the server's shutdown flushes the files (its capture thread may finish after the app on a busy machine)
    wait_for(lambda: len(ids & captured(home.root / "capture" / "api").keys()) == kept, "the sample in the files")
    if percent in (0, 100):
        assert kept == sent * percent // 100
    else:  # binomial(300, 0.3): mean 90, standard deviation 7.9; five of them either side
        assert 50 <= kept <= 130, kept


class _Static(BaseHTTPRequestHandler):
    """Serves one JSON body, and records what is POSTed to it."""

    body = b"{}"
    posted: ClassVar[list] = []

    def do_GET(self):
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def do_POST(self):
        self.posted.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def local_http(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_jwt_bearer_tokens_are_checked_against_the_issuers_keys(deployed):
    home, _ = deployed
    signing, stranger = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing.public_key()))
    jwks = type("Jwks", (_Static,), {"body": json.dumps({"keys": [{**public, "kid": "k1", "alg": "RS256"}]}).encode()})
    issuer_server = local_http(jwks)
    jwt_settings = {
        "issuer": "https://issuer.example",
        "audience": "pravah",
        "jwks_url": f"http://127.0.0.1:{issuer_server.server_port}/jwks.json",
    }

    def token(key=signing, **claims) -> dict[str, str]:
        body = {"sub": "user-1", "iss": "https://issuer.example", "aud": "pravah", "exp": time.time() + 60, **claims}
        return {"Authorization": "Bearer " + jwt.encode(body, key, algorithm="RS256", headers={"kid": "k1"})}

    with client(home, auth={"jwt": jwt_settings}) as api:
        assert predict(api, token()).status_code == 200
        for bad in (token(aud="other"), token(exp=time.time() - 10), token(key=stranger), token(iss="https://evil")):
            refused = predict(api, bad)
            assert refused.status_code == 401 and "token" in refused.json()["error"]["message"], refused.text
        assert predict(api, {"Authorization": "Basic abc"}).status_code == 401
    issuer_server.shutdown()


@pytest.mark.slow
def test_batch_callback_is_called_once_when_done(deployed):
    home, key = deployed
    receiver_class = type("Receiver", (_Static,), {"posted": []})
    receiver = local_http(receiver_class)
    callback = f"http://127.0.0.1:{receiver.server_port}/done"
    with client(home, batch={"allow_loopback_callbacks": True}) as api:
        texts = [{"text": "goal match team"}, {"text": "vote law party"}] * 10
        accepted = api.post(
            f"{API}/batch-predict", json={"inputs": texts, "callbackUrl": callback}, headers={"X-API-Key": key}
        )
        assert accepted.status_code == 202
        status_url = accepted.json()["statusUrl"]
        # the job records the callback's outcome after making it: once that is there, no other call can follow
        done = wait_for(
            lambda: api.get(status_url, headers={"X-API-Key": key}).json().get("callbackStatus"),
            "the batch job to call back",
        )
    receiver.shutdown()
    assert done == "HTTP 204"
    assert len(receiver_class.posted) == 1
    assert receiver_class.posted[0]["status"] == "completed" and receiver_class.posted[0]["total"] == 20


@pytest.fixture(scope="module")
def live_api(deployed):
    """The app behind uvicorn on a local port, as `pravah serve` runs it."""
    home, key = deployed
    listener = socket.create_server(("127.0.0.1", 0))  # bound before serving: no race for a free port
    server = uvicorn.Server(uvicorn.Config(create_app(home, "api", ServingConfig()), log_level="error"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started, "uvicorn to start")
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", key
    server.should_exit = True
    thread.join(30)


@pytest.mark.slow
def test_openapi_fuzz_no_server_errors_and_every_answer_matches_the_spec(live_api):
    url, key = live_api
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def holds(case):
            case.validate_response(case.call(headers={"X-API-Key": key}), checks=checks)

        holds()


# -- the deployment state machine, on its own ---------------------------------------------------------------------
def variant(name: str, weight: float = 0.0) -> Variant:
    return Variant(name=name, model="m", version=int(name[1:]), artifact="/x", digest="d", weight=weight)


def state_deploying(strategy_schedule: list[float], wait: float = 10) -> EndpointState:
    from inference.endpoints import Deployment

    state = EndpointState("e", variants=[variant("v1", 100.0)])
    state.deployment = Deployment("d-1", variant("v2"), "linear", strategy_schedule, wait, Alarms(0.1, 500, 5))
    return state


def quiet(_variant, _since, _alarms) -> Verdict:
    return Verdict(None, 100)


def test_linear_deployment_moves_traffic_step_by_step_then_retires_the_old_variant():
    state = state_deploying([25.0, 50.0, 75.0, 100.0])
    assert advance(state, quiet, now=0)
    weights = [{v.name: v.weight for v in state.variants}]
    for now in (5, 10, 20, 30, 40):  # 5 is inside the wait: no change
        if advance(state, quiet, now=now):
            weights.append({v.name: v.weight for v in state.variants})
    assert weights == [
        {"v1": 75.0, "v2": 25.0},
        {"v1": 50.0, "v2": 50.0},
        {"v1": 25.0, "v2": 75.0},
        {"v1": 0.0, "v2": 100.0},
        {"v2": 100.0},
    ]
    assert state.deployment.status == "completed" and state.history[-1]["replaced"]["name"] == "v1"


def test_an_alarm_or_a_request_rolls_traffic_back_to_the_old_variant():
    state = state_deploying([10.0, 100.0])
    advance(state, quiet, now=0)
    advance(state, lambda *_: Verdict("error rate 50% > 10%", 20), now=1)
    assert [(v.name, v.weight) for v in state.variants] == [("v1", 100.0)]
    assert state.deployment.status == "rolled_back" and "error rate" in state.deployment.reason

    state = state_deploying([10.0, 100.0])
    advance(state, quiet, now=0)
    state.deployment.rollback_requested = "operator"
    advance(state, quiet, now=1)
    assert [(v.name, v.weight) for v in state.variants] == [("v1", 100.0)]
    assert state.deployment.reason == "rollback requested: operator"


def test_a_step_is_never_passed_unjudged_it_holds_for_traffic_then_gives_up():
    state = state_deploying([10.0, 100.0])  # min_requests 5, a 10 s wait
    advance(state, quiet, now=0)
    seen = {"requests": 3}
    assert advance(state, lambda *_: Verdict(None, seen["requests"]), now=10), "the wait is over: it holds"
    assert "holding until 5 requests reach v2 (3 so far)" in state.deployment.events[-1]
    assert not advance(state, lambda *_: Verdict(None, seen["requests"]), now=60), "still holding, said once"
    assert state.variant("v2").weight == 10.0 and state.deployment.status == "in_progress"
    seen["requests"] = 5
    assert advance(state, lambda *_: Verdict(None, seen["requests"]), now=61)
    assert "step 1/2 judged on 5 requests: no alarm" in state.deployment.events[-2]
    assert state.variant("v2").weight == 100.0

    starved = state_deploying([10.0, 100.0])
    advance(starved, quiet, now=0)
    advance(starved, lambda *_: Verdict(None, 0), now=10)
    assert not advance(starved, lambda *_: Verdict(None, 0), now=299)
    assert advance(starved, lambda *_: Verdict(None, 0), now=300)  # ten waits, and at least five minutes
    assert starved.deployment.status == "rolled_back" and "not judged: 0 of 5 requests" in starved.deployment.reason
    assert [(v.name, v.weight) for v in starved.variants] == [("v1", 100.0)]


def test_an_operators_rollback_to_the_previous_version_needs_no_traffic(tmp_path):
    from inference.endpoints import request_rollback

    state = state_deploying([100.0], wait=0)
    advance(state, quiet, now=0)
    advance(state, quiet, now=1)
    assert state.deployment.status == "completed"
    home = Home(tmp_path / "home")
    store = EndpointStore(home)
    with store.update("e", create=True) as stored:
        stored.variants, stored.deployment, stored.history = state.variants, state.deployment, state.history
    assert request_rollback(store, "e", "drill").startswith("redeploying v1")
    back = store.read("e")
    advance(back, lambda *_: Verdict(None, 0), now=2)  # no request at all
    advance(back, lambda *_: Verdict(None, 0), now=3)
    assert back.deployment.status == "completed" and [v.name for v in back.variants] == ["v1"]
    assert "passed with no traffic to judge" in back.deployment.events[-2]


def test_a_shadow_lagging_by_64_copies_has_the_next_ones_skipped_and_counted(tmp_path, monkeypatch):
    """Copies wait for the shadow's model at most 64 at a time: with its scoring held still, the 65th copy on is
    skipped (and counted, for `endpoints show`), production answers every request, and the held copies
    are all compared once the shadow moves again."""
    from inference.endpoints import registered_variant, request_shadow
    from tests.support import make_artifact, markers_folder, register_copy

    markers = markers_folder(tmp_path, monkeypatch, "HELD_MARKERS")
    home, key = deploy_small_model(tmp_path, "lag")
    held = register_copy(
        home.root, make_artifact(tmp_path / "held", "held"), tmp_path / "v", "held", family="tests.held_family"
    )
    report = EndpointStore(home).shadow_report_path("lag")
    with TestClient(create_app(home, "lag", ServingConfig())) as api:
        try:
            wait_for(lambda: api.get("/ready").status_code == 200, "production to be served")
            request_shadow(EndpointStore(home), "lag", registered_variant(home, "text-classifier", held), 100.0)
            wait_for(lambda: report.is_file() and json.loads(report.read_text())["loaded"], "the shadow to be loaded")
            (markers / "hold").touch()
            answers = [predict(api, {"X-API-Key": key}, f"goal match team {i}").status_code for i in range(70)]
            assert answers == [200] * 70, "production answers, whatever the shadow does"
            wait_for(lambda: (markers / "held").exists(), "the shadow's model to hold its first call")
            (markers / "release").touch()
            shown = wait_for(
                lambda: (
                    report.is_file()
                    and (r := json.loads(report.read_text()))["segments"]["all"]["requests"] == 64
                    and r
                ),
                "the held copies to be compared",
            )
            assert shown["skipped"] == 6, shown
        finally:
            (markers / "release").touch()  # before the server stops: it waits for the shadow's call


def test_copies_sent_while_the_shadow_loads_are_skipped_and_counted(tmp_path, monkeypatch):
    """From the moment a shadow is deployed, every sampled copy is either compared or counted as skipped: while
    its model still loads, the copies of the requests production answers are skipped, and said so."""
    from inference.endpoints import registered_variant, request_shadow
    from tests.support import make_artifact, markers_folder, register_copy

    markers = markers_folder(tmp_path, monkeypatch, "HELD_MARKERS")
    home, key = deploy_small_model(tmp_path, "loading")
    held = register_copy(
        home.root, make_artifact(tmp_path / "held", "held"), tmp_path / "v", "held", family="tests.held_family"
    )
    report = EndpointStore(home).shadow_report_path("loading")
    (markers / "hold-load").touch()
    with TestClient(create_app(home, "loading", ServingConfig())) as api:
        try:
            wait_for(lambda: api.get("/ready").status_code == 200, "production to be served")
            request_shadow(EndpointStore(home), "loading", registered_variant(home, "text-classifier", held), 100.0)
            wait_for(lambda: (markers / "loading").exists(), "the shadow's model to be loading")
            answers = [predict(api, {"X-API-Key": key}, f"goal match team {i}").status_code for i in range(5)]
            assert answers == [200] * 5
            (markers / "release").touch()
            shown = wait_for(
                lambda: report.is_file() and (r := json.loads(report.read_text()))["skipped"] == 5 and r,
                "the copies sent while it loaded to be counted",
            )
            assert shown["running"] and shown["segments"]["all"]["requests"] == 0, shown
        finally:
            (markers / "release").touch()
