"""The runtime image's entry: SageMaker's bring-your-own-container contract for training and serving.

SageMaker starts a training job's container as `IMAGE train` and an endpoint's (or a Batch Transform job's) as
`IMAGE serve`, which the image's ENTRYPOINT hands here with that word.

`train`: the project's code is the `pravah-source` channel (the source archive the pipeline uploads), unpacked
into /opt/ml/code; the job's configuration in /opt/ml/input/config becomes the environment the local runner
gives a training step (SM_MODEL_DIR, SM_CHANNEL_<NAME>, SM_HPS, ...) and its hyperparameters `--key value`
arguments; `training.train` runs; the model folder then gets the code that serves it (its `code/`). A failure
writes its reason to /opt/ml/output/failure, which SageMaker reports as the job's FailureReason.

`serve`: the model (model.tar.gz, unpacked by SageMaker into /opt/ml/model) is loaded with the code in its
`code/` folder, then `/ping` and `/invocations` are answered on port 8080 (or SAGEMAKER_BIND_TO_PORT) by the
project's own handlers (inference/sagemaker_handlers.py): no model server between. SIGTERM (SageMaker sends
SIGKILL 30 s later) stops it taking requests and lets those in flight finish.

Standard library only until the project's code is on the path.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tarfile
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

OPT_ML = Path("/opt/ml")
SOURCE_CHANNEL = "pravah-source"
MAX_BODY = 100 * 1024 * 1024  # Batch Transform sends up to MaxPayloadInMB (at most 100 MB)


def train() -> int:
    config, data = OPT_ML / "input" / "config", OPT_ML / "input" / "data"
    hyperparameters = _json(config / "hyperparameters.json")
    channels = sorted(name for name in _json(config / "inputdataconfig.json") if name != SOURCE_CHANNEL)
    code, model = OPT_ML / "code", OPT_ML / "model"
    try:
        [archive] = sorted((data / SOURCE_CHANNEL).glob("*.tar.gz"))
        with tarfile.open(archive) as source:
            source.extractall(code, filter="data")
    except (OSError, ValueError, tarfile.TarError) as exc:
        return _failed(f"the {SOURCE_CHANNEL} channel holds no readable source archive: {exc}")
    os.environ.update(
        {
            "SM_MODEL_DIR": str(model),
            "SM_OUTPUT_DATA_DIR": str(OPT_ML / "output" / "data"),
            "SM_INPUT_DIR": str(OPT_ML / "input"),
            "SM_HPS": json.dumps(hyperparameters),
            "SM_CHANNELS": json.dumps(channels),
            **{f"SM_CHANNEL_{name.upper().replace('-', '_')}": str(data / name) for name in channels},
        }
    )
    sys.path.insert(0, str(code))
    argv = [part for key, value in sorted(hyperparameters.items()) for part in (f"--{key}", str(value))]
    from artifact.contract import add_serving_code
    from foundation.errors import PravahError
    from training.train import main

    try:
        main(argv)
        add_serving_code(model, code)
    except PravahError as exc:  # the user's mistake or data's: its message is the job's FailureReason
        return _failed(f"error: {exc}", exc.exit_code)
    except Exception:
        traceback.print_exc()
        return _failed(traceback.format_exc().strip().splitlines()[-1])
    return 0


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _failed(reason: str, code: int = 1) -> int:
    print(reason, file=sys.stderr)
    (OPT_ML / "output").mkdir(parents=True, exist_ok=True)
    (OPT_ML / "output" / "failure").write_text(reason[:1024])
    return code


def serve() -> int:
    sys.path.insert(0, str(OPT_ML / "model" / "code"))
    from inference.sagemaker_handlers import BadRequest, input_fn, model_fn, output_fn, predict_fn

    model = model_fn(str(OPT_ML / "model"))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 10  # an idle keep-alive connection ends, so that a stopping server is not held by it

        def do_GET(self) -> None:
            self._answer(200 if self.path == "/ping" else 404, b"", "text/plain")

        def do_POST(self) -> None:
            if self.path != "/invocations":
                self._answer(404, b"", "text/plain")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._answer(413, b"the request body is too large", "text/plain")
                return
            body = self.rfile.read(length)
            try:
                inputs = input_fn(body, self.headers.get("Content-Type", "application/json").split(";")[0])
                accept = self.headers.get("Accept", "application/json")
                answer, content_type = output_fn(
                    predict_fn(inputs, model), "application/json" if accept == "*/*" else accept
                )
            except BadRequest as exc:
                self._answer(400, str(exc).encode(), "text/plain")
                return
            except Exception:
                traceback.print_exc()
                self._answer(500, b"the model failed to answer: see the endpoint's log", "text/plain")
                return
            self._answer(200, answer.encode(), content_type)

        def _answer(self, status: int, data: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:  # one line per request, on stderr
            print(f"{self.address_string()} {format % args}", file=sys.stderr, flush=True)

    port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    server.daemon_threads = False  # server_close() waits for the requests in flight
    # SageMaker stops a container with SIGTERM, then SIGKILL 30 s later: stop taking requests, finish the others
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    print(f"serving {OPT_ML / 'model'} on port {server.server_address[1]}", flush=True)
    server.serve_forever()
    server.server_close()
    return 0


def main() -> int:
    programs = {"train": train, "serve": serve}
    if len(sys.argv) != 2 or sys.argv[1] not in programs:
        print(f"usage: {sys.argv[0]} train|serve (SageMaker's container contract)", file=sys.stderr)
        return 2
    return programs[sys.argv[1]]()


if __name__ == "__main__":
    sys.exit(main())
