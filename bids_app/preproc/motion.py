"""Frame-wise motion estimation of a dynamic PET series (rigid, frame to reference).

Design
------
* **Reference** (``reference="late_mean"``): the duration-weighted mean of the usable frames
  that start at or after ``reference_start_min`` (default 10 min), where counts are high and
  the tracer distribution changes slowly. If no usable frame starts that late, the later half
  of the usable frames is used. Because the frames are averaged before they are aligned, the
  estimate is refined once: the reference frames are realigned to that mean, averaged again
  (now motion-corrected) and every usable frame is registered to the refined mean. An integer
  ``reference`` selects one frame instead (its transform is the identity).
* **Usable frames**: a frame is registered itself only if it starts at or after
  ``min_frame_start_min`` (default 2 min) and its relative signal ``sum(activity) x duration``
  (a count proxy; images are usually decay corrected) is at least ``min_counts_fraction``
  (default 0.05) of the largest frame's. Early frames are short, noisy and show a perfusion-like
  distribution, and register unreliably to a late reference: they **borrow** the transform of
  the usable frame nearest in mid-time (ties go to the later frame); ``source_frame`` records
  which.
* **Registration**: rigid, correlation-type cost (least squares after a linear intensity fit)
  on smoothed copies at 8 mm then ``resolution_mm`` (default 4 mm), see
  :mod:`bids_app.preproc.rigid` (deterministic). The refinement pass starts from the first
  pass's parameters and uses the finest level only. Each frame's pyramid is built once and
  serves both passes; frames are registered in ``n_threads`` threads (the result does not
  depend on the thread count). ``antsRegistration`` (rigid, Mattes MI) was slower and, on
  noisy frames, left 0.2-1.6 mm errors.
* **Output convention**: ``reference_to_frame[i]`` is a 4x4 RAS-mm matrix mapping a point of the
  reference space to the same anatomical point in frame ``i`` (the pull-back used for
  resampling; see :mod:`bids_app.preproc.transforms`). The six confound parameters decompose
  this matrix about ``centre_mm``, the reference image's centre of mass, so translations are
  displacements of the head's centre; rotations in radians, ``R = Rz @ Ry @ Rx``.
  ``framewise_displacement`` follows Power et al. (2012): sum of absolute backward differences
  of the six parameters, rotations as arcs on a 50 mm sphere; 0 for the first frame.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import nibabel as nib
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import ndimage

from bids_app.errors import InputError, RegistrationError
from bids_app.preproc._parallel import thread_map
from bids_app.preproc.rigid import (
    FixedLevel,
    MovingLevel,
    Volume,
    pyramid,
    register_rigid,
    resample_linear,
)
from bids_app.preproc.transforms import (
    PARAM_NAMES,
    framewise_displacement,
    params_to_matrix,
)
from bids_app.timing import FrameTiming

logger = logging.getLogger(__name__)

CONFOUND_COLUMNS: tuple[str, ...] = (
    *PARAM_NAMES,
    "framewise_displacement",
    "usable",
    "source_frame",
)

#: Coarse-to-fine grids (mm) of the frame registration; the last entry is ``resolution_mm``.
_COARSE_MM = 8.0


@dataclass(frozen=True)
class MotionEstimate:
    """Per-frame rigid motion of one dynamic PET series.

    Attributes
    ----------
    reference_to_frame : (n_frames, 4, 4) ndarray
        RAS-mm matrices mapping reference-space points to frame points (pull-back).
    confounds : pandas.DataFrame
        One row per frame: ``trans_x, trans_y, trans_z`` (mm), ``rot_x, rot_y, rot_z`` (rad),
        ``framewise_displacement`` (mm), ``usable`` (bool: registered itself) and
        ``source_frame`` (int: the frame whose transform it uses).
    reference : str
        Human-readable definition of the reference image.
    reference_frames : tuple of int
        Frames averaged into the reference.
    reference_img : nibabel.Nifti1Image
        The reference image (3-D, native grid, motion-corrected when refined).
    centre_mm : (3,) ndarray
        Centre (RAS mm) about which the confound rotations are expressed.
    signal_fraction : (n_frames,) ndarray
        Relative frame signal (activity sum x duration, / max) used for ``usable``.
    timing : FrameTiming
        The frame timing the estimate was made with.
    """

    reference_to_frame: NDArray[np.float64]
    confounds: pd.DataFrame
    reference: str
    reference_frames: tuple[int, ...]
    reference_img: nib.Nifti1Image
    centre_mm: NDArray[np.float64]
    signal_fraction: NDArray[np.float64]
    timing: FrameTiming

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.reference_to_frame.shape[0])

    @property
    def usable(self) -> NDArray[np.bool_]:
        """Frames registered themselves (not borrowed)."""
        return self.confounds["usable"].to_numpy(dtype=bool)

    @property
    def source_frame(self) -> NDArray[np.int64]:
        """Index of the frame whose transform each frame uses."""
        return self.confounds["source_frame"].to_numpy(dtype=np.int64)


# --------------------------------------------------------------------------- validation
def _check_inputs(pet_img: nib.spatialimages.SpatialImage, timing: FrameTiming) -> None:
    shape = pet_img.shape
    if len(shape) != 4:
        msg = f"PET image must be 4-D (x, y, z, frames); got shape {shape}"
        raise InputError(msg)
    if shape[3] != timing.n_frames:
        msg = (
            f"PET image has {shape[3]} frames but the frame timing has {timing.n_frames}; "
            "check FrameTimesStart/FrameDuration in the sidecar"
        )
        raise InputError(msg)


def frame_signal_fraction(data: NDArray[np.floating], timing: FrameTiming) -> NDArray[np.float64]:
    """Relative frame signal: ``sum(max(activity, 0)) * duration``, divided by its maximum.

    Parameters
    ----------
    data : (nx, ny, nz, n_frames) ndarray
        Dynamic PET (any activity unit).
    timing : FrameTiming
        Frame timing (minutes).

    Returns
    -------
    (n_frames,) ndarray
        Values in [0, 1]; all zeros when the image has no positive voxel.
    """
    # frame by frame: a whole-series clip/nansum copies the 4-D array twice (~1 s by default)
    frame_sum = np.array(
        [np.sum(np.fmax(data[..., i], 0.0), dtype=np.float64) for i in range(data.shape[3])]
    )
    signal = frame_sum * timing.duration_min
    top = float(signal.max()) if signal.size else 0.0
    return signal / top if top > 0 else np.zeros_like(signal)


def select_usable_frames(
    timing: FrameTiming,
    signal_fraction: NDArray[np.float64],
    min_frame_start_min: float,
    min_counts_fraction: float,
) -> NDArray[np.bool_]:
    """Frames reliable enough to register (late enough and with enough signal)."""
    return (timing.start_min >= min_frame_start_min - 1e-9) & (
        signal_fraction >= min_counts_fraction
    )


def nearest_usable(timing: FrameTiming, usable: NDArray[np.bool_]) -> NDArray[np.int64]:
    """For each frame, the usable frame nearest in mid-time (itself if usable; ties -> later).

    Parameters
    ----------
    timing : FrameTiming
        Frame timing.
    usable : (n_frames,) ndarray of bool
        At least one True.

    Returns
    -------
    (n_frames,) ndarray of int
        Source frame index per frame.
    """
    candidates = np.flatnonzero(usable)
    mids = timing.mid_min
    distance = np.abs(mids[:, None] - mids[None, candidates])
    # prefer the later frame on ties: search reversed candidates, argmin takes the first
    best = distance.shape[1] - 1 - np.argmin(distance[:, ::-1], axis=1)
    return candidates[best].astype(np.int64)


def _reference_frames(
    timing: FrameTiming,
    usable: NDArray[np.bool_],
    reference: Literal["late_mean"] | int,
    reference_start_min: float,
) -> tuple[tuple[int, ...], str]:
    if not isinstance(reference, str):
        return (int(reference),), f"frame {int(reference)}"
    late = np.flatnonzero(usable & (timing.start_min >= reference_start_min - 1e-9))
    if late.size:
        desc = (
            f"late_mean: duration-weighted mean of frames {late[0]}-{late[-1]} "
            f"(start >= {reference_start_min:g} min), motion-corrected"
        )
        return tuple(int(i) for i in late), desc
    idx = np.flatnonzero(usable)
    late = idx[idx.size // 2 :]
    desc = (
        f"late_mean: no usable frame starts after {reference_start_min:g} min; duration-"
        f"weighted mean of the later half of the usable frames ({late[0]}-{late[-1]})"
    )
    return tuple(int(i) for i in late), desc


def _weighted_mean(
    data: NDArray[np.floating], frames: tuple[int, ...], timing: FrameTiming
) -> NDArray[np.float64]:
    """Duration-weighted mean of the frames, non-finite values as 0 (one frame at a time)."""
    weights = timing.duration_min[list(frames)]
    weights = weights / weights.sum()
    mean = np.zeros(data.shape[:3])
    for i, w in zip(frames, weights, strict=True):
        mean += w * np.nan_to_num(np.asarray(data[..., i], dtype=np.float64))
    return mean


def _centre_of_mass_mm(
    image: NDArray[np.float64], affine: NDArray[np.float64]
) -> NDArray[np.float64]:
    positive = np.clip(image, 0.0, None)
    if positive.sum() <= 0:
        centre_vox = (np.array(image.shape) - 1) / 2.0
    else:
        centre_vox = np.array(ndimage.center_of_mass(positive))
    return affine[:3, :3] @ centre_vox + affine[:3, 3]


def resample_rigid_native(
    data3d: NDArray[np.floating],
    affine: NDArray[np.float64],
    reference_to_frame: NDArray[np.float64],
) -> NDArray[np.float32]:
    """Pull one frame into the reference pose on its own grid (linear; outside FOV -> NaN).

    Parameters
    ----------
    data3d : (nx, ny, nz) ndarray
        The raw frame.
    affine : (4, 4) ndarray
        Voxel-to-RAS affine of the native grid (shared by reference and frame).
    reference_to_frame : (4, 4) ndarray
        Motion matrix of this frame.

    Returns
    -------
    (nx, ny, nz) ndarray, float32
        Motion-corrected frame, NaN where the pulled point falls outside the frame's grid.
    """
    vox = np.linalg.inv(affine) @ reference_to_frame @ affine
    return resample_linear(data3d, vox, data3d.shape)


def corrected_mean(
    frame: Callable[[int], NDArray[np.floating]],
    affine: NDArray[np.float64],
    matrices: dict[int, NDArray[np.float64]],
    weights: dict[int, float],
    n_threads: int = 1,
) -> NDArray[np.float64]:
    """Weighted mean of motion-corrected frames on the native grid.

    Parameters
    ----------
    frame : callable
        ``frame(i)`` returns frame ``i``, (nx, ny, nz).
    affine : (4, 4) ndarray
        Voxel-to-RAS affine of the native grid.
    matrices : dict of int to (4, 4) ndarray
        ``reference_to_frame`` of each frame to average.
    weights : dict of int to float
        Weight of each frame (same keys as ``matrices``).
    n_threads : int
        Frames resampled in parallel (the sum is taken in frame order, so the result does not
        depend on it).

    Returns
    -------
    (nx, ny, nz) ndarray
        Each voxel averages the frames whose pulled-back point lies inside the field of view;
        voxels with no data are 0.
    """
    order = sorted(matrices)
    total: NDArray[np.float64] | None = None
    weight_sum: NDArray[np.float64] | None = None
    # bounded batches keep at most 2 * n_threads resampled frames in memory
    batch = max(1, 2 * n_threads)
    for lo in range(0, len(order), batch):
        chunk = order[lo : lo + batch]
        corrected = thread_map(
            lambda i: resample_rigid_native(frame(i), affine, matrices[i]), chunk, n_threads
        )
        for i, image in zip(chunk, corrected, strict=True):
            if total is None or weight_sum is None:
                total = np.zeros(image.shape)
                weight_sum = np.zeros(image.shape)
            valid = np.isfinite(image)
            total[valid] += weights[i] * image[valid]
            weight_sum[valid] += weights[i]
    if total is None or weight_sum is None:
        msg = "corrected_mean needs at least one frame"
        raise InputError(msg)
    return np.divide(total, weight_sum, out=np.zeros_like(total), where=weight_sum > 0)


# --------------------------------------------------------------------------- engine
def _frame_pyramids(
    data: NDArray[np.float32],
    affine: NDArray[np.float64],
    frames: NDArray[np.int64],
    spacings_mm: tuple[float, ...],
    n_threads: int,
) -> dict[int, list[MovingLevel]]:
    """Each frame's pyramid, ready to be sampled (built once, used by every pass)."""

    def one(i: int) -> list[MovingLevel]:
        return [MovingLevel(v) for v in pyramid(data[..., i], affine, spacings_mm)]

    return dict(
        zip(
            (int(i) for i in frames),
            thread_map(one, [int(i) for i in frames], n_threads),
            strict=True,
        )
    )


def _register_frames(
    frame_levels: dict[int, list[MovingLevel]],
    reference_levels: list[Volume],
    levels: slice,
    centre_mm: NDArray[np.float64],
    init: dict[int, NDArray[np.float64]],
    n_threads: int,
) -> dict[int, NDArray[np.float64]]:
    """Register the frames' pyramid levels ``levels`` to the reference's (threads over frames).

    Each frame's result depends only on its own data, so it is the same for any thread count.
    """
    fixed = [FixedLevel.from_volume(v) for v in reference_levels[levels]]

    def one(i: int) -> NDArray[np.float64]:
        try:
            return register_rigid(fixed, frame_levels[i][levels], centre_mm, init.get(i))
        except RegistrationError as exc:
            msg = (
                f"motion estimation failed for frame {i}: {exc}. Inspect that frame; raising "
                "min_counts_fraction or min_frame_start_min makes it borrow a neighbour's "
                "transform instead"
            )
            raise RegistrationError(msg) from exc

    frames = sorted(frame_levels)
    return dict(zip(frames, thread_map(one, frames, n_threads), strict=True))


# --------------------------------------------------------------------------- public API
def estimate_motion(
    pet_img: nib.spatialimages.SpatialImage,
    timing: FrameTiming,
    *,
    reference: Literal["late_mean"] | int = "late_mean",
    min_frame_start_min: float = 2.0,
    min_counts_fraction: float = 0.05,
    reference_start_min: float = 10.0,
    resolution_mm: float = 4.0,
    n_threads: int = 1,
) -> MotionEstimate:
    """Estimate rigid head motion of every frame relative to a reference image.

    Parameters
    ----------
    pet_img : nibabel image
        Dynamic PET, shape (nx, ny, nz, n_frames), native scanner space.
    timing : FrameTiming
        Frame timing, minutes.
    reference : "late_mean" or int
        Reference definition (see the module docstring) or a frame index.
    min_frame_start_min : float
        Frames starting earlier borrow the transform of the nearest usable frame, minutes.
    min_counts_fraction : float
        Frames whose relative signal is lower also borrow (0 disables the check).
    reference_start_min : float
        Frames starting at or after this time form the ``late_mean`` reference, minutes.
    resolution_mm : float
        Finest registration grid, mm (images are smoothed to this FWHM first).
    n_threads : int
        Frames processed in parallel (e.g. ``--omp-nthreads``); the result is the same for
        any value.

    Returns
    -------
    MotionEstimate
        Matrices, confounds table and reference.

    Raises
    ------
    InputError
        Wrong dimensions, frame count mismatch, an invalid reference, or no usable frame.
    RegistrationError
        A frame could not be registered.
    """
    _check_inputs(pet_img, timing)
    affine = np.asarray(pet_img.affine, dtype=np.float64)
    data = np.asarray(pet_img.dataobj, dtype=np.float32)
    n_frames = timing.n_frames
    fraction = frame_signal_fraction(data, timing)
    usable = select_usable_frames(timing, fraction, min_frame_start_min, min_counts_fraction)
    if not isinstance(reference, str):
        if isinstance(reference, bool) or not 0 <= int(reference) < n_frames:
            msg = f"reference frame must be in 0..{n_frames - 1}; got {reference!r}"
            raise InputError(msg)
        usable[int(reference)] = True
    elif reference != "late_mean":
        msg = f"reference must be 'late_mean' or a frame index; got {reference!r}"
        raise InputError(msg)
    if not usable.any():
        msg = (
            f"no frame is usable for motion estimation: none starts after "
            f"{min_frame_start_min:g} min with a signal fraction >= {min_counts_fraction:g}. "
            "Lower min_frame_start_min or min_counts_fraction."
        )
        raise InputError(msg)
    ref_frames, ref_desc = _reference_frames(timing, usable, reference, reference_start_min)
    ref_image = _weighted_mean(data, ref_frames, timing)
    centre = _centre_of_mass_mm(ref_image, affine)
    spacings = (_COARSE_MM, resolution_mm) if resolution_mm < _COARSE_MM else (resolution_mm,)
    to_register = np.flatnonzero(usable)
    if not isinstance(reference, str):
        to_register = to_register[to_register != int(reference)]
    logger.info(
        "motion: %d/%d frames usable, reference %s",
        int(usable.sum()),
        n_frames,
        ref_desc,
    )

    frame_levels = _frame_pyramids(data, affine, to_register, spacings, n_threads)
    every_level = slice(0, len(spacings))
    params = _register_frames(
        frame_levels, pyramid(ref_image, affine, spacings), every_level, centre, {}, n_threads
    )
    if isinstance(reference, str) and len(ref_frames) > 1:
        ref_image = corrected_mean(
            lambda i: data[..., i],
            affine,
            {i: params_to_matrix(params[i], centre) for i in ref_frames},
            {i: float(timing.duration_min[i]) for i in ref_frames},
            n_threads,
        )
        # the first pass brought every frame within reach: the refinement needs the finest
        # level only (restarting at the coarse one moved frames off their first-pass optimum)
        finest = slice(len(spacings) - 1, len(spacings))
        params = _register_frames(
            frame_levels, pyramid(ref_image, affine, spacings), finest, centre, params, n_threads
        )
    all_params = np.zeros((n_frames, 6))
    for i, p in params.items():
        all_params[i] = p
    source = nearest_usable(timing, usable)
    all_params = all_params[source]
    matrices = np.stack([params_to_matrix(p, centre) for p in all_params])
    confounds = pd.DataFrame(all_params, columns=list(PARAM_NAMES))
    confounds["framewise_displacement"] = framewise_displacement(all_params)
    confounds["usable"] = usable
    confounds["source_frame"] = source
    logger.info(
        "motion: max FD %.2f mm, max |translation| %.2f mm",
        float(confounds["framewise_displacement"].max()),
        float(np.abs(all_params[:, :3]).max()),
    )
    ref_nii = nib.Nifti1Image(ref_image.astype(np.float32), affine)
    return MotionEstimate(
        reference_to_frame=matrices,
        confounds=confounds,
        reference=ref_desc,
        reference_frames=ref_frames,
        reference_img=ref_nii,
        centre_mm=centre,
        signal_fraction=fraction,
        timing=timing,
    )
