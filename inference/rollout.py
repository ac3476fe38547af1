"""How a deployment moves, one decision at a time: started, each traffic step judged on the target's own
traffic by the alarms, shifted on, held until enough requests arrived, rolled back on an alarm or a request,
finished. Pure functions of an endpoint's state: the serving process calls `advance` and writes the state back."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from inference.endpoints import Alarms, EndpointState, Variant

# A step whose wait is over but that saw fewer than min_requests requests is held; after this long, it is rolled back
UNJUDGED_PATIENCE_WAITS = 10
UNJUDGED_PATIENCE_MIN_SECONDS = 300.0


@dataclass
class Verdict:
    alarm: str | None  # what fired, in words; None when all is well
    requests: int


Judge = Callable[[str, float, Alarms], Verdict]  # (variant, since timestamp, alarms) -> verdict on its traffic


def advance(state: EndpointState, judge: Judge, now: float | None = None) -> bool:
    """Move the deployment in progress on by one decision: start it, shift traffic after a quiet wait,
    roll back on an alarm or a request, or finish. The target must already be loaded by the caller.
    Returns whether the state changed."""
    deployment, now = state.deployment, time.time() if now is None else now
    if deployment is None or not deployment.active:
        return False
    target = deployment.target
    if deployment.status == "requested":
        old = [v for v in state.variants if v.name != target.name]
        if deployment.rollback_requested:
            return _finish(state, "rolled_back", f"cancelled before it started: {deployment.rollback_requested}", now)
        if not old:  # the endpoint's first variant: nothing to shift traffic from
            state.variants = [Variant(**{**asdict(target), "weight": 100.0})]
            deployment.log(f"{target.name} takes all traffic (the endpoint's first variant)")
            return _finish(state, "completed", "first variant", now)
        deployment.status = "in_progress"
        _shift(state, 0, now)
        return True
    if deployment.rollback_requested:
        return _rollback(state, f"rollback requested: {deployment.rollback_requested}", now)
    step_started = now if deployment.step_started_at is None else deployment.step_started_at
    verdict = judge(target.name, step_started, deployment.alarms)
    if verdict.alarm:
        return _rollback(state, f"alarm on {target.name}: {verdict.alarm}", now)
    if now - step_started < deployment.wait_seconds:
        return False
    step = f"step {deployment.step + 1}/{len(deployment.schedule)}"
    needed = deployment.alarms.min_requests
    if verdict.requests < needed:  # a step is never passed unjudged: hold it until enough traffic arrived
        waited = now - step_started
        if waited >= max(UNJUDGED_PATIENCE_WAITS * deployment.wait_seconds, UNJUDGED_PATIENCE_MIN_SECONDS):
            return _rollback(
                state,
                f"{step} not judged: {verdict.requests} of {needed} requests reached {target.name} in {waited:.0f} s",
                now,
            )
        if deployment.holding:
            return False
        deployment.holding = True
        deployment.log(
            f"{step}: holding until {needed} requests reach {target.name} ({verdict.requests} so far); "
            "send traffic, or deploy again with a lower --min-requests"
        )
        return True
    deployment.holding = False
    if verdict.requests:
        deployment.log(f"{step} judged on {verdict.requests} requests: no alarm")
    else:
        deployment.log(f"{step} passed with no traffic to judge (min_requests 0)")
    if deployment.step + 1 < len(deployment.schedule):
        _shift(state, deployment.step + 1, now)
        return True
    replaced = [v for v in state.variants if v.name != target.name]
    state.variants = [v for v in state.variants if v.name == target.name]
    deployment.log(f"{target.name} holds all traffic; {', '.join(v.name for v in replaced)} retired")
    return _finish(state, "completed", "", now, replaced=replaced[0] if replaced else None)


def _shift(state: EndpointState, step: int, now: float) -> None:
    deployment = state.deployment
    assert deployment is not None
    share = deployment.schedule[step]
    _rescale([v for v in state.variants if v.name != deployment.target.name], 100.0 - share)
    current = state.variant(deployment.target.name)
    if current is None:
        current = Variant(**asdict(deployment.target))
        state.variants.append(current)
    current.weight = share
    deployment.step, deployment.step_started_at = step, now
    deployment.log(f"step {step + 1}/{len(deployment.schedule)}: {deployment.target.name} at {share:g}% of traffic")


def fail(state: EndpointState, reason: str, now: float | None = None) -> bool:
    """The deployment cannot go on (its model does not load): traffic stays with, or returns to, the old variant."""
    return _rollback(state, reason, time.time() if now is None else now, status="failed")


def _rollback(state: EndpointState, reason: str, now: float, status: str = "rolled_back") -> bool:
    deployment = state.deployment
    assert deployment is not None
    state.variants = [v for v in state.variants if v.name != deployment.target.name]
    _rescale(state.variants, 100.0)
    deployment.log(f"{status.replace('_', ' ')}: {reason}")
    return _finish(state, status, reason, now)


def _rescale(variants: list[Variant], total: float) -> None:
    """Give `variants` `total` percent of traffic between them, keeping their proportions (equal if none had any)."""
    current = sum(v.weight for v in variants)
    for variant in variants:
        variant.weight = round(total * (variant.weight / current if current else 1 / len(variants)), 6)


def _finish(state: EndpointState, status: str, reason: str, now: float, replaced: Variant | None = None) -> bool:
    deployment = state.deployment
    assert deployment is not None
    deployment.status, deployment.reason, deployment.finished_at = status, reason, now
    state.history.append(
        {
            "id": deployment.id,
            "target": deployment.target.name,
            "strategy": deployment.strategy,
            "status": status,
            "reason": reason,
            "finished_at": now,
            "replaced": asdict(replaced) if replaced else None,
        }
    )
    return True
