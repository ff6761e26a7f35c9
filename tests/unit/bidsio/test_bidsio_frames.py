"""Per-frame signal checks, frame exclusion, NaN outside the field of view, late starts."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from helpers.bids_skeleton import pet_image_data

from bids_app.bidsio import discover_study, load_pet_data
from bids_app.bidsio.imagedata import stream_check, whole_image_jumps
from bids_app.errors import ValidationError

SHAPE = (7, 8, 9)


def _data(edit) -> np.ndarray:
    data = pet_image_data(SHAPE, 6, seed=11)
    edit(data)
    return data


def _sal(data: np.ndarray, **extra) -> dict:
    return {"01": {"sal": {"pet": [{"data": data, **extra}]}, "nal": {}}}


def _problem(root: Path, **kwargs) -> str:
    with pytest.raises(ValidationError) as info:
        discover_study(root, **kwargs)
    (problem,) = info.value.problems
    return problem


def _zero_frame(d: np.ndarray) -> None:
    d[..., 3] = 0.0


def _flip_frame(d: np.ndarray) -> None:
    d[..., 4] *= -1.0


def _nan_frame(d: np.ndarray) -> None:
    d[..., 2] = np.nan


def _scaled_frame(d: np.ndarray) -> None:
    d[..., 4] *= 10.0


@pytest.mark.parametrize(
    ("edit", "frame", "reason"),
    [
        (_zero_frame, 3, "every finite voxel is 0"),
        (_flip_frame, 4, "no net positive signal (sum -"),
        (_nan_frame, 2, "NaN in 504 voxel(s) (100 % of the field of view) that hold data"),
        (_scaled_frame, 4, "x the level of the frames around it"),
    ],
)
def test_bad_frame_is_named(synthetic_bids, edit, frame: int, reason: str) -> None:
    problem = _problem(synthetic_bids(_sal(_data(edit))))
    assert problem.startswith(
        f"sub-01 ses-sal: sub-01_ses-sal_pet.nii.gz has 1 unusable frame(s): frame {frame}: "
    )
    assert reason in problem
    assert "--exclude-bad-frames" in problem


def test_noise_only_frame_before_the_tracer_arrives_is_accepted(synthetic_bids) -> None:
    # an early frame with no activity yet: zero-mean reconstruction noise, a slightly negative
    # sum (FBP), is data, not corruption
    def early_noise(d: np.ndarray) -> None:
        noise = np.random.default_rng(3).normal(0.0, 0.05 * float(d.max()), d.shape[:3])
        d[..., 0] = noise - noise.mean() - 1e-3

    data = _data(early_noise)
    assert data[..., 0].sum() < 0
    study = discover_study(synthetic_bids(_sal(data)))
    assert study.participants[0].baseline.excluded_frames == ()


def test_sign_flipped_frame_reports_negative_share(synthetic_bids) -> None:
    problem = _problem(synthetic_bids(_sal(_data(_flip_frame))))
    assert "100 % of the non-zero voxels negative" in problem


def test_excluded_frame_is_dropped_everywhere(synthetic_bids) -> None:
    data = _data(_zero_frame)
    root = synthetic_bids(_sal(data))
    scan = discover_study(root, exclude_bad_frames=True).participants[0].baseline
    assert scan.excluded_frames == (3,)
    assert scan.n_frames == 6
    assert scan.timing.n_frames == 5
    # the analysed schedule skips frame 3 (210-450 s): a gap, not a shifted frame
    np.testing.assert_allclose(scan.timing.start_s, [0, 30, 90, 450, 930])
    np.testing.assert_allclose(scan.timing.end_s, [30, 90, 210, 930, 1530])
    (note,) = scan.notes
    assert note.startswith(
        "sub-01 ses-sal: excluded 1 frame(s) of sub-01_ses-sal_pet.nii.gz from motion "
        "correction, TACs and fits (--exclude-bad-frames): frame 3: every finite voxel is 0"
    )
    loaded = np.asarray(load_pet_data(scan).dataobj)
    assert loaded.shape == (*SHAPE, 5)
    np.testing.assert_allclose(loaded, np.delete(data, 3, axis=3), rtol=1e-6)


def test_excluding_the_first_frames_warns_about_the_late_start(synthetic_bids) -> None:
    def two_bad(d: np.ndarray) -> None:
        d[..., 0] = np.nan
        d[..., 1] = 0.0

    scan = (
        discover_study(synthetic_bids(_sal(_data(two_bad))), exclude_bad_frames=True)
        .participants[0]
        .baseline
    )
    assert scan.excluded_frames == (0, 1)
    late = [n for n in scan.notes if "after the injection" in n]
    assert late == [
        "sub-01 ses-sal: after its first frame(s) were excluded, the analysis starts 1.5 min "
        "after the injection: the early, rising part of the TACs is missing, which biases k2' "
        "and R1 (SRTM/SRTM2 assume the curves from the injection on); interpret R1 and k2' "
        "with care"
    ]


def test_scan_starting_late_is_noted(synthetic_bids) -> None:
    starts = [300.0, 330.0, 390.0, 510.0, 750.0, 1230.0]
    spec = {"pet": [{"metadata": {"FrameTimesStart": starts}}]}
    scan = discover_study(synthetic_bids({"01": {"sal": spec, "nal": {}}})).participants[0]
    (note,) = scan.baseline.notes
    assert note.startswith("sub-01 ses-sal: the scan starts 5 min after the injection")
    assert scan.challenge.notes == ()


def test_too_many_bad_frames(synthetic_bids) -> None:
    def four_bad(d: np.ndarray) -> None:
        d[..., :4] = 0.0

    problem = _problem(synthetic_bids(_sal(_data(four_bad))), exclude_bad_frames=True)
    assert "excluding the unusable frames of sub-01_ses-sal_pet.nii.gz leaves 2 frame(s)" in (
        problem
    )


def test_nan_outside_the_field_of_view_is_accepted(synthetic_bids) -> None:
    def outside(d: np.ndarray) -> None:
        d[0, :, :, :] = np.nan  # one slab missing in every frame: outside the field of view
        d[:, :, -1, :] = np.nan

    data = _data(outside)
    scan = discover_study(synthetic_bids(_sal(data))).participants[0].baseline
    assert scan.outside_fov_voxels == 8 * 9 + 7 * 8 - 8
    assert scan.excluded_frames == ()
    loaded = np.asarray(load_pet_data(scan).dataobj)
    assert np.all(np.isfinite(loaded))
    assert np.all(loaded[0] == 0.0)
    np.testing.assert_allclose(loaded[1:, :, :-1], data[1:, :, :-1])


def test_clean_scan_is_loaded_lazily(synthetic_bids) -> None:
    scan = discover_study(synthetic_bids()).participants[0].baseline
    img = load_pet_data(scan)
    assert isinstance(img.dataobj, nib.arrayproxy.ArrayProxy)  # nothing read into memory


def test_jumps_spare_a_realistic_curve_and_find_a_spike() -> None:
    # a whole-image curve of the synthetic raclopride study (12 frames, decay corrected,
    # normalised to its peak), with 2 % noise: fast rise, slow fall
    rng = np.random.default_rng(5)
    curve = np.array([0.012, 0.34, 0.79, 1.0, 0.99, 0.9, 0.8, 0.72, 0.63, 0.54, 0.48, 0.41])
    curve *= 1 + 0.02 * rng.standard_normal(curve.size)
    usable = np.ones(curve.size, dtype=bool)
    assert whole_image_jumps(curve, usable) == {}
    for frame, factor in ((5, 4.0), (11, 0.2), (1, 10.0)):
        spiked = curve.copy()
        spiked[frame] *= factor
        assert list(whole_image_jumps(spiked, usable)) == [frame], (frame, factor)
    two = curve.copy()
    two[[7, 8]] *= 5.0
    assert list(whole_image_jumps(two, usable)) == [7, 8]
    # frames marked unusable are neither tested nor used as references
    usable[5] = False
    spiked = curve.copy()
    spiked[5] = 1e6
    assert whole_image_jumps(spiked, usable) == {}


def test_stream_check_hashes_and_verifies_gzip(tmp_path: Path) -> None:
    payload = b"voxels" * 100_000
    good = tmp_path / "a.nii.gz"
    good.write_bytes(gzip.compress(payload))
    check = stream_check(good)
    assert check.error is None
    import hashlib

    assert check.sha256 == hashlib.sha256(good.read_bytes()).hexdigest()
    truncated = tmp_path / "b.nii.gz"
    truncated.write_bytes(good.read_bytes()[:-20])
    assert stream_check(truncated).error is not None
    corrupt = bytearray(good.read_bytes())
    corrupt[-8] ^= 0xFF  # the CRC in the gzip trailer
    bad_crc = tmp_path / "c.nii.gz"
    bad_crc.write_bytes(bytes(corrupt))
    assert "incorrect data check" in str(stream_check(bad_crc).error)
    two_members = tmp_path / "d.nii.gz"
    two_members.write_bytes(gzip.compress(b"one") + gzip.compress(b"two"))
    assert stream_check(two_members).error is None
