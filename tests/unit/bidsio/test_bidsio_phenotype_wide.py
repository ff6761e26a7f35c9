"""The BIDS-valid wide phenotype form reads into the same table as the long form."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.bids_skeleton import write_phenotype

from bids_app.bidsio.phenotype import load_behavior_config, read_phenotype, wide_column_time
from bids_app.errors import InputError, ValidationError

LONG = [
    "participant_id\tsession_id\ttime_min\tsick\tcortisol",
    "sub-01\tses-sal\t-10\t1\t300",
    "sub-01\tses-sal\t10\t2\tn/a",
    "sub-01\tses-nal\t-10\t1\t310",
    "sub-01\tses-nal\t10\t6\t420",
    "sub-02\tses-sal\t-10\t0\t280",
    "sub-02\tses-sal\t10\t1\t290",
    "sub-02\tses-nal\t-10\t2\t300",
    "sub-02\tses-nal\t10\t7\t500",
]
WIDE = [
    "participant_id\tsession_id\tsick_tminus10\tsick_t10\tcortisol_tminus10\tcortisol_t10",
    "sub-01\tses-sal\t1\t2\t300\tn/a",
    "sub-01\tses-nal\t1\t6\t310\t420",
    "sub-02\tses-sal\t0\t1\t280\t290",
    "sub-02\tses-nal\t2\t7\t300\t500",
]


def test_wide_and_long_forms_give_the_same_table(tmp_path: Path) -> None:
    write_phenotype(tmp_path / "long", LONG)
    write_phenotype(tmp_path / "wide", WIDE)
    long = read_phenotype(tmp_path / "long", "subjective", ["01", "02"], ["sal", "nal"])
    wide = read_phenotype(tmp_path / "wide", "subjective", ["01", "02"], ["sal", "nal"])
    assert long is not None
    assert wide is not None
    pd.testing.assert_frame_equal(wide, long)
    assert np.isnan(wide.loc[3, "cortisol"])  # n/a at sub-01 ses-sal 10 min


def test_wide_column_times() -> None:
    assert wide_column_time("loss_of_control_t30") == ("loss_of_control", 30.0)
    assert wide_column_time("sick_tminus10") == ("sick", -10.0)
    assert wide_column_time("cortisol_t7p5") == ("cortisol", 7.5)
    assert wide_column_time("cortisol") is None
    assert wide_column_time("t10") is None


def test_measure_missing_at_some_times(tmp_path: Path) -> None:
    lines = [
        "participant_id\tsession_id\tsick_tminus10\tsick_t10\tcortisol_t30",
        "sub-01\tses-sal\t1\t2\t300",
    ]
    write_phenotype(tmp_path, lines)
    table = read_phenotype(tmp_path, "subjective")
    assert table is not None
    assert table["time_min"].tolist() == [-10.0, 10.0, 30.0]
    assert table["sick"].tolist()[:2] == [1.0, 2.0]
    assert np.isnan(table.loc[2, "sick"])
    assert np.isnan(table.loc[0, "cortisol"])
    assert table.loc[2, "cortisol"] == 300.0


def test_column_without_time(tmp_path: Path) -> None:
    write_phenotype(
        tmp_path, ["participant_id\tsession_id\tsick_t10\tgroup", "sub-01\tses-sal\t1\tA"]
    )
    with pytest.raises(InputError, match=r"column\(s\) \['group'\] have no time point"):
        read_phenotype(tmp_path, "subjective")


def test_duplicate_rows_and_bad_cells_name_file_lines(tmp_path: Path) -> None:
    lines = [*WIDE, "sub-02\tses-nal\t2\t7\t300\tlots"]
    write_phenotype(tmp_path, lines)
    with pytest.raises(ValidationError) as info:
        read_phenotype(tmp_path, "subjective")
    joined = "\n".join(info.value.problems)
    assert "duplicate (participant_id, session_id) rows: line 5: (02, nal), line 6: (02, nal)" in (
        joined
    )
    assert "column 'cortisol_t10' expected a finite number or n/a; found line 6: 'lots'" in joined


def test_unknown_participant_in_wide_form(tmp_path: Path) -> None:
    write_phenotype(tmp_path, WIDE)
    with pytest.raises(ValidationError, match=r"unknown participant\(s\) 02"):
        read_phenotype(tmp_path, "subjective", ["01"])


def test_sidecar_and_config_with_bom(tmp_path: Path) -> None:
    write_phenotype(tmp_path, WIDE)
    sidecar = {"sick_t10": {"Description": "sickness 10 min after the drug", "Units": "0-10"}}
    (tmp_path / "phenotype" / "subjective.json").write_bytes(
        b"\xef\xbb\xbf" + json.dumps(sidecar).encode()
    )
    table = read_phenotype(tmp_path, "subjective")
    assert table is not None
    assert table.attrs["sidecar"] == sidecar
    config = tmp_path / "behaviour.json"
    config.write_bytes(b"\xef\xbb\xbf" + json.dumps({"fdr_q": 0.1}).encode())
    assert load_behavior_config(config).fdr_q == 0.1
