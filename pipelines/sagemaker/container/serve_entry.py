"""The serving container's program (`SAGEMAKER_PROGRAM=pravah_serve.py`): the inference toolkit imports it by
its module name from the top of the source archive, so it lives there and hands over to the project's
handlers."""

from inference.sagemaker_handlers import input_fn, model_fn, output_fn, predict_fn

__all__ = ["input_fn", "model_fn", "output_fn", "predict_fn"]
