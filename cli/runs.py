"""`pravah run`, `runs`, `graph`, `check`: pipelines run locally and their records."""

from __future__ import annotations

import argparse
import sys

from cli.common import add_json_option, parameter, print_json, print_table
from foundation.errors import PravahError

RUN_ID_HELP = "a run's id, `latest` (the run started last) or a unique start of an id (20261207-0242)"


def add_commands(commands) -> None:
    run = commands.add_parser("run", help="run a pipeline locally", description="Run a pipeline locally.")
    run.add_argument("pipeline", nargs="?", help="a name under configs/pipelines/ or a YAML path")
    run.add_argument(
        "-p",
        "--param",
        action="append",
        type=parameter,
        default=[],
        metavar="KEY=VALUE",
        help="override a pipeline parameter (repeatable)",
    )
    run.add_argument(
        "--set",
        action="append",
        type=parameter,
        default=[],
        metavar="STEP.KEY=VALUE",
        dest="overrides",
        help="a step's hyperparameter or argument for this run (typed as in the "
        "spec; recorded with the run and part of the step's cache key)",
    )
    run.add_argument("--no-cache", action="store_true", help="run every step even when cached")
    run.add_argument(
        "--no-register",
        action="store_true",
        help="an experiment: skip the register steps, so no "
        "registry version is made (the trained model stays in the run's outputs)",
    )
    run.add_argument(
        "--resume",
        metavar="RUN_ID",
        help="run again the failed steps of a run and what follows (its id, `latest` or a unique start of an id)",
    )
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

    runs = commands.add_parser("runs", help="list and show run records")
    runs_commands = runs.add_subparsers(dest="runs_command", metavar="COMMAND", required=True)
    runs_list = runs_commands.add_parser("list", help="recent runs, newest first")
    runs_list.add_argument("--limit", type=int, default=20)
    add_json_option(runs_list)
    runs_list.set_defaults(handler=cmd_runs_list)
    runs_show = runs_commands.add_parser("show", help="one run: steps, cache, metrics, artifacts")
    runs_show.add_argument("run_id", help=RUN_ID_HELP)
    add_json_option(runs_show)
    runs_show.set_defaults(handler=cmd_runs_show)

    runs_compare = runs_commands.add_parser("compare", help="two runs side by side: what changed, metrics")
    runs_compare.add_argument("run_a", help=RUN_ID_HELP)
    runs_compare.add_argument("run_b", help=RUN_ID_HELP)
    runs_compare.set_defaults(handler=cmd_runs_compare)
    runs_sync = runs_commands.add_parser("sync", help="mirror a run into MLflow now (idempotent)")
    runs_sync.add_argument("run_id", help=RUN_ID_HELP)
    runs_sync.set_defaults(handler=cmd_runs_sync)


def cmd_run(args: argparse.Namespace) -> int:
    from pipelines.processes import boot_server

    boot_server()  # the steps' server starts Python while this command imports and reads the spec
    from foundation.home import Home
    from pipelines.progress import Progress
    from pipelines.records import RunStore
    from pipelines.runner import LocalRunner
    from pipelines.specfile import load_pipeline

    home = Home.resolve(args.home)
    if args.resume:
        if args.param or args.no_cache or args.overrides or args.no_register:
            raise PravahError(
                "--resume takes no -p, --set, --no-cache or --no-register: a resumed run keeps its "
                "parameters and options"
            )
        resumed = RunStore(home).load(args.resume)
        if resumed.status == "succeeded":  # pasted after a run that went through: nothing to do, and no error
            print(f"run {resumed.id} succeeded: nothing is left to run (pravah runs show {resumed.id})")
            return 0
        pipeline = load_pipeline(args.pipeline or resumed.spec_path, resumed.options.get("overrides"))
    elif not args.pipeline:
        raise PravahError("run: name a pipeline (for example: pravah run text-classifier) or --resume RUN_ID")
    else:
        pipeline = load_pipeline(args.pipeline, dict(args.overrides))
    runner = LocalRunner(
        pipeline,
        home,
        use_cache=not args.no_cache,
        max_parallel=args.max_parallel,
        progress=Progress(home=home),
        register=not args.no_register,
    )
    try:
        if args.resume:
            runner.resume(resumed.id)
        else:
            runner.run(pipeline.resolve_parameters(dict(args.param)))
    finally:
        if runner.record is not None and not args.no_tracking:
            from pipelines.tracking import ran, start_background_sync

            if ran(runner.record):
                log = start_background_sync(home, runner.record.id)
                print(
                    f"MLflow: syncing in the background (log {log}); `pravah runs sync {runner.record.id}` "
                    "waits for it; then `pravah ui` shows it",
                    file=sys.stderr,
                )
            else:
                print(
                    f"MLflow: every step came from the cache, nothing to sync (`pravah runs sync "
                    f"{runner.record.id}` records the run anyway)",
                    file=sys.stderr,
                )
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    from pipelines.graph import StepGraph
    from pipelines.specfile import load_pipeline

    pipeline = load_pipeline(args.pipeline)
    graph = StepGraph.build(pipeline)
    print(graph.render_mermaid(pipeline) if args.format == "mermaid" else graph.render_text(pipeline))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from pipelines.specfile import load_pipeline
    from pipelines.stepcode import refuse_broken_step_code

    for name in args.pipeline:
        pipeline = load_pipeline(name)
        refuse_broken_step_code(pipeline)
        print(f"{pipeline.path}: ok ({len(pipeline.steps)} steps, {len(pipeline.spec.parameters)} parameters)")
    return 0


def cmd_runs_list(args: argparse.Namespace) -> int:
    from foundation.home import Home
    from pipelines.records import RunStore

    records = RunStore(Home.resolve(args.home)).all()[: args.limit]
    if args.json:
        print_json(
            [
                {
                    "id": r.id,
                    "pipeline": r.pipeline,
                    "status": r.status,
                    "started_at": r.started_at,
                    "duration_s": r.duration_s,
                    "steps": {n: s.status for n, s in r.steps.items()},
                }
                for r in records
            ]
        )
        return 0
    if not records:
        print("no runs yet: start one with `pravah run PIPELINE`")
        return 0
    rows = []
    for record in records:
        counts: dict[str, int] = {}
        for step in record.steps.values():
            counts[step.status] = counts.get(step.status, 0) + 1
        took = f"{record.duration_s:.1f}s" if record.duration_s is not None else "-"
        rows.append([record.id, record.pipeline, record.status, took, ", ".join(f"{n} {s}" for s, n in counts.items())])
    print_table(["run", "pipeline", "status", "time", "steps"], rows, right=["time"])
    return 0


def cmd_runs_show(args: argparse.Namespace) -> int:
    from foundation.home import Home
    from pipelines.progress import format_summary
    from pipelines.records import RunStore

    home = Home.resolve(args.home)
    record = RunStore(home).load(args.run_id)
    if args.json:
        print_json(record)
        return 0
    print(format_summary(record, all_metrics=True))
    print("artifacts:")
    for name, step in record.steps.items():
        for output_name, output in step.outputs.items():
            print(f"  {name}.{output_name}: {output.path}  sha256:{output.digest[:16]}  ({len(output.files)} files)")
        if step.log:
            print(f"  {name} log: {step.log}")
    from pipelines.tracking import tracked_run

    parent, cpu_seconds = tracked_run(home, record.id)
    synced = f"MLflow run: {parent} (synced in {cpu_seconds:.1f} CPU-s)" if cpu_seconds else f"MLflow run: {parent}"
    print(synced if parent else f"MLflow: not synced yet (pravah runs sync {record.id})")
    return 0


def cmd_runs_compare(args: argparse.Namespace) -> int:
    from foundation.home import Home
    from pipelines.progress import format_comparison
    from pipelines.records import RunStore

    store = RunStore(Home.resolve(args.home))
    print(format_comparison(store.load(args.run_a), store.load(args.run_b)))
    return 0


def cmd_runs_sync(args: argparse.Namespace) -> int:
    from foundation.home import Home
    from pipelines.records import RunStore
    from pipelines.tracking import sync_run

    home = Home.resolve(args.home)
    run_id = RunStore(home).resolve(args.run_id)
    parent = sync_run(home, run_id)
    print(f"run {run_id}: MLflow run {parent} ({home.tracking_uri})")
    return 0
