"""`pravah package lambda`: the predict API's Lambda deployment package, a zip of this repository's code and
of exactly the libraries the handler imports, copied from this environment (CPython 3.11 on Linux x86_64,
manylinux wheels: what Lambda's python3.11 x86_64 runtime runs). No download, and the same inputs give the
same bytes. The handler's imports, the project's own packages among them, are found by running it in a probe
process on a health check and on a refused predict (what a request reaches before the endpoint is called), so
the package holds every module the handler imports and nothing else of the repository.

Lambda puts nothing but the package and the standard library on the path (boto3 comes with the runtime, but
the package carries the version the code is tested with), which `python -I -S` in the unzipped folder checks."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from importlib.metadata import distribution, packages_distributions
from pathlib import Path
from typing import Any

_PROBE = """
import json, os, sys
os.environ.update({"PRAVAH_ENDPOINT": "probe", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "probe",
                   "AWS_SECRET_ACCESS_KEY": "probe", "PRAVAH_HOME": os.environ.get("TMPDIR", "/tmp") + "/pravah-probe"})
from inference.lambda_handler import handler
http = {"method": "GET", "path": "/health", "sourceIp": "127.0.0.1"}
event = {"version": "2.0", "routeKey": "$default", "rawPath": "/health", "rawQueryString": "", "headers": {},
         "requestContext": {"http": http}, "isBase64Encoded": False}
answer = handler(event, None)
assert answer["statusCode"] == 200, answer
http = {"method": "POST", "path": "/api/v1/ml/predict", "sourceIp": "127.0.0.1"}
event = {**event, "rawPath": http["path"], "requestContext": {"http": http},
         "headers": {"content-type": "application/json"}, "body": json.dumps({"input": {"text": ""}})}
answer = handler(event, None)
assert answer["statusCode"] == 400, answer
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def handler_imports(root: Path) -> list[str]:
    done = subprocess.run([sys.executable, "-c", _PROBE], cwd=root, capture_output=True, text=True, timeout=300)
    if done.returncode:
        raise RuntimeError(f"the Lambda handler does not start here:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def project_packages(root: Path, modules: list[str]) -> list[str]:
    """The imported top-level modules that are this repository's own packages."""
    return [module for module in modules if (root / module / "__init__.py").is_file()]


def build_lambda_package(root: Path, output: Path) -> dict[str, int]:
    providers = packages_distributions()
    imported = handler_imports(root)
    code = project_packages(root, imported)
    names = sorted({dist for module in imported if module not in code for dist in providers.get(module, [])})
    names = [name for name in names if name != "pravah"]
    files: dict[str, Path] = {}
    for name in names:
        found = distribution(name)
        for entry in found.files or []:
            if entry.parts[0] == ".." or "__pycache__" in entry.parts or entry.suffix == ".pyc":
                continue  # console scripts and caches
            files[entry.as_posix()] = Path(found.locate_file(entry))
    library_files = len(files)
    for package in code:
        for path in sorted((root / package).rglob("*.py")):
            if "__pycache__" not in path.parts:
                files[path.relative_to(root).as_posix()] = path
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name].read_bytes())
    return {
        "distributions": len(names),
        "library_files": library_files,
        "code_files": len(files) - library_files,
        "bytes": output.stat().st_size,
    }


def build_into(folder: Path) -> Path:
    """This repository's Lambda package, built as `predict.zip` in `folder`."""
    output = folder / "predict.zip"
    build_lambda_package(Path(__file__).resolve().parents[1], output)
    return output


_ALONE = """
import json, sys
sys.path.insert(0, sys.argv[1])  # Lambda's /var/task, the only entry beside the standard library
from inference.lambda_handler import handler
answers = []
for method, path, body in json.loads(sys.argv[2]):
    http = {"method": method, "path": path, "sourceIp": "203.0.113.9"}
    event = {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
             "headers": {"content-type": "application/json"}, "requestContext": {"http": http},
             "body": json.dumps(body) if body is not None else None, "isBase64Encoded": False}
    answer = handler(event, None)
    answers.append([answer["statusCode"], json.loads(answer["body"])])
print(json.dumps(answers))
"""


def call_alone(task: Path, calls: list[tuple[str, str, Any]], environment: dict[str, str]) -> list[tuple[int, Any]]:
    """The handler of a package unzipped into `task`, run as Lambda runs it: `python -I -S` in that folder, so
    nothing but the package and the standard library is importable, given API Gateway events (payload 2.0);
    each call's status and JSON body."""
    command = [sys.executable, "-I", "-S", "-c", _ALONE, str(task), json.dumps(calls)]
    done = subprocess.run(command, cwd=task, env=environment, capture_output=True, text=True, timeout=300)
    if done.returncode:
        raise RuntimeError(f"the Lambda handler failed, alone in {task}:\n{done.stderr[-3000:]}")
    return [(status, body) for status, body in json.loads(done.stdout.strip().splitlines()[-1])]
