"""Every library the platform names must import in this environment (a broken pin shows here first)."""

import importlib

import pytest

LIBRARIES = [
    "torch",
    "transformers",
    "sklearn",
    "skops",
    "safetensors",
    "mlflow",
    "great_expectations",
    "evidently",
    "sagemaker",
    "sagemaker.core",
    "boto3",
    "moto",
    "fastapi",
    "uvicorn",
    "mangum",
    "pydantic",
    "yaml",
    "jsonschema",
    "cfnlint",
    "schemathesis",
    "croniter",
    "matplotlib",
    "nbclient",
    "pyarrow",
    "jwt",
    "httpx",
    "time_machine",
    "fastapi_offline",
]


@pytest.mark.parametrize("name", LIBRARIES)
def test_library_imports(name):
    importlib.import_module(name)


def test_pandas_is_2x_for_evidently():
    import pandas

    assert pandas.__version__.startswith("2."), "evidently 0.7.23 does not import beside pandas 3"
    from evidently import Report  # noqa: F401  (fails with pandas 3: infer_dtype_from_object)


def test_torch_is_the_cpu_build():
    import torch

    assert torch.__version__.startswith("2.13.0")
    assert not torch.cuda.is_available()
