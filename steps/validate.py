"""Validate: check raw data against Great Expectations suites before anything trains on it.

Two suites under configs/expectations/: `<suite>.rows` on the rows themselves and `<suite>.classes` on a
per-(label, language) table of the training split. A failed expectation of severity `critical` stops the
pipeline with a summary naming the expectation, the column and a few offending rows; a `warning` is
reported and the pipeline goes on. The report folder holds `validation.json` and GX Data Docs (HTML).

The table is read `--chunk_rows` rows at a time (200,000: memory is set by a chunk, not by the table): GX checks
each chunk and steps/expectation_results.py merges the results into the whole table's, as GX gives them on every
row at once. A table of one chunk is checked as one frame, and its Data Docs show both suites; a bigger table's
show the classes suite, and its merged rows results are in validation.json.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from steps.expectation_results import SAMPLE_ROWS, MergedOutcome, refuse_unmergeable
from steps.io import DataError, positive_rows, processing_parser, read_dataset_chunks, run_entry
from steps.progress import Meter

CLASS_COLUMNS = ["language", "label"]


class ClassCounts:
    """Rows per (label, language), counted a chunk at a time: of the training split, or of every row when the
    data has no training split."""

    def __init__(self) -> None:
        self.every, self.train = Counter(), Counter()

    def add(self, rows) -> None:
        self.every.update(zip(rows["language"], rows["label"], strict=True))
        train = rows[rows["split"] == "train"]
        self.train.update(zip(train["language"], train["label"], strict=True))

    def table(self):
        """Each (language, label)'s rows and its share within its language."""
        import pandas as pd

        counts = self.train or self.every
        table = pd.DataFrame([(*key, rows) for key, rows in sorted(counts.items())], columns=[*CLASS_COLUMNS, "rows"])
        table["share"] = table["rows"] / table.groupby("language")["rows"].transform("sum")
        return table


def validate(chunks, suites: dict[str, dict], parameters: dict[str, Any], docs_dir: Path, chunk_rows: int):
    """Run the rows suite on each chunk of the table and the classes suite on the table of its class counts;
    return {success, errors, warnings, statistics} and write Data Docs (of the rows suite too when the table is
    one chunk: a streamed table's rows are in validation.json, merged)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no usage reports from an offline step
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ahead = list(itertools.islice(chunks, 2))
    if not ahead:
        raise DataError("no rows to validate")
    one_piece, chunks = len(ahead) == 1, itertools.chain(ahead, chunks)
    counts, labels, languages, merged = ClassCounts(), Counter(), Counter(), {}
    meter = Meter("rows validated")
    with tempfile.TemporaryDirectory(prefix="gx-") as gx_root:
        context = gx.get_context(mode="file", project_root_dir=gx_root)
        # GX's per-metric bars (its own disable= argument, which TQDM_DISABLE does not reach) flooded the log
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        source = context.data_sources.add_pandas("pravah")

        def check(table_name: str, frame, docs: bool) -> None:
            if table_name not in checkpoints:
                checkpoints[table_name] = _checkpoint(gx, context, source, table_name, suites[table_name], docs)
            result = checkpoints[table_name].run(
                batch_parameters={"dataframe": frame}, expectation_parameters=parameters
            )
            outcomes = [outcome for validation in result.run_results.values() for outcome in validation.results]
            if table_name not in merged:
                merged[table_name] = [MergedOutcome(outcome) for outcome in outcomes]
                if not one_piece:
                    refuse_unmergeable(merged[table_name], chunk_rows)
            for total, outcome in zip(merged[table_name], outcomes, strict=True):
                total.add(outcome, frame)

        checkpoints: dict[str, Any] = {}
        for rows in chunks:
            check("rows", rows, docs=one_piece)
            counts.add(rows)
            labels.update(rows["label"])
            languages.update(rows["language"])
            meter.add(len(rows))
        if not one_piece:
            meter.done()
        check("classes", counts.table(), docs=True)
        site = Path(gx_root) / "gx" / "uncommitted" / "data_docs" / "local_site"
        if site.is_dir():
            shutil.copytree(site, docs_dir)
    verdicts = [
        (table_name, total, *total.success_and_result()) for table_name, totals in merged.items() for total in totals
    ]
    failures = [_describe_failure(table, total, result) for table, total, success, result in verdicts if not success]
    errors = [f for f in failures if f["severity"] == "critical"]
    warnings = [f for f in failures if f["severity"] != "critical"]
    return {
        "success": not errors,
        "errors": errors,
        "warnings": warnings,
        "statistics": {
            "rows": sum(labels.values()),
            "expectations": sum(map(len, merged.values())),
            "failed": len(failures),
            "languages": dict(languages.most_common()),
            "labels": dict(labels.most_common()),
        },
    }


def _checkpoint(gx, context, source, table_name: str, suite: dict, docs: bool):
    suite = context.suites.add(gx.ExpectationSuite(**suite))
    batch = source.add_dataframe_asset(table_name).add_batch_definition_whole_dataframe("all")
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"validate-{table_name}", data=batch, suite=suite)
    )
    return context.checkpoints.add(
        gx.Checkpoint(
            name=f"pravah-{table_name}",
            validation_definitions=[definition],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data-docs")] if docs else [],
            result_format={"result_format": "COMPLETE"},
        )
    )


def _describe_failure(table: str, total: MergedOutcome, result: dict[str, Any]) -> dict[str, Any]:
    config = total.config
    sample = total.samples or [{"value": str(v)[:80]} for v in result.get("partial_unexpected_list", [])[:SAMPLE_ROWS]]
    kwargs = {k: v for k, v in config.kwargs.items() if k not in {"batch_id", "column"}}
    return {
        "table": table,
        "expectation": config.type,
        "column": config.kwargs.get("column"),
        "kwargs": kwargs,
        "severity": str(getattr(config, "severity", "critical")).split(".")[-1].lower(),
        "observed": result.get("observed_value"),
        "unexpected_count": result.get("unexpected_count"),
        "unexpected_percent": result.get("unexpected_percent"),
        "sample": sample,
        "exception": total.exception,
    }


def summarize(report: dict[str, Any]) -> str:
    lines = [
        f"{report['statistics']['rows']} rows, {report['statistics']['expectations']} expectations: "
        f"{len(report['errors'])} errors, {len(report['warnings'])} warnings"
    ]
    for kind in ("errors", "warnings"):
        for failure in report[kind]:
            where = f" column '{failure['column']}'" if failure["column"] else ""
            count = f", {failure['unexpected_count']} rows" if failure["unexpected_count"] else ""
            observed = f", observed {failure['observed']}" if failure["observed"] is not None else ""
            lines.append(
                f"  {kind[:-1]}: {failure['expectation']} on {failure['table']}{where} "
                f"{failure['kwargs']}{count}{observed}"
            )
            lines.extend(f"      e.g. {row}" for row in failure["sample"])
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = processing_parser(__doc__)
    parser.add_argument("--format", default="tsv")
    parser.add_argument("--columns", default="", help="id=...,text=...,label=...,language=... file columns")
    parser.add_argument("--languages", default="", help="allowed languages, comma-separated; empty: any")
    parser.add_argument("--labels", default="", help="allowed labels; default: the data's labels.txt, else any")
    parser.add_argument("--suite", default="text-classification")
    parser.add_argument(
        "--chunk_rows", type=positive_rows, default=200_000, help="rows checked at once: what sets memory"
    )
    args = parser.parse_args(argv)
    root = args.processing_root
    raw, suites_dir = root / "input" / "raw", root / "input" / "suites"
    report_dir = root / "output" / "report"

    columns = dict(pair.split("=", 1) for pair in args.columns.split(",") if "=" in pair)
    labels = [x for x in args.labels.split(",") if x] or sorted(
        {line.strip() for f in raw.rglob("labels.txt") for line in f.read_text("utf-8").splitlines() if line.strip()}
    )
    languages = [x for x in args.languages.split(",") if x]
    if not labels or not languages:  # the ones the data has (a first pass over it); the other checks still hold
        seen = {"label": set(), "language": set()}
        for rows in read_dataset_chunks(raw, args.format, columns, args.chunk_rows):
            for name, values in seen.items():
                values.update(rows[name].dropna().astype(str))
        if not labels:
            labels = sorted(seen["label"])
            print(f"no labels.txt or --labels: allowing the {len(labels)} labels the data has")
        languages = languages or sorted(seen["language"])
    suites = {}
    for table in ("rows", "classes"):
        path = suites_dir / f"{args.suite}.{table}.json"
        try:
            suites[table] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(f"expectation suite {path.name}: {exc}") from None
    parameters = {"allowed_labels": labels, "allowed_languages": languages}
    chunks = read_dataset_chunks(raw, args.format, columns, args.chunk_rows)
    report = validate(chunks, suites, parameters, report_dir / "data_docs", args.chunk_rows)
    (report_dir / "validation.json").write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    print(summarize(report))
    if not report["success"]:
        raise DataError("data validation failed:\n" + summarize(report))


if __name__ == "__main__":
    run_entry(main)
