"""Prepare a table: read the data file(s) the spec names (CSV, TSV, Parquet or JSON lines), check the target
column, split with a fixed seed (stratified by the target for a classification), and write train,
validation and test with a baseline profile of the training rows for monitoring."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from steps.io import DataError, data_files, processing_parser, read_table, run_entry

SPLITS = ("train", "validation", "test")


def split_table(table, target: str, task: str, validation_fraction: float, test_fraction: float, seed: int):
    from sklearn.model_selection import train_test_split

    stratify = table[target] if task == "classification" and table[target].value_counts().min() >= 3 else None
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
            columns[name] = {"type": "numeric", "missing": float(series.isna().mean()), "mean": float(series.mean()),
                             "std": float(series.std(ddof=0)), "min": float(series.min()), "max": float(series.max()),
                             "quantiles": quantiles}  # fmt: skip
        else:
            shares = series.astype(str).value_counts(normalize=True).head(50)
            columns[name] = {"type": "categorical", "missing": float(series.isna().mean()),
                             "distribution": {str(k): float(v) for k, v in shares.items()}}  # fmt: skip
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

    frames = []
    for path in data_files(root / "input" / "raw", args.format):
        frame = read_table(path, args.format)
        if args.target not in frame.columns:
            raise DataError(f"{path}: no target column '{args.target}' (columns: {', '.join(map(str, frame.columns))})")
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    if args.format in {"csv", "tsv"}:  # read as text to keep bad values visible; numbers become numbers here
        table = table.apply(_numbers_where_possible)
    missing = int(table[args.target].isna().sum() + (table[args.target].astype(str) == "").sum())
    if missing:
        raise DataError(f"{missing} rows have no value in the target column '{args.target}'")
    if args.task == "regression" and table[args.target].dtype.kind not in "biuf":
        raise DataError(
            f"a regression needs a numeric target; '{args.target}' has values like {table[args.target].iloc[0]!r}"
        )
    if len(table) < 20:
        raise DataError(f"{len(table)} rows are too few to split into train, validation and test")
    parts = split_table(table, args.target, args.task, args.validation_fraction, args.test_fraction, args.seed)
    for split in SPLITS:
        parts[split].reset_index(drop=True).to_parquet(root / "output" / split / "data.parquet", index=False)
        print(f"{split}: {len(parts[split])} rows")
    (root / "output" / "profile" / "baseline.json").write_text(
        json.dumps(profile(parts["train"], args.target), indent=2)
    )


if __name__ == "__main__":
    run_entry(main)
