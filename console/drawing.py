"""Pictures of a run, drawn as SVG on the server: its step graph (layers left to right, each step a box coloured
by its state, which the page's script recolours as the run goes) and its timeline (what ran when, what ran in
parallel, what came from the cache)."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from pipelines.records import RunRecord

BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 170, 46, 60, 22, 16


def layers(steps: list[str], edges: list[list[str]]) -> list[list[str]]:
    """Steps by depth: each one a layer after the deepest of the steps it waits for."""
    upstream: dict[str, set[str]] = {name: set() for name in steps}
    for up, down, *_ in edges:
        if up in upstream and down in upstream:
            upstream[down].add(up)
    depth: dict[str, int] = {}

    def of(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name not in depth:
            depth[name] = max((of(u, seen | {name}) + 1 for u in upstream[name] if u not in seen), default=0)
        return depth[name]

    grouped: list[list[str]] = []
    for name in steps:
        level = of(name)
        grouped.extend([] for _ in range(level + 1 - len(grouped)))
        grouped[level].append(name)
    return grouped


def step_graph(record: RunRecord) -> str:
    """The run's steps and edges as an SVG, every box `data-step` and `class="step state-STATUS"`."""
    steps = {name: (step.kind, step.status) for name, step in record.steps.items()}
    return graph(steps, record.edges, f"the step graph of run {record.id}")


def graph(steps: dict[str, tuple[str, str]], edges: list[list[str]], label: str) -> str:
    """Steps (name: (kind, status)) in layers left to right, with their edges ([up, down, label])."""
    grouped = layers(list(steps), edges)
    place: dict[str, tuple[int, int]] = {}
    for column, names in enumerate(grouped):
        for row, name in enumerate(names):
            place[name] = (PAD + column * (BOX_W + GAP_X), PAD + row * (BOX_H + GAP_Y))
    width = PAD * 2 + max(len(grouped), 1) * (BOX_W + GAP_X) - GAP_X
    height = PAD * 2 + max((len(names) for names in grouped), default=1) * (BOX_H + GAP_Y) - GAP_Y
    parts = [
        f'<svg class="graph" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(label)}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead"/></marker></defs>',
    ]
    for up, down, said in (edge[:3] for edge in edges if edge[0] in place and edge[1] in place):
        (x1, y1), (x2, y2) = place[up], place[down]
        start, end = (x1 + BOX_W, y1 + BOX_H / 2), (x2, y2 + BOX_H / 2)
        bend = (end[0] - start[0]) / 2
        kind = " branch" if said in {"if", "else"} else " after" if said == "after" else ""
        parts.append(
            f'<path class="edge{kind}" d="M {start[0]} {start[1]} C {start[0] + bend} {start[1]}, '
            f'{end[0] - bend} {end[1]}, {end[0]} {end[1]}" marker-end="url(#arrow)"><title>{escape(up)} → '
            f"{escape(down)}: {escape(said)}</title></path>"
        )
    for name, (x, y) in place.items():
        kind, status = steps[name]
        parts.append(
            f'<g class="step state-{escape(status)}" data-step="{escape(name)}" tabindex="0" role="button" '
            f'aria-label="step {escape(name)}, {escape(kind)}, {escape(status)}">'
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="8"/>'
            f'<text x="{x + 12}" y="{y + 20}" class="name">{escape(name)}</text>'
            f'<text x="{x + 12}" y="{y + 37}" class="kind">{escape(kind)} · '
            f'<tspan class="status">{escape(status)}</tspan></text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def timeline(record: RunRecord, width: int = 720) -> str:
    """One bar per step that started, from its start to its end (or now), on the run's clock."""
    started = {n: s for n, s in record.steps.items() if s.started_at}
    if not started:
        return '<p class="muted">no step has started yet</p>'
    origin = datetime.fromisoformat(record.started_at)
    now = datetime.now(origin.tzinfo)

    def at(moment: str | None) -> float:
        return ((datetime.fromisoformat(moment) if moment else now) - origin).total_seconds()

    span = max(max(at(s.ended_at) for s in started.values()), 0.001)
    label_w, row_h = 150, 22
    height = row_h * len(started) + 24
    parts = [
        f'<svg class="timeline" viewBox="0 0 {label_w + width + 10} {height}" width="{label_w + width + 10}" '
        f'height="{height}" role="img" aria-label="timeline of run {escape(record.id)}">'
    ]
    for index, (name, step) in enumerate(sorted(started.items(), key=lambda item: at(item[1].started_at))):
        begin, end = at(step.started_at), at(step.ended_at)
        x = label_w + begin / span * width
        w = max((end - begin) / span * width, 2)
        y = index * row_h + 4
        cached = " cached" if step.cache_hit else ""
        parts.append(
            f'<text x="0" y="{y + 13}" class="label">{escape(name)}</text>'
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 6}" rx="3" '
            f'class="bar state-{escape(step.status)}{cached}"><title>{escape(name)}: {end - begin:.2f} s, '
            f"{escape(step.status)}{' (cached)' if cached else ''}</title></rect>"
        )
    parts.append(
        f'<text x="{label_w}" y="{height - 4}" class="axis">0 s</text>'
        f'<text x="{label_w + width}" y="{height - 4}" class="axis" text-anchor="end">{span:.1f} s</text></svg>'
    )
    return "".join(parts)


def line_chart(
    series: dict[str, list[tuple[float, float]]], label: str, unit: str, width: int = 560, empty: str = ""
) -> str:
    """Lines of (time, value) per series over the same time axis, with the axis' ends and the largest value."""
    points = [point for line in series.values() for point in line]
    if not points:
        said = empty or f"no {label} recorded yet: a served endpoint writes them every 10 s"
        return f'<p class="muted">{escape(said)}</p>'
    height, left, top = 140, 48, 12
    start, end = min(t for t, _ in points), max(t for t, _ in points)
    peak = max(max(v for _, v in points), 1e-9)
    span = max(end - start, 1.0)

    def xy(t: float, v: float) -> str:
        return f"{left + (t - start) / span * (width - left - 10):.1f},{top + (1 - v / peak) * (height - top - 20):.1f}"

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(label)} over time">',
        f'<text x="0" y="{top + 4}" class="axis">{peak:.3g} {escape(unit)}</text>',
        f'<text x="0" y="{height - 20}" class="axis">0</text>',
        f'<line x1="{left}" y1="{height - 20}" x2="{width - 10}" y2="{height - 20}" class="baseline"/>',
    ]
    for index, (name, line) in enumerate(sorted(series.items())):
        drawn = " ".join(xy(t, v) for t, v in sorted(line))
        parts.append(
            f'<polyline points="{drawn}" class="series series-{index % 4}" data-variant="{escape(name)}">'
            f"<title>{escape(name)}: {escape(label)}</title></polyline>"
            f'<text x="{width - 10}" y="{top + 14 * (index + 1)}" class="legend series-{index % 4}" '
            f'text-anchor="end">{escape(name)}</text>'
        )
    moments = [datetime.fromtimestamp(t, UTC).strftime("%m-%d %H:%M") for t in (start, end)]
    parts.append(
        f'<text x="{left}" y="{height - 4}" class="axis">{moments[0]}</text>'
        f'<text x="{width - 10}" y="{height - 4}" class="axis" text-anchor="end">{moments[1]} UTC</text></svg>'
    )
    return "".join(parts)


def scatter(trials: list[dict], parameter: str, objective: str, width: int = 300, height: int = 180) -> str:
    """A search's trials: one hyperparameter (x; categories spread evenly) against the objective (y)."""
    done = [t for t in trials if t.get("value") is not None and parameter in t.get("params", {})]
    if not done:
        return ""
    values = [t["params"][parameter] for t in done]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    categories = sorted({str(v) for v in values})
    low, high = (min(values), max(values)) if numeric else (0, max(len(categories) - 1, 1))
    scores = [t["value"] for t in done]
    bottom, top = min(scores), max(scores)
    left, pad = 40, 12

    def x_of(value) -> float:
        position = value if numeric else categories.index(str(value))
        return left + ((position - low) / ((high - low) or 1)) * (width - left - pad)

    def y_of(score: float) -> float:
        return pad + (1 - (score - bottom) / ((top - bottom) or 1)) * (height - 2 * pad - 14)

    parts = [
        f'<svg class="scatter" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(objective)} against {escape(parameter)}">',
        f'<text x="0" y="{pad + 4}" class="axis">{top:.4g}</text>',
        f'<text x="0" y="{height - 18}" class="axis">{bottom:.4g}</text>',
        f'<text x="{left}" y="{height - 2}" class="axis">{escape(parameter)}: {low if numeric else categories[0]}'
        f"</text>",
        f'<text x="{width - pad}" y="{height - 2}" class="axis" text-anchor="end">'
        f"{high if numeric else categories[-1]}</text>",
    ]
    for trial in done:
        value = trial["params"][parameter]
        parts.append(
            f'<circle cx="{x_of(value):.1f}" cy="{y_of(trial["value"]):.1f}" r="5" class="trial"><title>trial '
            f"{trial['trial']}: {escape(parameter)} {escape(str(value))}, {escape(objective)} {trial['value']:.4g}"
            "</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def lineage(columns: list[list[tuple[str, str | None]]]) -> str:
    """Where a version comes from and goes, left to right: each column's boxes (text, link or None), every box
    joined to every box of the next column (data -> run -> version -> the endpoints serving it)."""
    box_w, box_h, gap_x, gap_y = 190, 36, 50, 12
    height = PAD * 2 + max(len(c) for c in columns) * (box_h + gap_y) - gap_y
    width = PAD * 2 + len(columns) * (box_w + gap_x) - gap_x
    place = [
        [(PAD + i * (box_w + gap_x), PAD + j * (box_h + gap_y)) for j in range(len(column))]
        for i, column in enumerate(columns)
    ]
    parts = [
        f'<svg class="graph lineage" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        'aria-label="lineage">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead"/></marker></defs>',
    ]
    for i in range(len(columns) - 1):
        for x1, y1 in place[i]:
            for x2, y2 in place[i + 1]:
                parts.append(
                    f'<path class="edge" d="M {x1 + box_w} {y1 + box_h / 2} L {x2} {y2 + box_h / 2}" '
                    'marker-end="url(#arrow)"/>'
                )
    for column, spots in zip(columns, place, strict=True):
        for (text, link), (x, y) in zip(column, spots, strict=True):
            box = (
                f'<g class="step state-{"succeeded" if link else "pending"}"><rect x="{x}" y="{y}" width="{box_w}" '
                f'height="{box_h}" rx="8"/><text x="{x + 10}" y="{y + 23}" class="name">{escape(text)}</text></g>'
            )
            parts.append(f'<a href="{escape(link)}">{box}</a>' if link else box)
    parts.append("</svg>")
    return "".join(parts)
