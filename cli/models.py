"""`pravah models`: the model registry (MLflow, or SageMaker with --target sagemaker)."""

from __future__ import annotations

import argparse

from cli.common import DRY_RUN_HELP, add_json_option, print_json, print_table


def add_commands(commands) -> None:
    models = commands.add_parser("models", help="the model registry: versions, approval, aliases")
    models.add_argument(
        "--target",
        choices=["local", "sagemaker"],
        default="local",
        help="local: the MLflow registry; sagemaker: SageMaker Model Registry (AWS credentials)",
    )
    models.add_argument("--region", help="AWS region for --target sagemaker (default: AWS_DEFAULT_REGION)")
    models.add_argument("--dry-run", action="store_true", help="with --target sagemaker: " + DRY_RUN_HELP)
    models_commands = models.add_subparsers(dest="models_command", metavar="COMMAND", required=True)
    models_list = models_commands.add_parser("list", help="registered versions")
    models_list.add_argument("name", nargs="?")
    models_list.add_argument("--status", help="PendingManualApproval, Approved or Rejected")
    add_json_option(models_list)
    models_list.set_defaults(handler=cmd_models_list)
    models_show = models_commands.add_parser("show", help="one version: metrics, lineage, status history")
    models_show.add_argument("name")
    models_show.add_argument("version", type=int)
    add_json_option(models_show)
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
    card = models_commands.add_parser("card", help="a version's model card, HTML and JSON, stored with the version")
    card.add_argument("name")
    card.add_argument("version", type=int)
    card.add_argument("--json", action="store_true", help="print the card's JSON instead of its summary")
    card.add_argument("--dry-run", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    card.set_defaults(handler=cmd_models_card)


def _registry(args: argparse.Namespace):
    from foundation.home import Home
    from registry import open_registry

    return open_registry(args.target, home=Home.resolve(args.home), region=args.region, dry_run=args.dry_run)


def cmd_models_list(args: argparse.Namespace) -> int:
    versions = _registry(args).list(args.name, args.status)
    if args.json:
        print_json(versions)
        return 0
    if not versions:
        print("no registered versions" + (f" with status {args.status}" if args.status else ""))
        return 0
    rows = []
    for v in versions:
        gate, score = v.gate_score()
        shown = f"{gate} {score:.4f}" if score is not None else "-"
        rows.append([v.name, v.version, v.status, ",".join(v.aliases) or "-", shown, v.lineage.get("run_id", "-")])
    print_table(["model", "version", "status", "aliases", "gate metric (test)", "run"], rows, right=["version"])
    return 0


def cmd_models_show(args: argparse.Namespace) -> int:
    v = _registry(args).get(args.name, args.version)
    if args.json:
        print_json(v)
        return 0
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
    from registry.versions import change_status

    v = change_status(_registry(args), args.name, args.version, args.status, args.reason)
    if getattr(args, "dry_run", False):
        print(f"dry run: no change sent (reads ran); {v.name} version {v.version} stays {v.status}")
        return 0
    print(f"{v.name} version {v.version} is now {v.status}")
    return 0


def cmd_models_alias(args: argparse.Namespace) -> int:
    from registry.versions import assign_alias

    assign_alias(_registry(args), args.name, args.alias, args.version)
    dry = " (dry run: no change sent; reads ran)" if getattr(args, "dry_run", False) else ""
    print(f"{args.name}: {args.alias} -> version {args.version}{dry}")
    return 0


def cmd_models_card(args: argparse.Namespace) -> int:
    import json

    from foundation.errors import PravahError
    from foundation.home import Home
    from pipelines.records import RunStore
    from registry.model_card import card_folder, write_card

    registry, home = _registry(args), Home.resolve(args.home)
    version = registry.get(args.name, args.version)
    run_id = version.lineage.get("run_id")
    try:
        parameters = RunStore(home).load(run_id).parameters if run_id else None
    except PravahError:  # a run of another project folder (or of the cloud): its parameters are not here
        parameters = None
    folder = card_folder(home, args.name, args.version)
    card = write_card(registry, version, parameters, folder)
    if args.json:
        print(json.dumps(card, indent=2, ensure_ascii=False))
        return 0
    print(f"model card of {card['model']} version {card['version']} ({card['status']})")
    print(f"  intended use: {card['intended_use']}")
    evaluation = card["evaluation"]
    if evaluation:
        overall = evaluation["overall"]
        languages = ", ".join(
            f"{name} {found.get('accuracy', 0):.3f} ({found.get('rows')})"
            for name, found in evaluation["per_language"].items()
        )
        print(
            f"  test: accuracy {overall.get('accuracy', 0):.3f}, macro-F1 {overall.get('macro_f1', 0):.3f} over "
            f"{evaluation['rows']} rows; by language (accuracy, rows): {languages or '-'}"
        )
    else:
        print("  test: no evaluation report recorded for this version")
    if card["calibration"]:
        print(
            f"  calibration: temperature {card['calibration'].get('temperature')}, test expected calibration "
            f"error {card['calibration'].get('test_expected_calibration_error', '-')}"
        )
    print(f"  gate: {card['gate']['decision']}; known limits: {len(card['known_limits'])}")
    print(f"written: {folder / 'model_card.html'}, {folder / 'model_card.json'}")
    print(f"stored with the version: {card['stored_at']}")
    return 0
