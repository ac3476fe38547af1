"""An endpoint's monitoring as the console shows it: the windows the monitoring job judged (each one's
`metrics.json` under `<home>/monitoring/ENDPOINT/runs/TIME/VARIANT/`, cached by modification time like the run
records), the alerts raised, and pictures of them drawn as SVG: drift per feature as a heatmap (feature x
window), the language mix per window, and the label-free accuracy estimate beside the measured one."""

from __future__ import annotations

import os
from dataclasses import dataclass
from html import escape
from typing import Any

from console.runs import JsonCache
from foundation.home import Home

SHOWN = 48  # windows per picture: the newest, older ones a page back


@dataclass
class Window:
    name: str  # the window's end, as the job names its folder (20261207T120000Z)
    variant: str
    metrics: dict[str, Any]
    report: str | None  # the Evidently report's path under the project folder


class MonitoringIndex:
    def __init__(self, home: Home):
        self.home = home
        self._read = JsonCache().read

    def endpoints(self) -> list[str]:
        root = self.home.root / "monitoring"
        return sorted(p.name for p in root.iterdir() if (p / "runs").is_dir()) if root.is_dir() else []

    def windows(self, endpoint: str, before: int = 0, count: int = SHOWN) -> tuple[list[Window], int]:
        """The judged windows of the endpoint, oldest first: `count` of them, ending `before` windows from the
        newest; and how many there are. Only the shown ones are read (a year of hourly windows is 8,760)."""
        runs = self.home.root / "monitoring" / endpoint / "runs"
        names = sorted(os.listdir(runs)) if runs.is_dir() else []
        end = max(len(names) - max(before, 0), 0)
        found = []
        for name in names[max(end - count, 0) : end]:
            for variant in sorted(os.listdir(runs / name)) if (runs / name).is_dir() else []:
                metrics = self._read(runs / name / variant / "metrics.json")
                if metrics is not None:
                    report = runs / name / variant / "drift_report.html"
                    shown = str(report.relative_to(self.home.root)) if report.is_file() else None
                    found.append(Window(name, variant, metrics, shown))
        return found, len(names)

    def alerts(self, endpoint: str) -> list[dict[str, Any]]:
        folder = self.home.root / "monitoring" / "alerts"
        found = [self._read(p) for p in sorted(folder.glob(f"*-{endpoint}.json"))] if folder.is_dir() else []
        return [alert for alert in reversed(found) if alert and alert.get("endpoint") == endpoint]


def heatmap(windows: list[Window]) -> str:
    """Drift per feature (rows) and window (columns): a cell's shade is its score over its threshold, a drifted
    cell outlined; each column links to its window's report."""
    features = sorted({name for w in windows for name in w.metrics.get("features", {})})
    if not windows or not features:
        return '<p class="muted">no window has been judged yet: <code>pravah monitor run ENDPOINT</code></p>'
    cell, label_w, top = 18, 150, 20
    width, height = label_w + cell * len(windows) + 10, top + cell * len(features) + 40
    parts = [
        f'<svg class="heatmap" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="drift per feature and window">'
    ]
    for row, feature in enumerate(features):
        parts.append(f'<text x="0" y="{top + row * cell + 13}" class="label">{escape(feature)}</text>')
    for column, window in enumerate(windows):
        x = label_w + column * cell
        link = f'<a href="/files/{escape(window.report)}">' if window.report else "<g>"
        parts.append(link)
        for row, feature in enumerate(features):
            found = window.metrics.get("features", {}).get(feature)
            if found is None:
                continue
            ratio = min(found["score"] / found["threshold"], 2.0) if found.get("threshold") else 0.0
            level = min(int(ratio * 5), 10)  # 0..10: a tenth of the way to twice the threshold each
            drifted = " drifted" if found.get("drift") else ""
            parts.append(
                f'<rect x="{x}" y="{top + row * cell}" width="{cell - 2}" height="{cell - 2}" '
                f'class="cell level-{level}{drifted}" data-feature="{escape(feature)}" '
                f'data-window="{escape(window.name)}"><title>{escape(window.name)} {escape(window.variant)}: '
                f"{escape(feature)} {escape(found.get('method', ''))} {found['score']:.4f} "
                f"(threshold {found.get('threshold', 0):g}){' drifted' if drifted else ''}</title></rect>"
            )
        parts.append("</a>" if window.report else "</g>")
    first, last = windows[0].name, windows[-1].name
    parts.append(
        f'<text x="{label_w}" y="{height - 22}" class="axis">from {escape(first)}</text>'
        f'<text x="{label_w}" y="{height - 6}" class="axis">to {escape(last)}</text></svg>'
    )
    return "".join(parts)


def language_mix(windows: list[Window]) -> str:
    """Each window's requests by declared language, as stacked columns (the five commonest named)."""
    totals: dict[str, float] = {}
    for window in windows:
        for language, share in window.metrics.get("language_mix", {}).items():
            totals[language] = totals.get(language, 0.0) + share
    named = [language for language, _ in sorted(totals.items(), key=lambda item: -item[1])[:5]]
    if not named:
        return '<p class="muted">no window says its requests\' languages</p>'
    bar, height = 18, 120
    width = 150 + bar * len(windows) + 10
    parts = [
        f'<svg class="mix" viewBox="0 0 {width} {height + 30}" width="{width}" height="{height + 30}" '
        'role="img" aria-label="language mix per window">'
    ]
    for index, language in enumerate(named):
        parts.append(f'<text x="0" y="{14 + index * 16}" class="label lang-{index}">■ {escape(str(language))}</text>')
    for column, window in enumerate(windows):
        y = float(height)
        mix = window.metrics.get("language_mix", {})
        for index, language in enumerate(named):
            share = float(mix.get(language, 0.0))
            y -= share * height
            parts.append(
                f'<rect x="{150 + column * bar}" y="{y:.1f}" width="{bar - 2}" height="{share * height:.1f}" '
                f'class="lang-{index}"><title>{escape(window.name)}: {escape(str(language))} {share:.0%}</title></rect>'
            )
    parts.append("</svg>")
    return "".join(parts)


def accuracy_rows(windows: list[Window]) -> list[dict[str, Any]]:
    """Per window: records, the label-free estimate of accuracy, the measured one where labels came, alerts."""
    rows = []
    for window in windows:
        metrics = window.metrics
        estimated = (metrics.get("estimated_performance") or {}).get("accuracy")
        measured = (metrics.get("model_quality") or {}).get("accuracy")
        rows.append(
            {
                "window": window.name,
                "variant": window.variant,
                "records": metrics.get("records"),
                "estimated": estimated.get("value") if isinstance(estimated, dict) else estimated,
                "measured": measured,
                "violations": metrics.get("violations", 0),
                "report": window.report,
            }
        )
    return rows


def accuracy_chart(windows: list[Window]) -> str:
    """The label-free estimate of accuracy and the measured one (where labels came) over the windows."""
    from datetime import UTC, datetime

    from console.drawing import line_chart

    lines: dict[str, list[tuple[float, float]]] = {}
    for row in accuracy_rows(windows):
        try:
            at = datetime.strptime(row["window"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
        for label in ("estimated", "measured"):
            if isinstance(row[label], int | float):
                lines.setdefault(f"{label} ({row['variant']})", []).append((at, float(row[label])))
    return line_chart(lines, "accuracy", "", empty="no window has an estimate or labels yet")
