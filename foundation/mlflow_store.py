"""The project folder's MLflow database (SQLite under the home): runs are tracked and models registered there."""

from __future__ import annotations

import fcntl

from foundation.home import Home


def connect(home: Home):
    """An MLflow client whose database is ready to use.

    MLflow creates and migrates its schema when a store is first opened; two processes doing that at once
    on a new SQLite file (a run's registry worker and the previous run's background sync) break each
    other's migrations. Opening both stores under one file lock makes the set-up happen once.
    """
    import mlflow  # lazy: about 1.5 s of imports

    home.root.mkdir(parents=True, exist_ok=True)
    with (home.root / ".mlflow-setup.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        client = mlflow.MlflowClient(tracking_uri=home.tracking_uri, registry_uri=home.tracking_uri)
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)
    return client
