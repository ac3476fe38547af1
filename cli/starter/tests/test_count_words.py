"""The step's own test: its main run on a folder laid out as the container's (`pytest` in this folder)."""

import json

from mysteps.count_words import main


def test_counts_reviews_and_words_per_label(tmp_path):
    reviews = tmp_path / "input" / "reviews"
    reviews.mkdir(parents=True)
    (reviews / "reviews.csv").write_text("text,label\ngood film,positive\nbad,negative\nvery good indeed,positive\n")

    main(["--processing-root", str(tmp_path), "--min_words", "2"])

    counts = json.loads((tmp_path / "output" / "counts" / "counts.json").read_text())
    assert counts == {"positive": {"reviews": 2, "words": 5}}
