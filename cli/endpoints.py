"""`pravah endpoints`: list, show, promote a shadow, stop a shadow, roll back."""

from __future__ import annotations

import argparse

from cli.common import add_json_option, print_json
from cli.rollout import print_shadow, rollout, rollout_options


def add_commands(commands) -> None:
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
    rollout_options(promote)
    promote.add_argument("--config", help="serving settings (default: configs/serving.yaml)")
    promote.set_defaults(handler=cmd_endpoints_promote, target="local")
    stop = endpoints_commands.add_parser("stop-shadow", help="end the shadow variant; production is untouched")
    stop.add_argument("endpoint")
    stop.set_defaults(handler=cmd_endpoints_stop_shadow)


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
    print_shadow(store, args.endpoint)
    if state.history:
        print("history:")
        for item in state.history[-10:]:
            print(
                f"  {item['id']}  {item['target']:<32} {item['strategy']:<12} {item['status']}"
                + (f" ({item['reason']})" if item.get("reason") else "")
            )
    return 0


def cmd_endpoints_promote(args: argparse.Namespace) -> int:
    from cloud.targets import LocalEndpoints, rollout_plan
    from foundation.home import Home
    from inference.endpoints import request_deployment

    plan = rollout_plan(*rollout(args))
    endpoints = LocalEndpoints(Home.resolve(args.home))
    print_shadow(endpoints.store, args.endpoint)
    deployment = request_deployment(
        endpoints.store, args.endpoint, None, plan.strategy, plan.schedule, plan.wait_seconds, plan.alarms
    )
    return endpoints.follow(args.endpoint, deployment, not args.no_wait, print)


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


def cmd_endpoints_rollback(args: argparse.Namespace) -> int:
    from foundation.home import Home
    from inference.endpoints import EndpointStore, request_rollback

    print(request_rollback(EndpointStore(Home.resolve(args.home)), args.endpoint, args.reason))
    return 0
