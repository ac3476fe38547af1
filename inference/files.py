"""Scoring a file with a registered version, without a server: CSV, TSV or JSON lines in, the same rows with
their predictions out, streamed in chunks through the same Predictor as the endpoints.

A row that cannot be scored (no text, a value of the wrong type) gets its reason in the output's `error` and is
reported by its line number; the others are scored. The output appears whole or not at all: it is written
beside its final name and moved into place at the end.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foundation.errors import PravahError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}
CHUNK_ROWS = 1024
REPORTED = 20  # refused rows named one by one; beyond, counted


@dataclass
class Scored:
    rows: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)
    refused_count: int = 0
    seconds: float = 0.0


def file_format(path: Path) -> str:
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        raise PravahError(f"{path}: give a .csv, .tsv or .jsonl file (the format is read from the name)")
    return found


def score_file(
    predictor, source: Path, target: Path, top_k: int = 3, progress: Callable[[str], None] = lambda line: None
) -> Scored:
    """Score every row of `source` into `target` (formats from their names); what was scored and refused."""
    if not source.is_file():
        raise PravahError(f"{source}: no such file")
    reads, writes = file_format(source), file_format(target)
    columns = predictor.manifest.get("features") or ["text"]
    scored, started = Scored(), time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (renamed into place or removed below)
        "w", dir=target.parent, prefix=f".{target.name}.", delete=False, encoding="utf-8", newline=""
    )
    try:
        with handle:
            for number, (lines, rows) in enumerate(_chunks(source, reads, columns)):
                results = _results(predictor, lines, rows, columns, top_k, scored)
                _write(handle, writes, rows, results, header=number == 0)
                scored.rows += len(rows)
                rate = scored.rows / max(time.perf_counter() - started, 1e-9)
                progress(f"  {scored.rows:,} rows read, {scored.refused_count:,} refused ({rate:,.0f} rows/s)")
        os.replace(handle.name, target)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    scored.seconds = time.perf_counter() - started
    return scored


def _chunks(source: Path, kind: str, columns: list[str]) -> Iterator[tuple[list[int], list[dict[str, Any]]]]:
    """(line numbers, rows as {column: value}) per chunk; a header without the model's columns is an error."""
    if kind == "jsonl":
        yield from _json_lines(source)
        return
    import pandas as pd

    try:
        reader = pd.read_csv(
            source, sep="\t" if kind == "tsv" else ",", chunksize=CHUNK_ROWS, encoding="utf-8", keep_default_na=True
        )
        first_line = 2  # line 1 is the header
        for frame in reader:
            missing = [c for c in columns if c not in frame.columns]
            if missing:
                raise PravahError(
                    f"{source}: no column {missing[0]!r} (the model reads {', '.join(columns)}; the "
                    f"file has {', '.join(map(str, frame.columns))})"
                )
            rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
            yield list(range(first_line, first_line + len(rows))), rows
            first_line += len(rows)
    except UnicodeDecodeError as exc:
        raise PravahError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except pd.errors.ParserError as exc:
        raise PravahError(f"{source}: not a readable {kind.upper()} file ({exc})") from None


def _json_lines(source: Path) -> Iterator[tuple[list[int], list[dict[str, Any]]]]:
    lines: list[int] = []
    rows: list[dict[str, Any]] = []
    with source.open(encoding="utf-8", errors="strict") as handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as exc:
                    row = {"__error__": f"not JSON: {exc}"}
                lines.append(number)
                rows.append(row if isinstance(row, dict) else {"__error__": "not a JSON object"})
                if len(rows) == CHUNK_ROWS:
                    yield lines, rows
                    lines, rows = [], []
        except UnicodeDecodeError as exc:
            raise PravahError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if rows:
        yield lines, rows


def _results(
    predictor, lines: list[int], rows: list[dict[str, Any]], columns: list[str], top_k: int, scored: Scored
) -> list[dict[str, Any]]:
    """Each row's result, or {"error": reason} for a row that cannot be scored."""
    results: list[dict[str, Any]] = [{} for _ in rows]
    good: list[int] = []
    for index, (line, row) in enumerate(zip(lines, rows, strict=True)):
        reason = row.get("__error__") or _problem(row, columns)
        if reason:
            results[index] = {"error": reason}
            scored.refused_count += 1
            if len(scored.refused) < REPORTED:
                scored.refused.append((line, reason))
        else:
            good.append(index)
    if good:
        items = [rows[i]["text"] if columns == ["text"] else {c: rows[i].get(c) for c in columns} for i in good]
        for index, result in zip(good, predictor.results(items, top_k), strict=True):
            results[index] = result
    return results


def _problem(row: dict[str, Any], columns: list[str]) -> str | None:
    if columns == ["text"]:
        text = row.get("text")
        if text is None:
            return "no text"
        if not isinstance(text, str):
            return "the text is not a string"
        return None if text.strip() else "the text is empty"
    missing = [c for c in columns if c not in row]
    return f"no value for {missing[0]!r}" if missing else None


def _write(handle, kind: str, rows: list[dict[str, Any]], results: list[dict[str, Any]], header: bool) -> None:
    if kind == "jsonl":
        for row, result in zip(rows, results, strict=True):
            row = {k: v for k, v in row.items() if k != "__error__"}
            handle.write(json.dumps({**row, **result}, ensure_ascii=False, default=str) + "\n")
        return
    import csv

    flat = [
        {**{k: v for k, v in row.items() if k != "__error__"}, **_flat(result)}
        for row, result in zip(rows, results, strict=True)
    ]
    names = list(dict.fromkeys(name for row in flat for name in row))
    for extra in ("prediction", "confidence", "alternatives", "error"):
        if extra not in names:
            names.append(extra)
    writer = csv.DictWriter(handle, fieldnames=names, delimiter="\t" if kind == "tsv" else ",", extrasaction="ignore")
    if header:
        writer.writeheader()
    writer.writerows(flat)


def _flat(result: dict[str, Any]) -> dict[str, Any]:
    """A result as output columns: prediction, confidence, the alternatives as label:confidence, or the error."""
    if "error" in result:
        return {"prediction": None, "confidence": None, "error": result["error"]}
    alternatives = ";".join(f"{a['value']}:{a['confidence']:.4f}" for a in result.get("alternatives", []))
    return {
        "prediction": result["prediction"],
        "confidence": result["confidence"],
        "alternatives": alternatives,
        "error": None,
    }
