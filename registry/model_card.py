"""A registered version's model card: what it is for, what it was trained on, how well it does overall and per
language (with how many test rows each figure stands on), how sure it says it is (calibration), what the gate
decided, where it came from (lineage) and what it is not for. As JSON and HTML, stored with the version in MLflow;
in the cloud, the same card as a SageMaker Model Card (`sagemaker_content`).

The card is read from what the version's own run wrote: the artifact's manifest (`model.json`) and the
evaluation report (`evaluation.json`), and the run's parameters when its record is at hand.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from foundation.home import Home
from registry.versions import ModelVersion

CARD_SCHEMA = "pravah.model_card/1"


def build_card(
    version: ModelVersion,
    manifest: dict[str, Any],
    evaluation: dict[str, Any] | None,
    parameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The card of `version`, from its artifact's manifest, its evaluation report (None: not recorded) and its
    run's parameters."""
    parameters = parameters or {}
    languages = list(manifest.get("languages") or [])
    labels = list(manifest.get("labels") or [])
    task = manifest.get("task", "classification")
    tested = (evaluation or {}).get("per_language", {})
    metrics = (evaluation or {}).get("test_metrics", {})
    scores = (evaluation or {}).get("multiclass_classification_metrics", {})
    comparison = (evaluation or {}).get("comparison", {})
    registered = next((change for change in version.history if change.get("reason") == "registered"), {})
    return {
        "schema": CARD_SCHEMA,
        "model": version.name,
        "version": version.version,
        "status": version.status,
        "created_at": version.created_at,
        "intended_use": _intended_use(task, languages, labels),
        "model_details": {
            "family": manifest.get("family"),
            "task": task,
            "labels": labels,
            "hyperparameters": manifest.get("hyperparameters", {}),
            "libraries": manifest.get("libraries", {}),
            "artifact": {"uri": version.source, "sha256": version.digest},
        },
        "training_data": {
            "dataset": parameters.get("dataset"),
            "sha256": manifest.get("training_data_sha256"),
            "rows": manifest.get("training_rows"),
            "languages": languages,
            "validation_metrics": manifest.get("validation_metrics", {}),
        },
        "evaluation": {
            "split": "test",
            "rows": (evaluation or {}).get("test_rows"),
            "overall": {key: value for key, value in metrics.items() if isinstance(value, int | float)},
            "per_language": {
                language: {
                    "rows": found.get("rows"),
                    **{key: found[key]["value"] for key in ("accuracy", "macro_f1") if key in found},
                }
                for language, found in sorted(tested.items())
            },
        }
        if evaluation
        else None,
        "calibration": {
            **manifest.get("calibration", {}),
            **{
                f"test_{key}": scores[key]["value"]
                for key in ("expected_calibration_error", "expected_calibration_error_uncalibrated")
                if key in scores
            },
        }
        if manifest.get("calibration")
        else None,
        "gate": {
            "metric": comparison.get("metric") or version.lineage.get("gate_metric"),
            "candidate": comparison.get("candidate"),
            "champion": comparison.get("champion"),
            "tolerance": comparison.get("tolerance"),
            "against_champion": comparison.get("against_champion"),
            "minimum": parameters.get(f"min_{comparison.get('metric') or version.lineage.get('gate_metric')}"),
            "decision": _decision(comparison, parameters, registered or {"status": version.status}),
            "history": version.history,
        },
        "lineage": dict(sorted(version.lineage.items())),
        "known_limits": _known_limits(task, languages, labels, tested),
    }


def write_card(registry, version: ModelVersion, parameters: dict[str, Any] | None, folder: Path) -> dict[str, Any]:
    """Build a version's card from what its registry holds of it (`card_sources`: the artifact's manifest and
    the evaluation report), write `model_card.json` and `model_card.html` to `folder`, and store it with the
    version (`save_card`: in MLflow with its run, or as a SageMaker Model Card); the card, with `stored_at`."""
    import json

    from foundation.home import write_bytes_atomic

    card = build_card(version, *registry.card_sources(version), parameters)
    files = {
        "model_card.json": json.dumps(card, indent=2, ensure_ascii=False) + "\n",
        "model_card.html": render_html(card),
    }
    for name, text in files.items():
        write_bytes_atomic(folder / name, text.encode("utf-8"))
    return {**card, "stored_at": registry.save_card(version, card, files)}


def card_folder(home: Home, name: str, version: int) -> Path:
    """Where a version's card files are written in the project folder."""
    return home.root / "cards" / name / str(version)


def evaluation_of(lineage: dict[str, str]) -> dict[str, Any] | None:
    """The evaluation report a version's run wrote (its lineage's `output.STEP.evaluation` folder), if local."""
    import json

    for key, folder in sorted(lineage.items()):
        report = Path(folder) / "evaluation.json"
        if key.startswith("output.") and key.endswith(".evaluation") and report.is_file():
            return json.loads(report.read_text())
    return None


def _decision(comparison: dict[str, Any], parameters: dict[str, Any], registered: dict[str, str]) -> str:
    """What the gate decided: a registered version passed it (the register step runs only then)."""
    metric, candidate = comparison.get("metric"), comparison.get("candidate")
    minimum = parameters.get(f"min_{metric}")
    passed = f"{metric} {candidate:.4f}" if isinstance(candidate, int | float) else "the gate's condition"
    passed += f" >= minimum {minimum}" if minimum is not None else ""
    against = f"; {comparison['against_champion']}" if comparison.get("against_champion") else ""
    when = f" at {registered['at']}" if registered.get("at") else ""
    return f"passed ({passed}{against}): registered {registered.get('status')}{when}"


def _intended_use(task: str, languages: list[str], labels: list[str]) -> str:
    if task == "regression":
        return "Predicts a number from a table row with the columns it was trained on."
    what = f"Assigns one of {len(labels)} topics ({', '.join(labels)})" if labels else "Assigns a class"
    said = f" to short texts in {', '.join(languages)}" if languages else ""
    return (
        f"{what}{said}, with a calibrated confidence and the next most likely labels; for routing and "
        "triage where a person can review low-confidence answers, not for decisions about people."
    )


def _known_limits(task: str, languages: list[str], labels: list[str], tested: dict[str, Any]) -> list[str]:
    limits = []
    if languages:
        limits.append(
            f"Trained and tested on {', '.join(languages)} only: texts in other languages still get an "
            "answer, with some confidence, but mostly a wrong one. Monitoring estimates each language's "
            "accuracy without labels and alerts on such traffic."
        )
    small = [
        f"{language} ({found.get('rows')})"
        for language, found in sorted(tested.items())
        if (found.get("rows") or 0) < 300
    ]
    if small:
        limits.append(
            f"Test figures stand on few rows per language: {', '.join(small)}; differences of a few "
            "points between languages are within their sampling error."
        )
    if labels:
        limits.append(f"Knows only its {len(labels)} labels: a text about anything else still gets one of them.")
    if task != "regression":
        limits.append(
            "Confidences are calibrated on the validation split (one temperature): they say how often "
            "the top answer is right on data like the training data, not on other kinds of text."
        )
    return limits


def render_html(card: dict[str, Any]) -> str:
    """The card as one self-contained HTML page (no scripts, no external resources)."""
    e = html.escape

    def table(header: list[str], rows: list[list[Any]]) -> str:
        head = "".join(f"<th>{e(str(cell))}</th>" for cell in header)
        body = "".join("<tr>" + "".join(f"<td>{e(_shown(cell))}</td>" for cell in row) + "</tr>" for row in rows)
        return f"<table><tr>{head}</tr>{body}</table>"

    details, data, evaluation = card["model_details"], card["training_data"], card["evaluation"]
    parts = [
        f"<h1>{e(card['model'])} version {card['version']}</h1>",
        f"<p class=status>{e(card['status'])}; registered {e(str(card.get('created_at') or '-'))}</p>",
        "<h2>Intended use</h2>",
        f"<p>{e(card['intended_use'])}</p>",
        "<h2>Model</h2>",
        table(
            ["", ""],
            [
                ["family", details["family"]],
                ["task", details["task"]],
                ["labels", ", ".join(details["labels"])],
                ["hyperparameters", details["hyperparameters"]],
                ["artifact", details["artifact"]["uri"]],
                ["sha256", details["artifact"]["sha256"]],
            ],
        ),
        "<h2>Training data</h2>",
        table(
            ["", ""],
            [
                ["dataset", data["dataset"]],
                ["sha256", data["sha256"]],
                ["rows", data["rows"]],
                ["languages", ", ".join(data["languages"])],
                ["validation", data["validation_metrics"]],
            ],
        ),
    ]
    if evaluation:
        overall = [[key, value] for key, value in evaluation["overall"].items()]
        parts += [
            f"<h2>Evaluation ({e(str(evaluation['split']))} split, {evaluation['rows']} rows)</h2>",
            table(["metric", "value"], overall),
            "<h3>Per language</h3>",
            table(
                ["language", "test rows", "accuracy", "macro-F1"],
                [
                    [language, found.get("rows"), found.get("accuracy"), found.get("macro_f1")]
                    for language, found in evaluation["per_language"].items()
                ],
            ),
        ]
    else:
        parts.append("<h2>Evaluation</h2><p>Not recorded for this version.</p>")
    if card["calibration"]:
        parts += ["<h2>Calibration</h2>", table(["", ""], [[k, v] for k, v in card["calibration"].items()])]
    gate = card["gate"]
    parts += [
        "<h2>Quality gate</h2>",
        table(
            ["", ""],
            [
                [k, gate[k]]
                for k in ("metric", "candidate", "minimum", "champion", "tolerance", "against_champion", "decision")
            ],
        ),
        table(
            ["status", "by", "at", "reason"],
            [[c.get("status"), c.get("by"), c.get("at"), c.get("reason")] for c in gate["history"]],
        ),
        "<h2>Lineage</h2>",
        table(["", ""], [[k, v] for k, v in card["lineage"].items()]),
        "<h2>Known limits</h2>",
        "<ul>" + "".join(f"<li>{e(item)}</li>" for item in card["known_limits"]) + "</ul>",
    ]
    style = (
        "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#222}"
        "table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;"
        "text-align:left;vertical-align:top}.status{color:#555}"
    )
    title = e(f"{card['model']} version {card['version']}: model card")
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{title}</title><style>{style}</style>"
        f"</head><body>{''.join(parts)}</body></html>\n"
    )


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{key}={_shown(item)}" for key, item in value.items()) or "-"
    return str(value)


def sagemaker_content(card: dict[str, Any]) -> dict[str, Any]:
    """The card as a SageMaker Model Card's content (its JSON schema's sections; strings within their limits)."""
    details, data, evaluation = card["model_details"], card["training_data"], card["evaluation"]

    def numbers(values: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {"name": key, "type": "number", "value": float(value)}
            for key, value in values.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        ]

    groups = [{"name": "overall", "metric_data": numbers(evaluation["overall"])}] if evaluation else []
    groups += [
        {"name": language[:63], "metric_data": numbers(found)}
        for language, found in (evaluation or {}).get("per_language", {}).items()
    ]
    return {
        "model_overview": {
            "model_description": _fit(f"{card['model']} version {card['version']}: {card['intended_use']}", 1024),
            "algorithm_type": _fit(str(details["family"]), 1024),
            "model_artifact": [details["artifact"]["uri"]],
        },
        "intended_uses": {
            "purpose_of_model": _fit(card["intended_use"], 2048),
            "intended_uses": _fit(card["intended_use"], 2048),
            "factors_affecting_model_efficiency": _fit(" ".join(card["known_limits"]), 2048),
            "risk_rating": "Unknown",
        },
        "training_details": {
            "training_observations": _fit(
                f"{data['rows']} rows of {data['dataset'] or 'its dataset'} in "
                f"{', '.join(data['languages'])}; data sha256 {data['sha256']}",
                1024,
            ),
            "training_job_details": {
                "training_datasets": [f"sha256:{data['sha256']}"],
                "hyper_parameters": [
                    {"name": _fit(name, 255), "value": _fit(str(value), 255)}
                    for name, value in details["hyperparameters"].items()
                ],
                "training_metrics": [
                    {"name": f"validation_{item['name']}", "value": item["value"]}
                    for item in numbers(data["validation_metrics"])
                ],
            },
        },
        "evaluation_details": [
            {
                "name": "test split",
                "datasets": [f"sha256:{data['sha256']}"],
                "metadata": {"rows": str(evaluation["rows"])},
                "metric_groups": groups,
            }
        ]
        if evaluation
        else [],
        "additional_information": {
            "caveats_and_recommendations": _fit(" ".join(card["known_limits"]), 2048),
            "custom_details": {
                key[:255]: _fit(str(value), 255)
                for key, value in card["lineage"].items()
                if not key.startswith("output.")
            },
        },
    }


def check_sagemaker_content(content: dict[str, Any]) -> None:
    """Refuse content that SageMaker's model card schema would not take, as the SageMaker SDK's model card
    shapes (generated from that schema) read it; a field they would not read is refused too."""
    from pydantic import ValidationError
    from sagemaker.core.shapes.model_card_shapes import ModelCardContent

    from foundation.errors import PravahError

    try:
        read = ModelCardContent.model_validate(content)
    except ValidationError as exc:
        raise PravahError(f"the model card's content does not fit SageMaker's schema: {exc}") from None
    unread = _unread(content, read.model_dump(mode="json", exclude_unset=True))
    if unread:
        raise PravahError(f"the model card's content has fields SageMaker's schema does not know: {', '.join(unread)}")


def _unread(sent: Any, read: Any, where: str = "") -> list[str]:
    if isinstance(sent, dict) and isinstance(read, dict):
        missing = [f"{where}{key}" for key in sent if key not in read]
        return missing + [
            found for key in sent if key in read for found in _unread(sent[key], read[key], f"{where}{key}.")
        ]
    if isinstance(sent, list) and isinstance(read, list):
        pairs = enumerate(zip(sent, read, strict=False))
        return [found for i, (a, b) in pairs for found in _unread(a, b, f"{where}{i}.")]
    return []


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
