"""Prepare a table: read the data file(s) the spec names (CSV, TSV, Parquet or JSON lines), check the target
column, split with a fixed seed (stratified by the target for a classification), and write train,
validation and test with a baseline profile of the training rows for monitoring.

A folder whose files are named train, validation and test (any of the formats) is used as given: checked for
the same columns and for rows that appear in two of them, never mixed and split again. With train and test
only, validation is taken from train."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from steps.io import DataError, data_files, processing_parser, read_table, run_entry

SPLITS = ("train", "validation", "test")


NAMES = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
    "testing": "test",
}


def given_splits(frames: dict) -> dict[str, Any]:
    """{split: path} when the files are the user's own splits (named train, validation and test; or train and
    test), checked for the same columns and for rows in two splits; else {}."""
    named = {NAMES.get(path.stem.lower()): path for path in frames}
    if set(named) - {None} != set(named) or not {"train", "test"} <= set(named) or len(named) != len(frames):
        return {}
    first = named["train"]
    for path in named.values():
        columns, expected = list(frames[path].columns), list(frames[first].columns)
        if columns != expected:
            raise DataError(
                f"{path.name} and {first.name} have other columns: {', '.join(map(str, columns))} "
                f"against {', '.join(map(str, expected))}"
            )
    import pandas as pd

    rows = {
        split: set(pd.util.hash_pandas_object(frames[path].astype(str), index=False)) for split, path in named.items()
    }
    splits = list(named)
    for i, one in enumerate(splits):
        for other in splits[i + 1 :]:
            shared = len(rows[one] & rows[other])
            if shared:
                raise DataError(
                    f"{shared} rows of {named[one].name} are also in {named[other].name}: a row in two "
                    "splits makes the test say nothing; remove them"
                )
    order = [split for split in SPLITS if split in named]
    return {split: named[split] for split in order}


def split_table(table, target: str, task: str, validation_fraction: float, test_fraction: float, seed: int):
    from sklearn.model_selection import train_test_split

    stratify = table[target] if task == "classification" and table[target].value_counts().min() >= 3 else None
    if test_fraction == 0:
        rest, test = table, table.iloc[:0]
    else:
        rest, test = train_test_split(table, test_size=test_fraction, random_state=seed, stratify=stratify)
    share = validation_fraction / (1 - test_fraction)
    rest_strata = stratify.loc[rest.index] if stratify is not None else None
    train, validation = train_test_split(rest, test_size=share, random_state=seed, stratify=rest_strata)
    return {"train": train, "validation": validation, "test": test}


def profile(train, target: str) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    for name in train.columns:
        series = train[name]
        if series.dtype.kind in "biuf":
            quantiles = {str(q): float(series.quantile(q)) for q in (0.05, 0.25, 0.5, 0.75, 0.95)}
            columns[name] = {
                "type": "numeric",
                "missing": float(series.isna().mean()),
                "mean": float(series.mean()),
                "std": float(series.std(ddof=0)),
                "min": float(series.min()),
                "max": float(series.max()),
                "quantiles": quantiles,
            }
        else:
            shares = series.astype(str).value_counts(normalize=True).head(50)
            columns[name] = {
                "type": "categorical",
                "missing": float(series.isna().mean()),
                "distribution": {str(k): float(v) for k, v in shares.items()},
            }
    return {"rows": len(train), "target": target, "columns": columns}


def _numbers_where_possible(column):
    import pandas as pd

    if column.name == "id":
        return column
    try:
        return pd.to_numeric(column.replace("", None))
    except (ValueError, TypeError):
        return column


def main(argv: Sequence[str] | None = None) -> None:
    parser = processing_parser(__doc__)
    parser.add_argument("--format", default="csv")
    parser.add_argument("--target", required=True)
    parser.add_argument("--task", choices=["classification", "regression"], default="classification")
    parser.add_argument("--validation_fraction", type=float, default=0.15)
    parser.add_argument("--test_fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    root = args.processing_root

    import pandas as pd

    frames = {}
    for path in data_files(root / "input" / "raw", args.format):
        frame = read_table(path, args.format)
        if args.target not in frame.columns:
            raise DataError(f"{path}: no target column '{args.target}' (columns: {', '.join(map(str, frame.columns))})")
        frames[path] = frame
    given = given_splits(frames)
    ordered = [frames[path] for path in given.values()] if given else list(frames.values())
    table = pd.concat(ordered, ignore_index=True)
    if args.format in {"csv", "tsv"}:  # read as text to keep bad values visible; numbers become numbers here
        table = table.apply(_numbers_where_possible)
    missing = int(table[args.target].isna().sum() + (table[args.target].astype(str) == "").sum())
    if missing:
        raise DataError(f"{missing} rows have no value in the target column '{args.target}'")
    if args.task == "regression" and table[args.target].dtype.kind not in "biuf":
        raise DataError(
            f"a regression needs a numeric target; '{args.target}' has values like {table[args.target].iloc[0]!r}"
        )
    if given:
        parts, start = {}, 0
        for name, frame in zip(given, ordered, strict=True):
            parts[name], start = table.iloc[start : start + len(frame)], start + len(frame)
        if "validation" not in parts:
            fraction = args.validation_fraction / (1 - args.test_fraction)
            held = split_table(parts["train"], args.target, args.task, fraction, 0.0, args.seed)
            parts["train"], parts["validation"] = held["train"], held["validation"]
        print("splits as given: " + ", ".join(f"{name} = {path.name}" for name, path in given.items()))
    elif len(table) < 20:
        raise DataError(f"{len(table)} rows are too few to split into train, validation and test")
    else:
        parts = split_table(table, args.target, args.task, args.validation_fraction, args.test_fraction, args.seed)
    for split in SPLITS:
        parts[split].reset_index(drop=True).to_parquet(root / "output" / split / "data.parquet", index=False)
        print(f"{split}: {len(parts[split])} rows")
    (root / "output" / "profile" / "baseline.json").write_text(
        json.dumps(profile(parts["train"], args.target), indent=2)
    )


if __name__ == "__main__":
    run_entry(main)
