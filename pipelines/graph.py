"""The step graph: edges come from what each step reads; cycles are rejected with their path."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.spec import Pipeline, ReportRef, SpecError, StepOutput, branches, references


@dataclass(frozen=True)
class Edge:
    upstream: str
    downstream: str
    label: str  # what flows: an output name, a report, "if", "else" or "after"


@dataclass
class StepGraph:
    steps: list[str]  # in a valid execution order
    edges: list[Edge]
    upstream: dict[str, set[str]] = field(default_factory=dict)
    downstream: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, pipeline: Pipeline) -> StepGraph:
        edges = list(dict.fromkeys(_edges(pipeline)))
        names = list(pipeline.steps)
        upstream: dict[str, set[str]] = {name: set() for name in names}
        downstream: dict[str, set[str]] = {name: set() for name in names}
        for edge in edges:
            upstream[edge.downstream].add(edge.upstream)
            downstream[edge.upstream].add(edge.downstream)
        order = _topological_order(names, upstream, downstream, pipeline)
        return cls(order, edges, upstream, downstream)

    def descendants(self, roots: set[str]) -> set[str]:
        """The roots and every step downstream of them."""
        return _reachable(roots, self.downstream)

    def ancestors(self, roots: set[str]) -> set[str]:
        """The roots and every step upstream of them."""
        return _reachable(roots, self.upstream)

    def layers(self) -> list[list[str]]:
        """Steps grouped by depth: each layer only needs the layers before it."""
        depth: dict[str, int] = {}
        for name in self.steps:
            depth[name] = max((depth[up] + 1 for up in self.upstream[name]), default=0)
        layers: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
        for name in self.steps:
            layers[depth[name]].append(name)
        return layers

    def render_text(self, pipeline: Pipeline) -> str:
        lines = [f"pipeline {pipeline.name} ({len(self.steps)} steps)"]
        for number, layer in enumerate(self.layers(), start=1):
            for name in layer:
                kind = pipeline.steps[name].kind
                sources = [f"{e.upstream} ({e.label})" for e in self.edges if e.downstream == name]
                after = f"  <- {', '.join(sources)}" if sources else ""
                lines.append(f"  {number}. {name} [{kind}]{after}")
        return "\n".join(lines)

    def render_mermaid(self, pipeline: Pipeline) -> str:
        shapes = {"condition": ("{", "}"), "fail": ("[[", "]]"), "register": ("[(", ")]")}
        lines = ["flowchart TD"]
        for name in self.steps:
            kind = pipeline.steps[name].kind
            left, right = shapes.get(kind, ("[", "]"))
            lines.append(f'    {_node_id(name)}{left}"{name}<br/><small>{kind}</small>"{right}')
        for edge in self.edges:
            lines.append(f"    {_node_id(edge.upstream)} -->|{edge.label}| {_node_id(edge.downstream)}")
        return "\n".join(lines)


def _reachable(roots: set[str], neighbours: dict[str, set[str]]) -> set[str]:
    seen, stack = set(roots), list(roots)
    while stack:
        for step in neighbours[stack.pop()]:
            if step not in seen:
                seen.add(step)
                stack.append(step)
    return seen


def _node_id(name: str) -> str:
    return "s_" + name.replace("-", "_")


def _edges(pipeline: Pipeline):
    """Read from the steps' references, whatever their kinds: a step output or a report read is an edge from
    the step that writes it; `depends_on` and a condition's branches are edges of their own."""
    for name, step in pipeline.steps.items():
        for dep in step.depends_on:
            yield Edge(dep, name, "after")
        for loc, ref in references(step):
            if isinstance(ref, StepOutput):  # labelled by the output, and the field it arrives in if named otherwise
                yield Edge(ref.step, name, ref.output if loc == (ref.output,) else f"{ref.output} → {loc[-1]}")
            elif isinstance(ref, ReportRef):
                yield Edge(ref.step, name, f"report {ref.report}")
        for _, _, target, label in branches(step):
            yield Edge(name, target, label)


def _topological_order(names, upstream, downstream, pipeline: Pipeline) -> list[str]:
    """Kahn's algorithm, keeping the spec's order among ready steps; a cycle is a SpecError."""
    waiting = {name: len(upstream[name]) for name in names}
    ready = [name for name in names if waiting[name] == 0]
    order: list[str] = []
    while ready:
        name = ready.pop(0)
        order.append(name)
        for child in sorted(downstream[name], key=names.index):
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    if len(order) < len(names):
        cycle = _find_cycle([n for n in names if n not in order], upstream)
        where = pipeline.doc.where(("steps", cycle[0]))
        raise SpecError([f"{where}: the steps form a cycle: {' -> '.join(cycle)}"])
    return order


def _find_cycle(candidates: list[str], upstream: dict[str, set[str]]) -> list[str]:
    start = candidates[0]
    path, seen = [start], {start}
    node = start
    while True:
        node = sorted(n for n in upstream[node] if n in candidates)[0]
        if node in seen:
            cycle = [*path[path.index(node) :], node]
            return list(reversed(cycle))
        path.append(node)
        seen.add(node)
