"""Which instance of a processing job this is: SageMaker writes `/opt/ml/config/resourceconfig.json` for each
of a job's instances (`{"current_host": "algo-2", "hosts": ["algo-1", "algo-2", ...]}`), and a job whose
work is split among its instances takes its share by it. Standard library only: every image copies it."""

from __future__ import annotations

import json
from pathlib import Path

CONFIG = Path("/opt/ml/config")


def instance_share(config: Path = CONFIG) -> tuple[str, int, int]:
    """This instance's host name, its index among the job's hosts, and their number (alone, as `algo-1` of
    one, when there is no resourceconfig.json: a local run)."""
    path = config / "resourceconfig.json"
    if not path.is_file():
        return "algo-1", 0, 1
    resources = json.loads(path.read_text())
    hosts = sorted(resources["hosts"], key=lambda host: (len(host), host))  # algo-2 before algo-10
    return resources["current_host"], hosts.index(resources["current_host"]), len(hosts)
