"""`pravah ui`: the console served by uvicorn on a socket bound before the first line is said (so `--port 0`
can say the port it got), on this machine only unless asked; beyond it, only with the project's API keys."""

from __future__ import annotations

import ipaddress
import socket
import sys
from typing import Any

from foundation.errors import PravahError
from foundation.home import Home


def loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def warm(app) -> None:
    """Read every run record and open the registry now, not on the first pages asked for; then set what was
    loaded aside from the garbage collector, whose full passes over it (600,000 objects with a year of history:
    about 340 ms here) made a page now and then answer in 400 ms instead of 40."""
    import gc

    from console.app import registry_of

    app.state.runs.records()
    registry_of(app)
    gc.collect()
    gc.freeze()


def serve_console(home: Home, host: str, port: int, account: Any = None) -> None:
    import uvicorn

    from console.app import create_console
    from inference.keys import KeyStore

    guarded = not loopback(host)
    if guarded and not KeyStore(home).list():
        raise PravahError(
            f"--host {host} opens the console beyond this machine, which needs an API key to sign in with: "
            "create one first (pravah keys create NAME)"
        )
    ipv6 = ":" in host
    try:
        listener = socket.create_server((host, port), family=socket.AF_INET6 if ipv6 else socket.AF_INET)
    except (OSError, OverflowError) as exc:
        raise PravahError(f"cannot listen on {host} port {port}: {exc}") from None
    address = f"http://{f'[{host}]' if ipv6 else host}:{listener.getsockname()[1]}"
    who = "anyone who can reach it, signing in with a project API key" if guarded else "this machine only"
    cloud = f"; SageMaker account {account.environment.account} at {address}/sagemaker" if account else ""
    print(f"Pravah console at {address} ({who}){cloud}; Ctrl-C stops", file=sys.stderr, flush=True)
    app = create_console(home, require_key=guarded, account=account)
    warm(app)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.run(sockets=[listener])
