"""A step's outputs after its process ended well: each one checked to hold something, hashed, and moved from
scratch into the project folder with one rename, so a crash or `kill -9` never leaves a half output that a
later run could take for a result."""

from __future__ import annotations

import shutil

from foundation.fingerprint import hash_tree
from foundation.home import Home, replace_folder
from pipelines.contract import Invocation
from pipelines.records import OutputRecord
from pipelines.spec import CodeStep


def empty_output(invocation: Invocation, required: list[str]) -> str:
    """Why the step failed although it ended with exit code 0, or "": a processing step's output or a training
    step's model left without a file (a step that forgot to write it, or never ran its main) fails the step, as
    an empty folder passed on would fail a later step, far from the cause. (A training step's output data,
    SM_OUTPUT_DATA_DIR, may stay empty, as on SageMaker.)"""
    for name in required:
        folder = invocation.outputs[name]
        if not folder.is_dir() or not any(path.is_file() for path in folder.rglob("*")):
            return f"output '{name}' is empty: the step ended with exit code 0 and wrote no file to it"
    return ""


def commit_outputs(
    home: Home, pipeline: str, step_name: str, key: str, step: CodeStep, invocation: Invocation
) -> dict[str, OutputRecord]:
    """Hash each output in scratch, then move it into place with one rename. A folder once written is never
    rewritten (registered versions' lineage names them): the same bytes again reuse it, other bytes for the
    same key (a --no-cache run of a step that is not deterministic) go to a folder named by their digest."""
    outputs = {}
    for output_name, scratch in invocation.outputs.items():
        tree = hash_tree(scratch)
        folder = home.root / step.outputs[output_name].area / pipeline / f"{step_name}-{key[:12]}"
        final = folder / output_name
        if final.exists() and hash_tree(final).digest != tree.digest:
            final = folder.with_name(f"{folder.name}-{tree.digest[:12]}") / output_name
        if final.exists():
            shutil.rmtree(scratch)
        else:
            replace_folder(scratch, final)
        outputs[output_name] = OutputRecord(path=str(final), digest=tree.digest, files=tree.files)
    return outputs
