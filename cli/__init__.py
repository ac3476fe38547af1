"""`pravah`: the command line, one module per noun. Heavy libraries are imported inside commands, so `--help`
is instant; every error a user can cause is a PravahError, printed as one line (no traceback)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from foundation.errors import PravahError

# The modules, in --help's order, and the commands each adds (tests/test_architecture.py checks the two agree):
# a command line builds only its own module's parsers (a third of the start-up of a cached `pravah run`).
NOUNS = {
    "project": ("init",),
    "runs": ("run", "graph", "check", "runs"),
    "console": ("ui",),
    "cloud": ("cloud", "compile", "pipeline", "template", "package"),
    "models": ("models",),
    "predict": ("predict",),
    "serving": ("serve", "deploy"),
    "endpoints": ("endpoints",),
    "keys": ("keys",),
    "monitor": ("monitor", "schedule", "scheduler"),
    "events": ("events",),
    "data": ("data",),
    "backup": ("backup",),
}
_GLOBAL_OPTIONS = ("--project", "--home")  # the options before the command that take a value


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


def command_of(argv: Sequence[str]) -> str | None:
    """The command word of a command line (None when there is none: `pravah --help`, `pravah`)."""
    words = iter(argv)
    for word in words:
        if word in _GLOBAL_OPTIONS:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser, or, for a command line whose command is known, only its module's part."""
    from importlib import import_module

    parser = argparse.ArgumentParser(
        prog="pravah",
        description="Declare an ML pipeline once in YAML; run it locally or compile it for SageMaker.",
    )
    parser.add_argument(
        "--project",
        help="the project folder, whose configs/ holds the pipelines and settings "
        "(default: the nearest folder upward from here that has configs/)",
    )
    parser.add_argument(
        "--home", help="where artifacts and records go (default: $PRAVAH_HOME or the project's .pravah)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    command = command_of(sys.argv[1:] if argv is None else argv)
    for noun in [noun for noun, own in NOUNS.items() if command in own] or NOUNS:
        import_module(f"cli.{noun}").add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # pydantic looks for plugins among every installed distribution's entry points when it builds its first
    # model (30 ms of each command); Pravah uses none. A user's own setting is kept.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    # Python's default (warnings and worse, as bare messages on stderr), made explicit so that a library's own
    # logging.basicConfig(level=INFO) at import (the SageMaker SDK's experiments module) changes nothing.
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    parser = build_parser(argv)
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
