"""The predict API on AWS Lambda behind API Gateway: the same FastAPI app, through Mangum, calling the
SageMaker endpoint named by `PRAVAH_ENDPOINT`.

API Gateway checks API keys and throttles (usage plans) or runs the Cognito authorizer before Lambda runs,
so the app takes the caller from the request context instead of checking keys itself.
"""

from __future__ import annotations

import os

from foundation.home import Home
from foundation.jsonlog import configure_logging
from inference.app import create_app
from inference.config import AuthSettings, BatchSettings, ServingConfig
from inference.sagemaker_service import SageMakerEndpointService


def build_handler():
    import boto3
    from mangum import Mangum

    endpoint = os.environ["PRAVAH_ENDPOINT"]
    config = ServingConfig(auth=AuthSettings(api_keys=False, gateway=True), batch=BatchSettings(enabled=False))
    service = SageMakerEndpointService(
        endpoint,
        boto3.client("sagemaker-runtime"),
        boto3.client("sagemaker"),
        boto3.client("s3"),
        os.environ.get("PRAVAH_INPUT_SCHEMA"),
    )
    configure_logging("ml-inference", os.environ.get("LOG_LEVEL", "INFO"))
    home = Home.resolve(os.environ.get("PRAVAH_HOME", "/tmp/pravah"))
    return Mangum(create_app(home, endpoint, config, service=service), lifespan="off")


_handler = None


def handler(event, context):
    """The Lambda entry point (built on the first invocation, kept for the container's life)."""
    global _handler
    if _handler is None:
        _handler = build_handler()
    return _handler(event, context)
