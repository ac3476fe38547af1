"""`pravah package lambda`: the predict API's Lambda deployment package, a zip of this repository's code and
of exactly the libraries the handler imports, copied from this environment (CPython 3.11 on Linux x86_64,
manylinux wheels: what Lambda's python3.11 x86_64 runtime runs). No download, and the same inputs give the
same bytes. The handler's imports are found by running it once, on a health check, in a probe process."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from importlib.metadata import distribution, packages_distributions
from pathlib import Path

CODE = ("foundation", "artifact", "registry", "inference")  # the packages of this code the handler imports
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
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def handler_imports(root: Path) -> list[str]:
    done = subprocess.run([sys.executable, "-c", _PROBE], cwd=root, capture_output=True, text=True, timeout=300)
    if done.returncode:
        raise RuntimeError(f"the Lambda handler does not start here:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def build_lambda_package(root: Path, output: Path) -> dict[str, int]:
    providers = packages_distributions()
    names = sorted({dist for module in handler_imports(root) for dist in providers.get(module, [])} - {"pravah"})
    files: dict[str, Path] = {}
    for name in names:
        found = distribution(name)
        for entry in found.files or []:
            if entry.parts[0] == ".." or "__pycache__" in entry.parts or entry.suffix == ".pyc":
                continue  # console scripts and caches
            files[entry.as_posix()] = Path(found.locate_file(entry))
    library_files = len(files)
    for package in CODE:
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
