"""What every command shares: the options' wording and types, and how a result is printed as a table."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

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
        padded = [cell.rjust(width) if name in right else cell.ljust(width)
                  for name, cell, width in zip(header, row, widths, strict=True)]  # fmt: skip
        print("  ".join([*padded[:-1], row[-1]]))
