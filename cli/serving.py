"""`pravah serve`, `deploy`, `endpoints`: the predict API and blue/green deployments."""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

from cli.common import DRY_RUN_HELP
from cli.rollout import rollout, rollout_options
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
    rollout_options(deploy)
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
    from cloud.targets import Release, Where, endpoints
    from foundation.home import Home

    serving, choices = rollout(args)
    release = Release.from_settings(args.endpoint, args.model, args.version, serving, choices, follow=not args.no_wait)
    where = Where(args.target, Home.resolve(args.home), args.environment, args.dry_run)
    return endpoints(where).deploy(release, print)
