"""Motion-corrected means, session co-registration, normalisation and one-shot resampling."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from preproc_phantoms import (
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
    normalise_to_template,
    template_brain_mask,
)
from bids_app.preproc.registration import (
    coregister_sessions,
    motion_corrected_mean,
    resample_to_template,
    warp_image_to_template,
)
from bids_app.preproc.transforms import PARAM_NAMES, params_to_matrix, rms_displacement
from bids_app.roi.pet_template import load_pet_template

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


# --------------------------------------------------------------------------- normalisation
def _mni() -> nib.Nifti1Image:
    from nilearn.datasets import load_mni152_template

    tpl = load_mni152_template(resolution=2)
    return nib.Nifti1Image(tpl.get_fdata().astype(np.float32), tpl.affine)


def _to_pet_grid(
    source: np.ndarray, template: nib.Nifti1Image, template_to_pet: np.ndarray
) -> nib.Nifti1Image:
    """Put a template-space image into a 2.5 mm scanner grid through a known mapping."""
    shape = (80, 92, 76)
    aff = np.diag([2.5, 2.5, 2.5, 1.0])
    aff[:3, 3] = -(np.array(shape) - 1) / 2.0 * 2.5 + np.array([2.0, -15.0, 12.0])
    # mild non-linear scaling: a smooth bulge along x
    idx = np.indices(shape, dtype=np.float64)
    world = np.tensordot(aff[:3, :3], idx, axes=1) + aff[:3, 3][:, None, None, None]
    world[0] = world[0] * (1.0 + 0.04 * np.exp(-((world[2] - 20.0) ** 2) / (2 * 30.0**2)))
    pet_to_template = np.linalg.inv(template_to_pet)
    tw = np.tensordot(pet_to_template[:3, :3], world, axes=1)
    tw += pet_to_template[:3, 3][:, None, None, None]
    tvox = np.tensordot(np.linalg.inv(template.affine)[:3, :3], tw, axes=1)
    tvox += np.linalg.inv(template.affine)[:3, 3][:, None, None, None]
    data = ndimage.map_coordinates(source, tvox, order=1, cval=0.0)
    return nib.Nifti1Image(data.astype(np.float32), aff)


TRUE_TEMPLATE_TO_PET = params_to_matrix([6.0, -8.0, 5.0, *np.deg2rad([6.0, -4.0, 3.0])]) @ np.diag(
    [1.06, 0.95, 1.04, 1.0]
)


@pytest.mark.integration
def test_normalise_pet_only_lands_back_on_the_template(tmp_path: Path) -> None:
    template = _mni()
    brain = template_brain_mask(template)
    blurred = ndimage.gaussian_filter(template.get_fdata(), 6.0 / 2.355 / 2.0)
    pet = _to_pet_grid(blurred, template, TRUE_TEMPLATE_TO_PET)
    result = normalise_to_template(pet, template, tmp_path)
    assert result.method == "pet"
    assert all(p.is_file() and p.parent == tmp_path for p in result.transforms)
    assert result.affine_determinant == pytest.approx(
        np.linalg.det(TRUE_TEMPLATE_TO_PET[:3, :3]), rel=0.1
    )
    normalised = result.normalised_mean.get_fdata()
    valid = brain & np.isfinite(normalised)
    assert valid.sum() > 0.95 * brain.sum()
    assert np.corrcoef(normalised[valid], blurred[valid])[0, 1] > 0.95
    assert result.correlation > 0.8  # vs the sharp template: capped by the 6 mm blur
    assert result.brain_overlap > 0.85
    # the constant-in-brain check through the real (SyN) chain
    motionless = np.zeros((2, 6))
    timing_img = nib.Nifti1Image(np.stack([np.full(pet.shape, 2.0)] * 2, -1), pet.affine)
    from bids_app.preproc.motion import MotionEstimate
    from bids_app.timing import FrameTiming

    motion = MotionEstimate(
        reference_to_frame=np.stack([params_to_matrix(p) for p in motionless]),
        confounds=None,  # type: ignore[arg-type]
        reference="test",
        reference_frames=(0,),
        reference_img=pet,
        centre_mm=np.zeros(3),
        signal_fraction=np.ones(2),
        timing=FrameTiming.from_seconds([0, 60], [60, 60]),
    )
    out = resample_to_template(timing_img, motion, result, template).get_fdata()
    inside = np.isfinite(out[..., 0])
    np.testing.assert_allclose(out[..., 0][inside], 2.0, rtol=1e-5)
    assert inside[brain].mean() > 0.95


def mprage_like_head(template: nib.Nifti1Image) -> np.ndarray:
    """A whole-head T1w on the template grid: the template brain inside CSF, a dark skull,
    bright scalp fat, skin, eyes in orbital fat and a neck (MPRAGE-like intensities)."""
    t = template.get_fdata()
    brain = template_brain_mask(template)
    outside_mm = ndimage.distance_transform_edt(~brain) * 2.0
    world = np.tensordot(template.affine[:3, :3], np.indices(t.shape, dtype=float), axes=1)
    x, y, z = (world[i] + template.affine[i, 3] for i in range(3))
    head = np.where(brain, t / np.percentile(t[brain], 99), 0.0)
    layers = ((0, 3, 0.12), (3, 8, 0.05), (8, 11, 1.1), (11, 13, 0.45))
    for lo, hi, value in layers:
        head[(outside_mm > lo) & (outside_mm <= hi)] = value
    neck = ((x / 45.0) ** 2 + ((y + 15.0) / 50.0) ** 2 <= 1.0) & (z < -30.0) & (outside_mm > 3)
    head[neck] = 0.45
    head[neck & (((x / 45.0) ** 2 + ((y + 15.0) / 50.0) ** 2) > 0.8)] = 1.1
    for side in (-1.0, 1.0):
        r = np.sqrt((x - side * 32.0) ** 2 + (y - 52.0) ** 2 + (z + 12.0) ** 2)
        head[(r <= 16.0) & (outside_mm > 3)] = 1.0
        head[(r <= 11.0) & (outside_mm > 3)] = 0.08
    return ndimage.gaussian_filter(head, 0.5)


@pytest.mark.integration
def test_normalise_via_t1w(tmp_path: Path) -> None:
    template = _mni()
    brain = template_brain_mask(template)
    t = template.get_fdata()
    # a whole-head T1w (skull, scalp fat, eyes, neck), in its own pose
    t1w = _to_pet_grid(mprage_like_head(template), template, TRUE_TEMPLATE_TO_PET)
    # the PET: grey-matter-like contrast, 6 mm blur, in another pose (PET -> T1w rigid)
    pet_src = ndimage.gaussian_filter(np.where(brain, 1.5 - 2.0 * np.abs(t - 0.55), 0.0), 1.27)
    t1_to_pet = params_to_matrix([-4.0, 5.0, -3.0, *np.deg2rad([-3.0, 2.0, 4.0])])
    pet = _to_pet_grid(pet_src, template, t1_to_pet @ TRUE_TEMPLATE_TO_PET)
    result = normalise_to_template(
        pet, template, tmp_path, t1w=t1w, pet_template=load_pet_template(2)
    )
    assert result.method == "t1w"
    assert len(result.transforms) == 3
    # the brain was extracted, not the head: no inflation onto the skull (the mapping also has
    # a 4 % non-linear bulge that SyN, not the affine, takes up)
    assert result.affine_determinant == pytest.approx(
        np.linalg.det(TRUE_TEMPLATE_TO_PET[:3, :3]), rel=0.1
    )
    assert result.metrics["t1w_template_dice"] > 0.95
    assert result.metrics["t1w_prior_dice"] > 0.9
    assert 1000.0 < result.metrics["t1w_brain_volume_ml"] < 2200.0
    normalised = result.normalised_mean.get_fdata()
    valid = brain & np.isfinite(normalised)
    assert np.corrcoef(normalised[valid], pet_src[valid])[0, 1] > 0.95
    assert result.brain_overlap > 0.85
    assert result.t1w_mni is not None


@pytest.mark.integration
def test_registrations_are_bitwise_reproducible_with_one_thread(tmp_path: Path) -> None:
    here = Path(__file__).parent
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(here)!r})
        from bids_app.preproc import configure_ants_threads
        configure_ants_threads(1)
        import nibabel as nib, numpy as np
        from pathlib import Path
        from preproc_phantoms import SHAPE, frame_image, grid_affine, head_compartments, move
        from bids_app.preproc.registration import coregister_sessions
        from bids_app.preproc.transforms import params_to_matrix
        rng = np.random.default_rng(0)
        aff = grid_affine(); comp = head_compartments(SHAPE, aff)
        base = frame_image(comp, 30.0) + rng.normal(0, 0.05, SHAPE)
        truth = params_to_matrix([2.0, -1.0, 1.5, 0.03, -0.02, 0.04])
        chal = move(frame_image(comp, 30.0), aff, truth) + rng.normal(0, 0.05, SHAPE)
        imgs = [nib.Nifti1Image(x.astype(np.float32), aff) for x in (chal, base)]
        a = coregister_sessions(*imgs, Path({str(tmp_path)!r}) / "a", n_threads=1)
        b = coregister_sessions(*imgs, Path({str(tmp_path)!r}) / "b", n_threads=1)
        print(repr(np.array_equal(a, b)), repr(float(np.abs(a - truth).max())))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    identical, max_diff = done.stdout.strip().splitlines()[-1].split()
    assert identical == "True"
    assert float(max_diff) < 0.5
