"""Reading a SageMaker pipeline definition (the JSON CreatePipeline takes): its steps, condition branches
included, what each step waits for, and the graph's edges, for the emulator that runs it and the console that
draws it."""

from __future__ import annotations

import json
import re
from typing import Any

BRANCHES = ("IfSteps", "ElseSteps")


def all_steps(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """A definition's steps, those inside condition branches included."""

    def flattened(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found = []
        for step in steps:
            found.append(step)
            if step["Type"] == "Condition":
                found += flattened([s for branch in BRANCHES for s in step["Arguments"].get(branch, [])])
        return found

    return flattened(definition.get("Steps", []))


def needs(step: dict[str, Any]) -> set[str]:
    """The steps a step waits for: those it depends on and those whose properties its arguments read (a
    condition's branches are its own, not what it waits for)."""
    text = json.dumps({k: v for k, v in step.get("Arguments", {}).items() if k not in BRANCHES})
    referenced = set(re.findall(r'"Get": "Steps\.([A-Za-z0-9_-]+)\.', text))
    return (set(step.get("DependsOn", [])) | referenced) - {step["Name"]}


def edges(definition: dict[str, Any]) -> list[list[str]]:
    """[upstream, downstream, label] for each step waited for (`needs`) and each condition branch (`if`, `else`)."""
    found = []
    for step in all_steps(definition):
        found += [[up, step["Name"], "needs"] for up in sorted(needs(step))]
        for branch, label in zip(BRANCHES, ("if", "else"), strict=True):
            found += [[step["Name"], s["Name"], label] for s in step.get("Arguments", {}).get(branch, [])]
    return found
