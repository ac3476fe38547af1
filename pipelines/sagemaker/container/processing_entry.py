"""A processing job's script (`code=`): unpack Pravah's source archive (an input of every step), install what
the steps need, and run `python -m MODULE ARGS` as the local runner does. Standard library only: it runs
before anything is installed."""

import runpy
import subprocess
import sys
import tarfile
import tempfile

SOURCE = "/opt/ml/processing/input/pravah-source/source.tar.gz"


def main() -> None:
    root = tempfile.mkdtemp(prefix="pravah-")
    with tarfile.open(SOURCE) as archive:
        archive.extractall(root, filter="data")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-r", f"{root}/requirements.txt"], check=True)
    sys.path.insert(0, root)
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
