"""Per-variant request statistics: what the deployment alarms judge and what `/metrics` exposes."""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field

WINDOW = 50_000  # recent requests kept per variant for latency quantiles and alarms


@dataclass
class VariantStats:
    requests: int = 0
    errors: int = 0
    batch_items: int = 0  # items of batches this variant scored (not in `requests`, nor in the alarms' window)
    recent: deque[tuple[float, float, bool]] = field(default_factory=lambda: deque(maxlen=WINDOW))  # (at, ms, ok)

    def observe(self, milliseconds: float, ok: bool) -> None:
        self.requests += 1
        self.errors += not ok
        self.recent.append((time.time(), milliseconds, ok))

    def since(self, started: float) -> tuple[int, int, list[float]]:
        """Requests, errors and latencies (ms) observed since `started`."""
        window = [r for r in self.recent if r[0] >= started]
        return len(window), sum(not ok for _, _, ok in window), [ms for _, ms, _ in window]


@dataclass
class ShadowStats:
    """What a shadow variant did with its copies, by segment (`language:hin_Deva`, `script:LATIN`): how often
    it answered as production did, how fast, how often it failed."""

    variant: str
    requests: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    agreed: Counter[str] = field(default_factory=Counter)
    latencies: dict[str, deque[float]] = field(default_factory=dict)

    def observe(self, segment: str, milliseconds: float, ok: bool, agreed: bool) -> None:
        self.requests[segment] += 1
        self.errors[segment] += not ok
        self.agreed[segment] += agreed
        self.latencies.setdefault(segment, deque(maxlen=WINDOW)).append(milliseconds)

    def summary(self) -> dict[str, dict[str, float]]:
        """Per segment and for "all": requests, agreement (of the answered copies), error rate, latency p50/p95/p99."""
        segments = {
            "all": (
                sum(self.requests.values()),
                sum(self.errors.values()),
                sum(self.agreed.values()),
                [ms for recent in self.latencies.values() for ms in recent],
            )
        }
        for segment in sorted(self.requests):
            segments[segment] = (
                self.requests[segment],
                self.errors[segment],
                self.agreed[segment],
                list(self.latencies[segment]),
            )
        shown = {}
        for segment, (requests, errors, agreed, latencies) in segments.items():
            points = quantiles(latencies, (0.5, 0.95, 0.99))
            answered = requests - errors
            shown[segment] = {
                "requests": requests,
                "agreement": agreed / answered if answered else float("nan"),
                "error_rate": errors / requests if requests else 0.0,
                "p50_ms": points[0.5],
                "p95_ms": points[0.95],
                "p99_ms": points[0.99],
            }
        return shown


def quantiles(values: list[float], points: tuple[float, ...] = (0.5, 0.95, 0.99)) -> dict[float, float]:
    """Nearest-rank quantiles; empty input gives NaN."""
    if not values:
        return {p: float("nan") for p in points}
    ordered = sorted(values)
    return {p: ordered[min(len(ordered) - 1, max(0, int(p * len(ordered) + 0.5) - 1))] for p in points}


def prometheus(
    endpoint: str,
    stats: dict[str, VariantStats],
    weights: dict[str, float],
    responses: dict[int, int],
    counters: dict[str, float],
    shadow: ShadowStats | None = None,
) -> str:
    """The Prometheus text exposition format (version 0.0.4)."""
    recent = {variant: list(variant_stats.recent) for variant, variant_stats in stats.items()}

    def labels(variant: str) -> str:
        return f'endpoint="{endpoint}",variant="{variant}"'

    def family(name: str, kind: str, meaning: str, samples: list[str]) -> list[str]:
        return [f"# HELP {name} {meaning}", f"# TYPE {name} {kind}", *samples]

    def error_rate(window: list[tuple[float, float, bool]]) -> float:
        return sum(not ok for _, _, ok in window) / len(window) if window else 0.0

    lines = [
        *family(
            "pravah_requests_total",
            "counter",
            "Predictions answered, by variant.",
            [f"pravah_requests_total{{{labels(v)}}} {s.requests}" for v, s in stats.items()],
        ),
        *family(
            "pravah_errors_total",
            "counter",
            "Predictions that failed in the model, by variant.",
            [f"pravah_errors_total{{{labels(v)}}} {s.errors}" for v, s in stats.items()],
        ),
        *family(
            "pravah_error_rate",
            "gauge",
            "Share of the recent requests that failed, by variant.",
            [f"pravah_error_rate{{{labels(v)}}} {error_rate(r):.6g}" for v, r in recent.items()],
        ),
        *family(
            "pravah_latency_seconds",
            "summary",
            "Recent prediction latency, by variant.",
            [
                f'pravah_latency_seconds{{{labels(v)},quantile="{point}"}} {ms / 1000:.6g}'
                for v, r in recent.items()
                for point, ms in quantiles([ms for _, ms, _ in r]).items()
            ],
        ),
        *family(
            "pravah_batch_items_total",
            "counter",
            "Batch prediction items scored, by variant.",
            [f"pravah_batch_items_total{{{labels(v)}}} {s.batch_items}" for v, s in stats.items()],
        ),
        *family(
            "pravah_variant_weight",
            "gauge",
            "Share of traffic (percent) routed to a variant.",
            [f"pravah_variant_weight{{{labels(v)}}} {w:g}" for v, w in weights.items()],
        ),
    ]
    lines += family(
        "pravah_http_responses_total",
        "counter",
        "HTTP responses, by status code.",
        [
            f'pravah_http_responses_total{{endpoint="{endpoint}",code="{code}"}} {count}'
            for code, count in sorted(responses.items())
        ],
    )
    if shadow is not None:
        lines += _shadow_families(endpoint, shadow, family)
    for name, value in counters.items():
        lines += family(
            f"pravah_{name}",
            "counter",
            name.replace("_", " ") + ".",
            [f'pravah_{name}{{endpoint="{endpoint}"}} {value:g}'],
        )
    return "\n".join(lines) + "\n"


def _shadow_families(endpoint: str, shadow: ShadowStats, family) -> list[str]:
    summary = {segment: shown for segment, shown in shadow.summary().items() if segment != "all"}

    def labels(segment: str) -> str:
        return f'endpoint="{endpoint}",variant="{shadow.variant}",segment="{segment}"'

    return [
        *family(
            "pravah_shadow_requests_total",
            "counter",
            "Copies of requests sent to the shadow variant, by segment.",
            [f"pravah_shadow_requests_total{{{labels(g)}}} {s['requests']}" for g, s in summary.items()],
        ),
        *family(
            "pravah_shadow_agreement_ratio",
            "gauge",
            "Share of answered copies predicted as production did.",
            [f"pravah_shadow_agreement_ratio{{{labels(g)}}} {s['agreement']:.6g}" for g, s in summary.items()],
        ),
        *family(
            "pravah_shadow_error_rate",
            "gauge",
            "Share of copies the shadow variant failed on, by segment.",
            [f"pravah_shadow_error_rate{{{labels(g)}}} {s['error_rate']:.6g}" for g, s in summary.items()],
        ),
        *family(
            "pravah_shadow_latency_seconds",
            "summary",
            "The shadow variant's latency on its copies, by segment.",
            [
                f'pravah_shadow_latency_seconds{{{labels(g)},quantile="{q}"}} {s[f"p{round(q * 100)}_ms"] / 1000:.6g}'
                for g, s in summary.items()
                for q in (0.5, 0.95, 0.99)
            ],
        ),
    ]


SERIES_SECONDS = 10.0  # one point of an endpoint's time series per variant every this many seconds


class SeriesWriter:
    """An endpoint's request figures over time, kept under the project folder so that they outlive the server:
    every SERIES_SECONDS, one JSON line per variant with traffic in `endpoints/series/ENDPOINT/YYYY-MM-DD.jsonl`
    (requests, errors, p50 and p99 ms over the interval). The console draws them."""

    def __init__(self, folder, endpoint: str):
        self.folder, self.endpoint = folder / "series" / endpoint, endpoint
        self.last = time.time()

    def maybe_write(self, stats: dict[str, VariantStats], now: float | None = None) -> bool:
        import json

        now = time.time() if now is None else now
        if now - self.last < SERIES_SECONDS:
            return False
        lines = []
        for variant, found in sorted(stats.items()):
            requests, errors, latencies = found.since(self.last)
            if requests:
                points = quantiles(latencies, (0.5, 0.99))
                point = {"at": round(now, 3), "variant": variant, "requests": requests, "errors": errors}
                lines.append({**point, "p50_ms": round(points[0.5], 3), "p99_ms": round(points[0.99], 3)})
        self.last = now
        if lines:
            self.folder.mkdir(parents=True, exist_ok=True)
            day = time.strftime("%Y-%m-%d", time.gmtime(now))
            with (self.folder / f"{day}.jsonl").open("a", encoding="utf-8") as handle:
                handle.writelines(json.dumps(line) + "\n" for line in lines)
        return bool(lines)
