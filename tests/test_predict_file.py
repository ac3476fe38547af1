"""`pravah predict`: a file scored with a registered version, no server: CSV, TSV and JSON lines, rows that
cannot be scored reported by line and kept in the output with their reason, nothing written on an error."""

from __future__ import annotations

import csv
import json

from tests.support import deploy_small_model, run_cli


def test_a_file_is_scored_row_by_row_and_bad_rows_are_named(tmp_path):
    home, _ = deploy_small_model(tmp_path, "files")
    source = tmp_path / "texts.csv"
    source.write_text('id,text\n1,goal match team\n2,\n3,"vote law, party"\n', encoding="utf-8")
    result = run_cli(home.root, "predict", "--model", "topics", "--version", "1", "--input", str(source),
                     "--output", str(tmp_path / "scored.tsv"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "line 3: no text" in result.stderr and "2 of 3 rows scored" in result.stdout
    rows = list(csv.DictReader((tmp_path / "scored.tsv").open(encoding="utf-8"), delimiter="\t"))
    assert [r["id"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["prediction"] == "sports" and rows[2]["prediction"] == "politics" and rows[1]["error"] == "no text"
    assert 0 < float(rows[0]["confidence"]) <= 1

    lines = tmp_path / "texts.jsonl"
    lines.write_text('{"text": "goal match"}\nnot json\n\n{"text": 7}\n', encoding="utf-8")
    result = run_cli(home.root, "predict", "--model", "topics", "--version", "1", "--input", str(lines),
                     "--output", str(tmp_path / "scored.jsonl"))  # fmt: skip
    assert result.returncode == 0 and "line 2: not JSON" in result.stderr and "line 4: the text is not a string" \
        in result.stderr, result.stderr  # fmt: skip
    scored = [json.loads(line) for line in (tmp_path / "scored.jsonl").read_text().splitlines()]
    assert scored[0]["prediction"] == "sports" and isinstance(scored[0]["alternatives"], list)
    assert [bool(s.get("error")) for s in scored] == [False, True, True]

    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b\n1,2\n")
    result = run_cli(home.root, "predict", "--model", "topics", "--version", "1", "--input", str(wrong),
                     "--output", str(tmp_path / "never.csv"))  # fmt: skip
    assert result.returncode != 0 and "no column 'text'" in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*never*")), "nothing is written when the file cannot be scored"
