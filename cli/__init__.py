"""`pravah`: the command line, one module per noun. Heavy libraries are imported inside commands, so `--help`
is instant; every error a user can cause is a PravahError, printed as one line (no traceback)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from foundation.errors import PravahError

NOUNS = (
    "runs",
    "cloud",
    "models",
    "predict",
    "serving",
    "keys",
    "monitor",
    "data",
    "backup",
)  # the modules, in --help's order


def umask_from_environment() -> int:
    """What the project folder's files hide from others: everything (owner only: captures, keys, the registry
    database, reports), unless `PRAVAH_UMASK` says otherwise (022: readable by all)."""
    given = os.environ.get("PRAVAH_UMASK", "077")
    try:
        mask = int(given, 8)
    except ValueError:
        mask = -1
    if not 0 <= mask <= 0o777:
        raise PravahError(f"PRAVAH_UMASK={given!r} is not an octal file mask like 077 or 022")
    return mask


def build_parser() -> argparse.ArgumentParser:
    from importlib import import_module

    parser = argparse.ArgumentParser(
        prog="pravah",
        description="Declare an ML pipeline once in YAML; run it locally or compile it for SageMaker.",
    )
    parser.add_argument("--project", help="the project folder, whose configs/ holds the pipelines and settings "
                        "(default: the nearest folder upward from here that has configs/)")  # fmt: skip
    parser.add_argument("--home", help="where artifacts and records go (default: $PRAVAH_HOME or the project's "
                        ".pravah)")  # fmt: skip
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for noun in NOUNS:
        import_module(f"cli.{noun}").add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # pydantic looks for plugins among every installed distribution's entry points when it builds its first
    # model (30 ms of each command); Pravah uses none. A user's own setting is kept.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.project:
            if not os.path.isdir(args.project):
                raise PravahError(f"--project {args.project}: no such folder")
            os.environ["PRAVAH_PROJECT"] = os.path.abspath(args.project)  # for the steps' processes too
        os.umask(umask_from_environment())
        return args.handler(args)
    except PravahError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`pravah runs show ... | head`): stop quietly, as git does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
        return 141
