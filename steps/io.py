"""What every processing step shares: its command line (the SageMaker processing contract) and
reading raw tables into one frame, with clear errors for bad files."""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable, Iterator, Sequence
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


def positive_rows(text: str) -> int:
    """A `--chunk_rows` argument: a whole number of rows, at least 1 (argparse says so when it is not)."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of rows, at least 1: {text!r}")
    return int(text)


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

    return next(read_table_chunks(path, fmt, None))


def read_table_chunks(path: Path, fmt: str, rows: int | None) -> Iterator:
    """One data file as DataFrames of strings of at most `rows` rows (None: one frame), read as they are
    taken; malformed, empty or non-UTF-8 files raise DataError, wherever in the file the fault is."""
    import pandas as pd

    try:
        if fmt == "parquet":
            if rows is None:
                yield pd.read_parquet(path)
                return
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
                yield batch.to_pandas()
            return
        if fmt == "jsonl":
            read = pd.read_json(path, lines=True, dtype=False, encoding="utf-8", chunksize=rows)
            yield from ([read] if rows is None else read)
            return
        separator = "\t" if fmt == "tsv" else ","
        quoting = csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL
        read = pd.read_csv(
            path,
            sep=separator,
            quoting=quoting,
            dtype=str,
            keep_default_na=False,
            encoding="utf-8",
            on_bad_lines="error",
            engine="c",
            chunksize=rows,
        )
        yield from ([read] if rows is None else read)
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
    return next(read_dataset_chunks(folder, fmt, columns, None))


def read_dataset_chunks(folder: Path, fmt: str, columns: dict[str, str], rows: int | None) -> Iterator:
    """read_dataset's frame in chunks of `rows` rows (the last one shorter; None: one frame), read as they are
    taken, small files together; indexed by row number across the files (a row without an id gets that number)."""
    import pandas as pd

    number, waiting = 0, []
    for path in data_files(folder, fmt):
        empty = True
        for frame in read_table_chunks(path, fmt, rows):
            if frame.empty:
                continue
            empty = False
            frame.index = range(number, number + len(frame))
            number += len(frame)
            waiting.append(_dataset_columns(frame, path, folder, columns))
            while rows is not None and sum(map(len, waiting)) >= rows:
                ready = pd.concat(waiting)
                yield ready.iloc[:rows].copy()
                waiting = [ready.iloc[rows:].copy()] if len(ready) > rows else []
        if empty:
            raise DataError(f"{path}: no rows")
    if waiting:
        yield pd.concat(waiting)


def _dataset_columns(frame, path: Path, folder: Path, columns: dict[str, str]):
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
    if "id" not in frame.columns:
        frame["id"] = [str(n) for n in frame.index]
    return frame


def channel_files(folder: Path) -> list[Path]:
    """The parquet files of a split written by preprocess, in order."""
    files = sorted(folder.rglob("*.parquet"))
    if not files:
        raise PravahError(f"no parquet files in channel {folder}")
    return files


def read_channel(folder: Path, columns: list[str] | None = None):
    """A split written by preprocess (a folder of parquet files), as one frame: a training channel or an
    evaluation input (`columns`: only those)."""
    import pandas as pd

    return pd.concat([pd.read_parquet(f, columns=columns) for f in channel_files(folder)], ignore_index=True)


def channel_rows(folder: Path) -> int:
    """How many rows a split holds, from its files' footers (nothing read)."""
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in channel_files(folder))


def channel_batches(folder: Path, columns: list[str] | None, rows: int) -> Iterator:
    """A split as frames of at most `rows` rows, read one at a time: what streams a split bigger than memory."""
    import pyarrow.parquet as pq

    for path in channel_files(folder):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=rows, columns=columns):
            yield batch.to_pandas()
