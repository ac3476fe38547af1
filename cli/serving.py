"""`pravah serve`, `deploy`, `endpoints`: the predict API and blue/green deployments."""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

from cli.common import DRY_RUN_HELP, add_json_option, print_json
from cli.monitor import upload_baseline_of
from foundation.errors import PravahError


def add_commands(commands) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve an endpoint's predict API (uvicorn)",
        description="Serve the predict API of ENDPOINT; deployments to it take effect live.",
    )
    serve.add_argument("endpoint")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080, help="0: any free port (the address is printed)")
    serve.add_argument("--config", help="serving settings (default: configs/serving.yaml)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(handler=cmd_serve)

    deploy = commands.add_parser(
        "deploy",
        help="deploy an approved model version to an endpoint (blue/green)",
        description="Shift ENDPOINT's traffic to an approved version, step by step, "
        "rolling back by itself when an alarm fires. Defaults from configs/serving.yaml.",
    )
    deploy.add_argument("endpoint")
    deploy.add_argument("--model", required=True, help="registered model name")
    deploy.add_argument("--version", required=True, type=int)
    deploy.add_argument(
        "--strategy",
        choices=["all-at-once", "canary", "linear", "shadow"],
        help="shadow: a copy of a share of the traffic, answered by production",
    )
    deploy.add_argument("--sample-percent", type=float, help="with --strategy shadow: the share copied (default 100)")
    _rollout_options(deploy)
    deploy.add_argument("--config", help="serving settings (default: configs/serving.yaml)")
    deploy.add_argument(
        "--target",
        default="local",
        choices=["local", "sagemaker"],
        help="sagemaker: a blue/green update of a SageMaker endpoint with alarm rollback",
    )
    deploy.add_argument("--environment", default="dev", help="with --target sagemaker: configs/environments/NAME.yaml")
    deploy.add_argument("--dry-run", action="store_true", help="with --target sagemaker: " + DRY_RUN_HELP)
    deploy.set_defaults(handler=cmd_deploy)

    endpoints = commands.add_parser("endpoints", help="list, show and roll back endpoints")
    endpoints_commands = endpoints.add_subparsers(dest="endpoints_command", metavar="COMMAND", required=True)
    endpoints_list = endpoints_commands.add_parser("list", help="endpoints, their variants and weights")
    add_json_option(endpoints_list)
    endpoints_list.set_defaults(handler=cmd_endpoints_list)
    endpoints_show = endpoints_commands.add_parser("show", help="one endpoint: variants, deployment, history")
    endpoints_show.add_argument("endpoint")
    add_json_option(endpoints_show)
    endpoints_show.set_defaults(handler=cmd_endpoints_show)
    rollback = endpoints_commands.add_parser("rollback", help="stop a deployment, or go back to the previous variant")
    rollback.add_argument("endpoint")
    rollback.add_argument("--reason", default="manual rollback")
    rollback.set_defaults(handler=cmd_endpoints_rollback)
    promote = endpoints_commands.add_parser("promote", help="deploy the shadow variant (blue/green); its shadow ends")
    promote.add_argument("endpoint")
    promote.add_argument("--strategy", choices=["all-at-once", "canary", "linear"])
    _rollout_options(promote)
    promote.add_argument("--config", help="serving settings (default: configs/serving.yaml)")
    promote.set_defaults(handler=cmd_endpoints_promote, target="local")
    stop = endpoints_commands.add_parser("stop-shadow", help="end the shadow variant; production is untouched")
    stop.add_argument("endpoint")
    stop.set_defaults(handler=cmd_endpoints_stop_shadow)


def _rollout_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--canary-percent", type=float, help="the canary's share of traffic")
    parser.add_argument("--linear-step", type=float, help="percent of traffic moved at each linear step")
    parser.add_argument("--wait", type=float, help="seconds per step, watching the alarms")
    parser.add_argument("--max-error-rate", type=float, help="alarm: the new variant's error rate above this")
    parser.add_argument("--max-p99-ms", type=float, help="alarm: the new variant's p99 latency above this")
    parser.add_argument(
        "--min-requests", type=int, help="requests a step needs before the alarms judge (0: pass unjudged)"
    )
    parser.add_argument("--no-wait", action="store_true", help="return once requested; do not follow it")


def cmd_serve(args: argparse.Namespace) -> int:
    from foundation.home import Home
    from foundation.jsonlog import configure_logging
    from inference.app import create_app
    from inference.config import load_serving_config
    from inference.endpoints import EndpointStore
    from inference.server import build_server

    config = load_serving_config(Path(args.config) if args.config else None)
    home = Home.resolve(args.home)
    state = EndpointStore(home).read(args.endpoint)  # an unknown endpoint is a clear error before anything starts
    if state.serving:  # one server per endpoint: its state file has one owner
        raise PravahError(f"endpoint '{args.endpoint}' is already {state.describe_server()}; stop that server first")
    # Bound here, so that --port 0 (any free port) can be said before serving, and no one else takes it between
    ipv6 = ":" in args.host
    try:
        listener = socket.create_server((args.host, args.port), family=socket.AF_INET6 if ipv6 else socket.AF_INET)
    except (OSError, OverflowError) as exc:
        raise PravahError(f"cannot listen on {args.host} port {args.port}: {exc}") from None
    configure_logging("ml-inference", args.log_level.upper())
    app = create_app(home, args.endpoint, config)
    host = f"[{args.host}]" if ipv6 else args.host
    app.state.address = f"http://{host}:{listener.getsockname()[1]}"
    print(
        f"serving endpoint '{args.endpoint}' at {app.state.address} (API docs: {app.state.address}/docs)",
        file=sys.stderr,
        flush=True,
    )
    build_server(app, config).run(sockets=[listener])
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    from foundation.home import Home
    from inference.endpoints import EndpointStore, registered_variant, request_deployment, request_shadow

    serving, strategy, schedule, alarms, wait = _rollout(args)
    if args.sample_percent is not None and strategy != "shadow":
        raise PravahError("--sample-percent is for --strategy shadow")
    if args.target == "sagemaker":
        return _deploy_to_sagemaker(args, strategy, alarms, wait, serving)
    home = Home.resolve(args.home)
    store = EndpointStore(home)
    target = registered_variant(home, args.model, args.version)
    if strategy == "shadow":
        shadow = request_shadow(store, args.endpoint, target, _given(args.sample_percent, 100.0, 0, 100))
        print(
            f"shadow: {target.name} gets a copy of {shadow.sample_percent:g}% of '{args.endpoint}' requests, "
            f"after they are answered; pravah endpoints show {args.endpoint} compares it, pravah endpoints "
            f"promote {args.endpoint} deploys it, pravah endpoints stop-shadow {args.endpoint} ends it"
        )
        return 0
    return _follow(store, args, request_deployment(store, args.endpoint, target, strategy, schedule, wait, alarms))


def _rollout(args: argparse.Namespace):
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
            _given(args.canary_percent, settings.canary_percent, 0, 100),
            _given(args.linear_step, settings.linear_step_percent, 0, 100),
        )
    )
    alarms = Alarms(
        _given(args.max_error_rate, settings.alarms.max_error_rate, 0, 1),
        _given(args.max_p99_ms, settings.alarms.max_p99_ms, 0, None),
        int(_given(args.min_requests, settings.alarms.min_requests, -1, None)),
    )
    return serving, strategy, schedule, alarms, _given(args.wait, settings.wait_seconds, -1, None)


def _follow(store, args: argparse.Namespace, deployment) -> int:
    """Print a requested deployment's steps as the server takes them, until it ends."""
    from inference.endpoints import follow

    print(
        f"deployment {deployment.id}: {deployment.target.name} to '{args.endpoint}' ({deployment.strategy}, "
        f"traffic steps {deployment.schedule}, {deployment.wait_seconds:g}s each)"
    )
    if not store.read(args.endpoint).serving:
        print(f"nothing serves '{args.endpoint}' now: the deployment starts when pravah serve {args.endpoint} runs")
        return 0
    if args.no_wait:
        return 0
    ended = follow(store, args.endpoint, deployment.id, print)
    print(f"deployment {ended.id}: {ended.status}" + (f" ({ended.reason})" if ended.reason else ""))
    return 0 if ended.status in {"completed", "requested", "in_progress"} else 1


def _deploy_to_sagemaker(args: argparse.Namespace, strategy: str, alarms, wait: float, serving) -> int:
    from aws.environments import load_environment
    from aws.requests import Aws
    from cloud.deploy import Rollout, deploy

    aws = Aws(load_environment(args.environment), dry_run=args.dry_run)
    rollout = Rollout(
        strategy,
        args.canary_percent or serving.deploy.canary_percent,
        args.linear_step or serving.deploy.linear_step_percent,
        wait,
        alarms,
        serving.capture.sampling_percent,
        _given(args.sample_percent, 100.0, 0, 100),
    )
    done = deploy(aws, args.endpoint, args.model, args.version, rollout)
    dry = " (dry run: no change sent; reads ran)" if args.dry_run else ""
    if done.get("shadow"):
        print(
            f"{args.endpoint}: {done['shadow']} is the shadow of production, copied {rollout.sample_percent:g}% of "
            f"the requests and captured, never answering (config {done['endpoint_config']}); pravah deploy "
            f"{args.endpoint} --target sagemaker --version {args.version} promotes it{dry}"
        )
        return 0
    after = dry or "; SageMaker shifts the traffic, rolling back on an alarm"
    print(
        f"{done['action']} {args.endpoint} with {done['endpoint_config']} ({done['instances']} instances, "
        f"autoscaling {aws.environment.endpoint_scaling.min_instances} to "
        f"{aws.environment.endpoint_scaling.max_instances}){after}"
    )
    upload_baseline_of(aws, args.endpoint, done["package"], None)
    return 0


def _given(value: float | None, default: float, above: float, up_to: float | None) -> float:
    """An option's value (or the config's default), checked: above `above`, at most `up_to`."""
    chosen = default if value is None else value
    if chosen <= above or (up_to is not None and chosen > up_to):
        bounds = f"above {above:g}" + (f" and at most {up_to:g}" if up_to is not None else "")
        raise PravahError(f"{chosen:g} is out of range: it must be {bounds}")
    return chosen


def cmd_endpoints_list(args: argparse.Namespace) -> int:
    from foundation.home import Home
    from inference.endpoints import EndpointStore

    store = EndpointStore(Home.resolve(args.home))
    if args.json:
        print_json([store.read(name) for name in store.names()])
        return 0
    if not store.names():
        print("no endpoints; create one with pravah deploy ENDPOINT --model NAME --version V")
    for name in store.names():
        state = store.read(name)
        variants = ", ".join(f"{v.name} {v.weight:g}%" for v in state.variants) or "no variants"
        deployment = state.deployment
        doing = f"; deployment {deployment.id} {deployment.status}" if deployment and deployment.active else ""
        print(f"{name}: {variants} ({state.describe_server()}{doing})")
    return 0


def cmd_endpoints_show(args: argparse.Namespace) -> int:
    from foundation.home import Home
    from inference.endpoints import EndpointStore

    store = EndpointStore(Home.resolve(args.home))
    state = store.read(args.endpoint)
    if args.json:
        print_json(state)
        return 0
    print(f"endpoint {state.name}: {state.describe_server()}")
    for variant in state.variants:
        print(f"  {variant.name:<32} {variant.weight:>6g}%  sha256 {variant.digest[:12]}  {variant.artifact}")
    if state.deployment:
        d = state.deployment
        print(
            f"deployment {d.id}: {d.target.name} ({d.strategy}, steps {d.schedule}, wait {d.wait_seconds:g}s): "
            f"{d.status}" + (f" - {d.reason}" if d.reason else "")
        )
        for event in d.events:
            print(f"  {event}")
    if state.shadow:
        print(f"shadow: {state.shadow.variant.name}, a copy of {state.shadow.sample_percent:g}% of requests")
    _print_shadow(store, args.endpoint)
    if state.history:
        print("history:")
        for item in state.history[-10:]:
            print(
                f"  {item['id']}  {item['target']:<32} {item['strategy']:<12} {item['status']}"
                + (f" ({item['reason']})" if item.get("reason") else "")
            )
    return 0


def cmd_endpoints_promote(args: argparse.Namespace) -> int:
    from foundation.home import Home
    from inference.endpoints import EndpointStore, request_deployment

    _, strategy, schedule, alarms, wait = _rollout(args)
    store = EndpointStore(Home.resolve(args.home))
    _print_shadow(store, args.endpoint)
    return _follow(store, args, request_deployment(store, args.endpoint, None, strategy, schedule, wait, alarms))


def cmd_endpoints_stop_shadow(args: argparse.Namespace) -> int:
    from foundation.home import Home
    from inference.endpoints import EndpointStore, stop_shadow

    store = EndpointStore(Home.resolve(args.home))
    shadow = stop_shadow(store, args.endpoint)
    print(
        f"shadow {shadow.variant.name} stopped on '{args.endpoint}'; production traffic is unchanged (its last "
        f"figures: pravah endpoints show {args.endpoint})"
    )
    return 0


def _print_shadow(store, endpoint: str) -> None:
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


def cmd_endpoints_rollback(args: argparse.Namespace) -> int:
    from foundation.home import Home
    from inference.endpoints import EndpointStore, request_rollback

    print(request_rollback(EndpointStore(Home.resolve(args.home)), args.endpoint, args.reason))
    return 0
