"""Ingest: copy a catalogued dataset's files into the `raw` output, verified against their checksums.

Offline, the files come from a local mirror (`PRAVAH_DATA_MIRROR`); otherwise from the pinned upstream.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from steps.datasets import load_catalog, pull
from steps.io import processing_parser, run_entry


def main(argv: Sequence[str] | None = None) -> None:
    parser = processing_parser(__doc__)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--languages", required=True, help="comma-separated, e.g. hin_Deva,eng_Latn")
    args = parser.parse_args(argv)
    catalog_file = next((args.processing_root / "input" / "catalog").glob("*.yaml"))
    raw = args.processing_root / "output" / "raw"
    catalog = load_catalog(catalog_file)
    languages = [lang.strip() for lang in args.languages.split(",") if lang.strip()]
    pull(catalog, args.dataset, raw, languages, os.environ.get("PRAVAH_DATA_MIRROR"), progress=print)
    dataset = catalog[args.dataset]
    manifest = {
        "dataset": dataset.name,
        "commit": dataset.commit,
        "languages": languages,
        "license": dataset.license,
        "citation": dataset.citation,
        "homepage": dataset.homepage,
        "format": dataset.format,
        "columns": dataset.columns,
        "files": {name: dataset.sha256[name] for name in dataset.files_for(languages)},
    }
    (raw / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    run_entry(main)
