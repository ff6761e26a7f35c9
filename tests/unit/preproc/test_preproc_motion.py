"""Frame-wise motion estimation on synthetic series with known rigid motion."""

from __future__ import annotations

from collections.abc import Callable

import nibabel as nib
import numpy as np
import pytest
from helpers.preproc_phantoms import Series, random_params

from bids_app.errors import InputError
from bids_app.preproc.motion import (
    CONFOUND_COLUMNS,
    estimate_motion,
    frame_signal_fraction,
    nearest_usable,
)
from bids_app.preproc.transforms import framewise_displacement, matrix_to_params, rms_displacement
from bids_app.timing import FrameTiming

N_FRAMES = 14
REF = 12  # a late frame without motion


def _truth_params(rng: np.random.Generator) -> np.ndarray:
    params = random_params(rng, N_FRAMES, trans_mm=3.0, rot_deg=3.0)
    params[REF] = 0.0
    return params


@pytest.fixture
def moved_series(rng: np.random.Generator, series_factory: Callable[..., Series]) -> Series:
    return series_factory(_truth_params(rng))


def test_recovers_known_motion_against_a_frame_reference(moved_series: Series) -> None:
    est = estimate_motion(moved_series.img, moved_series.timing, reference=REF)
    usable = est.usable
    # early frames (< 2 min) borrow; frames 6.. are registered
    assert list(np.flatnonzero(usable)) == list(range(6, N_FRAMES))
    for i in np.flatnonzero(usable):
        got = matrix_to_params(est.reference_to_frame[i])  # about the world origin, as the truth
        np.testing.assert_allclose(got[:3], moved_series.params[i, :3], atol=0.5)
        np.testing.assert_allclose(
            np.rad2deg(got[3:]), np.rad2deg(moved_series.params[i, 3:]), atol=0.5
        )
        assert rms_displacement(est.reference_to_frame[i], moved_series.matrices[i]) < 0.5
    np.testing.assert_array_equal(est.reference_to_frame[REF], np.eye(4))


def test_confounds_follow_the_contract(moved_series: Series) -> None:
    est = estimate_motion(moved_series.img, moved_series.timing, reference=REF)
    conf = est.confounds
    assert tuple(conf.columns) == CONFOUND_COLUMNS
    assert len(conf) == N_FRAMES
    assert conf["usable"].dtype == bool
    # confound parameters are the matrices decomposed about the reference centre of mass
    for i in (6, 9, 13):
        np.testing.assert_allclose(
            conf.iloc[i, :6].to_numpy(float),
            matrix_to_params(est.reference_to_frame[i], est.centre_mm),
            atol=1e-9,
        )
    # FD = Power 2012 of those parameters, and close to the truth's FD
    params = conf.iloc[:, :6].to_numpy(float)
    np.testing.assert_allclose(conf["framewise_displacement"], framewise_displacement(params))
    true_params = np.stack(
        [matrix_to_params(m, est.centre_mm) for m in moved_series.matrices[est.source_frame]]
    )
    true_fd = framewise_displacement(true_params)
    np.testing.assert_allclose(conf["framewise_displacement"], true_fd, atol=1.0)
    assert conf["framewise_displacement"].iloc[0] == 0.0


def test_early_frames_borrow_the_nearest_usable_transform(moved_series: Series) -> None:
    est = estimate_motion(moved_series.img, moved_series.timing, reference=REF)
    assert not est.usable[:6].any()
    np.testing.assert_array_equal(est.source_frame[:6], 6)
    np.testing.assert_array_equal(est.source_frame[6:], np.arange(6, N_FRAMES))
    for i in range(6):
        np.testing.assert_array_equal(est.reference_to_frame[i], est.reference_to_frame[6])
    # configurable threshold: with min start 0 the early frames are registered themselves
    est0 = estimate_motion(
        moved_series.img, moved_series.timing, reference=REF, min_frame_start_min=0.0
    )
    assert est0.usable[3]


def test_low_count_frame_borrows(
    rng: np.random.Generator, series_factory: Callable[..., Series]
) -> None:
    series = series_factory(_truth_params(rng))
    data = np.asarray(series.img.dataobj).copy()
    data[..., 9] *= 0.001  # almost no counts (e.g. a failed frame)
    img = nib.Nifti1Image(data, series.img.affine)
    est = estimate_motion(img, series.timing, reference=REF, min_counts_fraction=0.05)
    assert not est.usable[9]
    assert est.signal_fraction[9] < 0.01
    assert est.source_frame[9] in (8, 10)


def test_late_mean_reference_recovers_relative_poses(moved_series: Series) -> None:
    est = estimate_motion(moved_series.img, moved_series.timing)
    assert est.reference.startswith("late_mean")
    assert est.reference_frames == tuple(range(9, N_FRAMES))  # frames starting >= 10 min
    for i in range(6, N_FRAMES):
        # pose of frame i relative to frame REF must match the truth, whatever the reference pose
        got = np.linalg.inv(est.reference_to_frame[REF]) @ est.reference_to_frame[i]
        true = np.linalg.inv(moved_series.matrices[REF]) @ moved_series.matrices[i]
        assert rms_displacement(got, true, est.centre_mm) < 0.5


def test_motion_free_series_gives_near_identity(series_factory: Callable[..., Series]) -> None:
    series = series_factory(np.zeros((N_FRAMES, 6)))
    est = estimate_motion(series.img, series.timing)
    assert est.confounds["framewise_displacement"].max() < 0.2
    for mat in est.reference_to_frame:
        assert rms_displacement(mat, np.eye(4), est.centre_mm) < 0.1


def test_engine_is_deterministic_whatever_the_thread_count(moved_series: Series) -> None:
    a = estimate_motion(moved_series.img, moved_series.timing)
    b = estimate_motion(moved_series.img, moved_series.timing)
    np.testing.assert_array_equal(a.reference_to_frame, b.reference_to_frame)
    threaded = estimate_motion(moved_series.img, moved_series.timing, n_threads=3)
    np.testing.assert_array_equal(a.reference_to_frame, threaded.reference_to_frame)
    np.testing.assert_array_equal(a.reference_img.get_fdata(), threaded.reference_img.get_fdata())


def test_nearest_usable_prefers_later_on_ties() -> None:
    timing = FrameTiming.from_seconds([0, 60, 120], [60, 60, 60])
    src = nearest_usable(timing, np.array([True, False, True]))
    np.testing.assert_array_equal(src, [0, 2, 2])


def test_signal_fraction_weights_by_duration() -> None:
    timing = FrameTiming.from_seconds([0, 60], [60, 240])
    data = np.ones((2, 2, 2, 2))
    np.testing.assert_allclose(frame_signal_fraction(data, timing), [0.25, 1.0])


def test_bad_inputs(moved_series: Series) -> None:
    img3d = moved_series.img.slicer[..., 0]
    with pytest.raises(InputError, match="must be 4-D"):
        estimate_motion(img3d, moved_series.timing)
    short = FrameTiming.from_seconds([0, 60], [60, 60])
    with pytest.raises(InputError, match="14 frames but the frame timing has 2"):
        estimate_motion(moved_series.img, short)
    with pytest.raises(InputError, match=r"reference frame must be in 0\.\.13"):
        estimate_motion(moved_series.img, moved_series.timing, reference=20)
    with pytest.raises(InputError, match="reference must be 'late_mean'"):
        estimate_motion(moved_series.img, moved_series.timing, reference="first")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="no frame is usable"):
        estimate_motion(moved_series.img, moved_series.timing, min_frame_start_min=1000.0)
