"""What every processing step shares: its command line (the SageMaker processing contract) and
reading raw tables into one frame, with clear errors for bad files."""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from foundation.errors import PravahError

PROCESSING_ROOT = "/opt/ml/processing"
FORMATS = {"csv": ".csv", "tsv": ".tsv", "parquet": ".parquet", "jsonl": ".jsonl"}
SPLIT_NAMES = {"train": "train", "dev": "validation", "valid": "validation", "validation": "validation", "test": "test"}


class DataError(PravahError):
    """A data file is not what the step needs: said plainly, exit code 2."""


def processing_parser(description: str) -> argparse.ArgumentParser:
    """Inputs are at <root>/input/<name>, outputs at <root>/output/<name>; SageMaker's root is the default."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--processing-root", type=Path, default=Path(PROCESSING_ROOT))
    return parser


def run_entry(main: Callable[[Sequence[str] | None], None], argv: Sequence[str] | None = None) -> None:
    """Run a step's main; a PravahError ends it with its message and exit code, no traceback."""
    try:
        main(argv)
    except PravahError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)


def data_files(folder: Path, fmt: str) -> list[Path]:
    if fmt not in FORMATS:
        raise DataError(f"unknown data format '{fmt}' (formats: {', '.join(FORMATS)})")
    files = sorted(p for p in folder.rglob(f"*{FORMATS[fmt]}") if p.is_file())
    if not files:
        raise DataError(f"no {fmt} files in {folder}")
    return files


def read_table(path: Path, fmt: str):
    """One data file as a DataFrame of strings; malformed, empty or non-UTF-8 files raise DataError."""
    import pandas as pd

    try:
        if fmt == "parquet":
            return pd.read_parquet(path)
        if fmt == "jsonl":
            return pd.read_json(path, lines=True, dtype=False, encoding="utf-8")
        separator = "\t" if fmt == "tsv" else ","
        quoting = csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL
        return pd.read_csv(
            path,
            sep=separator,
            quoting=quoting,
            dtype=str,
            keep_default_na=False,
            encoding="utf-8",
            on_bad_lines="error",
            engine="c",
        )
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text (invalid byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: malformed {fmt.upper()}: {str(exc).strip()}") from None
    except ValueError as exc:
        raise DataError(f"{path}: cannot parse as {fmt}: {exc}") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None


def read_dataset(folder: Path, fmt: str, columns: dict[str, str]):
    """Read every data file below `folder` into one frame with the columns id, text, label, language, split.

    `columns` maps those names to the file's own (missing keys keep the same name). A file under
    `<language>/` gets that language when it has no language column; a file named train/dev/test gets
    that split, so a dataset's given splits are kept.
    """
    import pandas as pd

    frames = []
    for path in data_files(folder, fmt):
        frame = read_table(path, fmt)
        if frame.empty:
            raise DataError(f"{path}: no rows")
        rename = {columns.get(name, name): name for name in ("id", "text", "label", "language")}
        for wanted in ("text", "label"):
            source = columns.get(wanted, wanted)
            if source not in frame.columns:
                found = ", ".join(map(str, frame.columns))
                raise DataError(f"{path}: missing column '{source}' (the {wanted}); columns are: {found}")
        frame = frame.rename(columns=rename)
        if "language" not in frame.columns:
            frame["language"] = path.parent.name if path.parent != folder else "und"
        frame["split"] = SPLIT_NAMES.get(path.stem)
        frame["source_file"] = str(path.relative_to(folder))
        frames.append(frame)
    combined = pd.concat(frames, ignore_index=True)
    if "id" not in combined.columns:
        combined["id"] = combined.index.astype(str)
    return combined


def read_channel(folder: Path):
    """A split written by preprocess (a folder of parquet files), as one frame: a training channel or an
    evaluation input."""
    import pandas as pd

    files = sorted(folder.rglob("*.parquet"))
    if not files:
        raise PravahError(f"no parquet files in channel {folder}")
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
