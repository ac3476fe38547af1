"""Preprocess: normalize text, keep (or make) the train/validation/test splits, and profile the training data.

Text is normalized to Unicode NFC with collapsed whitespace only. A dataset's own splits are kept (SIB-200 is
parallel across languages: a new split would leak translations of test sentences into training); data without
splits is split stratified by label and language with a fixed seed. The baseline profile is what the
monitoring job compares live traffic against, computed once, here.

The rows stream through in chunks, so memory is set by a chunk, not by the rows: a first pass normalizes them
into a scratch file and keeps only each row's label, language and given split (as small codes); the split is
decided on those; a second pass sends each row to a bucket of its split's output order, and each bucket, sorted,
is appended to its split's file while the profile and the monitoring reference are counted. The files hold the
same rows in the same order as splitting the whole table in memory would give.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from artifact.text import normalize_text
from steps.io import DataError, positive_rows, processing_parser, read_dataset_chunks, run_entry
from steps.progress import CHUNK_ROWS, Meter

SPLITS = ("train", "validation", "test")
COLUMNS = ["id", "text", "label", "language"]
LENGTH_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def split_orders(labels, languages, given, validation_fraction: float, test_fraction: float, seed: int):
    """Each split's rows, as positions in the table, in the order they are written. `labels`, `languages` and
    `given` (the split the data says, missing where it says none) are pandas Categoricals, a row's value each.
    The given splits are kept when every row has one, in the table's order; otherwise a stratified split by
    label and language with a fixed seed, each split's rows in the split's own random order (a streamed
    training reads its rows in file order: see training/sklearn_text.fit_batches)."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    if not given.isna().any():
        return {split: np.flatnonzero(np.asarray(given == split)) for split in SPLITS}
    width = len(languages.categories)
    pairs = labels.codes.astype(np.int64) * width + languages.codes
    classes = ranked(pairs, lambda code: f"{labels.categories[code // width]}|{languages.categories[code % width]}")
    if np.bincount(classes).min() < 3:  # too few rows per (label, language): stratify by label alone
        classes = ranked(labels.codes.astype(np.int64), lambda code: str(labels.categories[code]))
    positions = np.arange(len(classes))
    rest, test = train_test_split(positions, test_size=test_fraction, random_state=seed, stratify=classes)
    share = validation_fraction / (1 - test_fraction)
    train, validation = train_test_split(rest, test_size=share, random_state=seed, stratify=classes[rest])
    return {"train": train, "validation": validation, "test": test}


def ranked(codes, name: Callable[[int], str]) -> Any:
    """Each row's class as the rank of its code's name among the distinct names in sorted order: the classes
    that stratifying on the names themselves (`label|language`) sees, without a string per row."""
    import numpy as np

    distinct, rows = np.unique(codes, return_inverse=True)
    order = sorted(range(len(distinct)), key=lambda index: name(int(distinct[index])))
    rank = np.empty(len(distinct), dtype=np.int64)
    rank[order] = np.arange(len(distinct))
    return rank[rows]


class Baseline:
    """Statistics of the training rows that drift monitoring compares against, counted a chunk at a time."""

    def __init__(self) -> None:
        self.labels, self.languages, self.scripts = Counter(), Counter(), Counter()
        self.characters: list = []
        self.words: list = []
        self.distinct_words: set[str] = set()

    def add(self, rows, scripts: list[str]) -> None:
        """Training rows, and their texts' dominant scripts (the monitoring reference's feature, computed once)."""
        self.labels.update(rows["label"])
        self.languages.update(rows["language"])
        self.scripts.update(scripts)
        self.characters.append(rows["text"].str.len())
        split = rows["text"].str.split()
        self.words.append(split.str.len())
        self.distinct_words.update(word for words in split for word in words)

    def to_json(self) -> dict[str, Any]:
        import pandas as pd

        def distribution(counter: Counter) -> dict[str, float]:
            total = sum(counter.values())
            return {str(k): round(float(counter[k] / total), 6) for k in sorted(counter)}

        def numeric(parts: list) -> dict[str, Any]:
            series = pd.concat(parts, ignore_index=True)
            return {
                "mean": float(series.mean()),
                "std": float(series.std(ddof=0)),
                "min": int(series.min()),
                "max": int(series.max()),
                "quantiles": {str(q): float(series.quantile(q)) for q in LENGTH_QUANTILES},
            }

        return {
            "rows": sum(self.labels.values()),
            "label_distribution": distribution(self.labels),
            "language_distribution": distribution(self.languages),
            "script_distribution": distribution(self.scripts),
            "text_length_chars": numeric(self.characters),
            "text_length_words": numeric(self.words),
            "vocabulary_sample_size": len(self.distinct_words),
        }


def normalized_chunks(raw: Path, fmt: str, columns: dict[str, str], chunk_rows: int) -> Iterator:
    """The table's rows with normalized text and stripped labels, rows whose text is empty left out."""
    meter = Meter("rows read and normalized")
    for rows in read_dataset_chunks(raw, fmt, columns, chunk_rows):
        rows["text"] = rows["text"].astype(str).map(normalize_text)
        rows["label"] = rows["label"].astype(str).str.strip()
        meter.add(len(rows))
        yield rows.loc[rows["text"] != "", [*COLUMNS, "split"]]
    meter.done()


def main(argv: Sequence[str] | None = None) -> None:
    parser = processing_parser(__doc__)
    parser.add_argument("--format", default="tsv")
    parser.add_argument("--columns", default="")
    parser.add_argument("--validation_fraction", type=float, default=0.1)
    parser.add_argument("--test_fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--chunk_rows", type=positive_rows, default=CHUNK_ROWS, help="rows held at once: what sets memory"
    )
    args = parser.parse_args(argv)
    root = args.processing_root
    columns = dict(pair.split("=", 1) for pair in args.columns.split(",") if "=" in pair)
    with tempfile.TemporaryDirectory(prefix="preprocess-", dir=root) as scratch:
        chunks = normalized_chunks(root / "input" / "raw", args.format, columns, args.chunk_rows)
        write_splits(root, Path(scratch), chunks, args)


def write_splits(root: Path, scratch: Path, chunks: Iterator, args) -> None:
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pandas.api.types import union_categoricals

    schema = pa.schema([(name, pa.string()) for name in COLUMNS])
    kept: dict[str, list] = {"label": [], "language": [], "split": []}  # a small code per row
    with pq.ParquetWriter(scratch / "rows.parquet", schema) as rows_file:
        for rows in chunks:
            for name, codes in kept.items():
                codes.append(pd.Categorical(rows[name]))
            rows_file.write_table(pa.Table.from_pandas(rows[COLUMNS], schema=schema, preserve_index=False))
    if not kept["label"]:
        raise DataError("no rows with text")
    labels, languages, given = (union_categoricals(codes) for codes in kept.values())
    orders = split_orders(labels, languages, given, args.validation_fraction, args.test_fraction, args.seed)
    for split in SPLITS:
        if not len(orders[split]):
            raise DataError(f"the '{split}' split is empty")
    split_of, place_of = np.zeros(len(labels), dtype=np.int64), np.zeros(len(labels), dtype=np.int64)
    for number, split in enumerate(SPLITS):
        split_of[orders[split]], place_of[orders[split]] = number, np.arange(len(orders[split]))
    buckets = bucket_rows(scratch, split_of, place_of, args.chunk_rows)
    reference = MonitoringReference()
    for number, split in enumerate(SPLITS):
        baseline, languages_seen = Baseline(), set()
        with pq.ParquetWriter(root / "output" / split / "data.parquet", schema) as split_file:
            for key in sorted(key for key in buckets if key[0] == number):
                table = pq.read_table(buckets[key])
                table = table.take(pa.compute.sort_indices(table["place"])).drop_columns(["place"])
                split_file.write_table(table)
                rows = table.to_pandas()
                languages_seen.update(rows["language"])
                features = reference.add(split, rows)
                if split == "train":
                    baseline.add(rows, features["script"])
                buckets[key].unlink()
        print(f"{split}: {len(orders[split])} rows, languages {sorted(languages_seen)}")
        if split == "train":
            profile = json.dumps(baseline.to_json(), indent=2, ensure_ascii=False)
            (root / "output" / "profile" / "baseline.json").write_text(profile)
    reference.save(root / "output" / "profile")


def bucket_rows(scratch: Path, split_of, place_of, chunk_rows: int) -> dict[tuple[int, int], Path]:
    """The normalized rows, each written with its place to the bucket of its split that holds that place
    (`chunk_rows` places a bucket); the buckets' files by (split, bucket)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    writers: dict[tuple[int, int], pq.ParquetWriter] = {}
    paths: dict[tuple[int, int], Path] = {}
    start = 0
    try:
        for batch in pq.ParquetFile(scratch / "rows.parquet").iter_batches(batch_size=chunk_rows):
            splits, places = split_of[start : start + batch.num_rows], place_of[start : start + batch.num_rows]
            start += batch.num_rows
            # the batch's rows grouped by bucket with one sort (a random split sends them to every bucket)
            width = len(place_of) // chunk_rows + 1  # a split's buckets at most
            keys = splits * width + places // chunk_rows
            order = np.argsort(keys, kind="stable")
            table = pa.Table.from_batches([batch]).append_column("place", pa.array(places)).take(order)
            keys = keys[order]
            firsts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
            for first, end in zip(firsts, [*firsts[1:], len(keys)], strict=True):
                part = table.slice(first, end - first)
                split, bucket = divmod(int(keys[first]), width)
                if (split, bucket) not in writers:
                    paths[split, bucket] = scratch / f"bucket-{split}-{bucket}.parquet"
                    writers[split, bucket] = pq.ParquetWriter(paths[split, bucket], part.schema)
                writers[split, bucket].write_table(part)
    finally:
        for writer in writers.values():
            writer.close()
    return paths


class MonitoringReference:
    """What drift monitoring compares traffic with, computed once, here: the training texts' derived features,
    the training vocabulary, and the share of unknown words that held-out text (the validation split) has."""

    def __init__(self) -> None:
        from steps.profile import Profile

        self.profile, self.words = Profile(), set()
        self.vocabulary = None

    def add(self, split: str, rows) -> dict[str, list]:
        """A bucket of a split's rows; the features it derived from them (the training rows' script, length,
        language; the validation rows' unknown-token rate)."""
        from steps.profile import Vocabulary, text_feature_columns

        texts, features = list(rows["text"]), {}
        if split == "train":
            self.words |= Vocabulary.words_of(texts)
            # no unknown-token rate: zero by construction on the text the vocabulary comes from
            features = text_feature_columns(texts, list(rows["language"]), None)
        elif split == "validation":
            if self.vocabulary is None:
                self.vocabulary = Vocabulary(self.words)
            features = {"unknown_token_rate": self.vocabulary.unknown_rates(texts).tolist()}
        self.profile.add_columns(features)
        return features

    def save(self, folder: Path) -> None:
        self.profile.save(folder / "reference.json")
        (folder / "vocabulary.json").write_text(json.dumps(self.vocabulary.to_json(), ensure_ascii=False))


if __name__ == "__main__":
    run_entry(main)
