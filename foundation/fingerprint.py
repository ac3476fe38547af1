"""Content hashes: of files and folders, and of a step's code with the project modules it imports."""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib.util
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from foundation import PACKAGES

# Pravah's own packages (every room: a change to any of them can change what a step does); a step's own
# package (a project's, like mysteps) counts as the project's too.
PROJECT_PACKAGES = frozenset(PACKAGES)
_CHUNK = 1 << 20


def hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class TreeHash:
    """The SHA-256 of every file below a folder (or of one file) and one digest over them all."""

    digest: str
    files: dict[str, str]


def hash_tree(path: Path) -> TreeHash:
    if path.is_file():
        files = {path.name: hash_file(path)}
    else:
        files = {str(p.relative_to(path)): hash_file(p) for p in sorted(path.rglob("*")) if p.is_file()}
    return TreeHash(digest=hash_json(files), files=files)


def hash_json(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class CodeFingerprint:
    files: dict[str, str]  # project module name -> sha256 of its source
    libraries: dict[str, str]  # distribution -> version, for the third-party modules they import
    third_party: frozenset[str]  # those modules, as imported (e.g. sklearn.metrics)


def code_fingerprint(module: str) -> CodeFingerprint:
    """Hash a step's module and every project module it imports, and name the libraries they use."""
    files: dict[str, str] = {}
    third_party: set[str] = set()
    own = PROJECT_PACKAGES | {module.split(".")[0]}
    pending, seen = [module], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(name)
        if path is None:
            continue
        files[name] = hash_file(path)
        stat = path.stat()
        for imported in _imports(path, stat.st_mtime_ns, stat.st_size, name, own):
            top = imported.split(".")[0]
            if top in own:
                pending.append(imported)
            elif top not in sys.stdlib_module_names:
                third_party.add(imported)
    libraries = _library_versions(frozenset(name.split(".")[0] for name in third_party))
    return CodeFingerprint(files=dict(sorted(files.items())), libraries=libraries, third_party=frozenset(third_party))


@cache
def _module_file(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin).resolve()


@cache
def _imports(path: Path, _mtime_ns: int, _size: int, module: str, own: frozenset[str]) -> frozenset[str]:
    """Modules a file imports, anywhere in it: lazy imports inside functions count too, and so does a
    project module named in a string (a model family imported by name). Kept while the file's time and size
    stay (steps share modules: each file is parsed once per run)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            found |= _imported_names(node, package, own)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            head = node.value.split(".")[0]
            if head in own and "." in node.value and _module_file(node.value):
                found.add(node.value)
    return frozenset(name for name in found if name)


def _imported_names(node: ast.Import | ast.ImportFrom, package: str, own: frozenset[str]) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    base = node.module or ""
    if node.level:
        parts = package.split(".")
        parent = ".".join(parts[: len(parts) - node.level + 1])
        base = f"{parent}.{base}" if base else parent
    # `from steps import io` imports the submodule steps.io when there is one (looked up for project modules
    # only: finding a library's submodule would import the library into the runner)
    if base.split(".")[0] in own:
        return {base} | {f"{base}.{a.name}" for a in node.names if _module_file(f"{base}.{a.name}")}
    return {base}


@cache
def _distributions() -> dict[str, list[str]]:
    """Top-level module -> distributions. Scanning every installed package takes about 0.3 s, a third of a
    cached re-run, so the answer is kept in a file keyed by the package folders and their modification
    times: installing or removing a package changes its folder's time and so the key."""
    folders = [Path(p) for p in sys.path if p and Path(p).is_dir()]
    key = hash_json([(str(f), f.stat().st_mtime_ns) for f in folders])
    memo = Path(tempfile.gettempdir()) / f"pravah-distributions-{os.getuid()}-{key[:16]}.json"
    try:
        return json.loads(memo.read_text())
    except (OSError, ValueError):
        import importlib.metadata  # 15 ms: only when the memo is missing

        found = importlib.metadata.packages_distributions()
        with contextlib.suppress(OSError):  # an unwritable temp folder only costs the scan next time
            memo.write_text(json.dumps(found))
        return found


@cache
def _library_versions(top_level_modules: frozenset[str]) -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    if not top_level_modules:
        return versions
    import importlib.metadata  # 13 ms: only for code that imports libraries

    distributions = _distributions()
    for module in sorted(top_level_modules):
        for dist in distributions.get(module, []):
            try:
                versions[dist.lower()] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
    return versions
