"""Voxelwise smoothing, the search mask and paired t-tests on parametric maps (pure functions).

The search volume follows SPM12's ``spm_spm``: a voxel is analysed when it holds a value in
every scan (the *implicit mask*; for floating-point images SPM's implicit mask is NaN, zeros
are kept), optionally intersected with a user's explicit mask (voxels > 0). See
:func:`implicit_mask`.

The paired t-test is the one-sample GLM of SPM on the differences ``challenge - baseline``
(df = n - 1). By default it applies SPM's variance regularisation for non-fMRI (PET) designs:
``ResMS + 1e-3 * max(ResMS)`` over the analysis mask, which keeps near-zero-variance voxels from
producing huge t values.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from bids_app.errors import StatsError

logger = logging.getLogger(__name__)

#: Fraction of the largest residual mean square SPM adds to every voxel's ResMS for PET.
SPM_PET_VARIANCE_FRACTION = 1e-3
#: Variances below (ROUNDING_ULPS * eps * max|d|)^2 are rounding noise and treated as zero.
ROUNDING_ULPS = 64.0
#: FWHM / sigma of a Gaussian: ``2 sqrt(2 ln 2)``.
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))

__all__ = [
    "FWHM_PER_SIGMA",
    "SPM_PET_VARIANCE_FRACTION",
    "PairedTResult",
    "implicit_mask",
    "paired_differences",
    "paired_t",
    "smooth_volume",
    "smooth_volumes",
]


def _per_axis(value: ArrayLike, name: str) -> NDArray[np.float64]:
    arr = np.asarray(value, dtype=np.float64).ravel()
    if arr.size == 1:
        arr = np.repeat(arr, 3)
    if arr.size != 3 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        msg = f"{name} must be one or three non-negative finite numbers; got {arr.tolist()}."
        raise StatsError(msg)
    return arr


def smooth_volume(
    data_3d: ArrayLike,
    voxel_size_mm: ArrayLike,
    fwhm_mm: ArrayLike,
) -> NDArray[np.float64]:
    """Gaussian smoothing with NaN-aware normalised convolution.

    The kernel has ``sigma = fwhm / (2 sqrt(2 ln 2))`` per axis (in voxels:
    ``fwhm_mm / voxel_size_mm``), truncated at 4 sigma. Missing voxels (NaN or inf) do not enter
    the average: the data times the valid-voxel mask and the mask itself are smoothed, and their
    ratio is returned. Outside the image counts as missing, so edge voxels are not pulled towards
    zero. Voxels that were missing stay NaN.

    Parameters
    ----------
    data_3d : (X, Y, Z) array_like
        Image, any units.
    voxel_size_mm : float or (3,) array_like
        Voxel size, mm.
    fwhm_mm : float or (3,) array_like
        Kernel FWHM, mm (0 = no smoothing).

    Returns
    -------
    (X, Y, Z) ndarray
        Smoothed image (float64), NaN where the input was missing.
    """
    data = np.asarray(data_3d, dtype=np.float64)
    if data.ndim != 3:
        msg = f"data_3d must be a 3-D array; got shape {data.shape}."
        raise StatsError(msg)
    voxel = _per_axis(voxel_size_mm, "voxel_size_mm")
    if np.any(voxel <= 0):
        msg = f"voxel_size_mm must be positive; got {voxel.tolist()}."
        raise StatsError(msg)
    sigma_vox = _per_axis(fwhm_mm, "fwhm_mm") / voxel / FWHM_PER_SIGMA
    valid = np.isfinite(data)
    if not np.any(sigma_vox > 0):
        return np.where(valid, data, np.nan)
    weights = valid.astype(np.float64)
    numerator = ndimage.gaussian_filter(np.where(valid, data, 0.0), sigma_vox, mode="constant")
    denominator = ndimage.gaussian_filter(weights, sigma_vox, mode="constant")
    out = np.full(data.shape, np.nan, dtype=np.float64)
    out[valid] = numerator[valid] / denominator[valid]
    return out


def smooth_volumes(
    data_4d: ArrayLike,
    voxel_size_mm: ArrayLike,
    fwhm_mm: ArrayLike,
) -> NDArray[np.float64]:
    """Apply :func:`smooth_volume` to each volume of a ``(n, X, Y, Z)`` stack.

    Returns
    -------
    (n, X, Y, Z) ndarray
        Smoothed volumes.
    """
    data = np.asarray(data_4d, dtype=np.float64)
    if data.ndim != 4:
        msg = f"data_4d must have shape (n, X, Y, Z); got {data.shape}."
        raise StatsError(msg)
    return np.stack([smooth_volume(vol, voxel_size_mm, fwhm_mm) for vol in data])


def implicit_mask(
    baseline: ArrayLike,
    challenge: ArrayLike,
    explicit_mask: ArrayLike | None = None,
) -> NDArray[np.bool_]:
    """SPM-style search mask: voxels finite in every map, within an optional explicit mask.

    SPM12's ``spm_spm`` analyses a voxel only when every scan has a value there; for
    floating-point images the missing value is NaN (zeros are data; only integer images, which
    cannot hold NaN, use 0 as missing). The participant maps of this app are NaN outside each
    participant's fit mask and field of view, so the implicit mask is the voxels that every
    participant's baseline and challenge maps cover. An explicit mask, when given, restricts it
    further to its voxels with a finite value > 0 (SPM's rule for explicit mask images).

    Parameters
    ----------
    baseline, challenge : (n, X, Y, Z) array_like
        One map per subject and session.
    explicit_mask : (X, Y, Z) array_like, optional
        User mask on the same grid (bool, or numbers: inside where finite and > 0).

    Returns
    -------
    (X, Y, Z) ndarray of bool
        The search mask.

    Raises
    ------
    StatsError
        When the shapes disagree.
    """
    base = np.asarray(baseline)
    chal = np.asarray(challenge)
    if base.ndim != 4 or base.shape != chal.shape:
        msg = (
            "baseline and challenge must both have shape (n_subjects, X, Y, Z); "
            f"got {base.shape} and {chal.shape}."
        )
        raise StatsError(msg)
    mask: NDArray[np.bool_] = np.all(np.isfinite(base), axis=0) & np.all(np.isfinite(chal), axis=0)
    if explicit_mask is not None:
        explicit = np.asarray(explicit_mask)
        if explicit.shape != mask.shape:
            msg = (
                f"the explicit mask has shape {explicit.shape} but the maps have shape "
                f"{mask.shape}; resample the mask to the maps' grid."
            )
            raise StatsError(msg)
        if explicit.dtype != np.bool_:
            values = explicit.astype(np.float64)
            with np.errstate(invalid="ignore"):
                explicit = np.isfinite(values) & (values > 0)
        mask &= explicit
    return mask


@dataclass(frozen=True)
class PairedTResult:
    """Voxelwise paired t-test (one-sample GLM on challenge - baseline).

    Attributes
    ----------
    t_map : (X, Y, Z) ndarray
        t statistic, positive where challenge > baseline; NaN outside the mask and where the
        variance is zero (see ``degenerate``).
    df : int
        Error degrees of freedom, ``n - 1``.
    standardized_residuals : (n, X, Y, Z) ndarray
        Residuals divided by ``sqrt(ResMS)`` (unregularised), for smoothness estimation; NaN
        outside the mask and at degenerate voxels.
    res_ms : (X, Y, Z) ndarray
        Residual mean square (variance of the differences), unregularised; NaN outside the mask.
    mean_difference : (X, Y, Z) ndarray
        Mean of challenge - baseline; NaN outside the mask.
    mask : (X, Y, Z) ndarray of bool
        Analysis mask actually used: the given mask where every subject's differences are finite.
    degenerate : (X, Y, Z) ndarray of bool
        Mask voxels whose variance is zero (to rounding) and not regularised: their t is NaN.
        (Standardised residuals are NaN at every zero-variance voxel.)
    variance_floor : float
        Amount added to every voxel's ResMS (``1e-3 * max(ResMS)``; 0 without regularisation).
    n_subjects : int
        Number of pairs.
    """

    t_map: NDArray[np.float64]
    df: int
    standardized_residuals: NDArray[np.float64]
    res_ms: NDArray[np.float64]
    mean_difference: NDArray[np.float64]
    mask: NDArray[np.bool_]
    degenerate: NDArray[np.bool_]
    variance_floor: float
    n_subjects: int


def paired_differences(
    baseline: ArrayLike, challenge: ArrayLike, mask: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Check the inputs and return ``challenge - baseline`` and the usable mask.

    Parameters
    ----------
    baseline, challenge : (n, X, Y, Z) array_like
        One map per subject and session, same subject order.
    mask : (X, Y, Z) array_like of bool
        Analysis mask.

    Returns
    -------
    differences : (n, X, Y, Z) ndarray
        ``challenge - baseline``.
    mask : (X, Y, Z) ndarray of bool
        The given mask restricted to voxels finite in every subject.

    Raises
    ------
    StatsError
        On mismatched shapes, fewer than 2 subjects or an empty mask.
    """
    base = np.asarray(baseline, dtype=np.float64)
    chal = np.asarray(challenge, dtype=np.float64)
    inside = np.asarray(mask).astype(bool)
    if base.ndim != 4 or base.shape != chal.shape:
        msg = (
            "baseline and challenge must both have shape (n_subjects, X, Y, Z); "
            f"got {base.shape} and {chal.shape}."
        )
        raise StatsError(msg)
    if inside.shape != base.shape[1:]:
        msg = f"mask shape {inside.shape} does not match the maps' shape {base.shape[1:]}."
        raise StatsError(msg)
    if base.shape[0] < 2:
        msg = f"a paired t-test needs at least 2 subjects; got {base.shape[0]}."
        raise StatsError(msg)
    diff = chal - base
    usable = inside & np.all(np.isfinite(diff), axis=0)
    n_dropped = int(inside.sum() - usable.sum())
    if n_dropped:
        logger.info("%d mask voxels dropped: not finite in every subject and session", n_dropped)
    if not usable.any():
        msg = (
            "the analysis mask is empty: no voxel is inside the mask and finite in every "
            "subject's baseline and challenge maps."
        )
        raise StatsError(msg)
    return diff, usable


def paired_t(
    baseline: ArrayLike,
    challenge: ArrayLike,
    mask: ArrayLike,
    variance_regularisation: bool = True,
) -> PairedTResult:
    """Voxelwise paired t-test of challenge vs baseline, as SPM's one-sample t on differences.

    With ``d = challenge - baseline`` (n subjects): ``mean = Σd / n``, ``ResMS = Σ(d - mean)² /
    (n - 1)`` and ``t = mean / sqrt(ResMS' / n)`` with ``ResMS' = ResMS + 1e-3 max_mask(ResMS)``
    when ``variance_regularisation`` is on (SPM12's default for PET) and ``ResMS' = ResMS``
    otherwise (then t equals :func:`scipy.stats.ttest_rel`).

    Parameters
    ----------
    baseline, challenge : (n, X, Y, Z) array_like
        One map per subject and session (e.g. BPND), same subject order.
    mask : (X, Y, Z) array_like of bool
        Analysis mask; voxels not finite in every map are dropped from it.
    variance_regularisation : bool
        Apply SPM's PET variance regularisation (default True).

    Returns
    -------
    PairedTResult
        t map, df, standardised residuals, ResMS, mean difference and the mask used.
    """
    diff, usable = paired_differences(baseline, challenge, mask)
    n = diff.shape[0]
    d = diff[:, usable]  # (n, V)
    mean = d.mean(axis=0)
    resid = d - mean
    res_ms = np.einsum("ij,ij->j", resid, resid) / (n - 1)
    # variances at the rounding-noise level of the differences count as zero
    noise_floor = (ROUNDING_ULPS * np.finfo(np.float64).eps * np.abs(d).max(axis=0)) ** 2
    zero_var = res_ms <= noise_floor
    floor = SPM_PET_VARIANCE_FRACTION * float(res_ms.max()) if variance_regularisation else 0.0
    variance = np.where(zero_var, 0.0, res_ms) + floor
    bad = variance <= 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        t_vals = np.where(bad, np.nan, mean / np.sqrt(variance / n))
        std_res = np.where(zero_var, np.nan, resid / np.sqrt(res_ms))
    if bad.any():
        logger.warning("%d mask voxels have zero variance of the differences: t is NaN", bad.sum())

    shape = usable.shape
    t_map = _unmask(t_vals, usable)
    res_map = np.full((n, *shape), np.nan, dtype=np.float64)
    res_map[:, usable] = std_res
    degenerate = np.zeros(shape, dtype=bool)
    degenerate[usable] = bad
    return PairedTResult(
        t_map=t_map,
        df=n - 1,
        standardized_residuals=res_map,
        res_ms=_unmask(res_ms, usable),
        mean_difference=_unmask(mean, usable),
        mask=usable,
        degenerate=degenerate,
        variance_floor=floor,
        n_subjects=n,
    )


def _unmask(values: NDArray[np.float64], mask: NDArray[np.bool_]) -> NDArray[np.float64]:
    out = np.full(mask.shape, np.nan, dtype=np.float64)
    out[mask] = values
    return out
