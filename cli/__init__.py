"""`pravah`: the command line, one module per noun. Heavy libraries are imported inside commands, so `--help`
is instant; every error a user can cause is a PravahError, printed as one line (no traceback)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from foundation.errors import PravahError

NOUNS = ("runs", "cloud", "models", "serving", "keys", "monitor", "data")  # the modules, in --help's order


def build_parser() -> argparse.ArgumentParser:
    from importlib import import_module

    parser = argparse.ArgumentParser(
        prog="pravah",
        description="Declare an ML pipeline once in YAML; run it locally or compile it for SageMaker.",
    )
    parser.add_argument("--home", help="project folder for artifacts and records (default: $PRAVAH_HOME or .pravah)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for noun in NOUNS:
        import_module(f"cli.{noun}").add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except PravahError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
