"""The profile of the training data that preprocess writes once: `baseline.json` (the training split's label,
language and script mix and its text lengths) and the monitoring reference (`reference.json`: the training
texts' features and the share of unknown words in held-out text; `vocabulary.json`: the training words).

Everything is kept as counts (lengths as histograms, words as sets), so the profile of parts of the data adds up
to the profile of all of it: a chunk's, or a SageMaker instance's when preprocessing is sharded over instances,
each writing its part (`PART`) for a merge to combine. Only the held-out texts' unknown-word share waits for
the whole training vocabulary: it is counted once every part is in.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

LENGTH_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
SPLITS = ("train", "validation", "test")
PART = "{host}.json"  # an instance's part of the profile, in its profile output


class Baseline:
    """Statistics of the training rows that drift monitoring compares against, counted a chunk at a time."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        state = state or {}
        self.labels, self.languages, self.scripts = (Counter(state.get(name, {})) for name in _MIXES)
        self.characters, self.words = (Counter({int(k): v for k, v in state.get(n, {}).items()}) for n in _LENGTHS)
        self.distinct_words: set[str] = set(state.get("distinct_words", []))

    def add(self, rows, scripts: list[str]) -> None:
        """Training rows, and their texts' dominant scripts (the monitoring reference's feature, computed once)."""
        self.labels.update(rows["label"])
        self.languages.update(rows["language"])
        self.scripts.update(scripts)
        split = rows["text"].str.split()
        for histogram, lengths in ((self.characters, rows["text"].str.len()), (self.words, split.str.len())):
            histogram.update({int(length): int(n) for length, n in lengths.value_counts().items()})
        self.distinct_words.update(word for words in split for word in words)

    def merge(self, other: Baseline) -> None:
        for name in (*_MIXES, *_LENGTHS):
            getattr(self, name).update(getattr(other, name))
        self.distinct_words |= other.distinct_words

    def state(self) -> dict[str, Any]:
        counts = {name: dict(getattr(self, name)) for name in (*_MIXES, *_LENGTHS)}
        return {**counts, "distinct_words": sorted(self.distinct_words)}

    def to_json(self) -> dict[str, Any]:
        def distribution(counter: Counter) -> dict[str, float]:
            total = sum(counter.values())
            return {str(k): round(float(counter[k] / total), 6) for k in sorted(counter)}

        return {
            "rows": sum(self.labels.values()),
            "label_distribution": distribution(self.labels),
            "language_distribution": distribution(self.languages),
            "script_distribution": distribution(self.scripts),
            "text_length_chars": numeric_summary(self.characters),
            "text_length_words": numeric_summary(self.words),
            "vocabulary_sample_size": len(self.distinct_words),
        }


_MIXES = ("labels", "languages", "scripts")
_LENGTHS = ("characters", "words")


def numeric_summary(histogram: Counter) -> dict[str, Any]:
    """Mean, standard deviation, extremes and quantiles of whole numbers given as value -> rows, as pandas gives
    them for the values themselves (quantiles linearly interpolated between the sorted values)."""
    import numpy as np

    values = np.array(sorted(histogram), dtype=np.int64)
    counts = np.array([histogram[v] for v in values], dtype=np.int64)
    rows = int(counts.sum())
    mean = float((values * counts).sum()) / rows
    ends = np.cumsum(counts)  # the sorted values' positions: value i fills [ends[i-1], ends[i])

    def at(position: int) -> int:
        return int(values[np.searchsorted(ends, position, side="right")])

    def quantile(q: float) -> float:
        place = q * (rows - 1)
        below = int(np.floor(place))
        low, high = at(below), at(min(below + 1, rows - 1))
        return float(low + (high - low) * (place - below))

    return {
        "mean": mean,
        "std": float(np.sqrt((counts * (values - mean) ** 2).sum() / rows)),
        "min": int(values[0]),
        "max": int(values[-1]),
        "quantiles": {str(q): quantile(q) for q in LENGTH_QUANTILES},
    }


class MonitoringReference:
    """What drift monitoring compares traffic with: the training texts' derived features, the training
    vocabulary, and the share of unknown words that held-out text (the validation split) has."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        from steps.profile import Profile

        state = state or {}
        self.profile = Profile.from_json(state["profile"]) if "profile" in state else Profile()
        self.words: set[str] = set(state.get("words", []))
        self.vocabulary = None

    def add(self, split: str, rows) -> dict[str, list]:
        """A bucket of a split's rows; the features it derived from them (the training rows' script, length,
        language; the validation rows' unknown-token rate, once every training row is in)."""
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

    def merge(self, other: MonitoringReference) -> None:
        self.profile = self.profile.merge(other.profile)
        self.words |= other.words

    def state(self) -> dict[str, Any]:
        return {"profile": self.profile.to_json(), "words": sorted(self.words)}

    def save(self, folder: Path) -> None:
        self.profile.save(folder / "reference.json")
        (folder / "vocabulary.json").write_text(json.dumps(self.vocabulary.to_json(), ensure_ascii=False))


class TrainingProfile:
    """The baseline and the monitoring reference of some rows, and how many rows each split got."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        state = state or {}
        self.baseline = Baseline(state.get("baseline"))
        self.reference = MonitoringReference(state.get("reference"))
        self.rows = Counter(state.get("rows", {}))

    def add(self, split: str, rows, profiled: bool = True) -> None:
        """A bucket of a split's rows: counted, and profiled unless the held-out rows wait for the merge."""
        self.rows[split] += len(rows)
        features = self.reference.add(split, rows) if profiled else {}
        if split == "train":
            self.baseline.add(rows, features["script"])

    @classmethod
    def merged(cls, folder: Path) -> TrainingProfile:
        """The parts that a sharded preprocess's instances wrote to `folder`, as one."""
        merged = cls()
        for path in sorted(folder.glob(PART.format(host="*"))):
            part = cls(json.loads(path.read_text()))
            merged.baseline.merge(part.baseline)
            merged.reference.merge(part.reference)
            merged.rows.update(part.rows)
        return merged

    def save_part(self, folder: Path, host: str) -> None:
        """This instance's part, for the merge: everything but the held-out texts' unknown-word share."""
        state = {"baseline": self.baseline.state(), "reference": self.reference.state(), "rows": dict(self.rows)}
        (folder / PART.format(host=host)).write_text(json.dumps(state, ensure_ascii=False))

    def save(self, folder: Path) -> None:
        """baseline.json, reference.json and vocabulary.json."""
        (folder / "baseline.json").write_text(json.dumps(self.baseline.to_json(), indent=2, ensure_ascii=False))
        self.reference.save(folder)
