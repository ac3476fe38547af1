"""The model registry: one interface (`registry.versions.ModelRegistry`: versions, statuses, aliases, the approval
rules) over two backends, MLflow's on the project folder and SageMaker's Model Registry. `open_registry` is the
one place that picks a backend, so a caller says where, not which class."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from foundation.home import Home
    from registry.versions import ModelRegistry


def open_registry(
    target: str = "local", *, home: Home | None = None, region: str | None = None, dry_run: bool = False
) -> ModelRegistry:
    """The project's registry (`local`: MLflow under `home`) or the account's (`sagemaker`, in `region`; with
    `dry_run`, changes are printed and not sent; `home` unused). A backend's modules are imported only when
    asked for."""
    if target == "sagemaker":
        from registry.sagemaker_backend import SageMakerRegistry

        return SageMakerRegistry.from_environment(region, dry_run=dry_run)
    if target != "local" or home is None:
        raise ValueError(f"a registry is 'local' (with a home) or 'sagemaker', not {target!r}")
    from registry.mlflow_backend import MlflowRegistry

    return MlflowRegistry(home)
