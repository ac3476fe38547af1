"""A step's code, checked before it runs: the module is found (the nearest name for a typo), it compiles, it
defines `main` and calls it, and the libraries it imports at its top level are installed.

The code is the user's, so each problem is theirs to fix and is told as `file:line: what`: by `pravah check`
before anything runs, and by the runner as that step's failure in a recorded run, never as Pravah's traceback.
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
import sys
from functools import cache
from pathlib import Path

from foundation.errors import PravahError, did_you_mean
from foundation.yamlfile import display_path
from pipelines.spec import Pipeline, ProcessingStep, TrainingStep


def step_code_problems(pipeline: Pipeline) -> dict[str, str]:
    """Each code step whose module cannot run, with why."""
    problems = {}
    for name, step in pipeline.steps.items():
        if not isinstance(step, ProcessingStep | TrainingStep):
            continue
        if missing := unknown_module(step.code):
            problems[name] = f"{pipeline.doc.where(('steps', name, 'code'))}: {missing}"
        elif problem := module_problem(step.code):
            problems[name] = problem
    return problems


def refuse_broken_step_code(pipeline: Pipeline) -> None:
    """Raise a PravahError naming each step whose code cannot run, one line each: what `pravah check` and the
    SageMaker compiler say before anything runs or is uploaded."""
    if problems := step_code_problems(pipeline):
        raise PravahError("\n".join(f"step '{step}': {problem}" for step, problem in problems.items()))


def unknown_module(module: str) -> str | None:
    """'no Python module ...' with the nearest existing name when `module` is not on the import path, else None
    (a package that fails to import is found: its error is the step's, told by `module_problem`)."""
    try:
        if importlib.util.find_spec(module) is not None:
            return None
        absent = module
    except ModuleNotFoundError as exc:  # its package is missing
        absent = exc.name or module
    except Exception:
        return None
    package, rest = absent.rpartition(".")[0], module[len(absent) :]  # 'mysteps.cuont', or 'mystep' + '.count'
    if package:
        found = importlib.util.find_spec(package)
        names = [f"{package}.{m.name}" for m in pkgutil.iter_modules(found.submodule_search_locations or [])]
    else:
        names = list(_installed())
    return f"no Python module '{module}' in this project{did_you_mean(module, [n + rest for n in names])}"


def module_problem(module: str) -> str | None:
    """Why `python -m module` would not run a step's main, or None."""
    try:
        spec = importlib.util.find_spec(module)
    except SyntaxError as exc:  # in a package's __init__, imported to find the module
        return _syntax_error(exc)
    except Exception as exc:
        return f"importing the package of '{module}' failed: {type(exc).__name__}: {exc}"
    if spec is None:  # told by unknown_module
        return f"no Python module '{module}'"
    if not spec.origin or not spec.origin.endswith(".py"):
        return f"module '{module}' is not a Python source file ({spec.origin})"
    return _source_problem(Path(spec.origin), module.split(".")[0])


def _source_problem(path: Path, own_package: str) -> str | None:
    shown = display_path(path)
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=shown)
    except SyntaxError as exc:
        return _syntax_error(exc)
    except (UnicodeDecodeError, ValueError) as exc:
        return f"{shown}: cannot be read as Python source: {exc}"
    top_level = [node for node in tree.body if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
    if not _binds_main(tree.body):
        return f"{shown}: no main function: a step module defines main(argv) and calls it when run"
    if not any(isinstance(n, ast.Name) and n.id == "main" for stmt in top_level for n in ast.walk(stmt)):
        return (
            f"{shown}: main is never called, so the step would do nothing: end the file with "
            f'`if __name__ == "__main__": main()`'
        )
    for node in tree.body:
        for imported in _imported_modules(node):
            top = imported.split(".")[0]
            if importlib.util.find_spec(top) is None:
                return f"{shown}:{node.lineno}: no module named '{top}'{did_you_mean(top, _installed())}"
            if top == own_package and (missing := unknown_module(imported)):  # a library's would be imported
                return f"{shown}:{node.lineno}: {missing}"
    return None


def _binds_main(body: list[ast.stmt]) -> bool:
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "main":
            return True
        if isinstance(node, ast.Import | ast.ImportFrom) and any((a.asname or a.name) == "main" for a in node.names):
            return True
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "main" for t in node.targets):
            return True
    return False


def _imported_modules(node: ast.stmt) -> list[str]:
    """The modules a module-level import statement needs, but the standard library's (an import inside `try`
    may be optional)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
        names = [node.module]
    else:
        return []
    return [name for name in names if name.split(".")[0] not in sys.stdlib_module_names]


def _syntax_error(exc: SyntaxError) -> str:
    where = display_path(Path(exc.filename)) if exc.filename else "?"
    return f"{where}:{exc.lineno}: {type(exc).__name__}: {exc.msg}"


@cache
def _installed() -> frozenset[str]:
    """Every top-level module on the import path (the project's packages too): candidates for a typo."""
    return frozenset(module.name for module in pkgutil.iter_modules()) | sys.stdlib_module_names
