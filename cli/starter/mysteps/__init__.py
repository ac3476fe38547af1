"""Your project's steps: each module is one step, with a main(argv) that speaks SageMaker's container contract."""
