"""A training job's entry script (`sagemaker_program`): the framework image's training toolkit unpacks the
source archive into /opt/ml/code, installs its requirements.txt and runs this with the hyperparameters as
`--key value` arguments."""

import sys

from steps.io import run_entry
from training.train import main

if __name__ == "__main__":
    run_entry(main, sys.argv[1:])
