"""`pravah`: the command line. Heavy libraries are imported inside commands, so `--help` is instant."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from pipelines.errors import PravahError

DRY_RUN_HELP = "print each change to AWS (validated) instead of sending it; reads (describe, list, head) still run"


SAMPLE_REQUEST = '{"inputs": ["भारत ने फाइनल मैच में जीत दर्ज की", "The new phone has a faster chip"]}'


def _parameter(text: str) -> tuple[str, str]:
    key, eq, value = text.partition("=")
    if not eq or not key:
        raise argparse.ArgumentTypeError(f"'{text}' is not key=value")
    return key.strip(), value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pravah",
        description="Declare an ML pipeline once in YAML; run it locally or compile it for SageMaker.",
    )
    parser.add_argument("--home", help="project folder for artifacts and records (default: $PRAVAH_HOME or .pravah)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser("run", help="run a pipeline locally", description="Run a pipeline locally.")
    run.add_argument("pipeline", nargs="?", help="a name under configs/pipelines/ or a YAML path")
    run.add_argument("-p", "--param", action="append", type=_parameter, default=[], metavar="KEY=VALUE",
                     help="override a pipeline parameter (repeatable)")  # fmt: skip
    run.add_argument("--no-cache", action="store_true", help="run every step even when cached")
    run.add_argument("--resume", metavar="RUN_ID", help="run again the failed steps of a run and what follows")
    run.add_argument("--max-parallel", type=int, help="steps to run at once (default: CPU count)")
    run.add_argument("--no-tracking", action="store_true", help="do not mirror the run into MLflow")
    run.set_defaults(handler=cmd_run)

    graph = commands.add_parser("graph", help="print a pipeline's step graph")
    graph.add_argument("pipeline")
    graph.add_argument("--format", choices=["text", "mermaid"], default="text")
    graph.set_defaults(handler=cmd_graph)

    check = commands.add_parser("check", help="validate a pipeline spec without running it")
    check.add_argument("pipeline", nargs="+")
    check.set_defaults(handler=cmd_check)

    compile_ = commands.add_parser(
        "compile",
        help="compile a pipeline to a SageMaker Pipeline definition (offline)",
        description="Build the SageMaker Pipeline definition of a spec with the SageMaker "
        "Python SDK, check it against AWS's pipeline-definition schema, and write it.",
    )
    compile_.add_argument("pipeline")
    compile_.add_argument("--environment", default="dev", help="configs/environments/NAME.yaml (default dev)")
    compile_.add_argument("--output", help="where to write the definition (default .pravah/compiled/NAME.json)")
    compile_.set_defaults(handler=cmd_compile)

    cloud = commands.add_parser("pipeline", help="the pipeline on SageMaker: upsert, start, status, executions")
    cloud_commands = cloud.add_subparsers(dest="pipeline_command", metavar="COMMAND", required=True)
    for verb, text in (("upsert", "upload the code and create or update the SageMaker pipeline"),
                       ("start", "start an execution"), ("status", "an execution's status"),
                       ("executions", "recent executions")):  # fmt: skip
        command = cloud_commands.add_parser(verb, help=text)
        command.add_argument("pipeline")
        command.add_argument("--target", default="sagemaker", choices=["sagemaker"])
        command.add_argument("--environment", default="dev", help="configs/environments/NAME.yaml (default dev)")
        command.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
        if verb == "start":
            command.add_argument("-p", "--param", action="append", type=_parameter, default=[], metavar="KEY=VALUE")
        if verb == "status":
            command.add_argument("execution_arn")
        command.set_defaults(handler=cmd_pipeline, verb=verb)
    emulate = cloud_commands.add_parser(
        "emulate", help="run the compiled pipeline offline, as SageMaker would, and serve what it registers",
        description="Compile the pipeline, create and start it on a local moto server (S3 and SageMaker's API), "
        "then play SageMaker's part from the definition: each step's request checked against botocore's service "
        "model, its container contract run under /opt/ml on a stand-in of its image (Python and toolkits), "
        "conditions and property files resolved; a registered model is served through the inference toolkit and "
        "asked for one prediction. Needs Linux mount namespaces (root) and, once, the package index to build the "
        "stand-in.")  # fmt: skip
    emulate.add_argument("pipeline")
    emulate.add_argument("--environment", default="dev", help="configs/environments/NAME.yaml (default dev)")
    emulate.add_argument("-p", "--param", action="append", type=_parameter, default=[], metavar="KEY=VALUE")
    emulate.add_argument(
        "--stage",
        action="append",
        type=_parameter,
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
    cloud_template.add_argument("--environment", default="dev", help="configs/environments/NAME.yaml (default dev)")
    cloud_template.add_argument("--config", help="serving settings (default: configs/serving.yaml)")
    cloud_template.add_argument("--output", help="where to write it (default .pravah/cloud/ENDPOINT.yaml)")
    cloud_template.set_defaults(handler=cmd_template)

    package = commands.add_parser("package", help="build a deployment package")
    package_commands = package.add_subparsers(dest="package_command", metavar="COMMAND", required=True)
    package_lambda = package_commands.add_parser("lambda", help="the predict API's Lambda zip (code + libraries)")
    package_lambda.add_argument("--output", default="build/predict.zip")
    package_lambda.set_defaults(handler=cmd_package_lambda)

    runs = commands.add_parser("runs", help="list and show run records")
    runs_commands = runs.add_subparsers(dest="runs_command", metavar="COMMAND", required=True)
    runs_list = runs_commands.add_parser("list", help="recent runs, newest first")
    runs_list.add_argument("--limit", type=int, default=20)
    runs_list.set_defaults(handler=cmd_runs_list)
    runs_show = runs_commands.add_parser("show", help="one run: steps, cache, metrics, artifacts")
    runs_show.add_argument("run_id")
    runs_show.add_argument("--json", action="store_true", help="print the raw record")
    runs_show.set_defaults(handler=cmd_runs_show)

    runs_sync = runs_commands.add_parser("sync", help="mirror a run into MLflow now (idempotent)")
    runs_sync.add_argument("run_id")
    runs_sync.set_defaults(handler=cmd_runs_sync)

    models = commands.add_parser("models", help="the model registry: versions, approval, aliases")
    models.add_argument(
        "--target", choices=["local", "sagemaker"], default="local",
        help="local: the MLflow registry; sagemaker: SageMaker Model Registry (AWS credentials)",
    )  # fmt: skip
    models.add_argument("--region", help="AWS region for --target sagemaker (default: AWS_DEFAULT_REGION)")
    models.add_argument("--dry-run", action="store_true", help="with --target sagemaker: " + DRY_RUN_HELP)
    models_commands = models.add_subparsers(dest="models_command", metavar="COMMAND", required=True)
    models_list = models_commands.add_parser("list", help="registered versions")
    models_list.add_argument("name", nargs="?")
    models_list.add_argument("--status", help="PendingManualApproval, Approved or Rejected")
    models_list.set_defaults(handler=cmd_models_list)
    models_show = models_commands.add_parser("show", help="one version: metrics, lineage, status history")
    models_show.add_argument("name")
    models_show.add_argument("version", type=int)
    models_show.set_defaults(handler=cmd_models_show)
    for verb, status in (("approve", "Approved"), ("reject", "Rejected")):
        change = models_commands.add_parser(verb, help=f"mark a version {status}, with a reason")
        change.add_argument("name")
        change.add_argument("version", type=int)
        change.add_argument("--reason", required=True)
        change.add_argument("--dry-run", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        change.set_defaults(handler=cmd_models_status, status=status)
    alias = models_commands.add_parser("alias", help="point champion or challenger at a version")
    alias.add_argument("name")
    alias.add_argument("version", type=int)
    alias.add_argument("alias", help="champion (approved versions only) or challenger")
    alias.add_argument("--dry-run", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    alias.set_defaults(handler=cmd_models_alias)

    serve = commands.add_parser(
        "serve",
        help="serve an endpoint's predict API (uvicorn)",
        description="Serve the predict API of ENDPOINT; deployments to it take effect live.",
    )
    serve.add_argument("endpoint")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080, help="0: any free port (the address is printed)")
    serve.add_argument("--config", help="serving settings (default: configs/serving.yaml)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(handler=cmd_serve)

    deploy = commands.add_parser(
        "deploy",
        help="deploy an approved model version to an endpoint (blue/green)",
        description="Shift ENDPOINT's traffic to an approved version, step by step, "
        "rolling back by itself when an alarm fires. Defaults from configs/serving.yaml.",
    )
    deploy.add_argument("endpoint")
    deploy.add_argument("--model", required=True, help="registered model name")
    deploy.add_argument("--version", required=True, type=int)
    deploy.add_argument("--strategy", choices=["all-at-once", "canary", "linear"])
    deploy.add_argument("--canary-percent", type=float, help="the canary's share of traffic")
    deploy.add_argument("--linear-step", type=float, help="percent of traffic moved at each linear step")
    deploy.add_argument("--wait", type=float, help="seconds per step, watching the alarms")
    deploy.add_argument("--max-error-rate", type=float, help="alarm: the new variant's error rate above this")
    deploy.add_argument("--max-p99-ms", type=float, help="alarm: the new variant's p99 latency above this")
    deploy.add_argument(
        "--min-requests",
        type=int,
        help="requests needed in a step before the alarms judge (0: pass steps without traffic)",
    )
    deploy.add_argument("--no-wait", action="store_true", help="return once requested; do not follow it")
    deploy.add_argument("--config", help="serving settings (default: configs/serving.yaml)")
    deploy.add_argument(
        "--target",
        default="local",
        choices=["local", "sagemaker"],
        help="sagemaker: a blue/green update of a SageMaker endpoint with alarm rollback",
    )
    deploy.add_argument("--environment", default="dev", help="with --target sagemaker: configs/environments/NAME.yaml")
    deploy.add_argument("--dry-run", action="store_true", help="with --target sagemaker: " + DRY_RUN_HELP)
    deploy.set_defaults(handler=cmd_deploy)

    endpoints = commands.add_parser("endpoints", help="list, show and roll back endpoints")
    endpoints_commands = endpoints.add_subparsers(dest="endpoints_command", metavar="COMMAND", required=True)
    endpoints_commands.add_parser("list", help="endpoints, their variants and weights").set_defaults(
        handler=cmd_endpoints_list
    )
    endpoints_show = endpoints_commands.add_parser("show", help="one endpoint: variants, deployment, history")
    endpoints_show.add_argument("endpoint")
    endpoints_show.set_defaults(handler=cmd_endpoints_show)
    rollback = endpoints_commands.add_parser("rollback", help="stop a deployment, or go back to the previous variant")
    rollback.add_argument("endpoint")
    rollback.add_argument("--reason", default="manual rollback")
    rollback.set_defaults(handler=cmd_endpoints_rollback)

    keys = commands.add_parser("keys", help="API keys of the predict API")
    keys_commands = keys.add_subparsers(dest="keys_command", metavar="COMMAND", required=True)
    keys_create = keys_commands.add_parser("create", help="a new key (its secret is shown once)")
    keys_create.add_argument("name")
    keys_create.set_defaults(handler=cmd_keys_create)
    keys_commands.add_parser("list", help="keys (never their secrets)").set_defaults(handler=cmd_keys_list)
    keys_revoke = keys_commands.add_parser("revoke", help="revoke a key by name or id (at once, live)")
    keys_revoke.add_argument("key")
    keys_revoke.set_defaults(handler=cmd_keys_revoke)

    monitor = commands.add_parser("monitor", help="drift and model quality of an endpoint's captured traffic")
    monitor_commands = monitor.add_subparsers(dest="monitor_command", metavar="COMMAND", required=True)
    monitor_run = monitor_commands.add_parser(
        "run",
        help="run the monitoring job on a window of captured traffic",
        description="Compare a window of ENDPOINT's captured traffic with the "
        "training baseline; write an Evidently report, metrics and violations.",
    )
    monitor_run.add_argument("endpoint")
    monitor_run.add_argument("--since", help="the window: the last 30m, 1h, 7d (default 1h)")
    monitor_run.add_argument("--start", help="the window's start, ISO 8601 (instead of --since)")
    monitor_run.add_argument("--end", help="the window's end, ISO 8601 (default now)")
    monitor_run.add_argument("--config", help="monitoring settings (default: configs/monitoring.yaml)")
    monitor_run.set_defaults(handler=cmd_monitor_run)
    labels = monitor_commands.add_parser("labels", help="ground truth for captured predictions")
    labels_commands = labels.add_subparsers(dest="labels_command", metavar="COMMAND", required=True)
    labels_add = labels_commands.add_parser("add", help="add a CSV or JSON-lines file of predictionId,label")
    labels_add.add_argument("file")
    labels_add.set_defaults(handler=cmd_monitor_labels_add)

    schedule = commands.add_parser("schedule", help="scheduled retraining and monitoring runs")
    schedule_commands = schedule.add_subparsers(dest="schedule_command", metavar="COMMAND", required=True)
    schedule_add = schedule_commands.add_parser("add", help="retrain a pipeline or monitor an endpoint on a schedule")
    schedule_add.add_argument("kind", choices=["retrain", "monitor"])
    schedule_add.add_argument("--cron", help="a cron expression, like '0 2 * * *' (UTC)")
    schedule_add.add_argument("--every", help="a duration, like 30m, 1h, 1d")
    schedule_add.add_argument("--pipeline", default="text-classifier", help="what retrain runs")
    schedule_add.add_argument("--endpoint", help="what monitor watches (required for monitor)")
    schedule_add.add_argument("--name", help="the schedule's name (default: its kind)")
    schedule_add.set_defaults(handler=cmd_schedule_add)
    schedule_commands.add_parser("list", help="schedules, their last and next runs").set_defaults(
        handler=cmd_schedule_list
    )
    schedule_deploy = schedule_commands.add_parser(
        "deploy", help="the schedules on AWS: EventBridge rules and Model Monitor schedules"
    )
    schedule_deploy.add_argument("--environment", default="dev", help="configs/environments/NAME.yaml (default dev)")
    schedule_deploy.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    schedule_deploy.add_argument("--config", help="monitoring settings, the baselines' constraints "
                                                  "(default configs/monitoring.yaml)")  # fmt: skip
    schedule_deploy.set_defaults(handler=cmd_schedule_deploy)
    schedule_remove = schedule_commands.add_parser("remove", help="remove a schedule")
    schedule_remove.add_argument("name")
    schedule_remove.set_defaults(handler=cmd_schedule_remove)
    scheduler = commands.add_parser("scheduler", help="run the schedules (in the foreground)")
    scheduler.add_argument("--once", action="store_true", help="run what is due now, then exit")
    scheduler.add_argument("--poll", type=float, default=30.0, help="seconds between looks at the schedules")
    scheduler.set_defaults(handler=cmd_scheduler)

    data = commands.add_parser("data", help="the dataset catalog")
    data_commands = data.add_subparsers(dest="data_command", metavar="COMMAND", required=True)
    data_list = data_commands.add_parser("list", help="datasets in configs/datasets.yaml")
    data_list.set_defaults(handler=cmd_data_list)
    pull = data_commands.add_parser("pull", help="download (or copy from a mirror), verify and cache a dataset")
    pull.add_argument("dataset")
    pull.add_argument("--languages", help="comma-separated subset, e.g. hin_Deva,eng_Latn")
    pull.add_argument("--mirror", help="a local mirror folder (default: $PRAVAH_DATA_MIRROR)")
    pull.set_defaults(handler=cmd_data_pull)
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    from pipelines.home import Home
    from pipelines.progress import Progress
    from pipelines.records import RunStore
    from pipelines.runner import LocalRunner
    from pipelines.spec import load_pipeline

    home = Home.resolve(args.home)
    if args.resume:
        if args.param:
            raise PravahError("--resume takes no -p: a resumed run keeps its parameters")
        pipeline = load_pipeline(args.pipeline or RunStore(home).load(args.resume).spec_path)
    elif not args.pipeline:
        raise PravahError("run: name a pipeline (for example: pravah run text-classifier) or --resume RUN_ID")
    else:
        pipeline = load_pipeline(args.pipeline)
    runner = LocalRunner(
        pipeline, home, use_cache=not args.no_cache, max_parallel=args.max_parallel, progress=Progress()
    )
    try:
        if args.resume:
            runner.resume(args.resume)
        else:
            runner.run(pipeline.resolve_parameters(dict(args.param)))
    finally:
        if runner.record is not None and not args.no_tracking:
            from pipelines.tracking import start_background_sync

            log = start_background_sync(home, runner.record.id)
            print(f"MLflow: syncing in the background (log {log}); `pravah runs sync {runner.record.id}` waits "
                  f"for it; then: mlflow ui --backend-store-uri {home.tracking_uri}", file=sys.stderr)  # fmt: skip
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    import json

    from pipelines.environments import load_environment
    from pipelines.home import Home
    from pipelines.sagemaker.compiler import compile_pipeline
    from pipelines.sagemaker.schema import schema_path
    from pipelines.spec import load_pipeline

    pipeline = load_pipeline(args.pipeline)
    environment = load_environment(args.environment, pipeline.project_root)
    compiled = compile_pipeline(pipeline, environment)
    output = Path(args.output) if args.output else Home.resolve(args.home).root / "compiled" / f"{pipeline.name}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(compiled.definition, indent=2))
    steps = [s["Name"] for s in compiled.definition["Steps"]]
    print(f"{pipeline.name}: {len(compiled.definition['Parameters'])} parameters, steps {', '.join(steps)} "
          f"({environment.region}, s3://{environment.bucket})")  # fmt: skip
    for upload in compiled.uploads:
        print(f"  upload at upsert: {upload.path or '(generated)'} -> {upload.s3_uri}")
    for note in compiled.notes:
        print(f"  note: {note}")
    # compile_pipeline refused what the schema or the service model would refuse
    print(f"  valid against {schema_path().name} (with the documented relaxations) and SageMaker's service model")
    print(f"definition: {output}")
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    from pipelines.environments import load_environment
    from pipelines.sagemaker import pipeline as cloud
    from pipelines.sagemaker.aws import Aws
    from pipelines.sagemaker.compiler import compile_pipeline
    from pipelines.spec import load_pipeline

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
            print(f"{found.get('PipelineExecutionArn')}: {found.get('PipelineExecutionStatus')} "
                  f"(started {found.get('CreationTime')}, last change {found.get('LastModifiedTime')})"
                  + (f"; failure: {found['FailureReason']}" if found.get("FailureReason") else ""))  # fmt: skip
    else:
        for item in cloud.executions(aws, pipeline.name):
            print(
                f"{item.get('StartTime')}  {item.get('PipelineExecutionStatus'):<12} {item.get('PipelineExecutionArn')}"
            )
    return 0


def cmd_emulate(args: argparse.Namespace) -> int:
    import json

    from pipelines.environments import load_environment
    from pipelines.home import Home
    from pipelines.sagemaker.emulator import emulate
    from pipelines.spec import load_pipeline

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
    from inference.config import load_serving_config
    from monitoring.schedules import ScheduleStore
    from pipelines.environments import load_environment
    from pipelines.home import Home
    from pipelines.sagemaker.template import render, template

    home = Home.resolve(args.home)
    serving = load_serving_config(Path(args.config) if args.config else None)
    schedules = ScheduleStore(home).all()
    built = template(load_environment(args.environment), args.endpoint, schedules,
                     serving.rate_limit.requests_per_second, serving.rate_limit.burst)  # fmt: skip
    output = Path(args.output) if args.output else home.root / "cloud" / f"{args.endpoint}.yaml"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(built))
    print(f"{output}: {len(built['Resources'])} resources ({len(schedules)} schedules); "
          f"aws cloudformation deploy --template-file {output} --stack-name pravah-{args.endpoint} "
          "--capabilities CAPABILITY_IAM")  # fmt: skip
    return 0


def cmd_package_lambda(args: argparse.Namespace) -> int:
    from inference.lambda_package import build_lambda_package

    root = Path(__file__).resolve().parents[1]
    made = build_lambda_package(root, Path(args.output))
    print(f"{args.output}: {made['files']} files from this repository and {made['distributions']} libraries, "
          f"{made['bytes'] / 1e6:.1f} MB; upload it where `pravah template` points CodeBucket/CodeKey")  # fmt: skip
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    from pipelines.graph import StepGraph
    from pipelines.spec import load_pipeline

    pipeline = load_pipeline(args.pipeline)
    graph = StepGraph.build(pipeline)
    print(graph.render_mermaid(pipeline) if args.format == "mermaid" else graph.render_text(pipeline))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from pipelines.spec import load_pipeline

    for name in args.pipeline:
        pipeline = load_pipeline(name)
        print(f"{pipeline.path}: ok ({len(pipeline.steps)} steps, {len(pipeline.spec.parameters)} parameters)")
    return 0


def cmd_runs_list(args: argparse.Namespace) -> int:
    from pipelines.home import Home
    from pipelines.records import RunStore

    records = RunStore(Home.resolve(args.home)).all()[: args.limit]
    if not records:
        print("no runs yet: start one with `pravah run PIPELINE`")
        return 0
    print(f"{'run':<22} {'pipeline':<20} {'status':<12} {'time':>8}  steps")
    for record in records:
        counts: dict[str, int] = {}
        for step in record.steps.values():
            counts[step.status] = counts.get(step.status, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in counts.items())
        took = f"{record.duration_s:.1f}s" if record.duration_s is not None else "-"
        print(f"{record.id:<22} {record.pipeline:<20} {record.status:<12} {took:>8}  {summary}")
    return 0


def cmd_runs_show(args: argparse.Namespace) -> int:
    from pipelines.home import Home
    from pipelines.progress import format_summary
    from pipelines.records import RunStore

    home = Home.resolve(args.home)
    record = RunStore(home).load(args.run_id)
    if args.json:
        print(record.model_dump_json(indent=2))
        return 0
    print(format_summary(record, all_metrics=True))
    print("artifacts:")
    for name, step in record.steps.items():
        for output_name, output in step.outputs.items():
            print(f"  {name}.{output_name}: {output.path}  sha256:{output.digest[:16]}  ({len(output.files)} files)")
        if step.log:
            print(f"  {name} log: {step.log}")
    from pipelines.tracking import tracked_run

    parent = tracked_run(home, record.id)
    print(f"MLflow run: {parent}" if parent else f"MLflow: not synced yet (pravah runs sync {record.id})")
    return 0


def cmd_runs_sync(args: argparse.Namespace) -> int:
    from pipelines.home import Home
    from pipelines.tracking import sync_run

    home = Home.resolve(args.home)
    print(f"run {args.run_id}: MLflow run {sync_run(home, args.run_id)} ({home.tracking_uri})")
    return 0


def _registry(args: argparse.Namespace):
    if args.target == "sagemaker":
        from pipelines.sagemaker.registry import SageMakerRegistry

        return SageMakerRegistry.from_environment(args.region, dry_run=args.dry_run)
    from pipelines.home import Home
    from pipelines.registry import MlflowRegistry

    return MlflowRegistry(Home.resolve(args.home))


def cmd_models_list(args: argparse.Namespace) -> int:
    versions = _registry(args).list(args.name, args.status)
    if not versions:
        print("no registered versions" + (f" with status {args.status}" if args.status else ""))
        return 0
    print(f"{'model':<24} {'version':>7}  {'status':<22} {'aliases':<20} {'macro_f1':>8}  run")
    for v in versions:
        score = v.metrics.get("macro_f1", v.metrics.get("multiclass_classification_metrics.macro_f1"))
        shown = f"{score:.4f}" if score is not None else "-"
        print(f"{v.name:<24} {v.version:>7}  {v.status:<22} {','.join(v.aliases) or '-':<20} {shown:>8}  "
              f"{v.lineage.get('run_id', '-')}")  # fmt: skip
    return 0


def cmd_models_show(args: argparse.Namespace) -> int:
    v = _registry(args).get(args.name, args.version)
    print(f"{v.name} version {v.version}: {v.status}" + (f"  aliases: {', '.join(v.aliases)}" if v.aliases else ""))
    print(f"artifact: {v.source}\n  sha256 {v.digest}")
    print("lineage:")
    for key, value in sorted(v.lineage.items()):
        print(f"  {key}: {value}")
    headline = {key: value for key, value in sorted(v.metrics.items()) if "." not in key}
    if headline:
        print("metrics (test split):")
        for key, value in headline.items():
            print(f"  {key} = {value:.4g}")
    print("status history:")
    for change in v.history:
        print(f"  {change.get('at')}  {change.get('status'):<22} by {change.get('by')}: {change.get('reason')}")
    return 0


def cmd_models_status(args: argparse.Namespace) -> int:
    from pipelines.registry import change_status

    v = change_status(_registry(args), args.name, args.version, args.status, args.reason)
    if getattr(args, "dry_run", False):
        print(f"dry run: no change sent (reads ran); {v.name} version {v.version} stays {v.status}")
        return 0
    print(f"{v.name} version {v.version} is now {v.status}")
    return 0


def cmd_models_alias(args: argparse.Namespace) -> int:
    from pipelines.registry import assign_alias

    assign_alias(_registry(args), args.name, args.alias, args.version)
    dry = " (dry run: no change sent; reads ran)" if getattr(args, "dry_run", False) else ""
    print(f"{args.name}: {args.alias} -> version {args.version}{dry}")
    return 0


def cmd_data_list(args: argparse.Namespace) -> int:
    from steps.datasets import load_catalog

    for name, dataset in load_catalog().items():
        print(f"{name}: {dataset.description} ({len(dataset.languages)} languages; {dataset.license})")
    return 0


def cmd_data_pull(args: argparse.Namespace) -> int:
    from pipelines.home import Home
    from steps.datasets import get_dataset, load_catalog, pull

    catalog = load_catalog()
    dataset = get_dataset(catalog, args.dataset)
    languages = [lang.strip() for lang in args.languages.split(",")] if args.languages else None
    mirror = args.mirror or os.environ.get("PRAVAH_DATA_MIRROR")
    target = Home.resolve(args.home).raw / "external" / dataset.name / dataset.commit[:12]
    folder = pull(catalog, args.dataset, target, languages, mirror,
                  progress=lambda line: print(line, file=sys.stderr))  # fmt: skip
    print(folder)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from inference.app import create_app
    from inference.config import load_serving_config
    from inference.endpoints import EndpointStore
    from pipelines.home import Home
    from pipelines.jsonlog import configure_logging

    config = load_serving_config(Path(args.config) if args.config else None)
    home = Home.resolve(args.home)
    EndpointStore(home).read(args.endpoint)  # an unknown endpoint is a clear error before the server starts
    # Bound here, so that --port 0 (any free port) can be said before serving, and no one else takes it between
    ipv6 = ":" in args.host
    try:
        listener = socket.create_server((args.host, args.port), family=socket.AF_INET6 if ipv6 else socket.AF_INET)
    except (OSError, OverflowError) as exc:
        raise PravahError(f"cannot listen on {args.host} port {args.port}: {exc}") from None
    configure_logging("ml-inference", args.log_level.upper())
    app = create_app(home, args.endpoint, config)
    host = f"[{args.host}]" if ipv6 else args.host
    app.state.address = f"http://{host}:{listener.getsockname()[1]}"
    print(f"serving endpoint '{args.endpoint}' at {app.state.address} (API docs: {app.state.address}/docs)",
          file=sys.stderr, flush=True)  # fmt: skip
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[listener])
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    from inference.config import load_serving_config
    from inference.endpoints import Alarms, EndpointStore, follow, plan, registered_variant, request_deployment
    from pipelines.home import Home

    serving = load_serving_config(Path(args.config) if args.config else None)
    settings = serving.deploy
    strategy = args.strategy or settings.strategy
    schedule = plan(strategy, _given(args.canary_percent, settings.canary_percent, 0, 100),
                    _given(args.linear_step, settings.linear_step_percent, 0, 100))  # fmt: skip
    alarms = Alarms(_given(args.max_error_rate, settings.alarms.max_error_rate, 0, 1),
                    _given(args.max_p99_ms, settings.alarms.max_p99_ms, 0, None),
                    int(_given(args.min_requests, settings.alarms.min_requests, -1, None)))  # fmt: skip
    wait = _given(args.wait, settings.wait_seconds, -1, None)
    if args.target == "sagemaker":
        return _deploy_to_sagemaker(args, strategy, alarms, wait, serving)
    home = Home.resolve(args.home)
    store = EndpointStore(home)
    target = registered_variant(home, args.model, args.version)
    deployment = request_deployment(store, args.endpoint, target, strategy, schedule, wait, alarms)
    print(f"deployment {deployment.id}: {target.name} to '{args.endpoint}' ({strategy}, traffic steps {schedule}, "
          f"{wait:g}s each)")  # fmt: skip
    if not store.read(args.endpoint).serving:
        print(f"nothing serves '{args.endpoint}' now: the deployment starts when pravah serve {args.endpoint} runs")
        return 0
    if args.no_wait:
        return 0
    ended = follow(store, args.endpoint, deployment.id, print)
    print(f"deployment {ended.id}: {ended.status}" + (f" ({ended.reason})" if ended.reason else ""))
    return 0 if ended.status in {"completed", "requested", "in_progress"} else 1


def _deploy_to_sagemaker(args: argparse.Namespace, strategy: str, alarms, wait: float, serving) -> int:
    from pipelines.environments import load_environment
    from pipelines.sagemaker.aws import Aws
    from pipelines.sagemaker.deploy import Rollout, deploy

    aws = Aws(load_environment(args.environment), dry_run=args.dry_run)
    rollout = Rollout(strategy, args.canary_percent or serving.deploy.canary_percent,
                      args.linear_step or serving.deploy.linear_step_percent, wait, alarms,
                      serving.capture.sampling_percent)  # fmt: skip
    done = deploy(aws, args.endpoint, args.model, args.version, rollout)
    after = "; SageMaker shifts the traffic, rolling back on an alarm"
    if args.dry_run:
        after = " (dry run: no change sent; reads ran)"
    print(f"{done['action']} {args.endpoint} with {done['endpoint_config']} ({done['instances']} instances, "
          f"autoscaling {aws.environment.endpoint_scaling.min_instances} to "
          f"{aws.environment.endpoint_scaling.max_instances}){after}")  # fmt: skip
    _upload_baseline(aws, args.endpoint, done["package"], None)
    return 0


def _given(value: float | None, default: float, above: float, up_to: float | None) -> float:
    """An option's value (or the config's default), checked: above `above`, at most `up_to`."""
    chosen = default if value is None else value
    if chosen <= above or (up_to is not None and chosen > up_to):
        bounds = f"above {above:g}" + (f" and at most {up_to:g}" if up_to is not None else "")
        raise PravahError(f"{chosen:g} is out of range: it must be {bounds}")
    return chosen


def cmd_endpoints_list(args: argparse.Namespace) -> int:
    from inference.endpoints import EndpointStore
    from pipelines.home import Home

    store = EndpointStore(Home.resolve(args.home))
    if not store.names():
        print("no endpoints; create one with pravah deploy ENDPOINT --model NAME --version V")
    for name in store.names():
        state = store.read(name)
        variants = ", ".join(f"{v.name} {v.weight:g}%" for v in state.variants) or "no variants"
        deployment = state.deployment
        doing = f"; deployment {deployment.id} {deployment.status}" if deployment and deployment.active else ""
        print(f"{name}: {variants} ({state.describe_server()}{doing})")
    return 0


def cmd_endpoints_show(args: argparse.Namespace) -> int:
    from inference.endpoints import EndpointStore
    from pipelines.home import Home

    state = EndpointStore(Home.resolve(args.home)).read(args.endpoint)
    print(f"endpoint {state.name}: {state.describe_server()}")
    for variant in state.variants:
        print(f"  {variant.name:<32} {variant.weight:>6g}%  sha256 {variant.digest[:12]}  {variant.artifact}")
    if state.deployment:
        d = state.deployment
        print(f"deployment {d.id}: {d.target.name} ({d.strategy}, steps {d.schedule}, wait {d.wait_seconds:g}s): "
              f"{d.status}" + (f" - {d.reason}" if d.reason else ""))  # fmt: skip
        for event in d.events:
            print(f"  {event}")
    if state.history:
        print("history:")
        for item in state.history[-10:]:
            print(f"  {item['id']}  {item['target']:<32} {item['strategy']:<12} {item['status']}"
                  + (f" ({item['reason']})" if item.get("reason") else ""))  # fmt: skip
    return 0


def cmd_endpoints_rollback(args: argparse.Namespace) -> int:
    from inference.endpoints import EndpointStore, request_rollback
    from pipelines.home import Home

    print(request_rollback(EndpointStore(Home.resolve(args.home)), args.endpoint, args.reason))
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    from inference.keys import KeyStore
    from pipelines.home import Home

    key = KeyStore(Home.resolve(args.home)).create(args.name)
    print(key)
    print(f"key '{args.name}' created; it is shown only now. Send it as the X-API-Key header.", file=sys.stderr)
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    from inference.keys import KeyStore
    from pipelines.home import Home

    keys = KeyStore(Home.resolve(args.home)).list()
    if not keys:
        print("no API keys; create one with pravah keys create NAME")
    for key in keys:
        print(
            f"{key.name:<24} {key.id}  created {key.created_at}"
            + (f"  REVOKED {key.revoked_at}" if key.revoked_at else "")
        )
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from inference.keys import KeyStore
    from pipelines.home import Home

    key = KeyStore(Home.resolve(args.home)).revoke(args.key)
    print(f"key '{key.name}' ({key.id}) revoked")
    return 0


def cmd_monitor_run(args: argparse.Namespace) -> int:
    from monitoring.config import load_monitoring_config
    from monitoring.monitor import parse_window, run_monitor, summary
    from pipelines.home import Home
    from pipelines.jsonlog import configure_logging

    configure_logging("model-monitor")
    config = load_monitoring_config(Path(args.config) if args.config else None)
    start, end = parse_window(args.since, args.start, args.end)
    metrics = run_monitor(Home.resolve(args.home), args.endpoint, config, start, end)
    print(summary(args.endpoint, metrics))
    return 0


def cmd_monitor_labels_add(args: argparse.Namespace) -> int:
    from monitoring.monitor import add_labels
    from pipelines.home import Home

    added = add_labels(Home.resolve(args.home), Path(args.file))
    print(f"{added} new labels added (labels already known are kept as they were)")
    return 0


def cmd_schedule_add(args: argparse.Namespace) -> int:
    from monitoring.schedules import ScheduleStore
    from pipelines.home import Home

    if args.kind == "monitor" and not args.endpoint:
        raise PravahError("schedule add monitor: name the endpoint to watch with --endpoint")
    target = args.endpoint if args.kind == "monitor" else args.pipeline
    added = ScheduleStore(Home.resolve(args.home)).add(args.kind, target, args.cron, args.every, args.name)
    print(f"added {added.describe()}; next run {added.next_run():%Y-%m-%d %H:%M} UTC (pravah scheduler runs it)")
    return 0


def cmd_schedule_list(args: argparse.Namespace) -> int:
    from monitoring.schedules import ScheduleStore
    from pipelines.home import Home

    schedules = ScheduleStore(Home.resolve(args.home)).all()
    if not schedules:
        print("no schedules; add one with pravah schedule add retrain --cron '0 2 * * *'")
    for item in schedules:
        last = f"last {item.last_run} {item.last_outcome}" if item.last_run else "never run"
        print(f"{item.describe()}; {last}; next {item.next_run():%Y-%m-%d %H:%M} UTC")
    return 0


def cmd_schedule_deploy(args: argparse.Namespace) -> int:
    from monitoring.schedules import ScheduleStore
    from pipelines.environments import load_environment
    from pipelines.home import Home
    from pipelines.sagemaker.aws import Aws
    from pipelines.sagemaker.monitoring import served_package
    from pipelines.sagemaker.template import EVENTS_ROLE, events_role_requests, schedule_requests

    aws = Aws(load_environment(args.environment), dry_run=args.dry_run)
    schedules = ScheduleStore(Home.resolve(args.home)).all()
    if not schedules:
        print("no schedules to deploy; add one with pravah schedule add ...")
    if any(s.kind == "retrain" for s in schedules) and not aws.exists("iam", "get_role", RoleName=EVENTS_ROLE):
        for service, operation, params in events_role_requests(aws.environment):
            aws.call(service, operation, **params)
        print(f"role {EVENTS_ROLE}: EventBridge may start the pipelines")
    for schedule in schedules:
        if schedule.kind == "monitor":
            _upload_baseline(aws, schedule.target, served_package(aws, schedule.target), args.config)
        for service, operation, params in schedule_requests(aws.environment, schedule):
            aws.call(service, operation, **params)
        print(f"{schedule.describe()}: {'shown (dry run)' if args.dry_run else 'on AWS'}")
    return 0


def _upload_baseline(aws, endpoint: str, package: str | None, config: str | None) -> None:
    """The monitoring baseline of the version an endpoint serves, for its Model Monitor schedule."""
    from monitoring.config import load_monitoring_config
    from pipelines.sagemaker.monitoring import upload_baseline

    if package is None:
        print(f"endpoint {endpoint} serves no model package yet: its monitoring baseline is written when "
              "pravah deploy --target sagemaker deploys a version to it")  # fmt: skip
        return
    constraints = load_monitoring_config(Path(config) if config else None).constraints()
    folder = upload_baseline(aws, endpoint, package, constraints)
    if folder:
        print(f"monitoring baseline of {package}: {folder}/")
    elif not aws.dry_run:
        print(f"{package} has no monitoring baseline (its pipeline wrote no text profile): not monitored")


def cmd_schedule_remove(args: argparse.Namespace) -> int:
    from monitoring.schedules import ScheduleStore
    from pipelines.home import Home

    ScheduleStore(Home.resolve(args.home)).remove(args.name)
    print(f"removed schedule '{args.name}'")
    return 0


def cmd_scheduler(args: argparse.Namespace) -> int:
    from monitoring.schedules import run_due, serve_forever
    from pipelines.home import Home

    home = Home.resolve(args.home)
    if args.once:
        print(f"{run_due(home, print)} schedules ran")
        return 0
    serve_forever(home, print, args.poll)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except PravahError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
