"""Per-stage timings: the summary columns and the provenance table of the report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bids_app.outputs.io import write_tsv
from bids_app.pipelines.participant import (
    SUMMARY_COLUMNS,
    TIMING_COLUMNS,
    timing_summary,
    update_summary,
)
from bids_app.pipelines.participant_outputs import stage_timings_table
from bids_app.pipelines.participant_run import ParticipantOutcome
from bids_app.pipelines.stages import StageTiming

TIMINGS = (
    StageTiming("motion:baseline", 4.0, False, 300.0),
    StageTiming("motion:challenge", 5.04, False, 310.0),
    StageTiming("means", 1.0, False, 320.0),
    StageTiming("normalisation", 12.0, True, 330.0),
    StageTiming("coregistration", 2.0, False, 330.0),
    StageTiming("resample:baseline", 1.5, False, 700.0),
    StageTiming("tacs:baseline", 0.2, False, 700.0),
    StageTiming("resample:challenge", 1.4, False, 760.0),
    StageTiming("tacs:challenge", 0.2, False, 760.0),
    StageTiming("k2prime", 0.1, False, 760.0),
    StageTiming("fit:baseline", 0.5, False, 780.0),
    StageTiming("fit:challenge", 0.5, False, 790.0),
    StageTiming("outputs", 3.0, False, 800.0),
    StageTiming("report", 6.0, False, 805.4),
)


def test_timing_summary_adds_up_stage_groups() -> None:
    got = timing_summary(TIMINGS)
    assert got == {
        "motion_s": 9.0,
        "means_s": 1.0,
        "coregistration_s": 2.0,
        "normalisation_s": 12.0,
        "resample_s": 2.9,
        "model_s": 1.5,
        "outputs_s": 9.0,
        "peak_rss_mb": 805,
        "from_checkpoint": "normalisation",
    }
    every_stage = {name for stages in TIMING_COLUMNS.values() for name in stages}
    assert {t.name.split(":")[0] for t in TIMINGS} == every_stage
    assert set(timing_summary(()).values()) == {"n/a"}


def test_summary_rows_carry_the_timings_and_merge_with_an_older_summary(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "summary.tsv"
    old = pd.DataFrame(
        [["sub-02", "ses-sal", "success", "", "pass", "50.0"]],
        columns=["participant_id", "session_id", "status", "message", "qc", "elapsed_s"],
    )
    write_tsv(path, old)  # written by a version without timing columns
    outcomes = [
        ParticipantOutcome("01", "success", "", ("sal", "nal"), elapsed_s=40.04, timings=TIMINGS),
        ParticipantOutcome("03", "failed", "broken header", ("sal", "nal"), timings=TIMINGS),
    ]
    update_summary(path, outcomes)
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    assert list(table.columns) == SUMMARY_COLUMNS
    rows = table.set_index(["participant_id", "session_id"])
    assert rows.loc[("sub-01", "ses-nal"), "motion_s"] == "9.0"
    assert rows.loc[("sub-01", "ses-sal"), "peak_rss_mb"] == "805"
    assert rows.loc[("sub-01", "ses-sal"), "elapsed_s"] == "40.0"
    assert rows.loc[("sub-02", "ses-sal"), "motion_s"] == "n/a"  # older row
    assert rows.loc[("sub-03", "ses-sal"), "resample_s"] == "n/a"  # failed: no timings


def test_stage_table_lists_stages_in_order_with_a_total() -> None:
    table = stage_timings_table(TIMINGS[:3])
    assert list(table.columns) == ["stage", "seconds", "from_checkpoint", "peak_rss_mb"]
    assert list(table["stage"]) == ["motion:baseline", "motion:challenge", "means", "total"]
    assert table["seconds"].iloc[-1] == 10.04
    assert table["peak_rss_mb"].iloc[-1] == 320
    assert stage_timings_table(()).empty
