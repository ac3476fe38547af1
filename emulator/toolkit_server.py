"""The serving container's front, in the image stand-in: `/ping` and `/invocations` handed to the
sagemaker-inference toolkit's Transformer, the same object the PyTorch inference image's handler service
gives each request (it imports SAGEMAKER_PROGRAM, calls model_fn once, then input_fn, predict_fn and
output_fn). TorchServe, which carries requests to it in the image, is not run: this stands in for it.

Run by the emulator as `python3 toolkit_server.py ADDRESS_FILE`; standard library and the toolkit only.
"""

import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sagemaker_inference.default_inference_handler import DefaultInferenceHandler
from sagemaker_inference.environment import model_dir
from sagemaker_inference.transformer import Transformer


class Context:
    """What TorchServe hands the handler: system properties, the request's headers, the response's status."""

    def __init__(self, headers: dict[str, str]):
        self.system_properties = {"model_dir": model_dir, "gpu_id": None}
        self.request_processor = [self]
        self.headers, self.status, self.content_type = headers, 200, "application/json"

    def get_request_properties(self) -> dict[str, str]:
        return self.headers

    def set_response_status(self, code: int, phrase: str = "") -> None:
        self.status = code

    def set_response_content_type(self, index: int, content_type: str) -> None:
        self.content_type = content_type


TRANSFORMER = Transformer(default_inference_handler=DefaultInferenceHandler())


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._answer(200 if self.path == "/ping" else 404, b"", "text/plain")

    def do_POST(self) -> None:
        if self.path != "/invocations":
            self._answer(404, b"", "text/plain")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        context = Context({key: value for key, value in self.headers.items()})
        [answer] = TRANSFORMER.transform([{"body": body}], context)
        data = answer.encode() if isinstance(answer, str) else bytes(answer)
        self._answer(context.status, data, context.content_type)

    def _answer(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    TRANSFORMER.validate_and_initialize(model_dir=model_dir)  # as the handler service does when the model loads
    with open(sys.argv[1] + ".part", "w") as out:
        out.write(f"http://127.0.0.1:{server.server_port}\n")
    os.replace(sys.argv[1] + ".part", sys.argv[1])  # whole, or not there
    server.serve_forever()


if __name__ == "__main__":
    main()
