"""What every command shares: the options' wording and types, and how a result is printed: a table for
people, JSON (`--json`) for scripts."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

ENVIRONMENT_HELP = "configs/environments/NAME.yaml (default dev)"
DRY_RUN_HELP = "print each change to AWS (validated) instead of sending it; reads (describe, list, head) still run"


def parameter(text: str) -> tuple[str, str]:
    """A KEY=VALUE option's value."""
    key, eq, value = text.partition("=")
    if not eq or not key:
        raise argparse.ArgumentTypeError(f"'{text}' is not key=value")
    return key.strip(), value


def print_table(header: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[str] = ()) -> None:
    """Rows under a header, each column as wide as its widest cell; columns named in `right` aligned right
    (numbers), the last column left unpadded."""
    cells = [list(header), *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        padded = [
            cell.rjust(width) if name in right else cell.ljust(width)
            for name, cell, width in zip(header, row, widths, strict=True)
        ]
        print("  ".join([*padded[:-1], row[-1]]))


JSON_HELP = "print JSON on stdout for scripts (one document; the table's fields and more)"


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help=JSON_HELP)


def print_json(value: Any) -> None:
    """One JSON document on stdout: dataclasses as objects, times in ISO 8601, paths as strings."""
    print(json.dumps(value, indent=2, ensure_ascii=False, default=_jsonable))


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON")
