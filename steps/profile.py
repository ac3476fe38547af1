"""The features drift is measured on, and their distributions as mergeable counts.

Text has no columns to compare, so each request becomes a few derived features: its language (as the caller
declared it), its script, its length, the share of its words the model never saw in training, and the
model's answer (predicted label and confidence). A `Profile` keeps, per feature, how often each value
occurred: exact for labels, languages, scripts and lengths; confidence and unknown-word rate to 0.001. It
is small whatever the row count, adds rows a batch at a time, and merges, so the same structure is the training
reference (computed once, by preprocess and evaluate) and the window of a monitoring run.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from artifact.text import dominant_scripts, language_code

CATEGORICAL = ("language", "script", "prediction")
NUMERIC = ("text_length", "confidence", "unknown_token_rate")
FEATURES = CATEGORICAL + NUMERIC
_ROUNDED = {"confidence", "unknown_token_rate"}  # kept to 0.001


def text_feature_columns(
    texts: Sequence[str], languages: Sequence[str | None], vocabulary: Vocabulary | None
) -> dict[str, list]:
    """The features of many requests at once, as columns. A request's language counts only when the caller
    declared one (None otherwise): drift of the language mix is measured over the requests that say it. No
    vocabulary: no unknown-token rate (the texts the vocabulary is being made of)."""
    codes = {language: language_code(language) or "unknown" for language in set(languages) if language}
    columns = {"script": dominant_scripts(texts), "text_length": list(map(len, texts))}
    if vocabulary is not None:
        columns["unknown_token_rate"] = vocabulary.unknown_rates(texts).tolist()
    columns["language"] = [codes[language] if language else None for language in languages]
    return columns


class Vocabulary:
    """The words of the training texts (lowercased, split at whitespace), and the share of the words of new
    texts that it does not hold. Arrow does the splitting and the lookups in C++, without a Python string
    per word."""

    def __init__(self, words: Iterable[str]):
        import pyarrow as pa

        self.words = pa.array(sorted(set(words)), pa.string())

    @classmethod
    def of_texts(cls, texts: Sequence[str]) -> Vocabulary:
        return cls(cls.words_of(texts))

    @staticmethod
    def words_of(texts: Sequence[str]) -> set[str]:
        """The distinct words of some texts: a vocabulary made a batch at a time is the union of these."""
        import pyarrow.compute as pc

        words = pc.list_flatten(_words(texts))
        return set(pc.unique(pc.filter(words, pc.greater(pc.utf8_length(words), 0))).to_pylist())

    def to_json(self) -> list[str]:
        return self.words.to_pylist()

    def unknown_rates(self, texts: Sequence[str]):
        """Per text, the share of its words that the vocabulary does not hold (0 for a text without words)."""
        import numpy as np
        import pyarrow.compute as pc

        words = _words(texts)
        flat = pc.list_flatten(words)
        real = np.array(pc.utf8_length(flat)) > 0  # Arrow splits "" into one empty word; str.split into none
        known = np.array(pc.is_in(flat, value_set=self.words), dtype=bool) & real
        sizes = np.diff(np.array(words.offsets, dtype=np.int64))
        owners = np.repeat(np.arange(len(texts)), sizes)  # each word's text, from the lists' offsets
        totals = np.bincount(owners, weights=real, minlength=len(texts))
        unknown = 1.0 - np.bincount(owners, weights=known, minlength=len(texts)) / np.maximum(totals, 1)
        return np.where(totals > 0, unknown, 0.0)


def _words(texts: Sequence[str]):
    import pyarrow as pa
    import pyarrow.compute as pc

    # trimmed first: Arrow 25's split mishandles a run of whitespace at a string's end (two empty words for
    # "ab  ", and, for the array's last string, a word read from past its end in some runs of the full suite)
    return pc.utf8_split_whitespace(pc.utf8_trim_whitespace(pc.utf8_lower(pa.array(texts, pa.string()))))


def _number(text: str) -> int | float:
    """A numeric value as written: `12` an int (a length), `0.5` or `1.0` a float (a rounded share), so that a
    profile read back writes the same keys."""
    return int(text) if text.lstrip("-").isdigit() else float(text)


class Profile:
    def __init__(self, counts: dict[str, Counter] | None = None, rows: int = 0):
        self.counts: dict[str, Counter] = {name: Counter() for name in FEATURES}
        for name, counter in (counts or {}).items():
            self.counts[name].update(counter)
        self.rows = rows

    def add(self, row: dict[str, Any]) -> None:
        self.add_columns({name: [value] for name, value in row.items()})

    def add_columns(self, columns: dict[str, Sequence]) -> None:
        """Rows given as columns of equal length; None marks a value that a row does not have."""
        import numpy as np

        self.rows += max(map(len, columns.values()), default=0)
        for name, values in columns.items():
            counter = self.counts[name]
            if name in _ROUNDED:
                values = np.round(np.asarray(values, dtype=float), 3).tolist()
            counter.update(values)
            counter.pop(None, None)

    def merge(self, other: Profile) -> Profile:
        merged = Profile(self.counts, self.rows + other.rows)
        for name, counter in other.counts.items():
            merged.counts[name].update(counter)
        return merged

    def has(self, feature: str) -> bool:
        return bool(self.counts[feature])

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "counts": {
                name: {str(k): v for k, v in sorted(c.items(), key=lambda kv: str(kv[0]))}
                for name, c in self.counts.items()
                if c
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Profile:
        counts = {}
        for name, values in data.get("counts", {}).items():
            convert = str if name in CATEGORICAL else _number
            counts[name] = Counter({convert(k): int(v) for k, v in values.items()})
        return cls(counts, int(data.get("rows", 0)))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), ensure_ascii=False))

    @classmethod
    def load(cls, path: Path) -> Profile:
        return cls.from_json(json.loads(path.read_text()))

    def mean(self, feature: str) -> float | None:
        counter = self.counts[feature]
        total = sum(counter.values())
        return sum(float(k) * v for k, v in counter.items()) / total if total else None

    def shares(self, feature: str) -> dict[str, float]:
        counter = self.counts[feature]
        total = sum(counter.values())
        return {str(k): v / total for k, v in counter.most_common()} if total else {}

    def frame(self):
        """The profile's rows back as a DataFrame, each feature's values repeated as often as they were seen
        (features counted over fewer rows are padded with NaN, which drift tests leave out)."""
        import pandas as pd

        columns = {
            name: pd.Series(
                [value for value, n in counter.items() for _ in range(n)],
                dtype=object if name in CATEGORICAL else float,
            )
            for name, counter in self.counts.items()
            if counter
        }
        return pd.concat(columns, axis=1)
