"""`pravah predict`: a file scored with a registered version, no server: CSV, TSV and JSON lines, rows that
cannot be scored reported by line and kept in the output with their reason, nothing written on an error."""

from __future__ import annotations

import csv
import json
import re

from tests.support import deploy_small_model, run_cli


def test_a_file_is_scored_row_by_row_and_bad_rows_are_named(tmp_path):
    home, _ = deploy_small_model(tmp_path, "files")
    source = tmp_path / "texts.csv"
    source.write_text('id,text\n1,goal match team\n2,\n3,"vote law, party"\n', encoding="utf-8")
    result = run_cli(
        home.root,
        "predict",
        "--model",
        "topics",
        "--version",
        "1",
        "--input",
        str(source),
        "--output",
        str(tmp_path / "scored.tsv"),
    )
    assert result.returncode == 0, result.stderr
    assert "line 3: no text" in result.stderr and "2 of 3 rows scored" in result.stdout
    rows = list(csv.DictReader((tmp_path / "scored.tsv").open(encoding="utf-8"), delimiter="\t"))
    assert [r["id"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["prediction"] == "sports" and rows[2]["prediction"] == "politics" and rows[1]["error"] == "no text"
    assert 0 < float(rows[0]["confidence"]) <= 1

    lines = tmp_path / "texts.jsonl"
    lines.write_text('{"text": "goal match"}\nnot json\n\n{"text": 7}\n', encoding="utf-8")
    result = run_cli(
        home.root,
        "predict",
        "--model",
        "topics",
        "--version",
        "1",
        "--input",
        str(lines),
        "--output",
        str(tmp_path / "scored.jsonl"),
    )
    assert (
        result.returncode == 0
        and "line 2: not JSON" in result.stderr
        and "line 4: the text is not a string" in result.stderr
    ), result.stderr
    scored = [json.loads(line) for line in (tmp_path / "scored.jsonl").read_text().splitlines()]
    assert scored[0]["prediction"] == "sports" and isinstance(scored[0]["alternatives"], list)
    assert [bool(s.get("error")) for s in scored] == [False, True, True]

    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b\n1,2\n")
    result = run_cli(
        home.root,
        "predict",
        "--model",
        "topics",
        "--version",
        "1",
        "--input",
        str(wrong),
        "--output",
        str(tmp_path / "never.csv"),
    )
    assert result.returncode != 0 and "no column 'text'" in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*never*")), "nothing is written when the file cannot be scored"


def test_a_large_file_goes_in_chunks_names_the_first_twenty_refusals_and_a_late_failure_writes_nothing(tmp_path):
    home, _ = deploy_small_model(tmp_path, "files")
    many = tmp_path / "many.csv"
    many.write_text("id,text\n" + "".join(f"{i},{'' if i % 100 == 0 else f'goal match {i}'}\n" for i in range(2_500)))
    result = run_cli(
        home.root,
        "predict",
        "--model",
        "topics",
        "--version",
        "1",
        "--input",
        str(many),
        "--output",
        str(tmp_path / "many-scored.csv"),
    )
    assert result.returncode == 0, result.stderr
    progress = re.findall(r"([\d,]+) rows read, [\d,]+ refused", result.stderr)
    assert progress == ["1,024", "2,048", "2,500"], "a chunk of 1,024 rows at a time, each reported"
    named = re.findall(r"line (\d+): no text", result.stderr)
    assert named == [str(2 + i * 100) for i in range(20)] and "... and 5 more rows refused" in result.stderr
    assert result.stdout.startswith("2,475 of 2,500 rows scored"), result.stdout
    assert len((tmp_path / "many-scored.csv").read_text().splitlines()) == 2_501

    late = tmp_path / "late.csv"
    late.write_bytes(many.read_bytes().replace(b"goal match 2345", b"goal match \xff"))  # in the third chunk
    failed = run_cli(
        home.root,
        "predict",
        "--model",
        "topics",
        "--version",
        "1",
        "--input",
        str(late),
        "--output",
        str(tmp_path / "late-scored.csv"),
    )
    assert failed.returncode == 2 and "not UTF-8 text" in failed.stderr and "2,048 rows read" in failed.stderr
    assert not list(tmp_path.glob("*late-scored*")), "two chunks were scored, and nothing of them is written"
