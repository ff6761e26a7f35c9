"""Motion-corrected means, session co-registration, normalisation and one-shot resampling."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from helpers.preproc_phantoms import (
    SHAPE,
    Series,
    frame_image,
    grid_affine,
    head_compartments,
    move,
    random_params,
)
from scipy import ndimage

from bids_app.errors import InputError, RegistrationError
from bids_app.preproc import configure_ants_threads
from bids_app.preproc.motion import MotionEstimate, estimate_motion
from bids_app.preproc.normalisation import (
    Normalisation,
    check_normalisation,
    template_brain_mask,
)
from bids_app.preproc.registration import (
    coregister_sessions,
    motion_corrected_mean,
    resample_to_template,
    warp_image_to_template,
)
from bids_app.preproc.transforms import PARAM_NAMES, params_to_matrix, rms_displacement

ants = pytest.importorskip("ants")

N_FRAMES = 14
REF = 12


# --------------------------------------------------------------------------- helpers
def _small_template() -> nib.Nifti1Image:
    """A 2 mm output grid (not MNI, to keep unit tests fast), unequal dimensions."""
    shape = (66, 78, 58)
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    aff[:3, 3] = -(np.array(shape) - 1) / 2.0 * 2.0 + np.array([0.5, 3.0, -1.0])
    comp = head_compartments(shape, aff)
    return nib.Nifti1Image(frame_image(comp, 30.0).astype(np.float32), aff)


def _affine_normalisation(
    template_to_pet: np.ndarray, work: Path, template: nib.Nifti1Image
) -> Normalisation:
    """A Normalisation made of one known affine (no registration)."""
    from bids_app.preproc._ants import write_affine

    work.mkdir(parents=True, exist_ok=True)
    path = write_affine(template_to_pet, work / "known_affine.mat")
    return Normalisation(
        transforms=(path,),
        affine=template_to_pet,
        affine_determinant=float(np.linalg.det(template_to_pet[:3, :3])),
        correlation=float("nan"),
        brain_overlap=1.0,
        method="pet",
        normalised_mean=template,
    )


def _scipy_pull(
    frame: np.ndarray, frame_affine: np.ndarray, chain: np.ndarray, out: nib.Nifti1Image
) -> np.ndarray:
    """Reference implementation: one trilinear interpolation through the composed matrix."""
    vox = np.linalg.inv(frame_affine) @ chain @ out.affine
    return ndimage.affine_transform(
        frame, vox[:3, :3], vox[:3, 3], output_shape=out.shape, order=1, cval=np.nan
    )


@pytest.fixture
def moved_series(rng: np.random.Generator, series_factory: Callable[..., Series]) -> Series:
    params = random_params(rng, N_FRAMES, trans_mm=3.0, rot_deg=3.0)
    params[REF] = 0.0
    return series_factory(params)


# --------------------------------------------------------------------------- means
def test_motion_corrected_mean_undoes_motion(moved_series: Series) -> None:
    est = estimate_motion(moved_series.img, moved_series.timing, reference=REF)
    corrected = motion_corrected_mean(moved_series.img, est).get_fdata()
    timing = moved_series.timing
    idx = np.flatnonzero(est.usable)
    comp = head_compartments(SHAPE, grid_affine())
    w = timing.duration_min[idx]
    truth = (
        sum(wi * frame_image(comp, float(timing.mid_min[i])) for i, wi in zip(idx, w, strict=True))
        / w.sum()
    )
    raw = np.average(np.asarray(moved_series.img.dataobj)[..., idx], axis=-1, weights=w)
    head = ndimage.binary_erosion(truth > 0.3, iterations=2)
    assert np.corrcoef(corrected[head], truth[head])[0, 1] > 0.995
    err_corrected = np.sqrt(np.mean((corrected[head] - truth[head]) ** 2))
    err_raw = np.sqrt(np.mean((raw[head] - truth[head]) ** 2))
    assert err_corrected < 0.5 * err_raw
    assert corrected.shape == SHAPE


def test_motion_corrected_mean_frame_selection(moved_series: Series) -> None:
    est = estimate_motion(moved_series.img, moved_series.timing, reference=REF)
    only_ref = motion_corrected_mean(moved_series.img, est, frames=[REF]).get_fdata()
    # the reference frame's transform is the identity: its "mean" is the frame itself
    np.testing.assert_allclose(only_ref, np.asarray(moved_series.img.dataobj)[..., REF], atol=1e-4)
    early = motion_corrected_mean(moved_series.img, est, frames="early").get_fdata()
    late = motion_corrected_mean(moved_series.img, est).get_fdata()
    comp = head_compartments(SHAPE, grid_affine())
    grey = comp["grey"] > 0.8
    striatum = comp["striatum"] > 0.8
    # the early mean is perfusion-like (striatum ~ cortex), the late mean striatum-dominated
    assert early[striatum].mean() / early[grey].mean() < late[striatum].mean() / late[grey].mean()
    threaded = motion_corrected_mean(moved_series.img, est, n_threads=2).get_fdata()
    np.testing.assert_array_equal(threaded, late)
    with pytest.raises(InputError, match="weights must be 2"):
        motion_corrected_mean(moved_series.img, est, frames=[10, 11], weights=[1.0])
    with pytest.raises(InputError, match=r"frame indices must be in 0\.\.13"):
        motion_corrected_mean(moved_series.img, est, frames=[99])


# --------------------------------------------------------------------------- co-registration
def test_coregister_sessions_recovers_pose(rng: np.random.Generator, tmp_path: Path) -> None:
    aff = grid_affine()
    comp = head_compartments(SHAPE, aff)
    base = frame_image(comp, 30.0) + rng.normal(0, 0.02, SHAPE)
    truth = params_to_matrix([5.0, -4.0, 3.0, *np.deg2rad([4.0, -3.0, 5.0])])
    # challenge: lower striatal signal (a challenge effect) and a different head pose
    chal_clean = frame_image(comp, 30.0) - 0.4 * comp["striatum"]
    chal = move(chal_clean, aff, truth) + rng.normal(0, 0.02, SHAPE)
    matrix = coregister_sessions(
        nib.Nifti1Image(chal.astype(np.float32), aff),
        nib.Nifti1Image(base.astype(np.float32), aff),
        tmp_path,
    )
    centre = np.array([0.0, 0.0, 0.0])
    assert rms_displacement(matrix, truth, centre) < 1.0
    assert list(tmp_path.iterdir()) == []  # transform files removed


# --------------------------------------------------------------------------- resampling
def test_resample_chain_is_one_interpolation(moved_series: Series, tmp_path: Path) -> None:
    est = estimate_motion(moved_series.img, moved_series.timing, reference=REF)
    template = _small_template()
    norm_mat = params_to_matrix([4.0, -6.0, 2.0, *np.deg2rad([3.0, 2.0, -4.0])])
    norm_mat[:3, :3] *= 0.97
    session = params_to_matrix([-2.0, 1.0, 3.0, *np.deg2rad([-2.0, 1.0, 2.0])])
    norm = _affine_normalisation(norm_mat, tmp_path / "norm", template)
    out = resample_to_template(moved_series.img, est, norm, template, session_transform=session)
    assert out.shape == (*template.shape, N_FRAMES)
    assert out.get_data_dtype() == np.float32
    data = out.get_fdata()
    raw = np.asarray(moved_series.img.dataobj, dtype=np.float64)
    for i in (0, 7, 13):
        chain = est.reference_to_frame[i] @ session @ norm_mat
        expected = _scipy_pull(raw[..., i], moved_series.img.affine, chain, template)
        both = np.isfinite(expected) & np.isfinite(data[..., i])
        assert both.mean() > 0.3
        np.testing.assert_allclose(data[..., i][both], expected[both], atol=1e-4)
        # NaN exactly where the chain leaves the frame's grid (up to the half-voxel border)
        assert np.isnan(
            data[..., i][~ndimage.binary_dilation(np.isfinite(expected), iterations=2)]
        ).all()
    assert not (tmp_path / "norm" / "resample_tmp").exists()


def _true_motion(series: Series) -> MotionEstimate:
    """The series' true motion as a MotionEstimate (no registration: keeps the tests fast)."""
    n = series.timing.n_frames
    confounds = pd.DataFrame(np.zeros((n, 6)), columns=list(PARAM_NAMES))
    confounds["usable"] = True
    confounds["source_frame"] = np.arange(n)
    return MotionEstimate(
        reference_to_frame=series.matrices,
        confounds=confounds,
        reference="truth",
        reference_frames=(REF,),
        reference_img=series.img.slicer[..., REF],
        centre_mm=np.zeros(3),
        signal_fraction=np.ones(n),
        timing=series.timing,
    )


def _warp_file(template: nib.Nifti1Image, path: Path) -> Path:
    """A smooth displacement field (up to ~2 mm) on the template grid, as ANTs writes one."""
    from bids_app.preproc._ants import nifti_to_ants

    grid = nifti_to_ants(template)
    ii, jj, kk = np.indices(template.shape, dtype=np.float64)
    field = np.zeros((*template.shape, 3), dtype=np.float32)
    field[..., 0] = 1.5 * np.sin(jj / 9.0)
    field[..., 1] = -1.0 * np.cos(kk / 7.0)
    field[..., 2] = 0.8 * np.sin(ii / 11.0)
    image = ants.from_numpy(
        field,
        origin=grid.origin,
        spacing=grid.spacing,
        direction=grid.direction,
        has_components=True,
    )
    ants.image_write(image, str(path))
    return path


def test_resample_through_a_warp_matches_ants_on_the_whole_chain(
    moved_series: Series, tmp_path: Path
) -> None:
    """The composed chain gives what one antsApplyTransforms call per frame gave."""
    from bids_app.preproc._ants import nifti_to_ants, write_affine

    est = _true_motion(moved_series)
    template = _small_template()
    norm_mat = params_to_matrix([2.0, -3.0, 1.0, *np.deg2rad([2.0, 1.0, -3.0])])
    norm = Normalisation(
        transforms=(
            _warp_file(template, tmp_path / "norm_1Warp.nii.gz"),
            write_affine(norm_mat, tmp_path / "norm_0GenericAffine.mat"),
        ),
        affine=norm_mat,
        affine_determinant=1.0,
        correlation=float("nan"),
        brain_overlap=1.0,
        method="t1w",
        normalised_mean=template,
    )
    session = params_to_matrix([-2.0, 1.0, 3.0, *np.deg2rad([-2.0, 1.0, 2.0])])
    out = resample_to_template(
        moved_series.img, est, norm, template, session_transform=session, n_threads=2
    ).get_fdata()
    assert not (tmp_path / "resample_tmp").exists()
    fixed = nifti_to_ants(template)
    geometry = moved_series.img.slicer[..., 0]
    write_affine(session, tmp_path / "session.mat")
    for i in (2, 9):
        write_affine(est.reference_to_frame[i], tmp_path / "frame.mat")
        frame = np.asarray(moved_series.img.dataobj[..., i], dtype=np.float32)
        expected = ants.apply_transforms(
            fixed,
            nifti_to_ants(geometry, frame),
            [
                *(str(t) for t in norm.transforms),
                str(tmp_path / "session.mat"),
                str(tmp_path / "frame.mat"),
            ],
            interpolator="linear",
            defaultvalue=-1e30,  # ANTs cannot parse "nan"
        ).numpy()
        expected[expected < -1e29] = np.nan
        both = np.isfinite(expected) & np.isfinite(out[..., i])
        assert both.mean() > 0.3
        np.testing.assert_allclose(out[..., i][both], expected[both], atol=1e-4)
        # NaN where ANTs had no data, plus at most the half-voxel border ANTs extrapolates into
        only_ants = np.isfinite(expected) & np.isnan(out[..., i])
        assert only_ants.sum() < 0.02 * np.isfinite(expected).sum()


def test_resample_interpolators(moved_series: Series, tmp_path: Path) -> None:
    est = _true_motion(moved_series)
    template = _small_template()
    norm = _affine_normalisation(params_to_matrix([1.0, 2.0, 0.5, 0, 0, 0.1]), tmp_path, template)
    nearest = resample_to_template(
        moved_series.img, est, norm, template, interpolation="nearestNeighbor"
    ).get_fdata()
    frame = np.asarray(moved_series.img.dataobj[..., 3])
    finite = np.isfinite(nearest[..., 3])
    assert finite.mean() > 0.3
    assert np.isin(nearest[..., 3][finite].astype(np.float32), frame).all()
    with pytest.raises(InputError, match="interpolation must be one of"):
        resample_to_template(moved_series.img, est, norm, template, interpolation="sinc")  # type: ignore[arg-type]


def test_constant_image_stays_constant_and_outside_is_nan(
    moved_series: Series, tmp_path: Path
) -> None:
    est = estimate_motion(moved_series.img, moved_series.timing, reference=REF)
    levels = np.linspace(1.0, 3.0, N_FRAMES)
    const = nib.Nifti1Image(
        np.broadcast_to(levels, (*SHAPE, N_FRAMES)).astype(np.float32), moved_series.img.affine
    )
    template = _small_template()
    norm_mat = params_to_matrix([0.0, 0.0, 0.0, 0.0, 0.0, np.deg2rad(5.0)])
    norm = _affine_normalisation(norm_mat, tmp_path / "norm", template)
    out = resample_to_template(const, est, norm, template, interpolation="bSpline").get_fdata()
    finite = np.isfinite(out)
    assert finite.any()
    assert (~finite).any()  # the template grid is larger than the PET field of view
    for i in range(N_FRAMES):
        np.testing.assert_allclose(out[..., i][finite[..., i]], levels[i], rtol=1e-4)
    assert not np.any(out[finite] == 0.0)


def test_warp_image_to_template_matches_scipy(moved_series: Series, tmp_path: Path) -> None:
    template = _small_template()
    norm_mat = params_to_matrix([3.0, 2.0, -1.0, *np.deg2rad([2.0, -3.0, 1.0])])
    norm = _affine_normalisation(norm_mat, tmp_path / "norm", template)
    img = moved_series.img.slicer[..., REF]
    out = warp_image_to_template(img, norm, template).get_fdata()
    expected = _scipy_pull(np.asarray(img.dataobj, float), img.affine, norm_mat, template)
    both = np.isfinite(expected) & np.isfinite(out)
    np.testing.assert_allclose(out[both], expected[both], atol=1e-4)


# --------------------------------------------------------------------------- checks
def _fake(det: float, overlap: float) -> Normalisation:
    return Normalisation(
        transforms=(),
        affine=np.diag([det, 1.0, 1.0, 1.0]),
        affine_determinant=det,
        correlation=0.5,
        brain_overlap=overlap,
        method="pet",
        normalised_mean=_small_template(),
    )


def test_check_normalisation_flags_implausible_results() -> None:
    check_normalisation(_fake(1.1, 0.9))
    with pytest.raises(RegistrationError, match=r"scales the volume by 3\.00"):
        check_normalisation(_fake(3.0, 0.9))
    with pytest.raises(RegistrationError, match=r"Dice 0\.30"):
        check_normalisation(_fake(1.0, 0.3))
    with pytest.raises(RegistrationError, match="Dice nan"):
        check_normalisation(_fake(1.0, float("nan")))


def test_configure_threads_rejects_bad_values() -> None:
    with pytest.raises(InputError, match="positive integer"):
        configure_ants_threads(0)
    with pytest.raises(InputError, match="positive integer"):
        configure_ants_threads(True)


def test_template_brain_mask_fills_holes() -> None:
    data = np.zeros((9, 9, 9), dtype=np.float32)
    data[2:7, 2:7, 2:7] = 1.0
    data[4, 4, 4] = 0.0
    mask = template_brain_mask(nib.Nifti1Image(data, np.eye(4)))
    assert mask.sum() == 125
