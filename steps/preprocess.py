"""Preprocess: normalize text, keep (or make) the train/validation/test splits, and profile the training data.

Text is normalized to Unicode NFC with collapsed whitespace only. A dataset's own splits are kept (SIB-200 is
parallel across languages: a new split would leak translations of test sentences into training); data without
splits is split stratified by label and language with a fixed seed. The baseline profile is what the
monitoring job compares live traffic against, computed once, here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from artifact.text import dominant_scripts, normalize_text
from steps.io import DataError, processing_parser, read_dataset, run_entry
from steps.progress import in_chunks

SPLITS = ("train", "validation", "test")
LENGTH_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def split_rows(rows, validation_fraction: float, test_fraction: float, seed: int):
    """Keep the given splits when every row has one; otherwise a stratified split with a fixed seed."""
    from sklearn.model_selection import train_test_split

    if rows["split"].notna().all():
        return rows
    rows = rows.copy()
    strata = rows["label"].astype(str) + "|" + rows["language"].astype(str)
    if strata.value_counts().min() < 3:
        strata = rows["label"]  # too few rows per (label, language): stratify by label alone
    rest, test = train_test_split(rows, test_size=test_fraction, random_state=seed, stratify=strata)
    share = validation_fraction / (1 - test_fraction)
    train, validation = train_test_split(rest, test_size=share, random_state=seed, stratify=strata.loc[rest.index])
    rows.loc[train.index, "split"], rows.loc[validation.index, "split"] = "train", "validation"
    rows.loc[test.index, "split"] = "test"
    return rows


def baseline_profile(train) -> dict[str, Any]:
    """Statistics of the training data that drift monitoring compares against."""
    import pandas as pd

    lengths = train["text"].str.len()
    words = train["text"].str.split().str.len()

    def distribution(column) -> dict[str, float]:
        return {str(k): round(float(v), 6) for k, v in column.value_counts(normalize=True).sort_index().items()}

    def numeric(series) -> dict[str, Any]:
        return {
            "mean": float(series.mean()),
            "std": float(series.std(ddof=0)),
            "min": int(series.min()),
            "max": int(series.max()),
            "quantiles": {str(q): float(series.quantile(q)) for q in LENGTH_QUANTILES},
        }

    return {
        "rows": len(train),
        "label_distribution": distribution(train["label"]),
        "language_distribution": distribution(train["language"]),
        "script_distribution": distribution(pd.Series(dominant_scripts(list(train["text"])))),
        "text_length_chars": numeric(lengths),
        "text_length_words": numeric(words),
        "vocabulary_sample_size": int(train["text"].str.split().explode().nunique()),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = processing_parser(__doc__)
    parser.add_argument("--format", default="tsv")
    parser.add_argument("--columns", default="")
    parser.add_argument("--validation_fraction", type=float, default=0.1)
    parser.add_argument("--test_fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    root = args.processing_root

    columns = dict(pair.split("=", 1) for pair in args.columns.split(",") if "=" in pair)
    rows = read_dataset(root / "input" / "raw", args.format, columns)
    import pandas as pd

    texts = rows["text"].astype(str)
    rows["text"] = pd.concat(
        in_chunks("texts normalized", len(texts), lambda part: texts.iloc[part].map(normalize_text))
    )
    rows["label"] = rows["label"].astype(str).str.strip()
    rows = rows[rows["text"] != ""]
    rows = split_rows(rows, args.validation_fraction, args.test_fraction, args.seed)
    keep = ["id", "text", "label", "language"]
    for split in SPLITS:
        part = rows.loc[rows["split"] == split, keep].reset_index(drop=True)
        if part.empty:
            raise DataError(f"the '{split}' split is empty")
        part.to_parquet(root / "output" / split / "data.parquet", index=False)
        print(f"{split}: {len(part)} rows, languages {sorted(part['language'].unique())}")
    profile = baseline_profile(rows[rows["split"] == "train"])
    (root / "output" / "profile" / "baseline.json").write_text(json.dumps(profile, indent=2, ensure_ascii=False))
    write_monitoring_reference(rows, root / "output" / "profile")


def write_monitoring_reference(rows, folder: Path) -> None:
    """What drift monitoring compares traffic with, computed once, here: the training texts' derived features,
    the training vocabulary, and the share of unknown words that held-out text (the validation split) has."""
    from steps.profile import Profile, Vocabulary, text_feature_columns

    train, validation = rows[rows["split"] == "train"], rows[rows["split"] == "validation"]
    vocabulary = Vocabulary.of_texts(list(train["text"]))
    reference = Profile()
    features = text_feature_columns(list(train["text"]), list(train["language"]), vocabulary)
    del features["unknown_token_rate"]  # zero by construction on the text the vocabulary comes from
    reference.add_columns(features)
    held_out = text_feature_columns(list(validation["text"]), [None] * len(validation), vocabulary)
    reference.add_columns({"unknown_token_rate": held_out["unknown_token_rate"]})
    reference.save(folder / "reference.json")
    (folder / "vocabulary.json").write_text(json.dumps(vocabulary.to_json(), ensure_ascii=False))


if __name__ == "__main__":
    run_entry(main)
