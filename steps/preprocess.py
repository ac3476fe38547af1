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

On one of several SageMaker instances (its resourceconfig.json says so; the pipeline's `shards`), it gets a
share of the table's files and writes its part of each split (`data-HOST.parquet`) and of the profile
(steps/baseline.py); a table without its own splits must then be split by each text's hash (`--split_by hash`).
`--merge true` runs once after them, on their profile parts and the validation split: the profile one instance
would have written.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from artifact.text import normalize_text
from steps.baseline import SPLITS, TrainingProfile
from steps.instances import instance_share
from steps.io import (
    FORMATS,
    DataError,
    channel_batches,
    positive_rows,
    processing_parser,
    read_dataset_chunks,
    run_entry,
)
from steps.progress import CHUNK_ROWS, Meter

COLUMNS = ["id", "text", "label", "language"]


def split_orders(labels, languages, given, drawn, validation_fraction: float, test_fraction: float, seed: int):
    """Each split's rows, as positions in the table, in the order they are written. `labels`, `languages` and
    `given` (the split the data says, missing where it says none) are pandas Categoricals, a row's value each;
    `drawn`: each row's split drawn from its text alone (`--split_by hash`), or None. The given splits are kept
    when every row has one, in the table's order; else the drawn ones, in the table's order; otherwise a
    stratified split by label and language with a fixed seed, each split's rows in the split's own random order
    (a streamed training reads its rows in file order: see training/sklearn_text.fit_batches)."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    if not given.isna().any():
        return {split: np.flatnonzero(np.asarray(given == split)) for split in SPLITS}
    if drawn is not None:
        return {split: np.flatnonzero(drawn == number) for number, split in enumerate(SPLITS)}
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
        "--split_by",
        choices=("stratified", "hash"),
        default="stratified",
        help="rows without a given split: stratified by label and language over the whole table, or each by a "
        "seeded hash of its text (what a table sharded over instances needs: each decides its rows alone)",
    )
    parser.add_argument(
        "--chunk_rows", type=positive_rows, default=CHUNK_ROWS, help="rows held at once: what sets memory"
    )
    parser.add_argument(
        "--merge",
        choices=("false", "true"),
        default="false",
        help="the merge of a run sharded over instances: their profile parts (input/profile) and the validation "
        "split (input/validation) into the profile output",
    )
    args = parser.parse_args(argv)
    root = args.processing_root
    if args.merge == "true":
        return merge_parts(root, args.chunk_rows)
    host, _, instances = instance_share(root.parent / "config")
    shard = host if instances > 1 else None  # this instance's name, when it preprocesses a share of the table
    columns = dict(pair.split("=", 1) for pair in args.columns.split(",") if "=" in pair)
    raw = root / "input" / "raw"
    if shard and not any(raw.rglob(f"*{FORMATS.get(args.format, '?')}")):  # fewer files than instances
        print(f"{shard}: no {args.format} files in its share of the table")
        return TrainingProfile().save_part(root / "output" / "profile", shard)
    with tempfile.TemporaryDirectory(prefix="preprocess-", dir=root) as scratch:
        chunks = normalized_chunks(raw, args.format, columns, args.chunk_rows)
        write_splits(root, Path(scratch), chunks, args, shard)


def drawn_splits(texts, seed: int, validation_fraction: float, test_fraction: float):
    """Each text's split (0 train, 1 validation, 2 test) from a seeded hash of the text alone: about the fractions
    asked, and the same split for the same text wherever it is read (a duplicate never straddles splits)."""
    import numpy as np
    import pandas as pd

    hashed = pd.util.hash_array(texts.to_numpy(dtype=object), hash_key=f"{seed:016d}"[-16:], categorize=False)
    share = hashed.astype(np.float64) / 2.0**64
    return np.where(share < test_fraction, 2, np.where(share < test_fraction + validation_fraction, 1, 0))


def write_splits(root: Path, scratch: Path, chunks: Iterator, args, shard: str | None = None) -> None:
    """The splits' files and the training profile; for an instance of a sharded run (`shard`, its host), its
    part of each split (`data-HOST.parquet`) and of the profile, for the merge."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pandas.api.types import union_categoricals

    schema = pa.schema([(name, pa.string()) for name in COLUMNS])
    kept: dict[str, list] = {"label": [], "language": [], "split": []}  # a small code per row
    drawn = []
    with pq.ParquetWriter(scratch / "rows.parquet", schema) as rows_file:
        for rows in chunks:
            for name, codes in kept.items():
                codes.append(pd.Categorical(rows[name]))
            if args.split_by == "hash":
                drawn.append(drawn_splits(rows["text"], args.seed, args.validation_fraction, args.test_fraction))
            rows_file.write_table(pa.Table.from_pandas(rows[COLUMNS], schema=schema, preserve_index=False))
    if not kept["label"]:
        raise DataError("no rows with text")
    labels, languages, given = (union_categoricals(codes) for codes in kept.values())
    if shard and given.isna().any() and not drawn:
        raise DataError(
            "preprocessing sharded over instances splits each instance's rows alone: give the table its splits "
            "(a split column, or train/dev/test files), or split_by hash (each row by a seeded hash of its text)"
        )
    fractions = (args.validation_fraction, args.test_fraction, args.seed)
    orders = split_orders(labels, languages, given, np.concatenate(drawn) if drawn else None, *fractions)
    for split in SPLITS if not shard else ():  # a shard's splits may be empty: the merge checks the totals
        if not len(orders[split]):
            raise DataError(f"the '{split}' split is empty")
    split_of, place_of = np.zeros(len(labels), dtype=np.int64), np.zeros(len(labels), dtype=np.int64)
    for number, split in enumerate(SPLITS):
        split_of[orders[split]], place_of[orders[split]] = number, np.arange(len(orders[split]))
    buckets = bucket_rows(scratch, split_of, place_of, args.chunk_rows)
    profile = TrainingProfile()
    for number, split in enumerate(SPLITS):
        languages_seen = set()
        with pq.ParquetWriter(root / "output" / split / f"data{f'-{shard}' if shard else ''}.parquet", schema) as out:
            for key in sorted(key for key in buckets if key[0] == number):
                table = pq.read_table(buckets[key])
                table = table.take(pa.compute.sort_indices(table["place"])).drop_columns(["place"])
                out.write_table(table)
                rows = table.to_pandas()
                languages_seen.update(rows["language"])
                profile.add(split, rows, profiled=not (shard and split == "validation"))
                buckets[key].unlink()
        print(f"{split}: {len(orders[split])} rows, languages {sorted(languages_seen)}")
    if shard:  # the held-out rows' unknown words wait for every instance's training words: the merge's
        profile.save_part(root / "output" / "profile", shard)
    else:
        profile.save(root / "output" / "profile")


def merge_parts(root: Path, chunk_rows: int) -> None:
    """A sharded run's merge: its instances' profile parts as one, the validation split's unknown-word share
    counted against the whole training vocabulary, written as one instance's run writes them."""
    profile = TrainingProfile.merged(root / "input" / "profile")
    for split in SPLITS:
        if not profile.rows[split]:
            raise DataError(f"the '{split}' split is empty")
    for rows in channel_batches(root / "input" / "validation", ["text"], chunk_rows):
        profile.reference.add("validation", rows)
    profile.save(root / "output" / "profile")
    print(", ".join(f"{split}: {profile.rows[split]} rows" for split in SPLITS) + " (merged)")


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


if __name__ == "__main__":
    run_entry(main)
