"""Session co-registration, normalisation to the template and one-shot resampling (ANTsPy).

Spaces and transform directions
-------------------------------
* *Frame space*: where a raw frame's voxels are; *reference space*: the session's native grid
  with the head in the motion reference pose (see :mod:`bids_app.preproc.motion`).
* The **baseline** reference space is the participant's PET space; the challenge session is
  mapped into it by ``baseline_to_challenge`` (:func:`coregister_sessions`).
* :class:`Normalisation` holds ANTs transform files that map **template-grid points to baseline
  reference-space points** (``[affine]`` PET-only, ``[warp, affine]`` with SyN; with a T1w
  ``[warp, affine, T1w->PET rigid]``).
* Every matrix or file follows the ANTs "pull-back" direction: output-space point -> input-space
  point. For a frame resampled to the template the chain is therefore
  ``template -> (normalisation) -> baseline reference -> (session) -> session reference ->
  (motion) -> frame``, passed to ``ants.apply_transforms`` as one list, so each frame is
  interpolated exactly once (a second interpolation costs ~5 % of striatal BPnd).
* Voxels whose chain ends outside the frame's grid are NaN ("no data"), not 0.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import nibabel as nib
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bids_app.errors import InputError, RegistrationError
from bids_app.preproc._ants import (
    RETRY_INITIALISATIONS,
    Stage,
    import_ants,
    nifti_to_ants,
    read_affine,
    run_registration,
    write_affine,
)
from bids_app.preproc.motion import MotionEstimate, resample_rigid_native

logger = logging.getLogger(__name__)

Interpolation = Literal["linear", "bSpline", "lanczosWindowedSinc", "nearestNeighbor"]
MeanFrames = Literal["usable", "early", "all"]

#: Frames ending by this time form the "early" (perfusion-like) mean, minutes.
EARLY_END_MIN = 10.0
#: Plausible range of the determinant of the template -> PET affine (volume ratio).
DETERMINANT_RANGE = (0.5, 2.0)
#: Minimum Dice overlap of the normalised PET signal with the template brain mask.
MIN_BRAIN_OVERLAP = 0.6
#: Dilation (mm) of the template brain mask that restricts the normalisation metric.
MASK_MARGIN_PET_MM = 8.0
MASK_MARGIN_T1W_MM = 2.0
#: Value ANTs writes outside the input field of view before we turn it into NaN. ANTs'
#: command-line parser cannot read "nan", and its interpolators never mix the default value
#: with data (a point is either inside the buffer or gets the default), so a sentinel is exact.
_OUTSIDE = -1.0e30


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Normalisation:
    """Mapping from the template grid to a session's PET reference space.

    Attributes
    ----------
    transforms : tuple of Path
        ANTs transform files, in ``ants.apply_transforms`` order with ``fixed`` = template:
        they map template points to PET reference-space points.
    affine : (4, 4) ndarray
        The linear part (template -> PET, RAS mm), i.e. the affine stage (composed with the
        T1w -> PET rigid when a T1w was used).
    affine_determinant : float
        ``det`` of the linear part: PET volume per template volume (plausible: 0.5-2).
    correlation : float
        Pearson correlation of the normalised PET mean with the template inside the brain mask.
        High (> 0.9) only when the PET image has template-like contrast; reported, not checked.
    brain_overlap : float
        Dice overlap of the normalised PET signal (smoothed mean > 25 % of its 99th percentile)
        with the template brain mask; contrast-independent, checked against
        ``MIN_BRAIN_OVERLAP``.
    method : {"pet", "t1w"}
        PET-only normalisation or via the participant's T1w.
    normalised_mean : nibabel.Nifti1Image
        The PET mean on the template grid (NaN outside the PET field of view), for reports.
    """

    transforms: tuple[Path, ...]
    affine: NDArray[np.float64]
    affine_determinant: float
    correlation: float
    brain_overlap: float
    method: Literal["pet", "t1w"]
    normalised_mean: nib.Nifti1Image


# --------------------------------------------------------------------------- helpers
def _as_3d(img: nib.spatialimages.SpatialImage, name: str) -> nib.Nifti1Image:
    shape = img.shape
    if len(shape) == 4 and shape[3] == 1:
        img = img.slicer[..., 0]
    if len(img.shape) != 3:
        msg = f"{name} must be a 3-D image; got shape {shape}"
        raise InputError(msg)
    data = np.asarray(img.dataobj, dtype=np.float32)
    if not np.any(np.isfinite(data) & (data != 0)):
        msg = f"{name} is empty (all zero or non-finite)"
        raise InputError(msg)
    return nib.Nifti1Image(np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0), img.affine)


def template_brain_mask(template: nib.spatialimages.SpatialImage) -> NDArray[np.bool_]:
    """Brain mask of a (skull-stripped) template: voxels above 10 % of its maximum, holes filled.

    Returns
    -------
    (nx, ny, nz) ndarray of bool
        Mask on the template grid.
    """
    data = np.nan_to_num(np.asarray(template.dataobj, dtype=np.float64))
    mask = data > 0.1 * float(data.max())
    return ndimage.binary_fill_holes(mask)


def _mask_image(template: nib.Nifti1Image, mask: NDArray[np.bool_]) -> Any:
    return nifti_to_ants(template, mask.astype(np.float32))


def _outside_to_nan(data: NDArray[np.floating]) -> NDArray[np.float32]:
    out = np.asarray(data, dtype=np.float32)
    out[out < _OUTSIDE / 10.0] = np.nan
    return out


def _mean_frame_indices(
    motion: MotionEstimate, frames: Sequence[int] | MeanFrames | None
) -> NDArray[np.int64]:
    n = motion.n_frames
    if frames is None or (isinstance(frames, str) and frames == "usable"):
        idx = np.flatnonzero(motion.usable)
    elif isinstance(frames, str) and frames == "all":
        idx = np.arange(n)
    elif isinstance(frames, str) and frames == "early":
        idx = np.flatnonzero(motion.timing.end_min <= EARLY_END_MIN + 1e-9)
        if idx.size == 0:
            idx = np.array([0])
    elif isinstance(frames, str):
        msg = f"frames must be 'usable', 'early', 'all' or a list of indices; got {frames!r}"
        raise InputError(msg)
    else:
        idx = np.asarray(list(frames), dtype=np.int64)
        bad = idx[(idx < 0) | (idx >= n)]
        if idx.size == 0 or bad.size:
            msg = f"frame indices must be in 0..{n - 1} (at least one); got {list(frames)}"
            raise InputError(msg)
    return idx.astype(np.int64)


# --------------------------------------------------------------------------- means
def motion_corrected_mean(
    pet_img: nib.spatialimages.SpatialImage,
    motion: MotionEstimate,
    frames: Sequence[int] | MeanFrames | None = None,
    weights: Sequence[float] | None = None,
) -> nib.Nifti1Image:
    """Weighted mean of motion-corrected frames in the session's reference space.

    Parameters
    ----------
    pet_img : nibabel image
        The dynamic PET the motion was estimated on, (nx, ny, nz, n_frames).
    motion : MotionEstimate
        Output of :func:`bids_app.preproc.motion.estimate_motion`.
    frames : sequence of int or {"usable", "early", "all"}, optional
        Frames to average. ``None``/"usable": the frames registered themselves (a late,
        high-count, striatum-dominated mean); "early": frames ending by 10 min (perfusion-like,
        grey/white contrast); "all": the whole scan (the usual input for PET-only
        normalisation).
    weights : sequence of float, optional
        One weight per selected frame (default: frame durations, i.e. a time-weighted mean).

    Returns
    -------
    nibabel.Nifti1Image
        3-D float32 mean on the native grid. Each voxel averages the frames whose pulled-back
        point lies inside the field of view; voxels with no data are 0 (the image feeds
        registrations, which cannot take NaN).
    """
    if len(pet_img.shape) != 4 or pet_img.shape[3] != motion.n_frames:
        msg = (
            f"pet_img must be 4-D with {motion.n_frames} frames (as the motion estimate); "
            f"got shape {pet_img.shape}"
        )
        raise InputError(msg)
    idx = _mean_frame_indices(motion, frames)
    if weights is None:
        w = motion.timing.duration_min[idx]
    else:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.shape != idx.shape or np.any(w < 0) or not np.any(w > 0):
            msg = (
                f"weights must be {idx.size} non-negative numbers (one per frame), not all 0; "
                f"got {list(np.asarray(weights).reshape(-1))}"
            )
            raise InputError(msg)
    affine = np.asarray(pet_img.affine, dtype=np.float64)
    total = np.zeros(pet_img.shape[:3])
    weight_sum = np.zeros(pet_img.shape[:3])
    for i, wi in zip(idx, w, strict=True):
        frame = np.asarray(pet_img.dataobj[..., int(i)], dtype=np.float64)
        corrected = resample_rigid_native(frame, affine, motion.reference_to_frame[i])
        valid = np.isfinite(corrected)
        total[valid] += wi * corrected[valid]
        weight_sum[valid] += wi
    mean = np.divide(total, weight_sum, out=np.zeros_like(total), where=weight_sum > 0)
    return nib.Nifti1Image(mean.astype(np.float32), affine)


# --------------------------------------------------------------------------- co-registration
def coregister_sessions(
    moving_mean: nib.spatialimages.SpatialImage,
    fixed_mean: nib.spatialimages.SpatialImage,
    work_dir: Path,
    n_threads: int = 1,
) -> NDArray[np.float64]:
    """Rigid co-registration of two sessions' mean images (challenge -> baseline).

    Mattes mutual information, 4-2-1 pyramid, centre-of-mass initialisation (image centres on a
    retry when that fails or moves the image implausibly far), fixed seed (see
    :mod:`bids_app.preproc._ants` for determinism). Measured on a 3 mm phantom: 0.1 mm RMS
    error on a 50 mm sphere for a 5 mm / 5 degree pose, 0.3 s on 2 threads.

    Parameters
    ----------
    moving_mean : nibabel image
        Mean of the challenge session, in its reference space (3-D).
    fixed_mean : nibabel image
        Mean of the baseline session, in its reference space (3-D).
    work_dir : Path
        Scratch folder; the transform file is read and deleted.
    n_threads : int
        ITK threads (see :func:`bids_app.preproc.configure_ants_threads`).

    Returns
    -------
    (4, 4) ndarray
        ``baseline_to_challenge``: maps a baseline reference-space point (RAS mm) to the same
        anatomical point in the challenge reference space (the pull-back that resamples the
        challenge onto the baseline; pass it as ``session_transform``).

    Raises
    ------
    RegistrationError
        When ANTs fails or the result is not a plausible rigid transform (more than 100 mm
        of translation) with both initialisations; the message holds ANTs' own last lines.
    """
    import_ants(n_threads)
    moving = nifti_to_ants(_as_3d(moving_mean, "moving_mean"))
    fixed = nifti_to_ants(_as_3d(fixed_mean, "fixed_mean"))
    stage = Stage(
        "Rigid[0.1]", "Mattes", 32, "Regular", 0.25, (1000, 500, 250), (4, 2, 1), (2.0, 1.0, 0.0)
    )
    tmp = Path(work_dir) / "coreg"
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        files = run_registration(
            fixed,
            moving,
            [stage],
            tmp / "ses_",
            initial=RETRY_INITIALISATIONS,
            plausible=lambda f: _rigid_problem(read_affine(f.affine)),
        )
        matrix = read_affine(files.affine)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return matrix


def _rigid_problem(matrix: NDArray[np.float64]) -> str | None:
    """Why a rigid registration result is implausible, or None when it is plausible."""
    lin = matrix[:3, :3]
    if not np.allclose(lin @ lin.T, np.eye(3), atol=1e-3):
        return f"a non-rigid matrix {np.round(matrix, 4).tolist()}"
    shift = float(np.linalg.norm(matrix[:3, 3]))
    if shift > 100.0:
        return (
            f"it moved the image by {shift:.0f} mm; check that both images show the same head "
            "(and their NIfTI orientation)"
        )
    return None


# --------------------------------------------------------------------------- normalisation
def _normalisation_stages(deformable: bool = True) -> list[Stage]:
    """Rigid -> affine (-> SyN), Mattes MI throughout (PET and un-stripped T1w alike).

    Measured on the MNI template: local correlation (CC) for the T1w SyN stage was slower
    (18 s vs 6 s) and, with a skull present, less accurate (r 0.87 vs 0.99 with the truth).
    """
    lin = ((1000, 500, 250), (8, 4, 2), (3.0, 2.0, 1.0))
    stages = [
        Stage("Rigid[0.1]", "Mattes", 32, "Regular", 0.25, *lin),
        Stage("Affine[0.1]", "Mattes", 32, "Regular", 0.25, *lin),
    ]
    if deformable:
        stages.append(
            Stage("SyN[0.1,3,0]", "Mattes", 32, "Regular", 0.5, (50, 20, 0), (4, 2, 1), (2, 1, 0))
        )
    return stages


def _register_to_template(
    moving: Any, template: Any, fixed_mask: Any | None, prefix: Path, *, deformable: bool = True
) -> tuple[Path, ...]:
    """Register ``moving`` to the template; return the transforms, template -> moving order."""
    files = run_registration(
        template,
        moving,
        _normalisation_stages(deformable),
        prefix,
        initial="mass",
        fixed_mask=fixed_mask,
    )
    if files.inverse_warp is not None:
        files.inverse_warp.unlink(missing_ok=True)
    if not deformable:
        return (files.affine,)
    if files.warp is None:
        msg = f"normalisation wrote no warp field (expected {prefix}1Warp.nii.gz)"
        raise RegistrationError(msg)
    return (files.warp, files.affine)


def _quality(
    normalised: NDArray[np.float32], template: NDArray[np.float64], brain: NDArray[np.bool_]
) -> tuple[float, float]:
    valid = brain & np.isfinite(normalised)
    if valid.sum() < 100:
        return float("nan"), 0.0
    a = normalised[valid].astype(np.float64)
    b = template[valid]
    corr = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")
    smooth = ndimage.gaussian_filter(np.nan_to_num(normalised).astype(np.float64), 1.5)
    positive = smooth[smooth > 0]
    if positive.size == 0:
        return corr, 0.0
    signal = smooth > 0.25 * np.percentile(positive, 99.0)
    signal = ndimage.binary_fill_holes(signal)
    dice = 2.0 * float((signal & brain).sum()) / float(signal.sum() + brain.sum())
    return corr, dice


def normalise_to_template(
    pet_mean: nib.spatialimages.SpatialImage,
    template: nib.spatialimages.SpatialImage,
    work_dir: Path,
    *,
    t1w: nib.spatialimages.SpatialImage | None = None,
    pet_template: nib.spatialimages.SpatialImage | None = None,
    pet_deformable: bool = False,
    template_mask: NDArray[np.bool_] | None = None,
    check: bool = True,
    n_threads: int = 1,
) -> Normalisation:
    """Normalise a PET mean image (baseline reference space) to the template.

    PET-only (default): rigid -> affine (-> SyN with ``pet_deformable``), Mattes mutual
    information, to ``pet_template`` over the whole image when given, else to the T1 template
    inside its brain mask dilated by 8 mm. With a T1w: PET -> T1w rigid
    (Mattes MI) and T1w -> template rigid -> affine -> SyN (Mattes MI, brain mask dilated by
    only 2 mm so that the skull of an un-stripped T1w does not drive the fit; with 8 mm the
    affine stage sometimes inflated the brain onto the skull, det 1.3-1.45).

    Parameters
    ----------
    pet_mean : nibabel image
        3-D PET mean in the baseline reference space (e.g. a whole-scan or early mean).
    template : nibabel image
        3-D template (e.g. nilearn's MNI152 2009a at 2 mm); its grid is the output grid.
    work_dir : Path
        Folder that keeps the transform files (``norm_*``); they must live as long as the
        result is used for resampling.
    t1w : nibabel image, optional
        The participant's T1w (any space, not skull-stripped).
    pet_template : nibabel image, optional
        A template with PET contrast on the template grid (e.g.
        :func:`bids_app.roi.template.load_pet_template`). When given, the PET-only path registers
        to it over the whole image instead of to the T1 template inside the dilated brain mask:
        mutual information between a blurred PET mean and a T1 template inside a brain mask
        settles on a brain scaled by 10-20 % (measured on the synthetic study; Jacobian
        determinant 1.2-1.5), whereas an early PET mean against a PET-contrast template lands
        within about 1 mm.
    pet_deformable : bool
        Add a SyN stage to PET-only normalisation (default False: rigid -> affine). On the
        synthetic study (template anatomy, known pose) SyN between an early PET mean and the
        PET template lost 10-15 % of the striatal and 70 % of the pituitary signal against
        the affine alone (ROI round trip 0.71 vs 0.81 dorsal striatum, 0.17 vs 0.63 pituitary;
        0.82 and 0.67 with the true transform): PET contrast does not constrain local
        deformations. The T1w path always uses SyN.
    template_mask : (nx, ny, nz) ndarray of bool, optional
        Brain mask on the template grid (default :func:`template_brain_mask`).
    check : bool
        Raise :class:`RegistrationError` on an implausible result (default True).
    n_threads : int
        ITK threads.

    Returns
    -------
    Normalisation
        Transform files, linear part, quality numbers and the normalised mean.

    Raises
    ------
    RegistrationError
        ``affine_determinant`` outside ``DETERMINANT_RANGE`` or ``brain_overlap`` below
        ``MIN_BRAIN_OVERLAP`` (when ``check``), or an ANTs failure.
    """
    ants = import_ants(n_threads)
    pet3 = _as_3d(pet_mean, "pet_mean")
    tpl3 = _as_3d(template, "template")
    brain = template_brain_mask(tpl3) if template_mask is None else np.asarray(template_mask, bool)
    if brain.shape != tpl3.shape:
        msg = f"template_mask shape {brain.shape} differs from the template's {tpl3.shape}"
        raise InputError(msg)
    vox_mm = float(np.mean(np.linalg.norm(tpl3.affine[:3, :3], axis=0)))
    # PET edges are blurred: keep 8 mm around the brain. A T1w's skull must stay outside.
    margin_mm = MASK_MARGIN_PET_MM if t1w is None else MASK_MARGIN_T1W_MM
    dilated = ndimage.binary_dilation(brain, iterations=max(1, round(margin_mm / vox_mm)))
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    fixed = nifti_to_ants(tpl3)
    mask = _mask_image(tpl3, dilated)
    pet = nifti_to_ants(pet3)
    if t1w is None:
        deform = pet_deformable
        if pet_template is not None:
            target, target_mask = nifti_to_ants(_as_3d(pet_template, "pet_template")), None
        else:
            target, target_mask = fixed, mask
        transforms: tuple[Path, ...] = _register_to_template(
            pet, target, target_mask, work / "norm_pet_", deformable=deform
        )
        linear = read_affine(transforms[-1])
        method: Literal["pet", "t1w"] = "pet"
    else:
        t1 = nifti_to_ants(_as_3d(t1w, "t1w"))
        # Dense sampling and a coarse first level: PET -> T1w is a cross-contrast rigid fit
        # whose sparse-sampled version fell into a local minimum in about 1 run in 10 on
        # 2 threads (correlation 0.5 instead of > 0.95 on the test phantom).
        rigid = Stage(
            "Rigid[0.1]",
            "Mattes",
            32,
            "None",
            1.0,
            (1000, 500, 250, 100),
            (8, 4, 2, 1),
            (3.0, 2.0, 1.0, 0.0),
        )
        pet_files = run_registration(t1, pet, [rigid], work / "norm_t1w2pet_", initial="mass")
        to_t1w = _register_to_template(t1, fixed, mask, work / "norm_t1w_")
        transforms = (*to_t1w, pet_files.affine)
        linear = read_affine(pet_files.affine) @ read_affine(to_t1w[-1])
        method = "t1w"
    warped = ants.apply_transforms(
        fixed, pet, [str(t) for t in transforms], interpolator="linear", defaultvalue=_OUTSIDE
    )
    normalised = _outside_to_nan(warped.numpy())
    corr, overlap = _quality(normalised, np.asarray(tpl3.dataobj, dtype=np.float64), brain)
    det = float(np.linalg.det(linear[:3, :3]))
    result = Normalisation(
        transforms=transforms,
        affine=linear,
        affine_determinant=det,
        correlation=corr,
        brain_overlap=overlap,
        method=method,
        normalised_mean=nib.Nifti1Image(normalised, tpl3.affine),
    )
    logger.info(
        "normalisation (%s): det %.3f, brain overlap %.3f, correlation %.3f",
        method,
        det,
        overlap,
        corr,
    )
    if check:
        check_normalisation(result)
    return result


def check_normalisation(result: Normalisation) -> None:
    """Raise :class:`RegistrationError` when a normalisation is implausible.

    Criteria: ``DETERMINANT_RANGE[0] <= affine_determinant <= DETERMINANT_RANGE[1]`` and
    ``brain_overlap >= MIN_BRAIN_OVERLAP``.
    """
    low, high = DETERMINANT_RANGE
    if not low <= result.affine_determinant <= high:
        msg = (
            f"normalisation to the template is implausible: the affine scales the volume by "
            f"{result.affine_determinant:.2f} (expected {low}-{high}). Check the PET image "
            "orientation and voxel sizes, or provide a T1w image."
        )
        raise RegistrationError(msg)
    if not result.brain_overlap >= MIN_BRAIN_OVERLAP:
        msg = (
            f"normalisation to the template is implausible: the normalised PET overlaps the "
            f"template brain mask by Dice {result.brain_overlap:.2f} (expected >= "
            f"{MIN_BRAIN_OVERLAP}). Check the registration overlay in the report; a T1w image "
            "or an early-frame mean may help."
        )
        raise RegistrationError(msg)


# --------------------------------------------------------------------------- resampling
def _session_chain(
    normalisation: Normalisation, session_transform: NDArray[np.float64] | None, work: Path
) -> list[str]:
    chain = [str(t) for t in normalisation.transforms]
    if session_transform is not None:
        mat = np.asarray(session_transform, dtype=np.float64)
        if mat.shape != (4, 4):
            msg = f"session_transform must be a 4x4 matrix; got shape {mat.shape}"
            raise InputError(msg)
        chain.append(str(write_affine(mat, work / "session.mat")))
    return chain


def resample_to_template(
    pet_img: nib.spatialimages.SpatialImage,
    motion: MotionEstimate,
    normalisation: Normalisation,
    template: nib.spatialimages.SpatialImage,
    *,
    session_transform: NDArray[np.float64] | None = None,
    interpolation: Interpolation = "linear",
    work_dir: Path | None = None,
    n_threads: int = 1,
) -> nib.Nifti1Image:
    """Resample every frame onto the template grid with ONE interpolation per frame.

    Parameters
    ----------
    pet_img : nibabel image
        Raw dynamic PET, (nx, ny, nz, n_frames), native grid.
    motion : MotionEstimate
        Motion of this session.
    normalisation : Normalisation
        Template -> baseline reference space.
    template : nibabel image
        Output grid (3-D).
    session_transform : (4, 4) ndarray, optional
        ``baseline_to_challenge`` from :func:`coregister_sessions`, for the challenge session;
        ``None`` for the baseline session.
    interpolation : {"linear", "bSpline", "lanczosWindowedSinc", "nearestNeighbor"}
        ANTs interpolator.
    work_dir : Path, optional
        Scratch folder for the per-frame transform files (default: the folder of the
        normalisation transforms); the files are deleted.
    n_threads : int
        ITK threads.

    Returns
    -------
    nibabel.Nifti1Image
        4-D float32 on the template grid; NaN where a frame has no data (outside its field of
        view).
    """
    ants = import_ants(n_threads)
    if len(pet_img.shape) != 4 or pet_img.shape[3] != motion.n_frames:
        msg = (
            f"pet_img must be 4-D with {motion.n_frames} frames (as the motion estimate); "
            f"got shape {pet_img.shape}"
        )
        raise InputError(msg)
    tpl3 = _as_3d(template, "template")
    fixed = nifti_to_ants(tpl3)
    base = Path(work_dir) if work_dir is not None else normalisation.transforms[0].parent
    work = base / "resample_tmp"
    work.mkdir(parents=True, exist_ok=True)
    out = np.empty((*tpl3.shape, motion.n_frames), dtype=np.float32)
    try:
        chain = _session_chain(normalisation, session_transform, work)
        geometry = pet_img.slicer[..., 0]
        for i in range(motion.n_frames):
            frame = nifti_to_ants(geometry, np.asarray(pet_img.dataobj[..., i], dtype=np.float32))
            motion_file = write_affine(motion.reference_to_frame[i], work / f"frame{i:03d}.mat")
            warped = ants.apply_transforms(
                fixed,
                frame,
                [*chain, str(motion_file)],
                interpolator=interpolation,
                defaultvalue=_OUTSIDE,
            )
            out[..., i] = _outside_to_nan(warped.numpy())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    logger.info("resampled %d frames to the template grid %s", motion.n_frames, tpl3.shape)
    return nib.Nifti1Image(out, tpl3.affine)


def warp_image_to_template(
    img3d: nib.spatialimages.SpatialImage,
    normalisation: Normalisation,
    template: nib.spatialimages.SpatialImage,
    *,
    session_transform: NDArray[np.float64] | None = None,
    interpolation: Interpolation = "linear",
    work_dir: Path | None = None,
    n_threads: int = 1,
) -> nib.Nifti1Image:
    """Warp a 3-D image in a session's reference space (e.g. a mean) onto the template grid.

    Parameters
    ----------
    img3d : nibabel image
        3-D image in the (baseline, or with ``session_transform`` the challenge) reference
        space.
    normalisation, template, session_transform, interpolation, work_dir, n_threads
        As in :func:`resample_to_template`.

    Returns
    -------
    nibabel.Nifti1Image
        3-D float32 on the template grid, NaN outside the image's field of view.
    """
    ants = import_ants(n_threads)
    tpl3 = _as_3d(template, "template")
    if len(img3d.shape) != 3:
        msg = f"img3d must be 3-D; got shape {img3d.shape}"
        raise InputError(msg)
    base = Path(work_dir) if work_dir is not None else normalisation.transforms[0].parent
    work = base / "warp_tmp"
    work.mkdir(parents=True, exist_ok=True)
    try:
        chain = _session_chain(normalisation, session_transform, work)
        moving = nifti_to_ants(img3d, np.nan_to_num(np.asarray(img3d.dataobj, dtype=np.float32)))
        warped = ants.apply_transforms(
            nifti_to_ants(tpl3), moving, chain, interpolator=interpolation, defaultvalue=_OUTSIDE
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return nib.Nifti1Image(_outside_to_nan(warped.numpy()), tpl3.affine)
