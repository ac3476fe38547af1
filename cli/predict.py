"""`pravah predict`: score a file with a registered version, without a server."""

from __future__ import annotations

import argparse
import sys

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
    from cloud.targets import ScoringJob, Where, batch_scoring
    from foundation.home import Home

    where = Where(args.target, Home.resolve(args.home), args.environment, args.dry_run)
    job = ScoringJob(
        args.model, args.version, args.alias, args.input, args.output, args.top_k, args.content_type, args.wait
    )
    return batch_scoring(where).score(job, print, lambda line: print(line, file=sys.stderr, flush=True))
