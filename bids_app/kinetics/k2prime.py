"""Estimation of the reference efflux rate k2' for SRTM2.

k2' belongs to the reference tissue (one value per scan), so it is estimated once and then
fixed in SRTM2 (Wu & Carson 2002, JCBFM 22:1440). Two estimators:

``method="roi"``
    SRTM by nonlinear least squares on one high-binding ROI TAC (the pipeline passes the
    striatum); ``k2' = k2/R1`` with an asymptotic standard error (delta method).
``method="voxel_median"``
    Voxelwise SRTM by basis functions; the median of ``k2/R1`` over voxels with a valid fit,
    ``BPnd > 0`` and the best basis not at the edge of the k2a range. Wu & Carson found the
    median unbiased where the mean is biased by 2-6 %. The spread is reported as the
    interquartile range, and the standard error of the median as
    ``1.253 · (IQR / 1.349) / sqrt(n)`` (normal approximation).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from bids_app.errors import ModelError
from bids_app.kinetics.basis import DEFAULT_K2A_RANGE_PER_MIN, DEFAULT_N_BASIS
from bids_app.kinetics.model import Sampling
from bids_app.kinetics.srtm import fit_srtm

logger = logging.getLogger(__name__)

K2PrimeMethod = Literal["roi", "voxel_median"]
_IQR_TO_SD = 1.349
_MEDIAN_SE_FACTOR = 1.2533


@dataclass(frozen=True)
class K2PrimeEstimate:
    """An estimate of the reference efflux rate k2'.

    Attributes
    ----------
    k2prime : float
        k2', 1/min; NaN when no estimate was possible (``status`` False).
    method : {"roi", "voxel_median"}
        Estimator used.
    n_voxels : int
        Voxels that entered the median (``voxel_median``), 1 for ``roi``.
    n_candidates : int
        Voxels given (``voxel_median``), 1 for ``roi``.
    se : float
        Standard error of k2', 1/min (asymptotic for ``roi``; approximate for the median).
    iqr : float
        Interquartile range of voxel k2' values, 1/min (NaN for ``roi``).
    status : bool
        True when the estimate is usable.
    bp_nd : float
        BPnd of the ROI fit (``roi``) or median BPnd of the voxels used (``voxel_median``).
    r1 : float
        R1 of the ROI fit or median R1 of the voxels used.
    sampling : str
        Model sampling used by the underlying SRTM fits.
    """

    k2prime: float
    method: str
    n_voxels: int
    n_candidates: int
    se: float
    iqr: float
    status: bool
    bp_nd: float
    r1: float
    sampling: str

    def as_dict(self) -> dict[str, float | int | str | bool]:
        """Plain dictionary, e.g. for a JSON sidecar."""
        return {
            "k2prime": self.k2prime,
            "k2prime_method": self.method,
            "k2prime_n_voxels": self.n_voxels,
            "k2prime_se": self.se,
            "k2prime_iqr": self.iqr,
            "k2prime_status": self.status,
        }


def estimate_k2prime(
    frame_start: ArrayLike,
    frame_end: ArrayLike,
    ref_tac: ArrayLike,
    tac: ArrayLike,
    method: K2PrimeMethod = "roi",
    weights: str | ArrayLike | None = None,
    *,
    sampling: Sampling = "frame_average",
    k2a_range_per_min: tuple[float, float] = DEFAULT_K2A_RANGE_PER_MIN,
    n_basis: int = DEFAULT_N_BASIS,
) -> K2PrimeEstimate:
    """Estimate k2' from a high-binding ROI TAC or from voxels (median of voxelwise SRTM).

    Parameters
    ----------
    frame_start, frame_end : (n_frames,) array_like
        Frame start and end times, seconds from the injection.
    ref_tac : (n_frames,) array_like
        Reference-region TAC.
    tac : (n_frames,) or (n_frames, n_voxels) array_like
        1-D ROI TAC for ``"roi"``; 2-D voxel TACs for ``"voxel_median"``.
    method : {"roi", "voxel_median"}, default "roi"
        Estimator (see the module docstring).
    weights : None, {"duration", "uniform"} or (n_frames,) array_like, default None
        Frame weights (default duration-based).
    sampling : {"frame_average", "midpoint"}, default "frame_average"
        Model sampling of the SRTM fits.
    k2a_range_per_min : (float, float), default (0.006, 0.6)
        Basis range for ``voxel_median``, 1/min.
    n_basis : int, default 100
        Number of basis functions for ``voxel_median``.

    Returns
    -------
    K2PrimeEstimate
        With NaN ``k2prime`` and ``status`` False when the fit failed or no voxel qualified.

    Raises
    ------
    ModelError
        Unknown method, or a TAC of the wrong dimensionality for the method.
    """
    arr = np.asarray(tac)
    if method == "roi":
        if arr.ndim != 1:
            msg = (
                f"method='roi' needs a 1-D ROI TAC of n_frames values; got shape {arr.shape}. "
                "Average the ROI voxels first, or use method='voxel_median'."
            )
            raise ModelError(msg)
        return _from_roi(frame_start, frame_end, ref_tac, arr, weights, sampling)
    if method == "voxel_median":
        if arr.ndim != 2:
            msg = (
                "method='voxel_median' needs voxel TACs of shape (n_frames, n_voxels); got "
                f"shape {arr.shape}"
            )
            raise ModelError(msg)
        fit = fit_srtm(
            frame_start,
            frame_end,
            ref_tac,
            arr,
            weights,
            method="basis",
            sampling=sampling,
            k2a_range_per_min=k2a_range_per_min,
            n_basis=n_basis,
            return_fitted=False,
        )
        return _from_voxels(fit.k2prime, fit.bp_nd, fit.r1, fit.status, fit.at_bound, sampling)  # type: ignore[arg-type]
    msg = f"k2' method must be 'roi' or 'voxel_median'; got {method!r}"
    raise ModelError(msg)


def _from_roi(
    frame_start: ArrayLike,
    frame_end: ArrayLike,
    ref_tac: ArrayLike,
    tac: np.ndarray,  # type: ignore[type-arg]
    weights: str | ArrayLike | None,
    sampling: Sampling,
) -> K2PrimeEstimate:
    fit = fit_srtm(frame_start, frame_end, ref_tac, tac, weights, method="nls", sampling=sampling)
    se = float("nan") if fit.se is None else fit.se.get("k2prime", float("nan"))
    status = bool(fit.status) and not bool(fit.at_bound)
    if not status:
        logger.warning(
            "k2' from the ROI fit is not usable (status=%s, at_bound=%s)",
            fit.status,
            fit.at_bound,
        )
    return K2PrimeEstimate(
        k2prime=float(fit.k2prime) if status else float("nan"),
        method="roi",
        n_voxels=1,
        n_candidates=1,
        se=se,
        iqr=float("nan"),
        status=status,
        bp_nd=float(fit.bp_nd),
        r1=float(fit.r1),
        sampling=sampling,
    )


def _from_voxels(
    k2prime: np.ndarray,  # type: ignore[type-arg]
    bp_nd: np.ndarray,  # type: ignore[type-arg]
    r1: np.ndarray,  # type: ignore[type-arg]
    status: np.ndarray,  # type: ignore[type-arg]
    at_bound: np.ndarray,  # type: ignore[type-arg]
    sampling: Sampling,
) -> K2PrimeEstimate:
    with np.errstate(invalid="ignore"):
        use = status & ~at_bound & (bp_nd > 0) & np.isfinite(k2prime) & (k2prime > 0)
    n_use = int(np.count_nonzero(use))
    nan = float("nan")
    if n_use == 0:
        logger.warning(
            "k2' voxel median: none of %d voxels has a valid SRTM fit with BPnd > 0",
            k2prime.size,
        )
        return K2PrimeEstimate(
            nan, "voxel_median", 0, k2prime.size, nan, nan, False, nan, nan, sampling
        )
    values = k2prime[use]
    q25, median, q75 = np.percentile(values, [25, 50, 75])
    iqr = float(q75 - q25)
    se = _MEDIAN_SE_FACTOR * (iqr / _IQR_TO_SD) / np.sqrt(n_use)
    logger.info("k2' voxel median %.4g /min from %d of %d voxels", median, n_use, k2prime.size)
    return K2PrimeEstimate(
        k2prime=float(median),
        method="voxel_median",
        n_voxels=n_use,
        n_candidates=int(k2prime.size),
        se=float(se),
        iqr=iqr,
        status=True,
        bp_nd=float(np.median(bp_nd[use])),
        r1=float(np.median(r1[use])),
        sampling=sampling,
    )
