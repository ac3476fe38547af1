"""`pravah monitor`, `schedule`, `scheduler`: drift, model quality, and scheduled runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.common import DRY_RUN_HELP, ENVIRONMENT_HELP, add_json_option, print_json
from foundation.errors import PravahError


def add_commands(commands) -> None:
    monitor = commands.add_parser("monitor", help="drift and model quality of an endpoint's captured traffic")
    monitor_commands = monitor.add_subparsers(dest="monitor_command", metavar="COMMAND", required=True)
    monitor_run = monitor_commands.add_parser(
        "run",
        help="run the monitoring job on a window of captured traffic",
        description="Compare a window of ENDPOINT's captured traffic, variant by variant, with the training "
        "baseline of the version each serves; write an Evidently report, metrics and violations. A shadow "
        "variant's copies are judged too, and its alert starts no retraining. Exit code 3: a production "
        "variant raised an alert.",
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
    schedule_add = schedule_commands.add_parser("add", help="retrain, monitor, back up or send events on a schedule")
    schedule_add.add_argument("kind", choices=["retrain", "monitor", "backup", "notify"])
    schedule_add.add_argument("--cron", help="a cron expression, like '0 2 * * *' (UTC)")
    schedule_add.add_argument("--every", help="a duration, like 30m, 1h, 1d")
    schedule_add.add_argument("--pipeline", default="text-classifier", help="what retrain runs")
    schedule_add.add_argument("--endpoint", help="what monitor watches (required for monitor)")
    schedule_add.add_argument("--to", help="where backup keeps backups (default as for pravah backup create)")
    schedule_add.add_argument("--config", help="notify's notifications file (default configs/notifications.yaml)")
    schedule_add.add_argument("--name", help="the schedule's name (default: its kind)")
    schedule_add.set_defaults(handler=cmd_schedule_add)
    schedule_list = schedule_commands.add_parser("list", help="schedules, their last and next runs")
    add_json_option(schedule_list)
    schedule_list.set_defaults(handler=cmd_schedule_list)
    schedule_deploy = schedule_commands.add_parser(
        "deploy", help="the schedules on AWS: EventBridge rules starting pipelines (retraining, monitoring)"
    )
    schedule_deploy.add_argument("--environment", default="dev", help=ENVIRONMENT_HELP)
    schedule_deploy.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    schedule_deploy.add_argument(
        "--config", help="monitoring settings, the baselines' constraints (default configs/monitoring.yaml)"
    )
    schedule_deploy.set_defaults(handler=cmd_schedule_deploy)
    schedule_run = schedule_commands.add_parser("run", help="run one schedule now (its next run counts from now)")
    schedule_run.add_argument("name")
    schedule_run.set_defaults(handler=cmd_schedule_run)
    schedule_remove = schedule_commands.add_parser("remove", help="remove a schedule")
    schedule_remove.add_argument("name")
    schedule_remove.set_defaults(handler=cmd_schedule_remove)

    scheduler = commands.add_parser("scheduler", help="run the schedules (in the foreground)")
    scheduler.add_argument("--once", action="store_true", help="run what is due now, then exit")
    scheduler.add_argument("--poll", type=float, default=30.0, help="seconds between looks at the schedules")
    scheduler.set_defaults(handler=cmd_scheduler)


def cmd_monitor_run(args: argparse.Namespace) -> int:
    from foundation.home import Home
    from foundation.jsonlog import configure_logging
    from monitoring.config import load_monitoring_config
    from monitoring.monitor import ALERT_EXIT_CODE, parse_window, run_monitor, summary

    configure_logging("model-monitor")
    config = load_monitoring_config(Path(args.config) if args.config else None)
    start, end = parse_window(args.since, args.start, args.end)
    judged = run_monitor(
        Home.resolve(args.home),
        args.endpoint,
        config,
        start,
        end,
        say=lambda line: print(line, file=sys.stderr, flush=True),
    )
    if not judged:
        print(
            f"endpoint {args.endpoint}: no captured traffic from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} "
            "UTC; nothing to judge"
        )
    for variant, metrics in judged.items():
        print(summary(args.endpoint, variant, metrics))
    production_alerted = any(metrics.get("alert") and not metrics["shadow"] for metrics in judged.values())
    return ALERT_EXIT_CODE if production_alerted else 0


def cmd_monitor_labels_add(args: argparse.Namespace) -> int:
    from foundation.home import Home
    from monitoring.monitor import add_labels

    added = add_labels(Home.resolve(args.home), Path(args.file))
    print(f"{added} new labels added (labels already known are kept as they were)")
    return 0


def cmd_schedule_add(args: argparse.Namespace) -> int:
    from foundation.home import Home
    from monitoring.schedules import ScheduleStore

    if args.kind == "monitor" and not args.endpoint:
        raise PravahError("schedule add monitor: name the endpoint to watch with --endpoint")
    target = {"monitor": args.endpoint, "retrain": args.pipeline, "notify": args.config or ""}.get(args.kind)
    if args.kind == "backup":
        from foundation.backup import backups_folder

        target = str(backups_folder(Home.resolve(args.home), args.to))
    added = ScheduleStore(Home.resolve(args.home)).add(args.kind, target, args.cron, args.every, args.name)
    print(f"added {added.describe()}; next run {added.next_run():%Y-%m-%d %H:%M} UTC (pravah scheduler runs it)")
    return 0


def cmd_schedule_list(args: argparse.Namespace) -> int:
    from foundation.home import Home
    from monitoring.schedules import ScheduleStore

    schedules = ScheduleStore(Home.resolve(args.home)).all()
    if args.json:
        from dataclasses import asdict

        print_json([{**asdict(item), "next_run": item.next_run()} for item in schedules])
        return 0
    if not schedules:
        print("no schedules; add one with pravah schedule add retrain --cron '0 2 * * *'")
    for item in schedules:
        last = f"last {item.last_run} {item.last_outcome}" if item.last_run else "never run"
        print(f"{item.describe()}; {last}; next {item.next_run():%Y-%m-%d %H:%M} UTC")
    return 0


def cmd_schedule_deploy(args: argparse.Namespace) -> int:
    from aws.environments import load_environment
    from aws.requests import Aws
    from cloud.monitoring import deploy_monitoring_pipeline, served_package, upload_baseline_of
    from cloud.schedules import EVENTS_ROLE, ensure_events_role, monitoring_window, schedule_requests
    from foundation.home import Home
    from monitoring.config import load_monitoring_config
    from monitoring.schedules import ScheduleStore

    aws = Aws(load_environment(args.environment), dry_run=args.dry_run)
    schedules = ScheduleStore(Home.resolve(args.home)).all()
    if not schedules:
        print("no schedules to deploy; add one with pravah schedule add ...")
    started = [s for s in schedules if s.kind in ("retrain", "monitor")]  # each starts a SageMaker pipeline
    if started and ensure_events_role(aws):
        print(f"role {EVENTS_ROLE}: EventBridge may start the pipelines")
    retrain = load_monitoring_config(Path(args.config) if args.config else None).alerts.retrain
    for schedule in schedules:
        if schedule.kind == "backup":
            print(
                f"{schedule.describe()}: local only (in the cloud, the bucket is versioned and optionally replicated)"
            )
            continue
        if schedule.kind == "notify":
            print(f"{schedule.describe()}: local only (in the cloud, alerts go to the endpoint's SNS topic)")
            continue
        if schedule.kind == "monitor":
            upload_baseline_of(aws, schedule.target, served_package(aws, schedule.target), args.config, print)
            pipeline = deploy_monitoring_pipeline(
                aws, schedule.target, monitoring_window(schedule), retrain.pipeline if retrain.enabled else ""
            )
            print(f"monitoring pipeline {pipeline}: the drift job over {monitoring_window(schedule)}s of captures")
        for service, operation, params in schedule_requests(aws.environment, schedule):
            aws.call(service, operation, **params)
        print(f"{schedule.describe()}: {'shown (dry run)' if args.dry_run else 'on AWS'}")
    return 0


def cmd_schedule_remove(args: argparse.Namespace) -> int:
    from foundation.home import Home
    from monitoring.schedules import ScheduleStore

    ScheduleStore(Home.resolve(args.home)).remove(args.name)
    print(f"removed schedule '{args.name}'")
    return 0


def cmd_schedule_run(args: argparse.Namespace) -> int:
    from foundation.home import Home
    from monitoring.schedules import ScheduleStore, run_schedule

    home = Home.resolve(args.home)
    outcome = run_schedule(home, ScheduleStore(home).get(args.name), lambda line: print(line, file=sys.stderr))
    print(f"schedule '{args.name}': {outcome}")
    return 0 if outcome == "succeeded" else 1


def cmd_scheduler(args: argparse.Namespace) -> int:
    from foundation.home import Home
    from monitoring.schedules import ScheduleStore, run_due, serve_forever

    home = Home.resolve(args.home)
    if args.once:
        ran = run_due(home, print)
        schedules = ScheduleStore(home).all()
        if not ran and schedules:  # just added ones are due a period after they were added
            first = min(schedules, key=lambda s: s.next_run())
            print(
                f"nothing was due; next: {first.name} at {first.next_run():%Y-%m-%d %H:%M} UTC "
                f"(pravah schedule run {first.name} runs it now)"
            )
        else:
            print(f"{ran} schedules ran")
        return 0
    serve_forever(home, print, args.poll)
    return 0
