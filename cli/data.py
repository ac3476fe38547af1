"""`pravah data`: the dataset catalog."""

from __future__ import annotations

import argparse
import os
import sys

from cli.common import add_json_option, print_json


def add_commands(commands) -> None:
    data = commands.add_parser("data", help="the dataset catalog")
    data_commands = data.add_subparsers(dest="data_command", metavar="COMMAND", required=True)
    data_list = data_commands.add_parser("list", help="datasets in configs/datasets.yaml")
    add_json_option(data_list)
    data_list.set_defaults(handler=cmd_data_list)
    pull = data_commands.add_parser("pull", help="download (or copy from a mirror), verify and cache a dataset")
    pull.add_argument("dataset")
    pull.add_argument("--languages", help="comma-separated subset, e.g. hin_Deva,eng_Latn")
    pull.add_argument("--mirror", help="a local mirror folder (default: $PRAVAH_DATA_MIRROR)")
    pull.set_defaults(handler=cmd_data_pull)


def cmd_data_list(args: argparse.Namespace) -> int:
    from steps.datasets import load_catalog

    catalog = load_catalog()
    if args.json:
        print_json(catalog)
        return 0
    for name, dataset in catalog.items():
        print(f"{name}: {dataset.description} ({len(dataset.languages)} languages; {dataset.license})")
    return 0


def cmd_data_pull(args: argparse.Namespace) -> int:
    from foundation.home import Home
    from steps.datasets import get_dataset, load_catalog, pull

    catalog = load_catalog()
    dataset = get_dataset(catalog, args.dataset)
    languages = [lang.strip() for lang in args.languages.split(",")] if args.languages else None
    mirror = args.mirror or os.environ.get("PRAVAH_DATA_MIRROR")
    target = Home.resolve(args.home).raw / "external" / dataset.name / dataset.commit[:12]
    folder = pull(catalog, args.dataset, target, languages, mirror, progress=lambda line: print(line, file=sys.stderr))
    print(folder)
    return 0
