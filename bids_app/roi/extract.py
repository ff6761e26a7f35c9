"""Time-activity curves and ROI means from images on the template grid.

All functions take plain arrays (or nibabel images) already on the atlas grid and boolean
masks from :class:`bids_app.roi.atlas.RoiAtlas`. Means are NaN-robust: voxels that are NaN
(outside the field of view after resampling, failed fits) are ignored, never counted as 0.
Frame times stay in seconds here, as in PET-BIDS and the ``_tacs.tsv`` contract.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Literal

import nibabel as nib
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from bids_app.errors import InputError

logger = logging.getLogger(__name__)

OnEmpty = Literal["raise", "nan"]


def _as_array(data: ArrayLike | nib.Nifti1Image, ndim: int, what: str) -> NDArray[np.floating]:
    """Return image data as a float array with ``ndim`` dimensions (no copy for float input)."""
    if isinstance(data, nib.spatialimages.SpatialImage):
        arr = np.asanyarray(data.dataobj)
    else:
        arr = np.asanyarray(data)
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if arr.ndim != ndim:
        msg = f"{what} must be {ndim}-D; got shape {arr.shape}."
        raise InputError(msg)
    return arr


def _check_mask(mask: ArrayLike, shape: tuple[int, ...], roi: str) -> NDArray[np.bool_]:
    """Validate one mask against the image's spatial shape."""
    arr = np.asarray(mask)
    if arr.shape != shape:
        msg = (
            f"ROI {roi!r}: mask shape {arr.shape} does not match the image grid {shape}. "
            "Resample the image to the atlas (template) grid first."
        )
        raise InputError(msg)
    if arr.dtype != np.bool_:
        arr = arr != 0
    if not arr.any():
        msg = f"ROI {roi!r}: the mask has no voxels."
        raise InputError(msg)
    return arr


def _frame_times(
    frame_start_s: ArrayLike, frame_end_s: ArrayLike, n_frames: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Validate frame start/end times (s) against the number of frames."""
    start = np.asarray(frame_start_s, dtype=np.float64).reshape(-1)
    end = np.asarray(frame_end_s, dtype=np.float64).reshape(-1)
    if start.size != n_frames or end.size != n_frames:
        msg = (
            f"Frame times do not match the data: {start.size} starts and {end.size} ends "
            f"for {n_frames} frames. Check FrameTimesStart/FrameDuration in the PET sidecar."
        )
        raise InputError(msg)
    if not (np.all(np.isfinite(start)) and np.all(np.isfinite(end))):
        msg = "Frame start/end times must be finite numbers (seconds)."
        raise InputError(msg)
    bad = np.flatnonzero(end <= start)
    if bad.size:
        msg = f"Frame end must be after frame start (s); not so at frame index {bad.tolist()}."
        raise InputError(msg)
    return start, end


def extract_tacs(
    data_4d: ArrayLike | nib.Nifti1Image,
    masks: Mapping[str, ArrayLike],
    frame_start_s: ArrayLike,
    frame_end_s: ArrayLike,
    *,
    on_empty: OnEmpty = "raise",
) -> pd.DataFrame:
    """Mean time-activity curve of every ROI.

    Parameters
    ----------
    data_4d : (nx, ny, nz, n_frames) array or 4-D nibabel image
        Dynamic PET on the atlas grid, in the data's units (e.g. kBq/mL). NaN = no data.
    masks : mapping of str to (nx, ny, nz) bool array
        ROI masks (e.g. ``RoiAtlas.masks``); the order gives the column order.
    frame_start_s, frame_end_s : (n_frames,) array-like
        Frame start and end times, seconds.
    on_empty : {"raise", "nan"}
        What to do when an ROI has a frame with no finite voxel: raise :class:`InputError`
        naming the ROI (default), or give that ROI NaN in those frames and log a warning.

    Returns
    -------
    pandas.DataFrame
        ``n_frames`` rows; columns ``frame_start``, ``frame_end`` (s), then one column per
        ROI holding the mean over the mask's finite voxels in each frame.

    Raises
    ------
    InputError
        Mismatched shapes or frame counts, an empty mask, or (``on_empty="raise"``) an ROI
        with no finite voxel in some frame.
    """
    data = _as_array(data_4d, 4, "data_4d")
    start, end = _frame_times(frame_start_s, frame_end_s, data.shape[3])
    columns: dict[str, NDArray[np.float64]] = {"frame_start": start, "frame_end": end}
    for roi, mask in masks.items():
        if roi in columns:
            msg = f"ROI name {roi!r} clashes with a frame-time column; rename the ROI."
            raise InputError(msg)
        m = _check_mask(mask, data.shape[:3], roi)
        values = np.asarray(data[m], dtype=np.float64)  # (n_voxels, n_frames)
        finite = np.isfinite(values)
        n_valid = finite.sum(axis=0)
        empty = np.flatnonzero(n_valid == 0)
        if empty.size:
            msg = (
                f"ROI {roi!r}: no finite voxel in frame(s) {empty.tolist()} of {data.shape[3]} "
                f"(mask has {int(m.sum())} voxels). The field of view may miss this region."
            )
            if on_empty == "raise":
                raise InputError(msg)
            logger.warning("%s Its TAC is NaN there.", msg)
        total = np.where(finite, values, 0.0).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            columns[roi] = np.where(n_valid > 0, total / np.maximum(n_valid, 1), np.nan)
    return pd.DataFrame(columns)


def roi_means(
    data_3d: ArrayLike | nib.Nifti1Image, masks: Mapping[str, ArrayLike]
) -> dict[str, float]:
    """NaN-robust mean of a 3-D image (e.g. a BPND or R1 map) in every ROI.

    Parameters
    ----------
    data_3d : (nx, ny, nz) array or 3-D nibabel image
        Image on the atlas grid. NaN voxels (outside the brain, failed fits) are ignored.
    masks : mapping of str to (nx, ny, nz) bool array
        ROI masks.

    Returns
    -------
    dict of str to float
        Mean over the finite voxels of each mask; NaN (logged) when none is finite.
    """
    data = _as_array(data_3d, 3, "data_3d")
    out: dict[str, float] = {}
    for roi, mask in masks.items():
        values = np.asarray(data[_check_mask(mask, data.shape, roi)], dtype=np.float64)
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            logger.warning("ROI %r: no finite voxel in the image; mean is NaN.", roi)
            out[roi] = float("nan")
        else:
            out[roi] = float(finite.mean())
    return out
