"""`pravah ui`: the console on the project folder (and, with --target sagemaker, the environment's account), or
MLflow's UI on the project's own store."""

from __future__ import annotations

import argparse
import sys

from cli.common import ENVIRONMENT_HELP


def add_commands(commands) -> None:
    ui = commands.add_parser(
        "ui",
        help="the Pravah console: runs, models and endpoints, live (--mlflow: MLflow's UI)",
        description="Serve the Pravah console on this project's folder: runs with their step graphs, live; models "
        "and their approval; endpoints and their rollback. With --mlflow, start `mlflow ui` on the project's own "
        "store (the one `pravah run` and the registry write, wherever --home or PRAVAH_HOME put it) instead.",
    )
    ui.add_argument("--port", type=int, help="default 8765 (the console), 5000 (--mlflow); 0: any free port")
    ui.add_argument(
        "--host", default="127.0.0.1", help="127.0.0.1: this machine only; another address asks for an API key"
    )
    ui.add_argument("--mlflow", action="store_true", help="MLflow's UI instead of the console")
    ui.add_argument(
        "--target",
        choices=["local", "sagemaker"],
        default="local",
        help="sagemaker: also the environment's account (pipeline executions, model packages, endpoints; AWS "
        "credentials), under /sagemaker",
    )
    ui.add_argument("--environment", default="dev", help="with --target sagemaker: " + ENVIRONMENT_HELP)
    ui.set_defaults(handler=cmd_ui)


def cmd_ui(args: argparse.Namespace) -> int:
    """The console; or, with --mlflow, become `mlflow ui` (the venv's, beside this interpreter) with the project's
    store and artifacts."""
    import os
    from pathlib import Path

    from foundation.errors import PravahError
    from foundation.home import Home

    home = Home.resolve(args.home)
    if not args.mlflow:
        from cloud.targets import Where
        from console.account import account_of
        from console.server import serve_console

        account = account_of(Where(args.target, home, args.environment))  # checked before serving
        serve_console(home, args.host, 8765 if args.port is None else args.port, account)
        return 0
    if args.target != "local":
        raise PravahError("--mlflow shows the project's own store: it takes no --target")
    args.port = 5000 if args.port is None else args.port
    mlflow = Path(sys.executable).with_name("mlflow")
    if not mlflow.is_file():
        raise PravahError(f"no mlflow beside {sys.executable}: install the project (make install)")
    print(f"MLflow UI on {home.tracking_uri} at http://{args.host}:{args.port} (Ctrl-C stops)", file=sys.stderr)
    sys.stderr.flush()
    # one worker and no job runner: one person's browser on a laptop, not MLflow's default four workers and
    # GenAI job consumers (measured here: 2 processes, 0.5 GB and 4 CPU-s to be ready, instead of 15, 3.2 GB, 29)
    command = [
        str(mlflow),
        "ui",
        "--backend-store-uri",
        home.tracking_uri,
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--workers",
        "1",
    ]
    os.execve(
        command[0],
        command,
        {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ, "MLFLOW_TRACKING_URI": home.tracking_uri},
    )
