"""A Batch Transform job on local folders: what SageMaker's transform job does with a model's serving container,
done by the same handlers (inference/sagemaker_handlers.py) in one process, with the processing contract's
folders (`<root>/input/model`, `<root>/input/data`, `<root>/output/predictions`).

As the job is configured on SageMaker (SplitType Line, BatchStrategy MultiRecord, AssembleWith Line): every file
under the data folder is split into lines, sent as requests of at most `--max_payload_mb`, and the answers are
written a line each, in order, into FILE.out (the input's relative path, `.out` added). A line that cannot be
scored is answered with its {"error": ...} in place and does not fail the job.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from foundation.errors import PravahError

CONTENT_TYPE = "application/jsonlines"  # what the serving handlers read line by line
ACCEPT = "application/jsonlines"
MAX_CONCURRENT_TRANSFORMS = 10  # the design doc's 6.3.2
PAYLOAD_LIMIT_MB = 100  # AWS: MaxConcurrentTransforms x MaxPayloadInMB may not exceed 100 MB
MODEL_CLIENT_CONFIG = {"InvocationsTimeoutInSeconds": 600, "InvocationsMaxRetries": 1}


def payloads(lines: list[str], limit: int) -> Iterator[list[str]]:
    """Consecutive lines, as many to a request as fit in `limit` bytes (a longer line alone), as SageMaker's
    MultiRecord batching sends them."""
    batch: list[str] = []
    size = 0
    for line in lines:
        length = len(line.encode()) + 1
        if batch and size + length > limit:
            yield batch
            batch, size = [], 0
        batch.append(line)
        size += length
    if batch:
        yield batch


def transform_folder(model_dir: Path, data: Path, output: Path, max_payload_mb: int) -> dict[str, int]:
    """Score every file under `data` into `output`; how many files, lines and refused lines."""
    from inference.sagemaker_handlers import BadRequest, input_fn, model_fn, output_fn, predict_fn

    predictor = model_fn(str(model_dir))
    files = sorted(path for path in data.rglob("*") if path.is_file())
    if not files:
        raise PravahError(f"no files to score in {data}")
    counts, started = {"files": 0, "lines": 0, "errors": 0}, time.perf_counter()
    for path in files:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise PravahError(f"{path.relative_to(data)}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        answers = []
        for payload in payloads(lines, max_payload_mb * 1024 * 1024):
            try:
                body, _ = output_fn(predict_fn(input_fn("\n".join(payload), CONTENT_TYPE), predictor), ACCEPT)
            except BadRequest as exc:  # the container answers 400 and SageMaker fails the job
                raise PravahError(f"{path.relative_to(data)}: the model refused a request: {exc}") from None
            answers.append(body)
            counts["lines"] += len(payload)
            counts["errors"] += sum("error" in json.loads(line) for line in body.splitlines())
        target = output / path.relative_to(data).with_name(f"{path.name}.out")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("".join(answer + "\n" for answer in answers), encoding="utf-8")
        counts["files"] += 1
        rate = counts["lines"] / max(time.perf_counter() - started, 1e-9)
        print(f"  {target.name}: {len(lines):,} lines ({counts['lines']:,} in all, {rate:,.0f} lines/s)", flush=True)
    return counts


def main(argv: Sequence[str] | None = None) -> None:
    from steps.io import processing_parser  # here, so that the pipeline kind reading the constants pays nothing

    parser = processing_parser(__doc__)
    parser.add_argument("--max_payload_mb", type=int, default=6)
    args = parser.parse_args(argv)
    root = args.processing_root
    counts = transform_folder(
        root / "input" / "model", root / "input" / "data", root / "output" / "predictions", args.max_payload_mb
    )
    print(f"scored {counts['lines']:,} lines of {counts['files']} file(s); {counts['errors']:,} answered with an error")


if __name__ == "__main__":
    from steps.io import run_entry

    run_entry(main)
