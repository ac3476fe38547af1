"""A blue/green rollout's options on the command line, shared by `pravah deploy` and `pravah endpoints promote`
(following it is the endpoints' own: cloud/targets.py); a shadow's figures, shown by promote and `endpoints show`."""

from __future__ import annotations

import argparse
from pathlib import Path


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
    """The serving settings (configs/serving.yaml, or --config) and what the command line chose over them."""
    from cloud.targets import RolloutChoices
    from inference.config import load_serving_config

    serving = load_serving_config(Path(args.config) if args.config else None)
    choices = RolloutChoices(
        args.strategy,
        args.canary_percent,
        args.linear_step,
        args.wait,
        args.max_error_rate,
        args.max_p99_ms,
        args.min_requests,
        getattr(args, "sample_percent", None),
    )
    return serving, choices


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
