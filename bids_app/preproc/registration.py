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
  (motion) -> frame``, and each frame is interpolated exactly once through the whole chain
  (a second interpolation costs ~5 % of striatal BPnd). The normalisation part is composed
  once per session into reference-space points of the template voxels; the session and
  motion parts are 4x4 matrices applied to those points per frame.
* Voxels whose chain ends outside the frame's grid are NaN ("no data"), not 0.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, cast

import nibabel as nib
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bids_app.errors import InputError, RegistrationError
from bids_app.preproc._ants import (
    OUTSIDE,
    RETRY_INITIALISATIONS,
    Stage,
    as_3d,
    import_ants,
    import_ants_loaded,
    nifti_to_ants,
    outside_to_nan,
    read_affine,
    run_registration,
    write_affine,
)
from bids_app.preproc._parallel import thread_map
from bids_app.preproc.motion import MotionEstimate, corrected_mean
from bids_app.preproc.normalisation import Normalisation
from bids_app.preproc.rigid import CHUNK_POINTS, LinearSampler, grid_points, inside_grid
from bids_app.preproc.transforms import ras_lps_flip

logger = logging.getLogger(__name__)

Interpolation = Literal["linear", "bSpline", "lanczosWindowedSinc", "nearestNeighbor"]
FrameInterpolation = Literal["linear", "nearestNeighbor", "bSpline"]
MeanFrames = Literal["usable", "early", "all"]

#: Frames ending by this time form the "early" (perfusion-like) mean, minutes.
EARLY_END_MIN = 10.0


# --------------------------------------------------------------------------- helpers
def _frames_array(pet_img: nib.spatialimages.SpatialImage) -> NDArray[np.float32]:
    """All frames as one float32 array, read once (a gzipped NIfTI cannot seek to a frame).

    Reading ``dataobj[..., i]`` frame by frame from a ``.nii.gz`` decompresses the file from
    its start for every frame; one read costs a single pass. An in-memory float32 image is
    returned without a copy.
    """
    return np.asarray(pet_img.dataobj, dtype=np.float32)


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
    *,
    n_threads: int = 1,
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
    n_threads : int
        Frames resampled in parallel (the result does not depend on it).

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
    frame_weights: dict[int, float] = {}
    for i, wi in zip(idx, w, strict=True):  # a frame listed twice counts twice
        frame_weights[int(i)] = frame_weights.get(int(i), 0.0) + float(wi)
    data = _frames_array(pet_img)
    mean = corrected_mean(
        lambda i: data[..., i],
        np.asarray(pet_img.affine, dtype=np.float64),
        {i: motion.reference_to_frame[i] for i in frame_weights},
        frame_weights,
        n_threads,
    )
    return nib.Nifti1Image(mean.astype(np.float32), pet_img.affine)


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
    moving = nifti_to_ants(as_3d(moving_mean, "moving_mean"))
    fixed = nifti_to_ants(as_3d(fixed_mean, "fixed_mean"))
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


def template_to_reference_points(
    normalisation: Normalisation,
    template: nib.spatialimages.SpatialImage,
    work_dir: Path,
) -> NDArray[np.float64]:
    """Where every template voxel lands in the baseline reference space (RAS mm).

    The normalisation chain is composed once: a chain of ``.mat`` affines is multiplied out
    in numpy (``ants.apply_transforms`` applies the first listed transform to the output
    point first); a chain with a displacement field is composed by ANTs into one
    displacement field on the template grid (``apply_transforms(..., compose=...)``), whose
    vectors are added to the voxel positions. Every frame then needs a single affine map of
    these points (:func:`resample_to_template`), instead of one ``antsApplyTransforms`` call,
    with its transform files read from disk, per frame.

    Parameters
    ----------
    normalisation : Normalisation
        Template -> baseline reference-space transforms.
    template : nibabel image
        The output grid (3-D).
    work_dir : Path
        Scratch folder for the composed field (deleted).

    Returns
    -------
    (3, nx * ny * nz) ndarray
        Baseline reference-space coordinates of the template voxels, C order, mm.
    """
    tpl3 = as_3d(template, "template")
    voxels = grid_points(np.asarray(tpl3.affine, dtype=np.float64), tpl3.shape)
    files = [Path(f) for f in normalisation.transforms]
    if all(f.suffix == ".mat" for f in files):
        chain = np.eye(4)
        for f in files:
            chain = read_affine(f) @ chain
        return chain[:3, :3] @ voxels + chain[:3, 3:4]
    ants = import_ants_loaded()
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    fixed = nifti_to_ants(tpl3)
    composed = ants.apply_transforms(
        fixed,
        fixed,
        [str(f) for f in files],
        whichtoinvert=[False] * len(files),
        compose=str(work / "template_to_reference_"),
    )
    if composed is None or not Path(composed).is_file():
        msg = (
            "ANTs could not compose the normalisation transforms "
            f"{[str(f) for f in files]} into one displacement field (in {work})"
        )
        raise RegistrationError(msg)
    try:
        field_img = cast(nib.Nifti1Image, nib.load(composed))
        field = np.asarray(field_img.dataobj, dtype=np.float64)
    finally:
        Path(composed).unlink(missing_ok=True)
    displacement_lps = field.reshape(-1, 3).T  # ITK fields hold LPS vectors
    points: NDArray[np.float64] = voxels + ras_lps_flip()[:3, :3] @ displacement_lps
    return points


def _interpolate_frame(
    frame: NDArray[np.float32],
    frame_from_points: NDArray[np.float64],
    points: NDArray[np.float64],
    interpolation: FrameInterpolation,
) -> NDArray[np.float32]:
    """Values of one frame at mapped points; NaN outside its grid (or next to NaN data).

    Parameters
    ----------
    frame : (nx, ny, nz) ndarray
        Raw frame.
    frame_from_points : (4, 4) ndarray
        Maps the points (mm) to the frame's voxel indices.
    points : (3, n) ndarray
        Points, mm.
    interpolation : {"linear", "nearestNeighbor", "bSpline"}
        Interpolator.

    Returns
    -------
    (n,) ndarray, float32
    """
    if interpolation == "linear":
        sampler = LinearSampler(frame)

        def values_at(vox: NDArray[np.float64]) -> NDArray[np.float32]:
            return np.asarray(sampler.sample(vox)[0], dtype=np.float32)

    elif interpolation == "nearestNeighbor":
        upper = np.asarray(frame.shape)[:, None] - 1

        def values_at(vox: NDArray[np.float64]) -> NDArray[np.float32]:
            index = np.clip(np.rint(vox), 0, upper).astype(np.intp)
            return np.asarray(frame[index[0], index[1], index[2]], dtype=np.float32)

    elif interpolation == "bSpline":
        coefficients = ndimage.spline_filter(frame.astype(np.float64), order=3, mode="nearest")

        def values_at(vox: NDArray[np.float64]) -> NDArray[np.float32]:
            return ndimage.map_coordinates(
                coefficients, vox, order=3, mode="nearest", prefilter=False
            ).astype(np.float32)

    else:
        msg = (
            "interpolation must be one of 'linear', 'nearestNeighbor', 'bSpline'; "
            f"got {interpolation!r}"
        )
        raise InputError(msg)
    out = np.empty(points.shape[1], dtype=np.float32)
    # blocks of points keep the temporaries in the CPU caches (see rigid.CHUNK_POINTS)
    for lo in range(0, points.shape[1], CHUNK_POINTS):
        hi = min(lo + CHUNK_POINTS, points.shape[1])
        vox = frame_from_points[:3, :3] @ points[:, lo:hi] + frame_from_points[:3, 3:4]
        block = values_at(vox)
        block[~inside_grid(vox, frame.shape)] = np.nan
        out[lo:hi] = block
    return out


def resample_to_template(
    pet_img: nib.spatialimages.SpatialImage,
    motion: MotionEstimate,
    normalisation: Normalisation,
    template: nib.spatialimages.SpatialImage,
    *,
    session_transform: NDArray[np.float64] | None = None,
    interpolation: FrameInterpolation = "linear",
    work_dir: Path | None = None,
    n_threads: int = 1,
) -> nib.Nifti1Image:
    """Resample every frame onto the template grid with ONE interpolation per frame.

    The normalisation chain is composed once (:func:`template_to_reference_points`); frame
    ``i`` is then sampled at ``reference_to_frame[i] @ session_transform @ y`` for the
    reference-space points ``y`` of the template voxels: one trilinear interpolation of the
    raw frame, with the same result as ``ants.apply_transforms`` on the whole chain (up to a
    half-voxel border of the field of view, which ANTs extrapolates into and which is NaN here).

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
    interpolation : {"linear", "nearestNeighbor", "bSpline"}
        Trilinear (default), nearest voxel, or cubic B-spline (``scipy.ndimage``, order 3).
    work_dir : Path, optional
        Scratch folder for composing a deformable chain (default: the folder of the
        normalisation transforms); its files are deleted.
    n_threads : int
        Frames interpolated in parallel (the result does not depend on it).

    Returns
    -------
    nibabel.Nifti1Image
        4-D float32 on the template grid; NaN where a frame has no data (outside its field of
        view).
    """
    if len(pet_img.shape) != 4 or pet_img.shape[3] != motion.n_frames:
        msg = (
            f"pet_img must be 4-D with {motion.n_frames} frames (as the motion estimate); "
            f"got shape {pet_img.shape}"
        )
        raise InputError(msg)
    session = np.eye(4)
    if session_transform is not None:
        session = np.asarray(session_transform, dtype=np.float64)
        if session.shape != (4, 4):
            msg = f"session_transform must be a 4x4 matrix; got shape {session.shape}"
            raise InputError(msg)
    tpl3 = as_3d(template, "template")
    base = Path(work_dir) if work_dir is not None else normalisation.transforms[0].parent
    work = base / "resample_tmp"
    try:
        points = template_to_reference_points(normalisation, tpl3, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    data = _frames_array(pet_img)
    to_vox = np.linalg.inv(np.asarray(pet_img.affine, dtype=np.float64))
    out = np.empty((*tpl3.shape, motion.n_frames), dtype=np.float32)

    def one(i: int) -> None:
        mat = to_vox @ motion.reference_to_frame[i] @ session
        values = _interpolate_frame(data[..., i], mat, points, interpolation)
        out[..., i] = values.reshape(tpl3.shape)

    thread_map(one, list(range(motion.n_frames)), n_threads)
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
    normalisation, template, session_transform, work_dir, n_threads
        As in :func:`resample_to_template`.
    interpolation : {"linear", "bSpline", "lanczosWindowedSinc", "nearestNeighbor"}
        ANTs interpolator.

    Returns
    -------
    nibabel.Nifti1Image
        3-D float32 on the template grid, NaN outside the image's field of view.
    """
    ants = import_ants(n_threads)
    tpl3 = as_3d(template, "template")
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
            nifti_to_ants(tpl3), moving, chain, interpolator=interpolation, defaultvalue=OUTSIDE
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return nib.Nifti1Image(outside_to_nan(warped.numpy()), tpl3.affine)
