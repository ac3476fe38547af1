"""A blue/green rollout's options on the command line, shared by `pravah deploy` and `pravah endpoints promote`
(following it is the endpoints' own: cloud/targets.py); a shadow's figures, shown by promote and `endpoints show`."""

from __future__ import annotations

import argparse
from pathlib import Path

from foundation.errors import PravahError


def rollout_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--canary-percent", type=float, help="the canary's share of traffic")
    parser.add_argument("--linear-step", type=float, help="percent of traffic moved at each linear step")
    parser.add_argument("--wait", type=float, help="seconds per step, watching the alarms")
    parser.add_argument("--max-error-rate", type=float, help="alarm: the new variant's error rate above this")
    parser.add_argument("--max-p99-ms", type=float, help="alarm: the new variant's p99 latency above this")
    parser.add_argument(
        "--min-requests", type=int, help="requests a step needs before the alarms judge (0: pass unjudged)"
    )
    parser.add_argument("--no-wait", action="store_true", help="return once requested; do not follow it")


def rollout(args: argparse.Namespace):
    """The serving settings, and a deployment's strategy, traffic steps, alarms and wait: the command line's, else
    configs/serving.yaml's."""
    from inference.config import load_serving_config
    from inference.endpoints import Alarms, plan

    serving = load_serving_config(Path(args.config) if args.config else None)
    settings = serving.deploy
    strategy = args.strategy or settings.strategy
    schedule = (
        []
        if strategy == "shadow"
        else plan(
            strategy,
            given(args.canary_percent, settings.canary_percent, 0, 100),
            given(args.linear_step, settings.linear_step_percent, 0, 100),
        )
    )
    alarms = Alarms(
        given(args.max_error_rate, settings.alarms.max_error_rate, 0, 1),
        given(args.max_p99_ms, settings.alarms.max_p99_ms, 0, None),
        int(given(args.min_requests, settings.alarms.min_requests, -1, None)),
    )
    return serving, strategy, schedule, alarms, given(args.wait, settings.wait_seconds, -1, None)


def given(value: float | None, default: float, above: float, up_to: float | None) -> float:
    """An option's value (or the config's default), checked: above `above`, at most `up_to`."""
    chosen = default if value is None else value
    if chosen <= above or (up_to is not None and chosen > up_to):
        bounds = f"above {above:g}" + (f" and at most {up_to:g}" if up_to is not None else "")
        raise PravahError(f"{chosen:g} is out of range: it must be {bounds}")
    return chosen


def print_shadow(store, endpoint: str) -> None:
    """The shadow variant's figures, as its server last wrote them: agreement, errors and latency by segment."""
    report = store.shadow_report(endpoint)
    if report is None:
        return
    state = "ended" if not report["running"] else "running" if report.get("loaded", True) else "loading"
    print(f"shadow {report['variant']} ({state}; copies skipped while it loaded or lagged: {report['skipped']}):")
    print(f"  {'segment':<22} {'copies':>7} {'agreement':>9} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for segment, shown in report["segments"].items():
        agreement = "-" if shown["agreement"] is None else f"{shown['agreement']:.1%}"
        p50, p99 = (f"{shown[k]:.1f}" if shown[k] is not None else "-" for k in ("p50_ms", "p99_ms"))
        print(f"  {segment:<22} {shown['requests']:>7} {agreement:>9} {shown['error_rate']:>7.1%} {p50:>8} {p99:>8}")
