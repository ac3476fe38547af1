"""`pravah cloud`, `compile`, `pipeline`, `template`, `package`: the account, the pipeline and the predict API on
AWS."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.common import DRY_RUN_HELP, ENVIRONMENT_HELP, parameter
from foundation.errors import PravahError

SAMPLE_REQUEST = '{"inputs": ["भारत ने फाइनल मैच में जीत दर्ज की", "The new phone has a faster chip"]}'


def add_commands(commands) -> None:
    account = commands.add_parser("cloud", help="the account's side: what a first deploy needs")
    account_commands = account.add_subparsers(dest="cloud_command", metavar="COMMAND", required=True)
    bootstrap = account_commands.add_parser(
        "bootstrap",
        help="create what a first deploy needs in an empty account (idempotent)",
        description="Create, or correct, the environment's bucket (versioned, encrypted, public access blocked, "
        "capture lifecycle), its SageMaker execution role with least privilege, the ECR repositories "
        "of the project's images, the alert topics of the endpoints named, and the predict Lambda's package in "
        "the bucket. A second run changes nothing.",
    )
    bootstrap.add_argument("--environment", default="dev", help=ENVIRONMENT_HELP)
    bootstrap.add_argument("--endpoint", action="append", default=[], help="an endpoint whose alert topic to create")
    bootstrap.add_argument("--no-lambda", action="store_true", help="leave the Lambda package out")
    bootstrap.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    bootstrap.set_defaults(handler=cmd_bootstrap)

    compile_ = commands.add_parser(
        "compile",
        help="compile a pipeline to a SageMaker Pipeline definition (offline)",
        description="Build the SageMaker Pipeline definition of a spec with the SageMaker "
        "Python SDK, check it against AWS's pipeline-definition schema, and write it.",
    )
    compile_.add_argument("pipeline")
    compile_.add_argument("--environment", default="dev", help=ENVIRONMENT_HELP)
    compile_.add_argument("--output", help="where to write the definition (default .pravah/compiled/NAME.json)")
    compile_.set_defaults(handler=cmd_compile)

    cloud = commands.add_parser("pipeline", help="the pipeline on SageMaker: upsert, start, status, executions")
    cloud_commands = cloud.add_subparsers(dest="pipeline_command", metavar="COMMAND", required=True)
    for verb, text in (
        ("upsert", "upload the code and create or update the SageMaker pipeline"),
        ("start", "start an execution"),
        ("status", "an execution's status"),
        ("executions", "recent executions"),
    ):
        command = cloud_commands.add_parser(verb, help=text)
        command.add_argument("pipeline")
        command.add_argument("--target", default="sagemaker", choices=["sagemaker"])
        command.add_argument("--environment", default="dev", help=ENVIRONMENT_HELP)
        command.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
        if verb == "start":
            command.add_argument("-p", "--param", action="append", type=parameter, default=[], metavar="KEY=VALUE")
        if verb == "status":
            command.add_argument("execution_arn")
        command.set_defaults(handler=cmd_pipeline, verb=verb)
    emulate = cloud_commands.add_parser(
        "emulate",
        help="run the compiled pipeline offline, as SageMaker would, and serve what it registers",
        description="On a local moto server (S3, IAM, ECR, SNS, EventBridge, CloudWatch and SageMaker's API) "
        "that starts as an empty account: bootstrap it, compile, upsert and start the pipeline, then play "
        "SageMaker's part from the definition: each step's request checked against botocore's service model, its "
        "container contract run under /opt/ml in the project's image as its Dockerfile builds it, conditions and "
        "property files resolved; a registered model is approved, served by its image and asked for one "
        "prediction, its traffic monitored by the endpoint's monitoring pipeline and scored by a transform job. "
        "Needs Linux mount namespaces (root) and, once per image, the package index to build it.",
    )
    emulate.add_argument("pipeline")
    emulate.add_argument("--environment", default="dev", help=ENVIRONMENT_HELP)
    emulate.add_argument("-p", "--param", action="append", type=parameter, default=[], metavar="KEY=VALUE")
    emulate.add_argument(
        "--stage",
        action="append",
        type=parameter,
        default=[],
        metavar="S3_URI=PATH",
        help="put a local file or folder at an S3 URI first (data your bucket would hold)",
    )
    emulate.add_argument(
        "--request",
        default=SAMPLE_REQUEST,
        metavar="JSON",
        help="the body of the prediction asked of the served model (default: two texts)",
    )
    emulate.set_defaults(handler=cmd_emulate)

    cloud_template = commands.add_parser(
        "template",
        help="the CloudFormation template of the cloud side",
        description="Write the CloudFormation template of the predict API on Lambda "
        "(API Gateway, API keys, usage plan, throttling) and of the schedules.",
    )
    cloud_template.add_argument("--endpoint", required=True, help="the SageMaker endpoint the API calls")
    cloud_template.add_argument("--environment", default="dev", help=ENVIRONMENT_HELP)
    cloud_template.add_argument("--config", help="serving settings (default: configs/serving.yaml)")
    cloud_template.add_argument("--output", help="where to write it (default .pravah/cloud/ENDPOINT.yaml)")
    cloud_template.set_defaults(handler=cmd_template)

    package = commands.add_parser("package", help="build a deployment package")
    package_commands = package.add_subparsers(dest="package_command", metavar="COMMAND", required=True)
    package_lambda = package_commands.add_parser("lambda", help="the predict API's Lambda zip (code + libraries)")
    package_lambda.add_argument("--output", default="build/predict.zip")
    package_lambda.set_defaults(handler=cmd_package_lambda)


def cmd_compile(args: argparse.Namespace) -> int:
    import json

    from aws.environments import load_environment
    from foundation.home import Home
    from pipelines.sagemaker.compiler import compile_pipeline
    from pipelines.sagemaker.schema import schema_path
    from pipelines.specfile import load_pipeline

    pipeline = load_pipeline(args.pipeline)
    environment = load_environment(args.environment, pipeline.project_root)
    compiled = compile_pipeline(pipeline, environment)
    output = Path(args.output) if args.output else Home.resolve(args.home).root / "compiled" / f"{pipeline.name}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(compiled.definition, indent=2))
    steps = [s["Name"] for s in compiled.definition["Steps"]]
    print(
        f"{pipeline.name}: {len(compiled.definition['Parameters'])} parameters, steps {', '.join(steps)} "
        f"({environment.region}, s3://{environment.bucket})"
    )
    for upload in compiled.uploads:
        print(f"  upload at upsert: {upload.path or '(generated)'} -> {upload.s3_uri}")
    for note in compiled.notes:
        print(f"  note: {note}")
    # compile_pipeline refused what the schema or the service model would refuse
    print(f"  valid against {schema_path().name} (with the documented relaxations) and SageMaker's service model")
    print(f"definition: {output}")
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    from aws.environments import load_environment
    from aws.requests import Aws
    from pipelines.sagemaker import pipeline as cloud
    from pipelines.sagemaker.compiler import compile_pipeline
    from pipelines.specfile import load_pipeline

    pipeline = load_pipeline(args.pipeline)
    aws = Aws(load_environment(args.environment, pipeline.project_root), dry_run=args.dry_run)
    if args.verb == "upsert":
        arn = cloud.upsert(aws, pipeline, compile_pipeline(pipeline, aws.environment))
        print(f"pipeline {pipeline.name}: {arn or 'dry run: no change sent (reads ran)'}")
    elif args.verb == "start":
        arn = cloud.start(aws, pipeline, dict(args.param))
        print(f"started {arn or '(dry run)'}\nfollow it with: pravah pipeline status {pipeline.name} {arn or 'ARN'}")
    elif args.verb == "status":
        found = cloud.status(aws, args.execution_arn)
        if found:
            print(
                f"{found.get('PipelineExecutionArn')}: {found.get('PipelineExecutionStatus')} "
                f"(started {found.get('CreationTime')}, last change {found.get('LastModifiedTime')})"
                + (f"; failure: {found['FailureReason']}" if found.get("FailureReason") else "")
            )
    else:
        for item in cloud.executions(aws, pipeline.name):
            print(
                f"{item.get('StartTime')}  {item.get('PipelineExecutionStatus'):<12} {item.get('PipelineExecutionArn')}"
            )
    return 0


def cmd_emulate(args: argparse.Namespace) -> int:
    import json

    from aws.environments import load_environment
    from emulator.execution import emulate
    from foundation.home import Home
    from pipelines.specfile import load_pipeline

    try:
        request = json.loads(args.request)
    except ValueError as exc:
        raise PravahError(f"--request is not JSON: {exc}") from None
    pipeline = load_pipeline(args.pipeline)
    environment = load_environment(args.environment, pipeline.project_root)
    folder = Home.resolve(args.home).root / "emulator" / pipeline.name
    staged = {uri: Path(path) for uri, path in args.stage}
    done = emulate(pipeline, environment, dict(args.param), staged, folder, request)
    print(f"execution {done.execution_arn}: {done.status}" + (f"\n{done.failure}" if done.failure else ""))
    if done.model_package_arn:
        print(f"registered {done.model_package_arn}")
    print(f"jobs' folders and logs: {folder}")
    return 0 if done.status == "Succeeded" else 1


def cmd_template(args: argparse.Namespace) -> int:
    from aws.environments import load_environment
    from cloud.template import render, template
    from foundation.home import Home
    from inference.config import load_serving_config
    from monitoring.config import load_monitoring_config
    from monitoring.schedules import ScheduleStore

    home = Home.resolve(args.home)
    serving = load_serving_config(Path(args.config) if args.config else None)
    retrain = load_monitoring_config().alerts.retrain  # what a monitoring pipeline starts on a violation
    schedules = ScheduleStore(home).all()
    built = template(
        load_environment(args.environment),
        args.endpoint,
        schedules,
        serving.rate_limit.requests_per_second,
        serving.rate_limit.burst,
        retrain.pipeline if retrain.enabled else "",
    )
    output = Path(args.output) if args.output else home.root / "cloud" / f"{args.endpoint}.yaml"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(built))
    print(
        f"{output}: {len(built['Resources'])} resources ({len(schedules)} schedules); "
        f"aws cloudformation deploy --template-file {output} --stack-name pravah-{args.endpoint} "
        "--capabilities CAPABILITY_IAM"
    )
    return 0


def cmd_package_lambda(args: argparse.Namespace) -> int:
    from inference.lambda_package import build_lambda_package

    root = Path(__file__).resolve().parents[1]  # this repository
    made = build_lambda_package(root, Path(args.output))
    print(
        f"{args.output}: {made['code_files']} files of this repository's code and {made['library_files']} files "
        f"of {made['distributions']} libraries, "
        f"{made['bytes'] / 1e6:.1f} MB; upload it where `pravah template` points CodeBucket/CodeKey"
    )
    return 0


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from aws.environments import load_environment
    from aws.requests import Aws
    from cloud.bootstrap import bootstrap
    from inference.lambda_package import build_into

    aws = Aws(load_environment(args.environment), dry_run=args.dry_run)
    bootstrap(aws, args.endpoint, None if args.no_lambda else build_into)
    print(f"environment {args.environment}: ready" + (" (dry run: no change sent; reads ran)" if args.dry_run else ""))
    return 0
