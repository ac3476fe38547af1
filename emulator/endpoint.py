"""The emulator's endpoint: the registered version approved and deployed with `pravah deploy --target
sagemaker`'s own code (the model, an endpoint config with data capture, the alarms, the endpoint and its
autoscaling, the input description the Lambda reads) on moto; the model's container run from its package
(`IMAGE serve`) and asked for a prediction; SageMaker's runtime played in front of it (InvokeEndpoint handed to
the container, as an endpoint routes it to its variant); and the predict Lambda's own package, taken from the
bucket where `cloud bootstrap` put it, unzipped into an empty folder and run with nothing else on its path:
a health check, a prediction through the endpoint, and a request it must refuse.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

from aws.requests import Aws
from emulator import containers
from emulator.containers import BuiltImage, Runtime
from emulator.engine import ExecutionFailed

ENDPOINT = "emulated-endpoint"
VARIANT = "AllTraffic"  # pravah deploy --target sagemaker's production variant


def serve(
    aws: Aws,
    url: str,
    images: dict[str, BuiltImage],
    package_arn: str,
    sample: Any,
    folder: Path,
    say: Callable[[str], None],
) -> Any:
    """Approve (as a reviewer would) and deploy the package, serve it in its container, ask it for `sample`,
    then call it through the Lambda's package; the container's answer to `sample`."""
    from cloud.deploy import Rollout, deploy
    from inference.endpoints import Alarms

    env = aws.environment
    package = aws.call("sagemaker", "describe_model_package", ModelPackageName=package_arn)
    model, version = package["ModelPackageGroupName"], package["ModelPackageVersion"]
    if package["ModelApprovalStatus"] != "Approved":  # only an Approved package can be deployed
        approve(env.region, model, version, say)
    rollout = Rollout("all-at-once", 10, 25, 60, Alarms(max_error_rate=0.05, max_p99_ms=1000, min_requests=0))
    done = deploy(aws, ENDPOINT, model, version, rollout)
    say(f"▸ {done['action']} {ENDPOINT}: {done['endpoint_config']} (pravah deploy --target sagemaker)")
    [container] = package["InferenceSpecification"]["Containers"]
    root = folder / "endpoint"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    log = folder / "logs" / "endpoint.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    say(f"▸ serving {package_arn} in its container ({container['Image'].rsplit('/', 1)[-1]})")
    server, address = containers.serve(
        container, root, Runtime(images[container["Image"]], aws.client("s3"), url, env.region), log
    )
    try:
        prediction = invoke(address, sample)
        shown = ", ".join(str(p.get("prediction", p.get("value"))) for p in prediction["predictions"])
        say(f"  ✓ /ping 200, /invocations 200: {shown}")
        with runtime_api(address, ENDPOINT) as runtime:
            through_lambda(aws, url, runtime, sample, folder / "lambda", say)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return prediction


def approve(region: str, model: str, version: int, say: Callable[[str], None]) -> None:
    """What `pravah models --target sagemaker approve` does, as a reviewer would run it."""
    from registry.sagemaker_backend import SageMakerRegistry
    from registry.versions import APPROVED, change_status

    reason = "emulated review: approved to serve it"
    approved = change_status(SageMakerRegistry.from_environment(region), model, version, APPROVED, reason)
    say(f"{model} version {version} is now {approved.status} (pravah models --target sagemaker approve)")


def invoke(address: str, sample: Any) -> Any:
    """The container's answer to `sample` on /invocations, checked for one prediction per input."""
    from inference.sagemaker_handlers import input_fn

    request = urllib.request.Request(
        f"{address}/invocations",
        data=json.dumps(sample).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            prediction = json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        raise ExecutionFailed(f"/invocations answered {exc.code}: {exc.read()[:2000].decode()}") from None
    asked = len(input_fn(json.dumps(sample), "application/json"))  # read as the container reads it
    answered = prediction.get("predictions") if isinstance(prediction, dict) else None
    if not isinstance(answered, list) or len(answered) != asked or not all(isinstance(p, dict) for p in answered):
        raise ExecutionFailed(f"/invocations answered {prediction!r}: expected {asked} predictions")
    return prediction


@contextmanager
def runtime_api(address: str, endpoint: str) -> Iterator[str]:
    """SageMaker's runtime API for one endpoint, on a free local port: InvokeEndpoint (`POST
    /endpoints/NAME/invocations`) handed to the container's /invocations with its content types, its answer
    returned with the variant that gave it (`X-Amzn-Invoked-Production-Variant`)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path != f"/endpoints/{endpoint}/invocations":
                self._answer(404, json.dumps({"message": f"no endpoint at {self.path}"}).encode(), {})
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name: self.headers[name] for name in ("Content-Type", "Accept") if self.headers.get(name)}
            request = urllib.request.Request(f"{address}/invocations", data=body, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=60) as answer:
                    status, data, kind = answer.status, answer.read(), answer.headers.get("Content-Type", "")
            except urllib.error.HTTPError as exc:  # SageMaker: ModelError, the container's status and body
                message = {"__type": "ModelError", "message": exc.read()[:2000].decode(errors="replace")}
                self._answer(424, json.dumps(message).encode(), {})
                return
            self._answer(status, data, {"Content-Type": kind, "X-Amzn-Invoked-Production-Variant": VARIANT})

        def _answer(self, status: int, data: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def through_lambda(aws: Aws, url: str, runtime: str, sample: Any, folder: Path, say: Callable[[str], None]) -> None:
    """The Lambda's package from the bucket, alone in an empty folder (as Lambda runs it), asked for its
    health, one prediction through the endpoint and a request it must refuse (400)."""
    from cloud.bootstrap import LAMBDA_KEY
    from cloud.deploy import input_description_uri
    from inference.lambda_package import call_alone

    env = aws.environment
    shutil.rmtree(folder, ignore_errors=True)
    (task := folder / "task").mkdir(parents=True)
    archive = folder / "predict.zip"
    archive.write_bytes(aws.client("s3").get_object(Bucket=env.bucket, Key=LAMBDA_KEY)["Body"].read())
    with zipfile.ZipFile(archive) as unzipped:
        unzipped.extractall(task)
    if isinstance(sample, dict) and sample.get("instances"):
        asked = {"input": {"features": sample["instances"][0]}}
    else:
        from inference.sagemaker_handlers import input_fn

        asked = {"input": {"text": input_fn(json.dumps(sample), "application/json")[0]}}
    environment = {
        "PRAVAH_ENDPOINT": ENDPOINT,
        "PRAVAH_INPUT_SCHEMA": input_description_uri(env, ENDPOINT),
        "PRAVAH_HOME": str(folder / "home"),
        "AWS_ENDPOINT_URL": url,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": runtime,
        "AWS_DEFAULT_REGION": env.region,
        "AWS_ACCESS_KEY_ID": "emulated",
        "AWS_SECRET_ACCESS_KEY": "emulated",
        "PATH": "/usr/bin:/bin",
    }
    calls = [
        ("GET", "/health", None),
        ("POST", "/api/v1/ml/predict", asked),
        ("POST", "/api/v1/ml/predict", {"input": {"text": ""}}),
    ]
    try:
        (health, _), (status, predicted), (refused, error) = call_alone(task, calls, environment)
    except RuntimeError as exc:
        raise ExecutionFailed(str(exc)) from None
    if (health, status, refused) != (200, 200, 400) or "error" not in error:
        raise ExecutionFailed(
            f"the Lambda answered {health} to /health, {status} to a prediction "
            f"({json.dumps(predicted)[:500]}) and {refused} to an empty text"
        )
    result = predicted["result"]
    say(
        f"  ✓ the predict Lambda, alone in an empty folder from s3://{env.bucket}/{LAMBDA_KEY}: /health 200, "
        f"predict 200 through the endpoint: {result.get('prediction', result.get('value'))} (version "
        f"{predicted.get('modelVersion')}), an empty text 400 ({error['error']['code']})"
    )
