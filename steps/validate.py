"""Validate: check raw data against Great Expectations suites before anything trains on it.

Two suites under configs/expectations/: `<suite>.rows` on the rows themselves and `<suite>.classes` on a
per-(label, language) table of the training split. A failed expectation of severity `critical` stops the
pipeline with a summary naming the expectation, the column and a few offending rows; a `warning` is
reported and the pipeline goes on. The report folder holds `validation.json` and GX Data Docs (HTML).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from steps.io import DataError, processing_parser, read_dataset, run_entry

SAMPLE_ROWS = 3


def class_table(rows):
    """Rows per (label, language) and each label's share within its language, on the training split."""
    train = rows[rows["split"] == "train"] if (rows["split"] == "train").any() else rows
    counts = train.groupby(["language", "label"]).size().rename("rows").reset_index()
    counts["share"] = counts["rows"] / counts.groupby("language")["rows"].transform("sum")
    return counts


def validate(rows, suites: dict[str, dict], parameters: dict[str, Any], docs_dir: Path) -> dict[str, Any]:
    """Run each suite on its table; return {success, errors, warnings, statistics} and write Data Docs."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no usage reports from an offline step
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    tables = {"rows": rows, "classes": class_table(rows)}
    failures: list[dict[str, Any]] = []
    evaluated = 0
    with tempfile.TemporaryDirectory(prefix="gx-") as gx_root:
        context = gx.get_context(mode="file", project_root_dir=gx_root)
        # GX's per-metric bars (its own disable= argument, which TQDM_DISABLE does not reach) flooded the log
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        source = context.data_sources.add_pandas("pravah")
        for table_name, frame in tables.items():
            suite = context.suites.add(gx.ExpectationSuite(**suites[table_name]))
            batch = source.add_dataframe_asset(table_name).add_batch_definition_whole_dataframe("all")
            definition = context.validation_definitions.add(
                gx.ValidationDefinition(name=f"validate-{table_name}", data=batch, suite=suite)
            )
            checkpoint = context.checkpoints.add(
                gx.Checkpoint(
                    name=f"pravah-{table_name}",
                    validation_definitions=[definition],
                    actions=[gx.checkpoint.UpdateDataDocsAction(name="data-docs")],
                    result_format={"result_format": "COMPLETE"},
                )
            )
            result = checkpoint.run(batch_parameters={"dataframe": frame}, expectation_parameters=parameters)
            for validation in result.run_results.values():
                for outcome in validation.results:
                    evaluated += 1
                    if not outcome.success:
                        failures.append(_describe_failure(table_name, frame, outcome))
        site = Path(gx_root) / "gx" / "uncommitted" / "data_docs" / "local_site"
        if site.is_dir():
            shutil.copytree(site, docs_dir)
    errors = [f for f in failures if f["severity"] == "critical"]
    warnings = [f for f in failures if f["severity"] != "critical"]
    return {
        "success": not errors,
        "errors": errors,
        "warnings": warnings,
        "statistics": {
            "rows": len(rows),
            "expectations": evaluated,
            "failed": len(failures),
            "languages": rows["language"].value_counts().to_dict(),
            "labels": rows["label"].value_counts().to_dict(),
        },
    }


def _describe_failure(table: str, frame, outcome) -> dict[str, Any]:
    config = outcome.expectation_config
    result = outcome.result or {}
    column = config.kwargs.get("column")
    indexes = result.get("unexpected_index_list") or []
    sample = []
    for index in indexes[:SAMPLE_ROWS]:
        row = frame.loc[index] if not isinstance(index, dict) else None
        if row is not None:
            sample.append(
                {
                    key: str(row[key])[:80]
                    for key in ("id", "language", "label", "text", column, "source_file", "rows", "share")
                    if key in row.index and key
                }
            )
    if not sample and result.get("partial_unexpected_list"):
        sample = [{"value": str(v)[:80]} for v in result["partial_unexpected_list"][:SAMPLE_ROWS]]
    kwargs = {k: v for k, v in config.kwargs.items() if k not in {"batch_id", "column"}}
    return {
        "table": table,
        "expectation": config.type,
        "column": column,
        "kwargs": kwargs,
        "severity": str(getattr(config, "severity", "critical")).split(".")[-1].lower(),
        "observed": result.get("observed_value"),
        "unexpected_count": result.get("unexpected_count"),
        "unexpected_percent": result.get("unexpected_percent"),
        "sample": sample,
        "exception": (outcome.exception_info or {}).get("exception_message") if not result else None,
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
    args = parser.parse_args(argv)
    root = args.processing_root
    raw, suites_dir = root / "input" / "raw", root / "input" / "suites"
    report_dir = root / "output" / "report"

    columns = dict(pair.split("=", 1) for pair in args.columns.split(",") if "=" in pair)
    rows = read_dataset(raw, args.format, columns)
    labels = [x for x in args.labels.split(",") if x] or sorted(
        {line.strip() for f in raw.rglob("labels.txt") for line in f.read_text("utf-8").splitlines() if line.strip()}
    )
    if not labels:  # your own texts without a list of labels: the ones they have (the other checks still hold)
        labels = sorted(rows["label"].dropna().astype(str).unique())
        print(f"no labels.txt or --labels: allowing the {len(labels)} labels the data has")
    languages = [x for x in args.languages.split(",") if x] or sorted(rows["language"].dropna().astype(str).unique())
    suites = {}
    for table in ("rows", "classes"):
        path = suites_dir / f"{args.suite}.{table}.json"
        try:
            suites[table] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(f"expectation suite {path.name}: {exc}") from None
    parameters = {"allowed_labels": labels, "allowed_languages": languages}
    report = validate(rows, suites, parameters, report_dir / "data_docs")
    (report_dir / "validation.json").write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    print(summarize(report))
    if not report["success"]:
        raise DataError("data validation failed:\n" + summarize(report))


if __name__ == "__main__":
    run_entry(main)
