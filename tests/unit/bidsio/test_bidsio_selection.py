"""Which data are used: identical scans, sessions.tsv vs labels, skipping, run selection."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from bids_app.bidsio import discover_study
from bids_app.bidsio.filters import matches, read_bids_filter_file
from bids_app.errors import InputError, ValidationError

SAL = "sub-01/ses-sal/pet/sub-01_ses-sal_pet.nii.gz"
NAL = "sub-01/ses-nal/pet/sub-01_ses-nal_pet.nii.gz"


def _problems(root: Path, **kwargs) -> list[str]:
    with pytest.raises(ValidationError) as info:
        discover_study(root, **kwargs)
    return info.value.problems


# ----------------------------------------------------------------------------- same data twice
def test_challenge_is_a_copy_of_baseline(synthetic_bids) -> None:
    def copy(root: Path) -> None:
        shutil.copyfile(root / SAL, root / NAL)

    (problem,) = _problems(synthetic_bids(post=copy))
    assert problem.startswith(
        "sub-01 ses-sal (sub-01_ses-sal_pet.nii.gz) and sub-01 ses-nal "
        "(sub-01_ses-nal_pet.nii.gz) hold the same image (SHA-256 "
    )
    assert "drug effect of exactly 0" in problem


def test_challenge_is_a_link_to_baseline(synthetic_bids) -> None:
    def link(root: Path) -> None:
        (root / NAL).unlink()
        (root / NAL).symlink_to(root / SAL)

    (problem,) = _problems(synthetic_bids(post=link))
    assert "are the same file" in problem


def test_same_voxels_compressed_differently(synthetic_bids) -> None:
    def recompress(root: Path) -> None:
        import nibabel as nib

        img = nib.load(root / SAL)
        nib.save(nib.Nifti1Image(img.get_fdata().astype("float32"), img.affine), root / NAL)

    root = synthetic_bids(post=recompress)
    assert (root / SAL).read_bytes() != (root / NAL).read_bytes()
    (problem,) = _problems(root)
    assert "hold the same image" in problem


def test_two_participants_share_a_scan(synthetic_bids) -> None:
    def share(root: Path) -> None:
        shutil.copyfile(root / SAL, root / "sub-02/ses-sal/pet/sub-02_ses-sal_pet.nii.gz")

    root = synthetic_bids({"01": {"sal": {}, "nal": {}}, "02": {"sal": {}, "nal": {}}}, post=share)
    (problem,) = _problems(root)
    assert "sub-01 ses-sal" in problem
    assert "sub-02 ses-sal" in problem
    assert "two participants cannot share a scan" in problem


# ----------------------------------------------------------------------------- sessions.tsv
def test_sessions_tsv_contradicting_sal_nal_is_an_error(synthetic_bids) -> None:
    conditions = {"sal": "challenge", "nal": "baseline"}
    root = synthetic_bids({"01": {"sal": {}, "nal": {}, "_sessions_tsv": conditions}})
    (problem,) = _problems(root)
    assert problem.startswith(
        "sub-01: sub-01_sessions.tsv gives the condition ses-nal: 'baseline', ses-sal: "
        "'challenge', but the default labels"
    )
    assert "pass --baseline-session nal --challenge-session sal" in problem


def test_sessions_tsv_agreeing_with_sal_nal_passes(synthetic_bids) -> None:
    conditions = {"sal": "baseline", "nal": "challenge"}
    root = synthetic_bids({"01": {"sal": {}, "nal": {}, "_sessions_tsv": conditions}})
    assert discover_study(root).session_source == "default sal/nal"


def test_flags_contradicting_sessions_tsv_warn(synthetic_bids, caplog) -> None:
    conditions = {"a": "baseline", "b": "challenge"}
    root = synthetic_bids({"01": {"a": {}, "b": {}, "_sessions_tsv": conditions}})
    with caplog.at_level(logging.WARNING, logger="bids_app"):
        study = discover_study(root, baseline_session="b", challenge_session="a")
    assert study.participants[0].baseline.session == "b"
    assert "the flags win; check that they are right" in caplog.text


def test_sessions_tsv_with_bom_is_read(synthetic_bids) -> None:
    def bom(root: Path) -> None:
        path = root / "sub-01/sub-01_sessions.tsv"
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())

    conditions = {"pre": "baseline", "post": "challenge"}
    root = synthetic_bids({"01": {"pre": {}, "post": {}, "_sessions_tsv": conditions}}, post=bom)
    assert discover_study(root).participants[0].baseline.session == "pre"


# ----------------------------------------------------------------------------- skipping
def test_nobody_left_after_skipping_is_an_error(synthetic_bids) -> None:
    root = synthetic_bids({"01": {"sal": {}}, "02": {"nal": {}}})
    problems = _problems(root, skip_incomplete=True)
    assert [p.split(":")[0] for p in problems] == ["sub-01", "sub-02"]


# ----------------------------------------------------------------------------- run selection

TWO_RUNS = {"pet": [{"entities": {"run": "1"}}, {"entities": {"run": "2"}}]}


@pytest.mark.parametrize("run", [2, "2", "02", [2, 3]])
def test_run_filter_selects_one(synthetic_bids, run: object) -> None:
    root = synthetic_bids({"01": {"sal": TWO_RUNS, "nal": TWO_RUNS}})
    study = discover_study(root, pet_filters={"run": run})
    assert study.participants[0].baseline.path.name == "sub-01_ses-sal_run-2_pet.nii.gz"


def test_filter_file(tmp_path: Path, synthetic_bids) -> None:
    path = tmp_path / "filters.json"
    path.write_bytes(
        b"\xef\xbb\xbf"
        + json.dumps({"pet": {"run": 1, "reconstruction": None}, "t1w": {"acq": "mp"}}).encode()
    )
    filters = read_bids_filter_file(path)
    assert filters == {"pet": {"run": ("1",), "rec": None}, "t1w": {"acq": ("mp",)}}
    root = synthetic_bids({"01": {"sal": TWO_RUNS, "nal": TWO_RUNS}})
    study = discover_study(root, pet_filters=filters["pet"])
    assert study.participants[0].challenge.entities == {"run": "1"}
    assert matches({"run": "01"}, filters["pet"])
    assert not matches({"run": "01", "rec": "ac"}, filters["pet"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            {"bold": {"run": 1}},
            r"unknown filter query \['bold'\]; this app reads \['pet', 't1w'\]",
        ),
        ({"pet": {"subject": "01"}}, r"filter on 'subject' is not supported \(participants"),
        ({"pet": {"run": 1.5}}, r"pet\.run must be a label, a whole number"),
        ({"pet": [1]}, r'"pet" must be an object of entity -> value'),
    ],
)
def test_filter_file_errors(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "filters.json"
    path.write_text(json.dumps(content))
    with pytest.raises(InputError, match=message):
        read_bids_filter_file(path)


def test_filter_file_not_json(tmp_path: Path) -> None:
    path = tmp_path / "filters.json"
    path.write_text("pet: run 1")
    with pytest.raises(InputError, match=r"filters\.json is not valid JSON"):
        read_bids_filter_file(path)


def test_t1w_filter(synthetic_bids) -> None:
    def second_t1w(root: Path) -> None:
        anat = root / "sub-01/anat"
        first = anat / "sub-01_T1w.nii.gz"
        shutil.copyfile(first, anat / "sub-01_acq-mprage_T1w.nii.gz")

    root = synthetic_bids({"01": {"sal": {}, "nal": {}, "_t1w": True}}, post=second_t1w)
    assert discover_study(root).participants[0].t1w.name == "sub-01_T1w.nii.gz"
    chosen = discover_study(root, t1w_filters={"acq": "mprage"}).participants[0].t1w
    assert chosen.name == "sub-01_acq-mprage_T1w.nii.gz"
