"""The SageMaker container contract, laid out on local folders.

A processing step sees `<root>/input/<name>` and writes `<root>/output/<name>`, where SageMaker's root is
/opt/ml/processing; a training step gets SM_MODEL_DIR, SM_CHANNEL_<NAME>, SM_OUTPUT_DATA_DIR, SM_NUM_CPUS
and its hyperparameters both as `--key value` arguments and as SM_HPS. Step code reads only these.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROCESSING_ROOT = "/opt/ml/processing"


@dataclass(frozen=True)
class Invocation:
    """`python -m module args` with `env` added: how SageMaker's container would start the step."""

    module: str
    args: list[str]
    env: dict[str, str]
    outputs: dict[str, Path]  # output name -> the folder the step writes it to

    def __str__(self) -> str:
        return " ".join(["python", "-m", self.module, *self.args])


def as_argument(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def argument_list(values: dict[str, Any]) -> list[str]:
    return [item for key, value in values.items() for item in (f"--{key}", as_argument(value))]


def _link_input(source: Path, destination: Path) -> None:
    """Make `destination` a folder holding the input, as SageMaker downloads it, without copying."""
    if source.is_dir():
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.symlink_to(source.resolve(), target_is_directory=True)
    else:
        destination.mkdir(parents=True, exist_ok=True)
        (destination / source.name).symlink_to(source.resolve())


def processing(
    module: str, sandbox: Path, inputs: dict[str, Path], outputs: list[str], arguments: dict[str, Any]
) -> Invocation:
    root = sandbox / "processing"
    for name, source in inputs.items():
        _link_input(source, root / "input" / name)
    output_dirs = {name: root / "output" / name for name in outputs}
    for path in output_dirs.values():
        path.mkdir(parents=True)
    args = ["--processing-root", str(root), *argument_list(arguments)]
    return Invocation(module=module, args=args, env={}, outputs=output_dirs)


def training(
    module: str, sandbox: Path, channels: dict[str, Path], hyperparameters: dict[str, Any], cpus: int
) -> Invocation:
    model_dir = sandbox / "model"
    output_data = sandbox / "output" / "data"
    model_dir.mkdir(parents=True)
    output_data.mkdir(parents=True)
    config = sandbox / "input" / "config"
    config.mkdir(parents=True)
    hps = {key: as_argument(value) for key, value in hyperparameters.items()}
    (config / "hyperparameters.json").write_text(json.dumps(hps))
    env = {
        "SM_MODEL_DIR": str(model_dir),
        "SM_OUTPUT_DATA_DIR": str(output_data),
        "SM_OUTPUT_DIR": str(sandbox / "output"),
        "SM_INPUT_DIR": str(sandbox / "input"),
        "SM_INPUT_CONFIG_DIR": str(config),
        "SM_CHANNELS": json.dumps(sorted(channels)),
        "SM_NUM_CPUS": str(cpus),
        "SM_NUM_GPUS": "0",
        "SM_CURRENT_HOST": "algo-1",
        "SM_HOSTS": json.dumps(["algo-1"]),
        "SM_HPS": json.dumps(hps),
    }
    for name, source in channels.items():
        destination = sandbox / "input" / "data" / name
        _link_input(source, destination)
        env[f"SM_CHANNEL_{name.upper()}"] = str(destination)
    for key, value in hps.items():
        env[f"SM_HP_{key.upper()}"] = value
    return Invocation(
        module=module, args=argument_list(hyperparameters), env=env, outputs={"model": model_dir, "output": output_data}
    )
