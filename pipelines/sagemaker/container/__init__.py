"""Entry scripts that SageMaker's containers run: they unpack the source archive and call the step's code."""
