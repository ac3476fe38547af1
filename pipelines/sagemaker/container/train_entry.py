"""A training job's entry script (`sagemaker_program`): the framework image's training toolkit unpacks the
source archive into /opt/ml/code, installs its requirements.txt and runs this with the hyperparameters as
`--key value` arguments. The trained artifact then gets the code that serves it (in its `code/` folder, where
the inference image looks for SAGEMAKER_PROGRAM and requirements.txt)."""

import os
import sys
from pathlib import Path

from artifact.contract import add_serving_code
from steps.io import run_entry
from training.train import main

if __name__ == "__main__":
    run_entry(main, sys.argv[1:])
    add_serving_code(Path(os.environ["SM_MODEL_DIR"]), Path(__file__).resolve().parent)
