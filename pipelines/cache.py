"""The step cache: a step is skipped when its fingerprint matches an earlier success whose outputs
are still there with the hashes recorded then. On a miss it says what changed."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from foundation import typed
from foundation.fingerprint import hash_tree
from foundation.home import Home, write_json_atomic
from pipelines.records import OutputRecord


class StepCache:
    def __init__(self, home: Home):
        self.entries = home.cache / "entries"
        self.latest = home.cache / "latest"

    def lookup(self, key: str) -> tuple[str, dict[str, OutputRecord], dict[str, Any]] | None:
        """The run id, outputs and details of an earlier success with this key, if its outputs are intact."""
        entry = _read(self.entries / f"{key}.json")
        if entry is None:
            return None
        outputs = {name: typed.read(out, OutputRecord) for name, out in entry["outputs"].items()}
        if not all(verify_output(out) for out in outputs.values()):
            return None
        return entry["run_id"], outputs, entry.get("details", {})

    def store(
        self,
        key: str,
        pipeline: str,
        step: str,
        run_id: str,
        outputs: dict[str, OutputRecord],
        components: dict,
        details: dict[str, Any] | None = None,
    ) -> None:
        dumped = {name: asdict(out) for name, out in outputs.items()}
        entry = {"run_id": run_id, "outputs": dumped, "details": details or {}}
        write_json_atomic(self.entries / f"{key}.json", entry)
        write_json_atomic(
            self.latest / pipeline / f"{step}.json", {"key": key, "run_id": run_id, "components": components}
        )

    def explain_miss(self, pipeline: str, step: str, components: dict[str, Any]) -> str:
        """Why this step must run: what differs from its last success, in words."""
        previous = _read(self.latest / pipeline / f"{step}.json")
        if previous is None:
            return "no earlier successful run"
        before = previous["components"]
        reasons = []
        changed = _changed_fields(before.get("definition", {}), components["definition"])
        if changed:
            reasons.append("changed " + ", ".join(changed))
        inputs = [n for n in components["inputs"] if before.get("inputs", {}).get(n) != components["inputs"][n]]
        if inputs:
            reasons.append("input " + ", ".join(f"'{n}'" for n in inputs) + " changed")
        code = sorted(set(before.get("code", {}).items()).symmetric_difference(components["code"].items()))
        if code:
            reasons.append("code changed: " + ", ".join(sorted({path for path, _ in code})))
        libs = _changed_fields(before.get("libraries", {}), components["libraries"])
        if libs:
            reasons.append("library versions changed: " + ", ".join(libs))
        if reasons:
            return "; ".join(reasons)
        return f"outputs of run {previous['run_id']} were removed or modified"


def verify_output(output: OutputRecord) -> bool:
    path = Path(output.path)
    return path.exists() and hash_tree(path).digest == output.digest


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _changed_fields(before: Any, after: Any, prefix: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        changes = []
        for key in sorted(set(before) | set(after), key=str):
            changes += _changed_fields(before.get(key), after.get(key), f"{prefix}{key}.")
        return changes
    if before != after:
        return [f"{prefix.rstrip('.')} ({before!r} → {after!r})"]
    return []
