"""A window of an endpoint's captured exchanges, read as a stream: worker processes (one per core) read the
captured files a batch of lines at a time; each line is parsed on its own (a corrupt one is counted and
skipped, with a warning, as is an unreadable file), the features of the batch are derived together (numpy and
Arrow, not a Python loop per text), and what is kept is a `Profile` of counts and a bounded reservoir sample
for the HTML report, so memory does not grow with the number of records. The files are laid out as Model
Monitor lays out what an endpoint captured: `<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl`."""

from __future__ import annotations

import base64
import binascii
import itertools
import os
import random
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson

from monitoring.estimate import Estimate, probability_rows
from steps.profile import Profile, Vocabulary, text_feature_columns

SAMPLE_ROWS = 5_000  # rows of the window kept for the HTML report
BATCH_LINES = 5_000  # captured lines read before their features are derived together (bounded memory)
WORKERS = min(8, len(os.sched_getaffinity(0)))  # processes reading the captured files: one per core it may use


@dataclass
class Window:
    profile: Profile = field(default_factory=Profile)
    sample: list[dict[str, Any]] = field(default_factory=list)
    files: int = 0
    unreadable_files: int = 0
    corrupt_lines: int = 0
    outside_window: int = 0
    labelled: int = 0
    confusion: Counter = field(default_factory=Counter)  # (truth, predicted) -> count
    estimates: dict[str, Estimate] = field(default_factory=dict)  # "all", "labelled", and each language's

    def to_json(self) -> bytes:
        """The window as JSON, for a part scanned on one instance of a sharded job (monitoring.scheduled) and
        merged on another: every count and sum exactly as kept."""
        return orjson.dumps(
            {
                "profile": self.profile.to_json(),
                "sample": self.sample,
                **{name: getattr(self, name) for name in _COUNTS},
                "confusion": [[truth, predicted, n] for (truth, predicted), n in sorted(self.confusion.items())],
                "estimates": {group: estimate.to_json() for group, estimate in self.estimates.items()},
            },
            option=orjson.OPT_SERIALIZE_NUMPY,
        )

    @classmethod
    def from_json(cls, text: bytes | str) -> Window:
        data = orjson.loads(text)
        return cls(
            profile=Profile.from_json(data["profile"]),
            sample=data["sample"],
            **{name: int(data[name]) for name in _COUNTS},
            confusion=Counter({(truth, predicted): n for truth, predicted, n in data["confusion"]}),
            estimates={group: Estimate.from_json(estimate) for group, estimate in data["estimates"].items()},
        )


_COUNTS = ("files", "unreadable_files", "corrupt_lines", "outside_window", "labelled")


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def capture_hours(start: datetime, end: datetime) -> list[str]:
    """The `yyyy/mm/dd/hh` folders of a capture that [start, end) overlaps."""
    hour, hours = start.replace(minute=0, second=0, microsecond=0), []
    while hour < end:
        hours.append(hour.strftime("%Y/%m/%d/%H"))
        hour += timedelta(hours=1)
    return hours


def captured_files(source: Path, start: datetime, end: datetime) -> Iterator[Path]:
    """Files under `<source>/<variant>/yyyy/mm/dd/hh/` whose hour overlaps [start, end)."""
    for variant in sorted(p for p in source.iterdir() if p.is_dir()) if source.is_dir() else []:
        for hour in capture_hours(start, end):
            if (variant / hour).is_dir():
                yield from sorted((variant / hour).glob("*.jsonl"))


def scan(
    files: list[Path],
    start: datetime,
    end: datetime,
    vocabulary: Vocabulary,
    labels: dict[str, str],
    classes: list[str] | None = None,
    workers: int = 1,
    while_waiting: Callable[[], object] | None = None,
) -> Window:
    """The window's counts, sample, quality and (given the model's `classes`) estimated performance from
    `files`: split among `workers` processes, then merged; `while_waiting` runs in this process meanwhile."""
    if workers <= 1 or len(files) < 2:
        return _scan_files(files, start, end, vocabulary, labels, classes or [])
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        parts = [
            pool.submit(_scan_files, files[i::workers], start, end, vocabulary, labels, classes or [], i)
            for i in range(workers)
        ]
        if while_waiting:
            while_waiting()
        return merge([part.result() for part in parts])


def _scan_files(
    files: list[Path],
    start: datetime,
    end: datetime,
    vocabulary: Vocabulary,
    labels: dict[str, str],
    classes: list[str],
    seed: int = 7,
) -> Window:
    window, sampler = Window(), Reservoir(SAMPLE_ROWS, seed)
    for path in files:
        window.files += 1
        bad_before = window.corrupt_lines
        try:
            with path.open("rb") as handle:
                while batch := _read_batch(handle, window, start, end, labels):
                    _add_batch(batch, window, vocabulary, sampler, classes)
        except OSError as exc:
            window.unreadable_files += 1
            print(f"warning: skipped unreadable capture file {path}: {exc}", file=sys.stderr)
            continue
        if window.corrupt_lines > bad_before:
            print(f"warning: {path}: skipped {window.corrupt_lines - bad_before} corrupt lines", file=sys.stderr)
    window.sample = sampler.rows
    return window


def merge(windows: list[Window]) -> Window:
    merged, rng = Window(), random.Random(7)
    for window in windows:
        merged.profile = merged.profile.merge(window.profile)
        for name in _COUNTS:
            setattr(merged, name, getattr(merged, name) + getattr(window, name))
        merged.confusion.update(window.confusion)
        for group, estimate in window.estimates.items():
            merged.estimates[group] = merged.estimates[group].merge(estimate) if group in merged.estimates else estimate
    for window in windows:  # each part's sample in proportion to the rows it saw
        share = round(SAMPLE_ROWS * window.profile.rows / max(merged.profile.rows, 1))
        merged.sample += rng.sample(window.sample, min(share, len(window.sample)))
    return merged


@dataclass
class Batch:
    """Up to BATCH_LINES captured requests of one file, as columns."""

    texts: list[str] = field(default_factory=list)
    languages: list[str | None] = field(default_factory=list)
    predictions: list[str] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)
    ranked: list[list[tuple[str, float]]] = field(default_factory=list)  # each answer's labels, prediction first
    labelled: list[int] = field(default_factory=list)  # the rows with a label


def _read_batch(
    handle: IO[bytes], window: Window, start: datetime, end: datetime, labels: dict[str, str]
) -> Batch | None:
    """The next batch of well-formed records in the window (None at the end of the file); what is outside the
    window or malformed is counted and skipped. The only per-record Python of the job, kept to parsing: the
    features, counts and sample are derived per batch (`_add_batch`)."""
    batch, lines = Batch(), 0
    for line in itertools.islice(handle, BATCH_LINES):
        lines += 1
        try:
            record = orjson.loads(line)
            metadata = record["eventMetadata"]
            if not _within(metadata["inferenceTime"], start, end):
                window.outside_window += 1
                continue
            capture = record["captureData"]
            exchanges = _exchanges(_captured(capture["endpointInput"]), _captured(capture["endpointOutput"]))
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            window.corrupt_lines += 1
            continue
        if labels and len(exchanges) == 1 and (truth := labels.get(metadata.get("eventId", ""))) is not None:
            window.labelled += 1
            window.confusion[truth, exchanges[0][2]] += 1
            batch.labelled.append(len(batch.texts))
        for text, language, prediction, confidence, ranked in exchanges:
            batch.texts.append(text)
            batch.languages.append(language)
            batch.predictions.append(prediction)
            batch.confidences.append(confidence)
            batch.ranked.append(ranked)
    return batch if lines else None


def _captured(side: dict[str, Any]) -> Any:
    """A captured request or response body: JSON as text, or base64 (how SageMaker captures a content type
    that is not listed as JSON)."""
    data = side["data"]
    return orjson.loads(base64.b64decode(data, validate=True) if side.get("encoding") == "BASE64" else data)


def _exchanges(request: Any, response: Any) -> list[tuple[str, str | None, str, float, list[tuple[str, float]]]]:
    """(text, declared language, prediction, confidence, ranked labels: the prediction and its alternatives with
    their confidences) of each prediction of one captured exchange: the predict API's {"input": {text,
    metadata}} answered by {"result": ...} (a local endpoint), or a SageMaker endpoint's {"inputs": [texts]},
    {"text": ...} or [texts] (as the Lambda calls it, declaring no language) answered by {"predictions": [...]}."""
    if isinstance(request, dict) and "input" in request:
        item = request["input"]
        asked = [(item["text"], (item.get("metadata") or {}).get("language"))]
        results = [response["result"]]
    else:
        texts = request if isinstance(request, list) else [request["text"]] if "text" in request else request["inputs"]
        asked, results = [(text, None) for text in texts], response["predictions"]
    if len(asked) != len(results):
        raise ValueError("as many predictions as inputs")
    found = []
    for (text, language), result in zip(asked, results, strict=True):
        if not isinstance(text, str) or not isinstance(language, str | None):
            raise TypeError("text and language must be strings")
        prediction, confidence = str(result["prediction"]), float(result["confidence"])
        ranked = [(prediction, confidence)] + [
            (str(alternative["value"]), float(alternative["confidence"]))
            for alternative in result.get("alternatives") or []
        ]
        found.append((text, language, prediction, confidence, ranked))
    return found


def _add_batch(batch: Batch, window: Window, vocabulary: Vocabulary, sampler: Reservoir, classes: list[str]) -> None:
    if not batch.texts:
        return
    columns = text_feature_columns(batch.texts, batch.languages, vocabulary)
    columns["prediction"], columns["confidence"] = batch.predictions, batch.confidences
    window.profile.add_columns(columns)
    if classes:
        _estimate_batch(batch, window, columns, classes)
    sampler.offer(
        len(batch.texts), lambda i: {name: values[i] for name, values in columns.items() if values[i] is not None}
    )


def _estimate_batch(batch: Batch, window: Window, columns: dict[str, list], classes: list[str]) -> None:
    """The batch's expected counts, for the window, its labelled rows and each language (the declared one, or
    the script of a text that declares none)."""
    probabilities, predicted = probability_rows(batch.ranked, classes)
    groups = np.array(
        [
            f"language:{language}" if language else f"script:{script}"
            for language, script in zip(columns["language"], columns["script"], strict=True)
        ]
    )
    parts = {"all": slice(None), "labelled": np.array(batch.labelled, dtype=int)}
    parts.update({str(group): groups == group for group in np.unique(groups)})
    for name, rows in parts.items():
        window.estimates.setdefault(name, Estimate(classes)).add(probabilities[rows], predicted[rows])


class Reservoir:
    """A uniform random sample of at most `size` rows of a stream (reservoir sampling: every row equally
    likely to be kept), drawn a batch at a time."""

    def __init__(self, size: int, seed: int):
        self.size, self.seen, self.rows = size, 0, []
        self._rng = np.random.default_rng(seed)

    def offer(self, count: int, row: Callable[[int], dict[str, Any]]) -> None:
        """Consider the stream's next `count` rows; `row(i)` builds the i-th of them only if it is kept."""
        fill = min(max(self.size - len(self.rows), 0), count)
        self.rows += [row(i) for i in range(fill)]
        if count > fill:
            slots = self._rng.integers(0, self.seen + np.arange(fill, count) + 1)  # row t replaces slot j <= t
            for i in np.flatnonzero(slots < self.size):
                self.rows[slots[i]] = row(fill + int(i))
        self.seen += count


def _within(inference_time: str, start: datetime, end: datetime) -> bool:
    """start <= time < end. A UTC time with a `Z` (as captured) is compared as text to the second, and parsed
    only when it falls in the first or the last second of the window."""
    if inference_time.endswith("Z") and len(inference_time) >= 20:
        second, first, last = inference_time[:19], _second(start), _second(end)
        if first < second < last:
            return True
        if second < first or second > last:
            return False
    return start <= parse_time(inference_time) < end


@lru_cache(maxsize=16)
def _second(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
