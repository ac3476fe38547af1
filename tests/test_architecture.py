"""The house's rules, measured from the code's own imports (lazy ones included): rooms stacked from the foundation
up to the CLI, each importing only the rooms below it; no import circle between modules; every file short
enough to read; the engine a third of the code, not half; the CLI one small module per noun."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import foundation
from tests.support import REPO

ROOMS = foundation.PACKAGES  # bottom first
MAX_LINES, MAX_CLI_LINES, MAX_ENGINE_SHARE = 450, 300, 0.35


def modules() -> dict[str, Path]:
    found = {}
    for room in ROOMS:
        for path in sorted((REPO / room).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


@cache
def imports(path: Path) -> set[str]:
    """The project modules `path` imports anywhere in it (`from a.b import c` counts a.b.c when c is a module)."""
    known = modules()
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            required = names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            required, names = [node.module], [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found |= {name for name in names if name.split(".")[0] in ROOMS and name in known}
        missing = [name for name in required if name.split(".")[0] in ROOMS and name not in known]
        assert not missing, f"{path.relative_to(REPO)} imports {missing[0]}, which does not exist"
    return found


def test_each_room_imports_only_the_rooms_below_it():
    upward = []
    for name, path in modules().items():
        room = ROOMS.index(name.split(".")[0])
        for imported in imports(path):
            if ROOMS.index(imported.split(".")[0]) > room:
                upward.append(f"{name} imports {imported}")
    assert not upward, "\n".join(upward)


def test_the_foundation_imports_nothing_else_of_the_project():
    for name, path in modules().items():
        if name.startswith("foundation"):
            assert all(i.startswith("foundation") for i in imports(path)), name


def test_no_module_imports_itself_through_others():
    graph = {name: {i for i in imports(path) if i != name} for name, path in modules().items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for nxt in sorted(graph[name]):
            if state.get(nxt) == 1:
                circle = [*path[path.index(nxt) :], nxt] if nxt in path else [name, nxt]
                raise AssertionError("import circle: " + " -> ".join(circle))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_every_file_is_short_and_the_engine_is_a_third_of_the_code():
    lines = {
        path: len(path.read_text().splitlines())
        for path in REPO.glob("**/*.py")
        if not {".venv", ".git", "build"} & set(path.relative_to(REPO).parts)
    }
    long = {str(p.relative_to(REPO)): n for p, n in lines.items() if n > MAX_LINES}
    assert not long, f"over {MAX_LINES} lines: {long}"
    cli = {p.name: n for p, n in lines.items() if p.parent == REPO / "cli" and n >= MAX_CLI_LINES}
    assert not cli, f"CLI modules of {MAX_CLI_LINES} lines or more: {cli}"
    code = {p: n for p, n in lines.items() if p.relative_to(REPO).parts[0] in ROOMS}
    engine = sum(n for p, n in code.items() if p.relative_to(REPO).parts[0] == "pipelines")
    assert engine <= MAX_ENGINE_SHARE * sum(code.values()), f"pipelines/ is {engine / sum(code.values()):.0%}"


def test_the_artifact_reader_lies_below_evaluation_and_serving():
    assert "artifact.predictor" in imports(modules()["steps.evaluate"])
    assert "artifact.predictor" in imports(modules()["inference.sagemaker_handlers"])
    assert ROOMS.index("artifact") < ROOMS.index("steps") < ROOMS.index("inference")


def test_architecture_md_names_every_file():
    doc = (REPO / "docs" / "architecture.md").read_text()
    files = [path.relative_to(REPO) for path in modules().values() if path.name not in {"__init__.py", "__main__.py"}]
    unnamed = [str(file) for file in files if str(file) not in doc]
    assert not unnamed, f"docs/architecture.md's table does not name {unnamed}"


def test_the_notebooks_import_what_exists():
    import importlib
    import json

    for notebook in sorted((REPO / "notebooks").glob("*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        for cell in (c for c in cells if c["cell_type"] == "code"):
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ROOMS:
                    module = importlib.import_module(node.module)
                    missing = [a.name for a in node.names if not hasattr(module, a.name)]
                    assert not missing, f"{notebook.name}: {node.module} has no {missing}"


def test_the_cli_knows_which_module_adds_each_command():
    """`pravah COMMAND` builds only the module that NOUNS names for it: the two must agree, and a command line
    parses as it would with the whole parser."""
    import argparse
    from importlib import import_module

    import cli

    for noun, own in cli.NOUNS.items():
        commands = argparse.ArgumentParser().add_subparsers()
        import_module(f"cli.{noun}").add_commands(commands)
        assert tuple(commands.choices) == own, f"cli/{noun}.py adds {tuple(commands.choices)}, NOUNS says {own}"
    line = ["--home", "h", "models", "--target", "sagemaker", "approve", "m", "3", "--reason", "r"]
    assert cli.command_of(line) == "models" and cli.command_of(["--help"]) is None
    assert vars(cli.build_parser(line).parse_args(line)).keys() == vars(cli.build_parser([]).parse_args(line)).keys()


def test_no_cli_module_imports_another_nouns_commands():
    """A command's module (one that adds commands) is imported by the CLI's dispatch alone: what two nouns share
    lives in a helper module below the commands (cli/common.py, cli/rollout.py) or in a room below the CLI."""
    import cli

    nouns = {f"cli.{noun}" for noun in cli.NOUNS}
    crossing = {
        name: sorted(imports(path) & nouns - {name})
        for name, path in modules().items()
        if name.startswith("cli.") and imports(path) & nouns - {name}
    }
    assert not crossing, f"CLI modules importing another noun's module: {crossing}"


def test_the_formatter_governs_every_line():
    """Files stay short by being split by concern, not by keeping `ruff format` off their lines."""
    pragmas = ("# fmt: skip", "# fmt: off", "# fmt:skip", "# fmt:off")
    held = [
        f"{path.relative_to(REPO)}:{number}"
        for path in REPO.glob("**/*.py")
        if not {".venv", ".git", "build"} & set(path.relative_to(REPO).parts)
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if any(pragma in line for pragma in pragmas) and path.name != "test_architecture.py"
    ]
    assert not held, f"lines the formatter may not touch: {held[:10]}"


def test_no_module_names_a_module_of_a_room_above_it():
    """An import by name (a string handed to `import_module`, a map of names to modules) is an import all the
    same: no module writes the dotted name of a module in a room above its own (the artifact names its own
    loader module in its manifest instead)."""
    known = modules()
    upward = [
        f"{path.relative_to(REPO)}:{node.lineno} names {node.value}"
        for name, path in known.items()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value in known
        and "." in node.value
        and ROOMS.index(node.value.split(".")[0]) > ROOMS.index(name.split(".")[0])
    ]
    assert not upward, upward
