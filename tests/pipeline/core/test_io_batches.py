"""Parquet written slice by slice (``parquet_batches``) reads back as the whole table written at once."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline.core.io import parquet_batches, write_table


def part(ids: list[str], values: list[str | None]) -> pd.DataFrame:
    return pd.DataFrame({
        "ticket_id": pd.Series(ids, dtype="str"),
        "at": pd.to_datetime(["2026-03-02T09:00:00.5Z"] * len(ids), utc=True).astype("datetime64[ns, UTC]"),
        "kind": pd.Categorical(["message"] * len(ids), categories=["message", "status"]),
        "value": pd.Series(values, dtype="str"),
    })


def test_slices_read_back_as_the_table_written_at_once(tmp_path):
    # The first slice has no value at all: its column type must not decide the file's.
    parts = [part(["A", "A"], [None, None]), part(["B"], ["open"]), part([], [])]
    with parquet_batches(tmp_path / "events.parquet") as write:
        for frame in parts:
            write(frame)
    whole = pd.concat(parts, ignore_index=True)
    write_table(whole, tmp_path / "at_once.parquet")
    back = pd.read_parquet(tmp_path / "events.parquet")
    pd.testing.assert_frame_equal(back, pd.read_parquet(tmp_path / "at_once.parquet"))
    pd.testing.assert_frame_equal(back, whole)
    assert pq.ParquetFile(tmp_path / "events.parquet").metadata.num_row_groups == 2  # the empty slice adds none


def test_a_failure_part_way_leaves_the_previous_file_untouched(tmp_path):
    target = tmp_path / "events.parquet"
    target.write_bytes(b"yesterday")
    with pytest.raises(RuntimeError), parquet_batches(target) as write:
        write(part(["A"], ["open"]))
        raise RuntimeError("validation failed on the second slice")
    assert target.read_bytes() == b"yesterday"
    assert [p.name for p in tmp_path.iterdir()] == ["events.parquet"]  # no temporary file left
