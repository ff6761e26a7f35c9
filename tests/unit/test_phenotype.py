"""Tests of bids_app.bidsio.phenotype: reading/validating phenotype TSVs and the config."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from helpers.bids_skeleton import write_phenotype

from bids_app.bidsio.phenotype import (
    DEFAULT_AVERSIVE_SIGN,
    BehaviorConfig,
    dataset_participants,
    load_behavior_config,
    read_phenotype,
)
from bids_app.errors import InputError
from bids_app.stats.behavior import BehaviorDesign

HEADER = "participant_id\tsession_id\ttime_min\tanxiety\thappiness"
GOOD_ROWS = [
    "sub-01\tses-sal\t-10\t2\t7",
    "sub-01\tses-sal\t10\tn/a\t6",
    "01\tnal\t-10\t3\t",
    "sub-02\tnal\t10\t8\t2.5",
]


def test_read_phenotype_normalises_labels_and_missing_values(tmp_path: Path) -> None:
    write_phenotype(tmp_path, [HEADER, *GOOD_ROWS])
    (tmp_path / "phenotype" / "subjective.json").write_text(
        json.dumps({"anxiety": {"Description": "0-10"}}), encoding="utf-8"
    )
    table = read_phenotype(tmp_path, "subjective", ["sub-01", "02"], ["sal", "ses-nal"])
    assert table is not None
    assert list(table.columns) == [
        "participant_id",
        "session_id",
        "time_min",
        "anxiety",
        "happiness",
    ]
    assert table["participant_id"].tolist() == ["01", "01", "01", "02"]
    assert table["session_id"].tolist() == ["nal", "sal", "sal", "nal"]  # sorted
    assert table["time_min"].tolist() == [-10.0, -10.0, 10.0, 10.0]
    assert table["anxiety"].dtype == np.float64
    assert np.isnan(table.loc[2, "anxiety"])  # n/a
    assert np.isnan(table.loc[0, "happiness"])  # empty cell
    assert table.loc[3, "happiness"] == 2.5
    assert table.attrs["sidecar"] == {"anxiety": {"Description": "0-10"}}


def test_read_phenotype_missing_file_returns_none(tmp_path: Path) -> None:
    assert read_phenotype(tmp_path, "physiology") is None


@pytest.mark.parametrize(
    ("lines", "match"),
    [
        (
            ["participant_id\ttime_min\tanxiety", "01\t-10\t2"],
            r"missing required column\(s\) \['session_id'\]",
        ),
        (
            [HEADER, "01\tsal\t-10\tlow\t2"],
            r"column 'anxiety' expected a finite number.*line 2: 'low'",
        ),
        (
            [HEADER, "01\tsal\tn/a\t1\t2"],
            r"column 'time_min' expected a finite number \(n/a is not",
        ),
        ([HEADER, "01\tsal\t-10\t1\t2", "03\tsal\t-10\t1\t2"], r"unknown participant\(s\) 03"),
        ([HEADER, "01\tpla\t-10\t1\t2"], r"unknown session\(s\) pla"),
        (
            [HEADER, "sub-01\tsal\t-10\t1\t2", "01\tses-sal\t-10\t3\t4"],
            r"duplicate \(participant_id, session_id, time_min\) rows: line 2.*line 3",
        ),
        (
            ["participant_id\tsession_id\ttime_min\tpain\tpain", "01\tsal\t-10\t1\t2"],
            r"duplicate column name\(s\) \['pain'\]",
        ),
        ([HEADER, "sub-0_1\tsal\t-10\t1\t2"], r"column 'participant_id' expected alphanumeric"),
        (["participant_id\tsession_id\ttime_min", "01\tsal\t-10"], "no measure columns"),
        ([HEADER], "header but no rows"),
        ([HEADER, "01\tsal\t-10\t1"], "the header has 5 tab-separated fields but line 2 has 4"),
        ([""], "empty or has no header"),
    ],
)
def test_read_phenotype_errors(tmp_path: Path, lines: list[str], match: str) -> None:
    path = write_phenotype(tmp_path, lines)
    with pytest.raises(InputError, match=match) as info:
        read_phenotype(tmp_path, "subjective", participants=["01", "02"], sessions=["sal", "nal"])
    assert str(path) in str(info.value)


def test_rows_of_known_but_excluded_participants_are_ignored(tmp_path: Path) -> None:
    write_phenotype(tmp_path, [HEADER, *GOOD_ROWS, "sub-03\tses-pla\t-10\t1\t2"])
    table = read_phenotype(
        tmp_path,
        "subjective",
        participants=["01"],
        sessions=["sal", "nal"],
        ignored={"sub-02": "failed", "03": "qc fail"},
    )
    assert table is not None
    assert sorted(set(table["participant_id"])) == ["01"]
    assert table.attrs["ignored_participants"] == ["02", "03"]  # sub-03's session not checked
    # a label that is neither analysed nor known stays an error, listing the known labels
    write_phenotype(tmp_path, [HEADER, *GOOD_ROWS, "04\tsal\t-10\t1\t2"])
    with pytest.raises(InputError, match=r"unknown participant\(s\) 04; expected one of 01, 02"):
        read_phenotype(tmp_path, "subjective", ["01"], ["sal", "nal"], ignored={"02": "failed"})


def test_dataset_participants_reads_folders_and_participants_tsv(tmp_path: Path) -> None:
    for label in ("01", "02"):
        (tmp_path / f"sub-{label}").mkdir()
    (tmp_path / "sub-03.txt").write_text("not a participant folder")
    (tmp_path / "participants.tsv").write_text("participant_id\tage\nsub-02\t30\nsub-07\t41\n")
    assert dataset_participants(tmp_path) == ["01", "02", "07"]
    (tmp_path / "participants.tsv").write_text("age\n30\n")  # no participant_id column
    assert dataset_participants(tmp_path) == ["01", "02"]


def test_read_phenotype_reports_all_problems_together(tmp_path: Path) -> None:
    write_phenotype(tmp_path, [HEADER, "09\tsal\t-10\tx\t2", "01\tpla\t-10\t1\t2"])
    with pytest.raises(InputError, match="3 input problems found") as info:
        read_phenotype(tmp_path, "subjective", participants=["01"], sessions=["sal", "nal"])
    assert len(info.value.problems) == 3  # type: ignore[attr-defined]


def test_read_phenotype_bad_sidecar(tmp_path: Path) -> None:
    write_phenotype(tmp_path, [HEADER, *GOOD_ROWS])
    (tmp_path / "phenotype" / "subjective.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match=r"subjective.json: not valid JSON"):
        read_phenotype(tmp_path, "subjective")


def test_default_config_reproduces_the_paper() -> None:
    cfg = BehaviorConfig()
    assert len(cfg.aversive_sign) == 16
    negative = {k for k, v in cfg.aversive_sign.items() if v == -1}
    assert negative == {
        "alertness",
        "happiness",
        "mood",
        "concentration",
        "optimism",
        "activeness",
    }
    assert cfg.pre_time_min == -10.0
    assert cfg.post_times_min == (10.0, 30.0, 60.0)
    assert cfg.hormone_window_min == (30.0, 60.0)
    assert cfg.cardiovascular_window_min is None
    assert (cfg.fdr_q, cfg.selection_p, cfg.selection_basis) == (0.05, 0.05, "p")
    assert ("net_da_release", "aversion_index") in cfg.correlation_pairs
    json.dumps(cfg.to_dict())  # provenance dump is JSON-serialisable


def test_load_behavior_config_overrides_and_merges(tmp_path: Path) -> None:
    path = tmp_path / "behavior.json"
    path.write_text(
        json.dumps(
            {
                "hormone_window_min": [10, 30, 60],
                "hormones": ["cortisol"],
                "aversive_sign": {"craving": 1, "alertness": 1},
                "selection_basis": "p_fdr",
                "correlation_pairs": [["net_da_release", "craving_change"]],
                "cardiovascular_window_min": None,
            }
        ),
        encoding="utf-8",
    )
    cfg = load_behavior_config(path)
    assert cfg.hormone_window_min == (10.0, 30.0, 60.0)
    assert cfg.hormones == ("cortisol",)
    assert cfg.aversive_sign["craving"] == 1
    assert cfg.aversive_sign["alertness"] == 1
    assert cfg.aversive_sign["happiness"] == -1  # defaults kept
    assert cfg.selection_basis == "p_fdr"
    assert cfg.correlation_pairs == (("net_da_release", "craving_change"),)
    assert cfg.post_times_min == (10.0, 30.0, 60.0)
    assert load_behavior_config(None) == BehaviorConfig()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ({"fdr": 0.1}, r"unknown key\(s\) \['fdr'\]\. Valid keys: .*'fdr_q'"),
        ({"fdr_q": 1.5}, "'fdr_q' must lie strictly between 0 and 1"),
        ({"hormones": "cortisol"}, "'hormones' must be a list of non-empty strings"),
        ({"aversive_sign": {"pain": 2}}, r"signs must be \+1 or -1"),
        ({"correlation_pairs": [["a"]]}, r"list of \[x, y\] column-name pairs"),
        ({"post_times_min": [10, "30"]}, "'post_times_min' must be a finite number"),
        ([1, 2], "must hold a JSON object"),
    ],
)
def test_load_behavior_config_errors(tmp_path: Path, content: object, match: str) -> None:
    path = tmp_path / "behavior.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(InputError, match=match):
        load_behavior_config(path)


def test_load_behavior_config_missing_or_invalid_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_behavior_config(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(InputError, match="not valid JSON"):
        load_behavior_config(bad)


def test_config_resolves_columns_into_a_design(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_phenotype(tmp_path, [HEADER.replace("happiness", "craving"), "01\tsal\t-10\t1\t2"])
    write_phenotype(
        tmp_path,
        ["participant_id\tsession_id\ttime_min\tcortisol\tpulse\tweight", "01\tsal\t30\t1\t2\t3"],
        name="physiology",
    )
    subjective = read_phenotype(tmp_path, "subjective")
    physiology = read_phenotype(tmp_path, "physiology")
    cfg = BehaviorConfig()
    with caplog.at_level(logging.INFO, logger="bids_app.bidsio.phenotype"):
        kwargs = cfg.design_kwargs(subjective, physiology)
    assert kwargs["item_signs"] == {"anxiety": 1, "craving": 1}
    assert "'craving' has no aversive sign" in caplog.text
    assert "['weight']" in caplog.text
    assert kwargs["hormones"] == ("cortisol",)
    assert kwargs["cardiovascular"] == ("pulse",)
    design = BehaviorDesign(**kwargs)
    assert design.hormone_window_min == (30.0, 60.0)
    restricted = BehaviorConfig(subjective_items=("craving",), aversive_sign={"craving": -1})
    assert restricted.item_signs(subjective) == {"craving": -1}
    assert cfg.item_signs(None) == {}
    assert DEFAULT_AVERSIVE_SIGN["anxiety"] == 1


def test_challenge_effect_key_default_override_and_error(tmp_path: Path) -> None:
    assert BehaviorConfig().challenge_effect == "difference_of_differences"
    path = tmp_path / "my.json"
    path.write_text(json.dumps({"challenge_effect": "post_minus_pre"}), encoding="utf-8")
    cfg = load_behavior_config(path)
    assert cfg.challenge_effect == "post_minus_pre"
    assert cfg.to_dict()["challenge_effect"] == "post_minus_pre"
    design = BehaviorDesign(**cfg.design_kwargs(None, None))
    assert design.challenge_effect == "post_minus_pre"
    assert BehaviorDesign(**BehaviorConfig().design_kwargs(None, None)).challenge_effect == (
        "difference_of_differences"
    )
    path.write_text(json.dumps({"challenge_effect": "nal_vs_sal"}), encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_behavior_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "'challenge_effect'" in message
    assert "'difference_of_differences', 'post_minus_pre'" in message
    assert "'nal_vs_sal'" in message
    assert message.count("behaviour config") == 1


def test_config_value_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"fdr_q": 2}), encoding="utf-8")
    with pytest.raises(InputError, match=r"behaviour config .*cfg\.json: config key 'fdr_q'"):
        load_behavior_config(path)
