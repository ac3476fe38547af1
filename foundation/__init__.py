"""The foundation: the project folder and its layout, atomic writes, hashes, JSON logs, errors and YAML
settings. It imports nothing else of Pravah; every other package may import it."""

# Pravah's code packages, from the bottom room to the top (tests/test_architecture.py holds the order); the
# Python client (`pravah`) is a top room beside the command line
PACKAGES = (
    "foundation",
    "artifact",
    "aws",
    "steps",
    "training",
    "registry",
    "inference",
    "monitoring",
    "pipelines",
    "cloud",
    "emulator",
    "console",
    "cli",
    "pravah",
)
