"""The predict API against a hostile client, over a real socket to uvicorn as `pravah serve` runs it: input no
model can score is a 4xx naming the field, decided before scoring; bodies too large, however they are sent, get a
readable 413; a body that never arrives gets 408; HEAD is answered wherever GET is; one endpoint has one server."""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path

import httpx
import pytest

from inference.app import create_app
from inference.config import ServingConfig
from inference.endpoints import EndpointStore
from tests.support import captured, deploy_small_model, run_cli, running, wait_for

pytestmark = pytest.mark.slow

API = "/api/v1/ml"
LIMIT = 65_536  # api.max_body_bytes by default


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A small approved model deployed to endpoint `api`, served by uvicorn on a free port; its key."""
    home, key = deploy_small_model(tmp_path_factory.mktemp("hostile"), "api")
    with running(home, "api", ServingConfig(api={"max_connections": 20})) as (_, url, port):
        yield home, url, key, port


@pytest.fixture(scope="module")
def impatient(tmp_path_factory):
    """A server of one-second deadlines for headers and bodies, for requests that never finish arriving (the
    other tests' requests keep the default ten seconds: on a loaded machine a whole body may take a second);
    its port and a key."""
    home, key = deploy_small_model(tmp_path_factory.mktemp("impatient"), "api")
    config = ServingConfig(api={"body_timeout_seconds": 1, "header_timeout_seconds": 1})
    with running(home, "api", config) as (_, _, port):
        yield port, key


def post_raw(url: str, key: str, body: str) -> httpx.Response:
    """A body sent as written: JSON escapes that decode to what no model can take."""
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    return httpx.post(f"{url}{API}/predict", content=body.encode(), headers=headers, timeout=30)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"input": {"text": "match \\ud800 goal"}}', "input.text"),
        ('{"input": {"text": "goal", "metadata": {"language": "\\udfff"}}}', "input.metadata.language"),
        ('{"input": {"text": "goal", "metadata": {"score": NaN}}}', "input.metadata.score"),
        ('{"input": {"text": "goal", "metadata": {"score": -Infinity}}}', "input.metadata.score"),
        ('{"input": {"text": "goal", "metadata": {"score": 1e999}}}', "input.metadata.score"),
        ('{"input": {"text": "goal", "metadata": 7}}', "input.metadata"),
    ],
)
def test_input_no_model_can_take_is_a_400_naming_the_field(live, body, field):
    _, url, key, _ = live
    answer = post_raw(url, key, body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "VALIDATION_ERROR" and error["details"][0]["field"] == field, error
    assert post_raw(url, key, '{"input": {"text": "goal match"}}').status_code == 200  # the server is fine


def test_bad_items_in_a_batch_are_refused_one_by_one_and_the_others_scored(live):
    _, url, key, _ = live
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    body = (
        b'{"inputs": [{"text": "goal"}, {"text": "\\ud800"}, {"text": 7}, {"text": "x", "metadata": {"s": NaN}},'
        b' "text", {"text": "  "}, {"text": "election day"}]}'
    )
    accepted = httpx.post(f"{url}{API}/batch-predict", content=body, headers=headers)
    assert accepted.status_code == 202 and accepted.json()["refused"] == 5, accepted.text
    status = wait_for(
        lambda: (
            (s := httpx.get(f"{url}{accepted.json()['statusUrl']}", headers=headers).json())["status"] != "processing"
            and s
        ),
        "the batch",
    )
    assert status["status"] == "completed" and status["total"] == 7 and status["refused"] == 5, status
    results = httpx.get(f"{url}{status['resultsUrl']}", headers=headers).json()["results"]
    assert [r["index"] for r in results] == list(range(7))
    assert [r["error"]["field"] for r in results if "error" in r] == [
        "inputs.1.text",
        "inputs.2.text",
        "inputs.3.metadata.s",
        "inputs.4",
        "inputs.5.text",
    ]
    assert results[4]["error"]["message"] == "Input should be an object", "in JSON's words, not Python's"
    assert all(results[i]["prediction"] and 0 <= results[i]["confidence"] <= 1 for i in (0, 6)), results
    # each scored item has an id that labels can name, is captured as a single prediction is, and is counted
    ids = [results[i]["predictionId"] for i in (0, 6)]
    home = live[0]
    found = wait_for(
        lambda: set(ids) <= (c := captured(home.root / "capture" / "api")).keys() and c, "the batch's capture"
    )
    exchange = found[ids[1]]["captureData"]
    assert json.loads(exchange["endpointInput"]["data"]) == {"input": {"text": "election day"}}
    assert json.loads(exchange["endpointOutput"]["data"])["result"]["prediction"] == results[6]["prediction"]
    metrics = httpx.get(f"{url}/metrics").text
    assert re.search(r'pravah_batch_items_total\{endpoint="api",variant="[^"]+"\} [1-9]', metrics), metrics

    # long polling: a status request held until the batch ends answers it at once; a wait beyond 30 s is refused
    accepted = httpx.post(f"{url}{API}/batch-predict", json={"inputs": [{"text": "goal"}] * 200}, headers=headers)
    ended = httpx.get(f"{url}{accepted.json()['statusUrl']}?wait=30", headers=headers, timeout=60).json()
    assert ended["status"] == "completed" and ended["resultsUrl"], ended
    too_long = httpx.get(f"{url}{accepted.json()['statusUrl']}?wait=31", headers=headers)
    assert too_long.status_code == 400, too_long.text
    assert too_long.json()["error"]["details"][0]["field"] == "query.wait", too_long.text

    # the README's limits, item by item: at most 5,000 characters, a language the API knows
    limits = [{"text": "a" * 5_001}, {"text": "goal", "metadata": {"language": "klingon"}}, {"text": "a" * 5_000}]
    accepted = httpx.post(f"{url}{API}/batch-predict", json={"inputs": limits}, headers=headers)
    assert accepted.status_code == 202 and accepted.json()["refused"] == 2, accepted.text
    ended = httpx.get(f"{url}{accepted.json()['statusUrl']}?wait=30", headers=headers, timeout=60).json()
    results = httpx.get(f"{url}{ended['resultsUrl']}", headers=headers).json()["results"]
    assert results[0]["error"] == {
        "code": "VALIDATION_ERROR",
        "field": "inputs.0.text",
        "message": "5001 characters; at most 5000",
    }, results
    assert results[1]["error"]["field"] == "inputs.1.metadata.language" and "klingon" in results[1]["error"]["message"]
    assert results[2]["prediction"], "5,000 characters are scored"

    nothing_to_score = b'{"inputs": [{"text": "\\ud800"}, {"text": ""}]}'
    refused = httpx.post(f"{url}{API}/batch-predict", content=nothing_to_score, headers=headers)
    assert refused.status_code == 400, refused.text
    assert [d["field"] for d in refused.json()["error"]["details"]] == ["inputs.0.text", "inputs.1.text"]


def raw_exchange(port: int, head: bytes, body_parts: list[bytes], pause: float = 0.0) -> bytes:
    """Send a request by hand and read the whole answer (the server closes or answers in full)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        for part in body_parts:
            sock.sendall(part)
        sock.shutdown(socket.SHUT_WR) if not pause else None
        received = b""
        while chunk := sock.recv(65_536):
            received += chunk
    return received


def status_and_error(received: bytes) -> tuple[int, dict]:
    head, _, body = received.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        size, _, rest = body.partition(b"\r\n")
        body = rest[: int(size, 16)]
    return int(head.split()[1]), json.loads(body)["error"]


def test_a_large_body_gets_a_readable_413_however_it_is_sent(live):
    _, _, key, port = live
    big = b'{"input": {"text": "' + b"a" * 10_000_000 + b'"}}'
    head = (
        f"POST {API}/predict HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(big)}\r\n\r\n"
    ).encode()
    status, error = status_and_error(
        raw_exchange(port, head, [big[i : i + 65_536] for i in range(0, len(big), 65_536)])
    )
    assert (status, error["code"]) == (413, "PAYLOAD_TOO_LARGE"), error
    chunked = (
        f"POST {API}/predict HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    parts = [f"{65_536:x}\r\n".encode() + b"a" * 65_536 + b"\r\n" for _ in range(4)] + [b"0\r\n\r\n"]
    status, error = status_and_error(raw_exchange(port, chunked, parts))
    assert (status, error["code"]) == (413, "PAYLOAD_TOO_LARGE"), error
    batch = b'{"inputs": [' + b",".join([b'{"text": "' + b"a" * 4_000 + b'"}'] * 1_600) + b"]}"  # 6.4 MB
    head = (
        f"POST {API}/batch-predict HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(batch)}\r\n\r\n"
    ).encode()
    status, error = status_and_error(
        raw_exchange(port, head, [batch[i : i + 65_536] for i in range(0, len(batch), 65_536)])
    )
    assert (status, error["code"]) == (413, "PAYLOAD_TOO_LARGE"), "a batch body over 6 MB"


def test_an_idle_connection_is_closed_after_five_seconds(live):
    _, _, _, port = live
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answered = connection.recv(65_536)
        idle_since = time.monotonic()
        assert answered.startswith(b"HTTP/1.1 200"), answered
        assert connection.recv(65_536) == b"", "closed by the server, not by the client's timeout"
        assert time.monotonic() - idle_since >= 4.5, "not before keep_alive_seconds (5)"


def test_a_body_that_never_arrives_gets_408(impatient):
    port, key = impatient
    head = (
        f"POST {API}/predict HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\nContent-Type: application/json\r\n"
        "Content-Length: 500\r\n\r\n"
    ).encode()
    status, error = status_and_error(raw_exchange(port, head, [b'{"input": '], pause=1))
    assert (status, error["code"]) == (408, "REQUEST_TIMEOUT"), error


def test_head_is_answered_wherever_get_is(live):
    _, url, key, _ = live
    for path in ("/health", "/ready", "/metrics", f"{API}/model-info"):
        answer = httpx.head(f"{url}{path}", headers={"X-API-Key": key})
        assert answer.status_code == 200 and answer.content == b"", path


def test_one_endpoint_has_one_server_and_a_refused_one_changes_nothing(live):
    home, _, _, _ = live  # `api` is served by the fixture's server
    before = EndpointStore(home).read("api").served_by
    again = run_cli(home.root, "serve", "api", "--port", "0")
    assert again.returncode == 2 and "is already served at" in again.stderr, again.stderr
    assert "Traceback" not in again.stderr
    assert EndpointStore(home).read("api").served_by == before


def test_the_project_folder_is_the_owners_unless_said_otherwise(tmp_path):
    private = tmp_path / "private"
    assert run_cli(private, "keys", "create", "app").returncode == 0
    files = [p for p in private.rglob("*") if p.is_file()]
    assert files and all(p.stat().st_mode & 0o077 == 0 for p in [private, *files]), "owner only"
    shared = tmp_path / "shared"
    assert run_cli(shared, "keys", "create", "app", env={"PRAVAH_UMASK": "022"}).returncode == 0
    assert all(p.stat().st_mode & 0o044 == 0o044 for p in shared.rglob("*") if p.is_file())
    wrong = run_cli(tmp_path / "x", "keys", "list", env={"PRAVAH_UMASK": "rw-"})
    assert wrong.returncode == 2 and "not an octal file mask" in wrong.stderr


def test_metrics_need_a_key_when_the_settings_say_so(live):
    from fastapi.testclient import TestClient

    home, _, key, _ = live
    app = create_app(home, "metrics", ServingConfig(api={"metrics_need_key": True}))
    with TestClient(app, raise_server_exceptions=False) as api:
        assert api.get("/metrics").status_code == 401
        assert api.get("/metrics", headers={"X-API-Key": key}).status_code == 200


def test_slow_or_silent_headers_and_malformed_http_are_answered_and_closed(impatient):
    port, _ = impatient
    with socket.create_connection(("127.0.0.1", port), timeout=30) as silent:
        status, error = status_and_error(silent.recv(65_536))  # nothing sent: the deadline answers
    assert (status, error["code"]) == (408, "REQUEST_TIMEOUT"), error
    with socket.create_connection(("127.0.0.1", port), timeout=30) as slow:
        slow.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # and never the blank line that ends the headers
        status, _ = status_and_error(slow.recv(65_536))
    assert status == 408
    status, error = status_and_error(raw_exchange(port, b"NOT HTTP AT ALL\r\n\r\n", []))
    assert (status, error["code"]) == (400, "VALIDATION_ERROR"), error


def test_connections_beyond_the_cap_get_503(live):
    _, url, _, port = live
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]  # the fixture's cap
    try:
        refused = httpx.get(f"{url}/health", timeout=30)
        assert refused.status_code == 503
    finally:
        for connection in held:
            connection.close()
    wait_for(lambda: httpx.get(f"{url}/health").status_code == 200, "the server to take connections again")


def test_a_batch_is_checked_at_the_servers_priority_and_scored_at_the_lowest(live):
    """A batch's check runs at the server's own priority, so that batch-predict answers its 202 however busy the
    cores are with other work; only its scoring runs at the lowest (nice 19), on what CPU online scoring leaves."""
    import os

    _, url, key, _ = live
    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=30) as client:
        accepted = client.post(f"{API}/batch-predict", json={"inputs": [{"text": f"goal {i}"} for i in range(50)]})
        assert accepted.status_code == 202, accepted.text
        done = wait_for(
            lambda: (s := client.get(accepted.json()["statusUrl"]).json())["status"] != "processing" and s, "the batch"
        )
        assert done["status"] == "completed", done
    scorers = []  # the scoring processes of this test process's servers: (artifact, mode, nice)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(") ")[2].split()
            command = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == os.getpid() and b"inference.scoring" in command:
            scorers.append((command[3].decode(), command[5].decode(), int(fields[16])))
    own = os.getpriority(os.PRIO_PROCESS, 0)
    intake = {nice for artifact, _, nice in scorers if artifact == "-"}
    batches = {nice for _, mode, nice in scorers if mode.startswith("background")}
    assert intake == {own} and batches == {19}, scorers
