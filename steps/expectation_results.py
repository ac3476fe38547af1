"""Great Expectations results of a table checked a chunk at a time, merged into the result of the whole table.

GX validates the frame it is given; a table bigger than memory is given to it in chunks, and each expectation's
results are added up here as GX would have computed them on every row at once: a column map expectation (values
in a set, lengths, not null, types) by its counts, with its `mostly` applied to the totals as GX applies it; the
table's row count by the sum; a column's share of unique values by the distinct values over all chunks (kept as
64-bit hashes); a column's existence or type by every chunk's. An expectation of another kind has no such rule:
a table of more than one chunk with one is refused, saying which.
"""

from __future__ import annotations

from typing import Any

from steps.io import DataError

SAMPLE_ROWS = 3
ROW_COUNT = "expect_table_row_count_to_be_between"
UNIQUE_SHARE = "expect_column_proportion_of_unique_values_to_be_between"
# true of the table when true of every chunk (GX may check a column's type on its dtype, with no counts)
EVERY_CHUNK = (
    "expect_column_to_exist",
    "expect_column_values_to_be_of_type",
    "expect_column_values_to_be_in_type_list",
)
SAMPLE_COLUMNS = ("id", "language", "label", "text", "source_file", "rows", "share")  # what a failure's rows show


class MergedOutcome:
    """One expectation's results over the chunks seen so far, shaped as `_describe_failure` reads GX's."""

    def __init__(self, outcome) -> None:
        self.config, self.kind = outcome.expectation_config, outcome.expectation_config.type
        self.counts = {"element_count": 0, "missing_count": 0, "unexpected_count": 0}
        self.partial: list = []
        self.samples: list[dict[str, str]] = []
        self.rows, self.hashes, self.all_succeeded = 0, [], True
        self.exception: str | None = None
        self.column_map = "unexpected_count" in (outcome.result or {})
        self.unmergeable = not self.column_map and self.kind not in (ROW_COUNT, UNIQUE_SHARE, *EVERY_CHUNK)

    def add(self, outcome, frame) -> None:
        """A chunk's result; `frame` is the chunk (a failure's first rows are sampled from it)."""
        result = outcome.result or {}
        self.all_succeeded &= bool(outcome.success)
        if outcome.exception_info and outcome.exception_info.get("raised_exception") and self.exception is None:
            self.exception = outcome.exception_info.get("exception_message")
        self.rows += len(frame)
        if self.column_map:
            for key in self.counts:
                self.counts[key] += int(result.get(key) or 0)
            self.partial += (result.get("partial_unexpected_list") or [])[: 20 - len(self.partial)]
            for index in (result.get("unexpected_index_list") or [])[: SAMPLE_ROWS - len(self.samples)]:
                if not isinstance(index, dict):
                    self.samples.append(sample_row(frame.loc[index], self.config.kwargs.get("column")))
        elif self.kind == UNIQUE_SHARE:
            import pandas as pd

            column = frame[self.config.kwargs["column"]].dropna()
            self.hashes.append(pd.util.hash_pandas_object(column, index=False).to_numpy())

    def success_and_result(self) -> tuple[bool, dict[str, Any]]:
        """GX's verdict and result on all the rows at once."""
        kwargs = self.config.kwargs
        if self.column_map:
            considered = self.counts["element_count"] - self.counts["missing_count"]
            unexpected = self.counts["unexpected_count"]
            mostly = kwargs.get("mostly", 1.0)
            success = considered == 0 or (considered - unexpected) / considered >= mostly  # GX's _mostly_success
            percent = 100.0 * unexpected / considered if considered else 0.0
            return success, {
                **self.counts,
                "unexpected_percent": percent,
                "partial_unexpected_list": self.partial,
                "observed_value": None,
            }
        if self.kind == ROW_COUNT:
            return within(self.rows, kwargs), {"observed_value": self.rows}
        if self.kind == UNIQUE_SHARE:
            import numpy as np

            values = np.concatenate(self.hashes) if self.hashes else np.zeros(0, dtype=np.uint64)
            share = len(np.unique(values)) / len(values) if len(values) else None
            return share is None or within(share, kwargs), {"observed_value": share}
        return self.all_succeeded, {"observed_value": None}


def sample_row(row, column: str | None) -> dict[str, str]:
    """A row as a failure shows it: its identifying columns and the checked one, each cut to 80 characters."""
    keys = (*SAMPLE_COLUMNS[:4], column, *SAMPLE_COLUMNS[4:])
    return {key: str(row[key])[:80] for key in keys if key and key in row.index}


def within(value: float, kwargs: dict[str, Any]) -> bool:
    """GX's bounds: inclusive unless strict_min or strict_max."""
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    above = low is None or (value > low if kwargs.get("strict_min") else value >= low)
    below = high is None or (value < high if kwargs.get("strict_max") else value <= high)
    return above and below


def refuse_unmergeable(merged: list[MergedOutcome], chunk_rows: int) -> None:
    for outcome in merged:
        if outcome.unmergeable:
            raise DataError(
                f"expectation {outcome.kind} cannot be checked a chunk at a time, and the table has more than "
                f"{chunk_rows:,} rows: raise --chunk_rows above its row count, or drop the expectation"
            )
