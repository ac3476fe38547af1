"""An endpoint's traffic over time, as its server kept it (inference.metrics.SeriesWriter: a JSON line per
variant every 10 seconds under `endpoints/series/ENDPOINT/`): the last day's points, at most MAX_POINTS per
variant (averaged into buckets when there are more), as request rate, p50 and p99 latency and error rate."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any

from foundation.home import Home
from inference.metrics import SERIES_SECONDS

MAX_POINTS = 240
Lines = dict[str, list[tuple[float, float]]]


def traffic(home: Home, endpoint: str, hours: float = 24.0) -> dict[str, Lines]:
    """Per measure (requests_per_s, p50_ms, p99_ms, error_rate), per variant: (time, value) points."""
    folder = home.root / "endpoints" / "series" / endpoint
    since = time.time() - hours * 3600
    points: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path in sorted(folder.glob("*.jsonl"))[-2:] if folder.is_dir() else []:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                point = json.loads(line)
                if point["at"] >= since:
                    points[str(point["variant"])].append(point)
            except (ValueError, KeyError, TypeError):
                continue  # a line cut by a crash, or not ours
    measures: dict[str, Lines] = {"requests_per_s": {}, "p50_ms": {}, "p99_ms": {}, "error_rate": {}}
    for variant, found in points.items():
        size = max(1, -(-len(found) // MAX_POINTS))
        for start in range(0, len(found), size):
            bucket = found[start : start + size]
            at = sum(p["at"] for p in bucket) / len(bucket)
            requests = sum(p["requests"] for p in bucket)
            measures["requests_per_s"].setdefault(variant, []).append((at, requests / (SERIES_SECONDS * len(bucket))))
            measures["p50_ms"].setdefault(variant, []).append((at, max(p["p50_ms"] for p in bucket)))
            measures["p99_ms"].setdefault(variant, []).append((at, max(p["p99_ms"] for p in bucket)))
            errors = sum(p["errors"] for p in bucket)
            measures["error_rate"].setdefault(variant, []).append((at, errors / requests if requests else 0.0))
    return measures
