"""`pravah predict`: score a file with a registered version, without a server."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.common import DRY_RUN_HELP, ENVIRONMENT_HELP


def add_commands(commands) -> None:
    predict = commands.add_parser("predict", help="score a CSV, TSV or JSON-lines file with a registered version")
    predict.add_argument("--model", required=True, help="a registered model's name")
    which = predict.add_mutually_exclusive_group(required=True)
    which.add_argument("--version", type=int, help="a version number")
    which.add_argument("--alias", help="the version holding this alias (champion, challenger)")
    predict.add_argument(
        "--input",
        required=True,
        help=".csv, .tsv or .jsonl: a text column (or field) for a "
        "text model, the model's columns for a table's; --target sagemaker: an S3 prefix",
    )
    predict.add_argument(
        "--output",
        required=True,
        help=".csv, .tsv or .jsonl: the rows with prediction, confidence, "
        "alternatives and error; with --target sagemaker an S3 prefix",
    )
    predict.add_argument("--top-k", type=int, default=3, help="labels per row: the prediction and its alternatives")
    predict.add_argument(
        "--target",
        default="local",
        choices=["local", "sagemaker"],
        help="sagemaker: a Batch Transform job of the version's package, S3 in and out",
    )
    predict.add_argument(
        "--content-type",
        default="application/jsonlines",
        choices=["application/jsonlines", "text/plain"],
        help="with --target sagemaker: the input's lines",
    )
    predict.add_argument("--wait", action="store_true", help="with --target sagemaker: until the job ends")
    predict.add_argument("--environment", default="dev", help=f"with --target sagemaker: {ENVIRONMENT_HELP}")
    predict.add_argument("--dry-run", action="store_true", help=f"with --target sagemaker: {DRY_RUN_HELP}")
    predict.set_defaults(handler=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    if args.target == "sagemaker":
        return _transform(args)
    args.input, args.output = Path(args.input), Path(args.output)
    from artifact.predictor import Predictor
    from foundation.errors import PravahError
    from foundation.home import Home
    from inference.files import REPORTED, file_format, score_file
    from registry.mlflow_backend import MlflowRegistry, verified_artifacts

    file_format(args.input), file_format(args.output)  # a wrong name fails before the model loads
    if args.input.resolve() == args.output.resolve():
        raise PravahError(f"{args.output}: the output would replace the input; give another file")
    registry = MlflowRegistry(Home.resolve(args.home))
    if args.alias:
        found = registry.resolve_alias(args.model, args.alias)
        if found is None:
            raise PravahError(f"no version of '{args.model}' holds the alias '{args.alias}'")
        which = args.alias
    else:
        version = registry.get(args.model, args.version)
        found, which = (
            verified_artifacts(args.model, f"version {args.version}", version.source, version.digest),
            f"version {args.version}",
        )
    print(f"scoring {args.input} with {args.model} ({which}) ...", file=sys.stderr)
    scored = score_file(
        Predictor(Path(found["path"])),
        args.input,
        args.output,
        args.top_k,
        progress=lambda line: print(line, file=sys.stderr),
    )
    for line, reason in scored.refused:
        print(f"  line {line}: {reason}", file=sys.stderr)
    if scored.refused_count > REPORTED:
        print(f"  ... and {scored.refused_count - REPORTED:,} more rows refused", file=sys.stderr)
    print(
        f"{scored.rows - scored.refused_count:,} of {scored.rows:,} rows scored in {scored.seconds:.1f} s: "
        f"{args.output}"
    )
    return 0 if scored.rows > scored.refused_count else 1


def _transform(args: argparse.Namespace) -> int:
    from aws.environments import load_environment
    from aws.requests import Aws
    from cloud import transform
    from foundation.errors import PravahError

    if args.alias:
        raise PravahError("--alias: SageMaker's model registry has no aliases; give --version")
    aws = Aws(load_environment(args.environment), dry_run=args.dry_run)
    request = transform.transform(aws, args.model, args.version, args.input, args.output, args.content_type)
    job = request["TransformJobName"]
    if args.dry_run:
        print(f"transform job {job} (dry run: no change sent; reads ran)")
        return 0
    print(
        f"started transform job {job}: {args.input} -> {args.output} (each input object's answers in "
        f"OBJECT.out), {request['TransformResources']['InstanceType']}"
    )
    if args.wait:
        described = transform.wait(aws, job)
        print(f"transform job {job} completed: {described['TransformOutput']['S3OutputPath']}")
    return 0
