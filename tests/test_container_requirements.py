"""The containers' requirements: exactly what the code they run imports, at the lock's versions, and installable
on the images' Python and platform, resolved by pip against the package registry as the containers' pip will.
requirements/steps.txt (with runtime-cpu.txt's torch) for the runtime images, requirements/monitoring.txt for the
monitoring image; every image is python:3.11-slim-bookworm (Python 3.11, glibc 2.36, x86_64)."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import foundation
from tests.support import REPO

PROJECT = set(foundation.PACKAGES)
PROVIDED_BY_THE_IMAGE = {"torch"}  # requirements/runtime-{cpu,gpu}.txt: the build for the image's instances
MONITORING_DOCKERFILE = REPO / "pipelines" / "sagemaker" / "container" / "monitoring.Dockerfile"
IMAGES = {  # requirements file: (the entry modules of the code it serves, the image's glibc minor version)
    "steps.txt": (None, 36),  # the runtime images; the entries: container_entry_modules()
    "monitoring.txt": (["monitoring.job", "monitoring.scheduled"], 36),  # Debian 12 (bookworm)
}


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            found[normalized(name)] = version
    return found


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def container_entry_modules() -> list[str]:
    """What the containers run: every step's module in the specs, the serving handlers, every model family."""
    modules = {"inference.sagemaker_handlers"}
    for spec in (REPO / "configs" / "pipelines").glob("*.yaml"):
        modules |= set(re.findall(r"^\s+code: ([\w.]+)\s*$", spec.read_text(), re.MULTILINE))
    modules |= {f"training.{p.stem}" for p in (REPO / "training").glob("*.py") if p.stem != "__init__"}
    return sorted(modules)


def third_party_imports(entries: list[str], seen: set[str] | None = None) -> dict[str, set[str]]:
    """Top-level names of the libraries imported (anywhere in a module, lazy imports too) by `entries` and the
    project modules they import, with who imports them; `seen` collects those project modules."""
    seen = set() if seen is None else seen
    found: dict[str, set[str]] = {}
    todo = list(entries)
    while todo:
        name = todo.pop()
        path = REPO / Path(*name.split("."))
        source = path.with_suffix(".py") if path.with_suffix(".py").is_file() else path / "__init__.py"
        if name in seen or not source.is_file():
            continue
        seen.add(name)
        for node in ast.walk(ast.parse(source.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            for imported in names:
                top = imported.split(".")[0]
                if top in PROJECT:
                    todo.append(imported)
                elif top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(name)
    return found


@pytest.mark.parametrize("requirements", IMAGES)
def test_the_container_requirements_are_what_the_code_imports_at_the_locks_versions(requirements):
    wanted = pins(REPO / "requirements" / requirements)
    locked = pins(REPO / "requirements" / "lock.txt")
    assert {name: locked.get(name) for name in wanted} == wanted, "every pin as in lock.txt"
    distributions = importlib.metadata.packages_distributions()
    imported = third_party_imports(IMAGES[requirements][0] or container_entry_modules())
    needed = {normalized(distributions[top][0]) for top in imported if top not in PROVIDED_BY_THE_IMAGE}
    assert set(wanted) == needed, f"imported by the container code: {sorted(needed)}"
    assert "steps.evaluate" in container_entry_modules() and "training.transformers_text" in container_entry_modules()


def test_the_runtime_images_carry_the_locks_torch_for_their_instances():
    locked = pins(REPO / "requirements" / "lock.txt")
    cpu, gpu = (pins(REPO / "requirements" / f"runtime-{kind}.txt") for kind in ("cpu", "gpu"))
    assert cpu["torch"] == locked["torch"] == "2.13.0+cpu" and gpu["torch"] == locked["torch"].split("+")[0]
    assert cpu.keys() == gpu.keys() and all(cpu[name] == locked[name] for name in cpu)


def test_the_monitoring_image_holds_every_module_the_job_imports_on_the_codes_python(tmp_path):
    from emulator.images import copy_files, read_dockerfile

    modules: set[str] = set()
    third_party_imports(IMAGES["monitoring.txt"][0], modules)
    image = read_dockerfile(MONITORING_DOCKERFILE, REPO)
    copy_files(image, REPO, tmp_path)  # the image's WORKDIR, as its COPY lines fill it
    copied = {path.relative_to(tmp_path) for path in tmp_path.rglob("*.py")}
    for module in modules:
        path = Path(*module.split("."))
        file = path.with_suffix(".py") if (REPO / path.with_suffix(".py")).is_file() else path / "__init__.py"
        packages = [Path(*module.split(".")[:i]) / "__init__.py" for i in range(1, len(module.split(".")))]
        for needed in (file, *packages):
            assert needed in copied, f"{needed} is not copied to its own path"
    dockerfile = MONITORING_DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-", dockerfile, re.MULTILINE), "the code's Python (setup.cfg: 3.11)"
    assert "pip install --no-cache-dir -r requirements/monitoring.txt" in dockerfile
    assert image.python == "3.11" and image.requirements == (REPO / "requirements" / "monitoring.txt").read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("requirements", IMAGES)
def test_the_container_requirements_resolve_for_the_images_python_and_platform(tmp_path, requirements):
    glibc_minor = IMAGES[requirements][1]
    platforms = [f"manylinux_2_{minor}_x86_64" for minor in range(glibc_minor, 4, -1)]
    platforms += ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64"]
    report = tmp_path / "report.json"
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--dry-run",
        "--ignore-installed",
        "--only-binary=:all:",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        *(f"--platform={p}" for p in platforms),
        "--quiet",
        "--report",
        str(report),
        "-r",
        str(REPO / "requirements" / requirements),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    installed = {
        normalized(item["metadata"]["name"]): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    for name, version in pins(REPO / "requirements" / requirements).items():
        assert installed.get(name) == version, name
    assert not PROVIDED_BY_THE_IMAGE & set(installed), "nothing pulls in another torch over the image's"


def test_the_source_archive_holds_every_module_the_containers_import():
    from pipelines.sagemaker.source_archive import PACKAGES

    modules: set[str] = set()
    third_party_imports(container_entry_modules(), modules)
    outside = sorted(m for m in modules if m.split(".")[0] not in PACKAGES)
    assert not outside, f"imported in the containers but not in the source archive's packages: {outside}"
