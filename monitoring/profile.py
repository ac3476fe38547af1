"""The features drift is measured on, and their distributions as mergeable counts.

Text has no columns to compare, so each request becomes a few derived features: its language (as the caller
declared it), its script, its length, the share of its words the model never saw in training, and the
model's answer (predicted label and confidence). A `Profile` keeps, per feature, how often each value
occurred: exact for labels, languages, scripts and lengths; confidence and unknown-word rate to 0.001. It
is small whatever the row count, adds one row at a time, and merges, so the same structure is the training
reference (computed once, by preprocess and evaluate) and the window of a monitoring run.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from steps.text import dominant_script, language_code

CATEGORICAL = ("language", "script", "prediction")
NUMERIC = ("text_length", "confidence", "unknown_token_rate")
FEATURES = CATEGORICAL + NUMERIC
_ROUNDED = {"confidence", "unknown_token_rate"}  # kept to 0.001


def text_features(text: str, language: str | None, vocabulary: frozenset[str] | set[str]) -> dict[str, Any]:
    """The request's features; `language` only when the caller declared one (drift of the language mix is
    measured over the requests that say their language)."""
    words = text.lower().split()
    unknown = 1.0 - sum(map(vocabulary.__contains__, words)) / len(words) if words else 0.0
    row: dict[str, Any] = {"script": dominant_script(text), "text_length": len(text),
                           "unknown_token_rate": round(unknown, 3)}  # fmt: skip
    if language:
        row["language"] = language_code(language) or "unknown"
    return row


def vocabulary_of(texts: Iterable[str]) -> set[str]:
    return {word for text in texts for word in text.lower().split()}


class Profile:
    def __init__(self, counts: dict[str, Counter] | None = None, rows: int = 0):
        self.counts: dict[str, Counter] = {name: Counter() for name in FEATURES}
        for name, counter in (counts or {}).items():
            self.counts[name].update(counter)
        self.rows = rows

    def add(self, row: dict[str, Any]) -> None:
        self.rows += 1
        for name, value in row.items():
            if name in _ROUNDED:
                value = round(float(value), 3)
            self.counts[name][value] += 1

    def merge(self, other: Profile) -> Profile:
        merged = Profile(self.counts, self.rows + other.rows)
        for name, counter in other.counts.items():
            merged.counts[name].update(counter)
        return merged

    def has(self, feature: str) -> bool:
        return bool(self.counts[feature])

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "counts": {name: {str(k): v for k, v in sorted(c.items(), key=lambda kv: str(kv[0]))}
                                              for name, c in self.counts.items() if c}}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Profile:
        counts = {}
        for name, values in data.get("counts", {}).items():
            convert = str if name in CATEGORICAL else float
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

        columns = {name: pd.Series([value for value, n in counter.items() for _ in range(n)], dtype=object
                                   if name in CATEGORICAL else float)
                   for name, counter in self.counts.items() if counter}  # fmt: skip
        return pd.concat(columns, axis=1)
