"""Count the reviews and their words for each label: the starter's step.

Inputs and outputs are folders, as in a SageMaker processing container: the spec's input
`reviews: {path: data/reviews.csv}` is the folder `<root>/input/reviews/` holding `reviews.csv` (an input that
is a folder keeps its files below it), and every file written to `<root>/output/counts/` is the output
`counts`. SageMaker's root is /opt/ml/processing; `pravah run` gives a local folder laid out the same way
with `--processing-root`.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable, Sequence

from steps.io import DataError, processing_parser, run_entry


def count_words(rows: Iterable[dict[str, str]], min_words: int) -> dict[str, dict[str, int]]:
    """Per label: how many reviews have at least `min_words` words, and how many words they hold."""
    reviews: Counter[str] = Counter()
    words: Counter[str] = Counter()
    for row in rows:
        size = len(row["text"].split())
        if size >= min_words:
            reviews[row["label"]] += 1
            words[row["label"]] += size
    return {label: {"reviews": reviews[label], "words": words[label]} for label in sorted(reviews)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = processing_parser(__doc__)  # --processing-root, /opt/ml/processing by default
    parser.add_argument("--min_words", type=int, default=1)
    args = parser.parse_args(argv)
    folder = args.processing_root / "input" / "reviews"
    files = sorted(folder.rglob("*.csv"))
    if not files:
        raise DataError(f"no .csv file in {folder}")
    rows = []
    for path in files:
        with path.open(encoding="utf-8", newline="") as handle:
            table = csv.DictReader(handle)
            if not {"text", "label"} <= set(table.fieldnames or []):
                raise DataError(f"{path}: needs the columns text and label, has {table.fieldnames}")
            rows.extend(table)
    counts = count_words(rows, args.min_words)
    output = args.processing_root / "output" / "counts"
    output.mkdir(parents=True, exist_ok=True)
    (output / "counts.json").write_text(json.dumps(counts, indent=2) + "\n", encoding="utf-8")
    print(f"{len(rows)} reviews read from {len(files)} file(s): {counts}")  # printed lines go to the step's log


if __name__ == "__main__":
    run_entry(main)  # a DataError ends the step with its message and exit code 2, no traceback
