"""`pravah init`: a new project that runs as it is, to start from."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from foundation.errors import PravahError

STARTER = Path(__file__).with_name("starter")  # the project `init` copies, kept as real, linted and tested files


def add_commands(commands) -> None:
    init = commands.add_parser(
        "init",
        help="make a new project that runs as it is",
        description="Write a project to start from into DIR: a pipeline spec, its step "
        "with a test, a small data file and a README on how steps see their inputs and "
        "outputs. Nothing is overwritten.",
    )
    init.add_argument("directory", nargs="?", default=".", metavar="DIR", help="the project folder (default: here)")
    init.set_defaults(handler=cmd_init)


def cmd_init(args: argparse.Namespace) -> int:
    target = Path(args.directory)
    if target.exists() and not target.is_dir():
        raise PravahError(f"init: {target} is a file, not a folder")
    files = [p.relative_to(STARTER) for p in sorted(STARTER.rglob("*")) if p.is_file() and "__pycache__" not in p.parts]
    taken = [str(f) for f in files if (target / f).exists()]
    if taken or (target / "configs").exists():
        raise PravahError(
            f"init: {target} already holds a project ({', '.join(taken) or 'configs/'}): nothing "
            "was written; choose an empty or new folder"
        )
    os.umask(0o022)  # source files, readable as a checkout's are (Pravah's own records stay owner-only)
    for relative in files:
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(STARTER / relative, target / relative)
    where = "" if target.resolve() == Path.cwd().resolve() else f"cd {args.directory} && "
    print(f"a new project in {target.resolve()}: {len(files)} files")
    print(f"next: {where}pravah run starter && pravah runs show latest && python -m pytest tests  (see README.md)")
    return 0
