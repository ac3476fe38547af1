"""A processing job's script (`code=`): unpack Pravah's source archive (an input of every step) and run
`python -m MODULE ARGS` as the local runner does, on the runtime image's libraries. Standard library only."""

import runpy
import sys
import tarfile
import tempfile

SOURCE = "/opt/ml/processing/input/pravah-source/source.tar.gz"


def main() -> None:
    root = tempfile.mkdtemp(prefix="pravah-")
    with tarfile.open(SOURCE) as archive:
        archive.extractall(root, filter="data")
    sys.path.insert(0, root)
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
