"""Every bad input gives one ValidationError whose problems say what, where and how to fix."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from bids_app.bidsio import check_output_dir, discover_study
from bids_app.errors import InputError, ValidationError

SAL_PET = "sub-01/ses-sal/pet/sub-01_ses-sal_pet"


def _pair(scan: dict) -> dict:
    """The same PET scan spec in ses-sal and ses-nal of sub-01."""
    return {"01": {"sal": {"pet": [scan]}, "nal": {"pet": [scan]}}}


def _only_sal(scan: dict) -> dict:
    """A bad scan in ses-sal, a good one in ses-nal."""
    return {"01": {"sal": {"pet": [scan]}, "nal": {}}}


def _problems(root: Path, **kwargs) -> list[str]:
    with pytest.raises(ValidationError) as info:
        discover_study(root, **kwargs)
    problems = info.value.problems
    assert problems, "a ValidationError must carry at least one problem"
    assert all("\n" not in p for p in problems), "each problem must be one line"
    return problems


def _one(root: Path, **kwargs) -> str:
    problems = _problems(root, **kwargs)
    assert len(problems) == 1, problems
    return problems[0]


# ----------------------------------------------------------------------------- dataset level
def test_bids_dir_missing(tmp_path) -> None:
    with pytest.raises(ValidationError, match=r"does not exist or is not a directory"):
        discover_study(tmp_path / "nope")


def test_missing_dataset_description(synthetic_bids) -> None:
    def drop(root: Path) -> None:
        (root / "dataset_description.json").unlink()

    problem = _one(synthetic_bids(post=drop))
    assert "dataset_description.json not found" in problem
    assert '"BIDSVersion"' in problem  # shows how to fix


def test_dataset_description_invalid_json(synthetic_bids) -> None:
    def spoil(root: Path) -> None:
        (root / "dataset_description.json").write_text('{"Name": "x",}')

    problem = _one(synthetic_bids(post=spoil))
    assert problem.startswith("dataset: dataset_description.json is not valid JSON (line 1")


def test_dataset_description_without_bidsversion(synthetic_bids) -> None:
    def spoil(root: Path) -> None:
        (root / "dataset_description.json").write_text(json.dumps({"Name": "x"}))

    problem = _one(synthetic_bids(post=spoil))
    assert "field BIDSVersion must be a non-empty string; found missing" in problem


def test_unknown_participant_label(synthetic_bids) -> None:
    root = synthetic_bids({"01": {"sal": {}, "nal": {}}, "02": {"sal": {}, "nal": {}}})
    problem = _one(root, participant_labels=["sub-01", "07", "sub-09"])
    assert "not found in the dataset: 07, 09" in problem
    assert "Available: 01, 02" in problem


# ----------------------------------------------------------------------------- sessions
def test_ambiguous_sessions(synthetic_bids) -> None:
    root = synthetic_bids({"01": {"day1": {}, "day2": {}}, "02": {"day1": {}, "day2": {}}})
    problem = _one(root)
    assert "cannot tell which session is baseline and which is challenge" in problem
    assert "sub-01: day1, day2; sub-02: day1, day2" in problem
    assert "--baseline-session day1 --challenge-session day2" in problem


def test_sessions_tsv_without_condition_values(synthetic_bids) -> None:
    root = synthetic_bids(
        {"01": {"a": {}, "b": {}, "_sessions_tsv": {"a": "baseline", "b": "baseline"}}}
    )
    problem = _one(root)
    assert "cannot tell which session" in problem
    assert "sub-01_sessions.tsv 'condition' must give one 'baseline' and one 'challenge'" in (
        problem
    )


def test_sessions_tsv_needs_exactly_two_sessions(synthetic_bids) -> None:
    conditions = {"a": "baseline", "b": "challenge"}
    root = synthetic_bids({"01": {"a": {}, "b": {}, "c": {}, "_sessions_tsv": conditions}})
    assert "sub-01 has 3 PET sessions, not 2" in _one(root)


def test_only_one_session_flag(synthetic_bids) -> None:
    root = synthetic_bids()
    with pytest.raises(ValidationError, match="--baseline-session was given without --challenge"):
        discover_study(root, baseline_session="sal")


def test_equal_session_flags(synthetic_bids) -> None:
    with pytest.raises(ValidationError, match="both 'sal'"):
        discover_study(synthetic_bids(), baseline_session="sal", challenge_session="ses-sal")


def test_missing_session(synthetic_bids) -> None:
    root = synthetic_bids({"01": {"sal": {}, "nal": {}}, "02": {"sal": {}}})
    problem = _one(root)
    assert problem.startswith(
        "sub-02: challenge session ses-nal not found (sessions present: sal)"
    )
    assert "--participant-label" in problem


def test_different_tracers(synthetic_bids) -> None:
    root = synthetic_bids(
        {"01": {"sal": {}, "nal": {"pet": [{"metadata": {"TracerName": "FDG"}}]}}}
    )
    problem = _one(root)
    assert "sub-01: TracerName differs between sessions" in problem
    assert "ses-sal: 'raclopride', ses-nal: 'FDG'" in problem


def test_different_tracers_across_participants(synthetic_bids) -> None:
    fdg = {"pet": [{"metadata": {"TracerName": "FDG"}}]}
    root = synthetic_bids({"01": {"sal": {}, "nal": {}}, "02": {"sal": fdg, "nal": fdg}})
    assert "participants used different tracers" in _one(root)


# ----------------------------------------------------------------------------- PET files
def test_no_pet_in_session(synthetic_bids) -> None:
    def drop(root: Path) -> None:
        for suffix in (".json", ".nii.gz"):
            (root / f"{SAL_PET}{suffix}").unlink()
        (root / "sub-01/ses-sal/anat").mkdir()
        (root / "sub-01/ses-sal/anat/sub-01_ses-sal_T1w.nii.gz").write_bytes(b"")

    # ses-sal still exists (anat) but holds no PET: reported as a missing PET session
    problem = _one(synthetic_bids(post=drop))
    assert "baseline session ses-sal not found (sessions present: nal)" in problem


def test_several_pet_runs(synthetic_bids) -> None:
    two = {"pet": [{"entities": {"run": "1"}}, {"entities": {"run": "2"}}]}
    root = synthetic_bids({"01": {"sal": two, "nal": {}}})
    problem = _one(root)
    assert problem.startswith("sub-01 ses-sal: 2 PET scans found")
    assert "sub-01_ses-sal_run-1_pet.nii.gz, sub-01_ses-sal_run-2_pet.nii.gz" in problem
    assert "--pet-run" in problem
    assert "--bids-filter-file" in problem


def test_pet_filter_matching_nothing(synthetic_bids) -> None:
    root = synthetic_bids()
    problems = _problems(root, pet_filters={"rec": "acdyn"})
    assert len(problems) == 2
    assert all("no PET scan" in p for p in problems)


def test_missing_image(synthetic_bids) -> None:
    root = synthetic_bids(_only_sal({"image": False}))
    problem = _one(root)
    assert "sub-01 ses-sal: PET image file missing: sub-01_ses-sal_pet.nii.gz" in problem


def test_missing_sidecar(synthetic_bids) -> None:
    root = synthetic_bids(_only_sal({"sidecar": False}))
    assert "PET sidecar missing: sub-01_ses-sal_pet.json" in _one(root)


def test_invalid_json_sidecar(synthetic_bids) -> None:
    root = synthetic_bids(_only_sal({"sidecar": '{"Units": "kBq/mL", FrameDuration: [1]}'}))
    problem = _one(root)
    assert "sub-01 ses-sal: sub-01_ses-sal_pet.json is not valid JSON (line 1 column 21" in problem
    assert "python -m json.tool" in problem


def test_sidecar_not_an_object(synthetic_bids) -> None:
    root = synthetic_bids(_only_sal({"sidecar": "[1, 2]"}))
    assert "must hold a JSON object ({...}); found a list" in _one(root)


# ----------------------------------------------------------------------------- sidecar fields
@pytest.mark.parametrize("field", ["TracerName", "TimeZero", "ReconFilterType", "InjectedMass"])
def test_missing_required_field(synthetic_bids, field) -> None:
    root = synthetic_bids(_only_sal({"metadata": {field: None}}))
    problem = _one(root)
    assert problem.startswith(f"sub-01 ses-sal: required PET-BIDS field {field} is missing")
    assert str(root / f"{SAL_PET}.json") in problem


def test_all_missing_fields_reported_together(synthetic_bids) -> None:
    root = synthetic_bids(_only_sal({"metadata": {"Units": None, "ScanStart": None}}))
    problems = _problems(root)
    assert len(problems) == 2
    assert "field Units is missing" in problems[0]
    assert "field ScanStart is missing" in problems[1]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("FrameDuration", "30, 60", "FrameDuration must be a non-empty array of numbers"),
        ("ImageDecayCorrected", "yes", "ImageDecayCorrected must be a boolean (true/false)"),
        ("InjectedRadioactivity", "250 MBq", "InjectedRadioactivity must be a number"),
        ("ScanStart", True, "ScanStart must be a number; found True (bool)"),
        ("TracerName", 11, "TracerName must be a non-empty string; found 11 (int)"),
        ("ReconMethodParameterLabels", "none", "must be a non-empty array of strings"),
        ("InjectedMass", "unknown", 'InjectedMass must be a number (or "n/a")'),
    ],
)
def test_wrong_type(synthetic_bids, field, value, expected) -> None:
    root = synthetic_bids(_only_sal({"metadata": {field: value}}))
    assert expected in _one(root)


def test_injected_mass_na_is_allowed(synthetic_bids) -> None:
    spec = {"metadata": {"InjectedMass": "n/a", "InjectedMassUnits": "n/a"}}
    assert len(discover_study(synthetic_bids(_pair(spec))).participants) == 1


def test_bad_units(synthetic_bids) -> None:
    root = synthetic_bids(_only_sal({"metadata": {"Units": "counts"}}))
    problem = _one(root)
    assert (
        "Units must be one of Bq/mL, kBq/mL, MBq/mL, nCi/mL, uCi/mL, mCi/mL; found 'counts'"
        in (problem)
    )


def test_bad_injected_radioactivity_units(synthetic_bids) -> None:
    root = synthetic_bids(_only_sal({"metadata": {"InjectedRadioactivityUnits": "mL"}}))
    assert "InjectedRadioactivityUnits must be one of Bq, kBq, MBq" in _one(root)


def test_bad_mode_of_administration(synthetic_bids) -> None:
    root = synthetic_bids(_only_sal({"metadata": {"ModeOfAdministration": "oral"}}))
    assert "ModeOfAdministration must be one of bolus, infusion, bolus-infusion" in _one(root)


def test_bolus_infusion_needs_infusion_fields(synthetic_bids) -> None:
    root = synthetic_bids(_only_sal({"metadata": {"ModeOfAdministration": "bolus-infusion"}}))
    problems = _problems(root)
    assert len(problems) == 5
    assert "field InfusionRadioactivity is missing" in problems[0]


def test_bad_time_zero(synthetic_bids) -> None:
    root = synthetic_bids(_only_sal({"metadata": {"TimeZero": "10h00"}}))
    assert "TimeZero must be a clock time 'hh:mm:ss'" in _one(root)


# ----------------------------------------------------------------------------- frame schedule
def test_frame_duration_length_differs_from_volumes(synthetic_bids) -> None:
    # 6 frames in the image; both timing arrays list 5 frames
    starts = [0, 30, 90, 210, 450]
    durations = [30, 60, 120, 240, 480]
    spec = {"metadata": {"FrameTimesStart": starts, "FrameDuration": durations}}
    root = synthetic_bids(_only_sal(spec))
    sidecar = root / f"{SAL_PET}.json"
    assert _problems(root) == [
        "sub-01 ses-sal: FrameDuration has 5 entries but sub-01_ses-sal_pet.nii.gz has 6 frames. "
        f"Fix the sidecar JSON ({sidecar}).",
        "sub-01 ses-sal: FrameTimesStart has 5 entries but sub-01_ses-sal_pet.nii.gz has 6 "
        f"frames. Fix the sidecar JSON ({sidecar}).",
    ]


def test_frame_times_start_length_differs_from_duration(synthetic_bids) -> None:
    spec = {"metadata": {"FrameTimesStart": [0, 30, 90, 210, 450]}}
    problems = _problems(synthetic_bids(_only_sal(spec)))
    assert "FrameTimesStart has 5 entries but FrameDuration has 6" in problems[0]
    assert (
        "FrameTimesStart has 5 entries but sub-01_ses-sal_pet.nii.gz has 6 frames" in (problems[1])
    )


def test_negative_duration(synthetic_bids) -> None:
    spec = {"metadata": {"FrameDuration": [30, 60, -120, 240, 480, 600]}}
    problem = _one(synthetic_bids(_only_sal(spec)))
    assert problem.startswith("sub-01 ses-sal: frame durations must be positive; frame 2 lasts")
    assert "-120 s. Fix FrameTimesStart/FrameDuration in the sidecar JSON" in problem


def test_overlapping_frames(synthetic_bids) -> None:
    spec = {"metadata": {"FrameTimesStart": [0, 30, 80, 210, 450, 930]}}
    problem = _one(synthetic_bids(_only_sal(spec)))
    assert "frames overlap; frame 2 starts at 80 s, before frame 1 ends at 90 s" in problem


def test_durations_written_as_end_times(synthetic_bids) -> None:
    starts = [0, 30, 90, 210, 450, 930]
    ends = [30, 90, 210, 450, 930, 1530]
    spec = {"metadata": {"FrameTimesStart": starts, "FrameDuration": ends}}
    problem = _one(synthetic_bids(_only_sal(spec)))
    assert "FrameDuration looks like frame end times" in problem


def test_unsorted_frames(synthetic_bids) -> None:
    spec = {"metadata": {"FrameTimesStart": [0, 30, 210, 90, 450, 930]}}
    problem = _one(synthetic_bids(_only_sal(spec)))
    assert "frame start times must be increasing; frame 3 starts at 90 s, not after frame 2" in (
        problem
    )


def test_minutes_instead_of_seconds(synthetic_bids) -> None:
    # 12 frames written in minutes: 0.5 min x 4, 1 min x 4, 2.5 min x 4 -> 16 "s" in total
    durations = [0.5] * 4 + [1.0] * 4 + [2.5] * 4
    starts = [float(sum(durations[:i])) for i in range(12)]
    spec = {
        "n_frames": 12,
        "metadata": {"FrameTimesStart": starts, "FrameDuration": durations},
    }
    problem = _one(synthetic_bids(_only_sal(spec)))
    assert "lasts 16 s in total for 12 frames" in problem
    assert "written in minutes" in problem
    assert "Multiply them by 60" in problem


# ----------------------------------------------------------------------------- images
def test_3d_image(synthetic_bids) -> None:
    def make_3d(root: Path) -> None:
        path = root / f"{SAL_PET}.nii.gz"
        img = nib.load(path)
        nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj)[..., 0], img.affine), path)

    problems = _problems(synthetic_bids(post=make_3d))
    assert "sub-01_ses-sal_pet.nii.gz has shape (7, 8, 9) (3-D)" in problems[0]
    assert "must be 4-D (x, y, z, frames) with at least 3 frames" in problems[0]
    # the sidecar's 6 frames no longer match the single volume either
    assert "FrameDuration has 6 entries but sub-01_ses-sal_pet.nii.gz has 1 frames" in problems[1]


def test_too_few_frames(synthetic_bids) -> None:
    root = synthetic_bids(_only_sal({"n_frames": 2}))
    problem = _one(root)
    assert "has 2 frame(s) but kinetic modelling needs at least 3" in problem


def test_nan_frame(synthetic_bids) -> None:
    from helpers.bids_skeleton import pet_image_data

    data = pet_image_data((7, 8, 9), 6)
    data[1, 2, 3, 4] = np.nan
    data[0, 0, 0, 4] = np.inf
    data[2, 2, 2, 5] = np.nan
    problem = _one(synthetic_bids(_only_sal({"data": data})))
    assert (
        "sub-01_ses-sal_pet.nii.gz has 2 unusable frame(s): frame 4: 1 infinite voxel" in problem
    )
    assert "NaN in 1 voxel(s) (0.198 % of the field of view) that hold data in other" in problem
    assert "; frame 5: NaN in 1 voxel(s)" in problem
    assert "--exclude-bad-frames" in problem


def test_all_zero_image(synthetic_bids) -> None:
    problem = _one(synthetic_bids(_only_sal({"data": "zeros"})))
    assert problem.startswith("sub-01 ses-sal: all-zero image: every voxel of")


def test_truncated_gzip(synthetic_bids) -> None:
    def truncate(root: Path) -> None:
        path = root / f"{SAL_PET}.nii.gz"
        raw = path.read_bytes()
        path.write_bytes(raw[: len(raw) * 2 // 3])

    problem = _one(synthetic_bids(post=truncate))
    assert "cannot read sub-01_ses-sal_pet.nii.gz" in problem
    assert "truncated or corrupt" in problem


def test_corrupt_gzip_header(synthetic_bids) -> None:
    def garble(root: Path) -> None:
        (root / f"{SAL_PET}.nii.gz").write_bytes(b"this is not gzip at all" * 20)

    problem = _one(synthetic_bids(post=garble))
    assert "cannot read sub-01_ses-sal_pet.nii.gz" in problem


def test_gzip_of_garbage(synthetic_bids) -> None:
    def garble(root: Path) -> None:
        (root / f"{SAL_PET}.nii.gz").write_bytes(gzip.compress(b"\x00" * 100))

    assert "cannot read sub-01_ses-sal_pet.nii.gz" in _one(synthetic_bids(post=garble))


# ----------------------------------------------------------------------------- all together
def test_all_problems_of_a_run_collected(synthetic_bids) -> None:
    root = synthetic_bids(
        {
            "01": {"sal": {"pet": [{"metadata": {"Units": None}}]}, "nal": {}},
            "02": {"sal": {}, "nal": {"pet": [{"data": "zeros"}]}},
            "03": {"sal": {}},
        }
    )
    problems = _problems(root)
    assert len(problems) == 3
    assert problems[0].startswith("sub-01 ses-sal: required PET-BIDS field Units is missing")
    assert problems[1].startswith("sub-02 ses-nal: all-zero image")
    assert problems[2].startswith("sub-03: challenge session ses-nal not found")


def test_skip_incomplete_still_reports_other_problems(synthetic_bids) -> None:
    root = synthetic_bids(
        {"01": {"sal": {}, "nal": {"pet": [{"data": "zeros"}]}}, "02": {"sal": {}}}
    )
    problems = _problems(root, skip_incomplete=True)
    assert len(problems) == 1
    assert "all-zero image" in problems[0]


# ----------------------------------------------------------------------------- output dir
def test_output_dir_equal_to_bids_dir(synthetic_bids) -> None:
    root = synthetic_bids()
    with pytest.raises(InputError, match="is the BIDS directory itself"):
        check_output_dir(root, root / "sub-01" / "..")


def test_output_dir_inside_bids_dir(synthetic_bids) -> None:
    root = synthetic_bids()
    with pytest.raises(InputError, match=r"is inside the BIDS directory .* Choose a folder"):
        check_output_dir(root, root / "derivatives" / "bids_app")


def test_bids_dir_inside_output_dir(synthetic_bids) -> None:
    root = synthetic_bids()
    with pytest.raises(InputError, match="is inside OUTPUT_DIR"):
        check_output_dir(root, root.parent)


def test_output_dir_under_a_file(synthetic_bids, tmp_path) -> None:
    root = synthetic_bids()
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_output_dir(root, blocker / "out")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_output_dir_not_writable(synthetic_bids, tmp_path) -> None:
    root = synthetic_bids()
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(InputError, match="is not writable"):
            check_output_dir(root, locked / "out")
    finally:
        locked.chmod(0o700)


def test_output_dir_ok(synthetic_bids, tmp_path) -> None:
    root = synthetic_bids()
    out = check_output_dir(root, tmp_path / "results" / "new")
    assert out == (tmp_path / "results" / "new").resolve()
    assert not out.exists()  # nothing created
