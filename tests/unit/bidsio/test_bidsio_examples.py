"""The official bids-examples PET datasets (metadata only) and the schema's REQUIRED list."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from helpers.metadata_check import validate_metadata_only

from bids_app.bidsio import REQUIRED_PET_FIELDS, build_layout, discover_study
from bids_app.errors import ValidationError


@pytest.fixture
def examples(shared_reference: Path, unchanged_tree) -> Path:
    root = shared_reference / "bids_pet" / "bids_examples"
    if not root.is_dir():
        pytest.skip(f"bids-examples PET datasets not found at {root}")
    return unchanged_tree(root)


def test_required_fields_match_schema_table(shared_reference: Path) -> None:
    table = shared_reference / "bids_pet" / "pet_sidecar_field_levels_from_schema.tsv"
    with table.open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    required = {
        row["field"]
        for row in rows
        if row["rule_group"].startswith("PET")
        and row["level"] == "required"
        and not row["level_addendum"]
    }
    assert len(REQUIRED_PET_FIELDS) == 24
    assert set(REQUIRED_PET_FIELDS) == required


@pytest.mark.parametrize(
    ("name", "subjects", "sessions"),
    [
        ("pet001", ["01"], ["01"]),
        ("pet002", ["01", "02"], ["baseline", "rescan"]),
        ("pet003", ["01"], ["01"]),
        ("pet004", ["01"], []),
        ("pet005", ["01"], ["baseline", "intervention"]),
        ("pet006", ["01"], []),
    ],
)
def test_layout_discovers_examples(examples: Path, name, subjects, sessions) -> None:
    layout = build_layout(examples / name)
    assert sorted(layout.get_subjects()) == subjects
    assert sorted(layout.get_sessions(suffix="pet")) == sessions
    sidecars = layout.get(suffix="pet", extension=".json", return_type="filename")
    assert len(sidecars) == len(subjects) * max(len(sessions), 1)


@pytest.mark.parametrize("name", ["pet002", "pet005", "pet006"])
def test_example_metadata_passes(examples: Path, name) -> None:
    assert validate_metadata_only(examples / name) == []


@pytest.mark.parametrize(
    ("name", "where", "frame"),
    [("pet003", "sub-01 ses-01", 2), ("pet004", "sub-01", 2)],
)
def test_example_durations_written_as_end_times(examples: Path, name, where, frame) -> None:
    # these examples list frame end times in FrameDuration: a real inconsistency, reported
    problems = validate_metadata_only(examples / name)
    assert len(problems) == 1
    assert problems[0].startswith(f"{where}: frames overlap; frame {frame} starts at")
    assert "FrameDuration looks like frame end times" in problems[0]


def test_pet002_paired_design_reports_only_missing_images(examples: Path) -> None:
    with pytest.raises(ValidationError) as info:
        discover_study(
            examples / "pet002", baseline_session="baseline", challenge_session="rescan"
        )
    problems = info.value.problems
    assert len(problems) == 4
    for problem, (sub, ses) in zip(
        problems,
        [("01", "baseline"), ("01", "rescan"), ("02", "baseline"), ("02", "rescan")],
        strict=True,
    ):
        expected = f"sub-{sub} ses-{ses}: PET image file missing: sub-{sub}_ses-{ses}_pet.nii.gz"
        assert problem.startswith(f"{expected} not found")


def test_pet002_without_flags_is_ambiguous(examples: Path) -> None:
    with pytest.raises(ValidationError, match=r"--baseline-session baseline --challenge-session"):
        discover_study(examples / "pet002")


def test_pet001_all_zero_image(examples: Path) -> None:
    problems = validate_metadata_only(examples / "pet001", check_data=True)
    zero = [p for p in problems if "all-zero image" in p]
    assert zero == [
        "sub-01 ses-01: all-zero image: every voxel of sub-01_ses-01_trc-CIMBI36_pet.nii.gz is 0 "
        "(no signal). Check the export/conversion of the scan "
        f"({examples / 'pet001/sub-01/ses-01/pet/sub-01_ses-01_trc-CIMBI36_pet.nii.gz'})."
    ]
    # the sidecar lists 45 frames, the image holds 21
    assert any("FrameDuration has 45 entries but" in p and "has 21 frames" in p for p in problems)


def test_pet001_single_session_cannot_be_paired(examples: Path) -> None:
    with pytest.raises(ValidationError, match="challenge session ses-02 not found"):
        discover_study(examples / "pet001", baseline_session="01", challenge_session="02")
