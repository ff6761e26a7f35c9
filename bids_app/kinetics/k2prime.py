"""Estimation of the reference efflux rate k2' for SRTM2.

k2' belongs to the reference tissue (one value per scan), so it is estimated once and then
fixed in SRTM2 (Wu & Carson 2002, JCBFM 22:1440). Two estimators per session:

``method="roi"``
    SRTM by nonlinear least squares on one high-binding ROI TAC (the pipeline passes the
    striatum); ``k2' = k2/R1`` with an asymptotic standard error (delta method).
``method="voxel_median"``
    Voxelwise SRTM by basis functions; the median of ``k2/R1`` over voxels with a valid fit,
    ``BPnd > 0`` and the best basis not at the edge of the k2a range. Wu & Carson found the
    median unbiased where the mean is biased by 2-6 %. The spread is reported as the
    interquartile range, and the standard error of the median as
    ``1.253 · (IQR / 1.349) / sqrt(n)`` (normal approximation).

One k2' per participant (:func:`estimate_participant_k2prime`)
--------------------------------------------------------------
Independent k2' errors in the two sessions of a participant move both sessions' R1 (a 10 %
k2' error moves R1 by 2.5-5 % where BPnd is 2-3). A shared k2' removes that noise: the mean of
the per-session estimates or a joint SRTM fit with one k2' (:func:`fit_srtm_shared_k2prime`).
``benchmarks/bench_participant_k2prime.py`` compares them on pairs simulated with the app's
generator (2TC targets with k4 = 0.25 /min and 4 % blood volume, a different plasma input
per session, striatal BPnd -10 %, R1 unchanged; 200 pairs per row). Striatal SRTM2 R1 change
(mean +- SD over participants, %; truth 0) and the paired t it reaches with 10 participants:

===========================  ===================  ===================  ===================
scenario (SD of k2' ratio)   per_session          mean                 joint
===========================  ===================  ===================  ===================
generator noise (1.1 %)      +0.22 +- 0.57 t 1.2  -0.93 +- 0.32 t -9   -0.93 +- 0.32 t -9
noise x3 (2.9 %)             +0.31 +- 1.57 t 0.6  -0.96 +- 0.76 t -4   -0.96 +- 0.76 t -4
noise x10 (8.8 %)            +0.78 +- 4.92 t 0.5  -0.83 +- 2.63 t -1   -0.84 +- 2.63 t -1
5 % flow per session (5.7 %) +0.18 +- 0.67 t 0.9  -0.64 +- 2.83 t -0.7 -0.64 +- 2.82 t -0.7
===========================  ===================  ===================  ===================

The SD of k2' ratio is the scatter of the per-session estimates (session 2 / session 1 - 1).

A shared k2' is not free. SRTM's k2' from a 2TC striatum depends on BPnd (-2 % for the -10 %
BPnd change; from the slow k4, not the blood volume: -0.2 % with k4 = 1 /min), so forcing one
k2' on both sessions turns it into a systematic striatal R1 decrease of ~0.9 % (a false
positive at n = 10), and a shared k2' cannot follow a true between-session change (global
flow). It has the smaller R1 variance, but its bias dominates until the per-session estimates
scatter by ~9 %. ``per_session`` is therefore the default; ``mean`` is for noisy k2' estimates
(per-session standard errors of 5 % or more, see ``K2PrimeEstimate.se``); ``joint`` gives the
same values as ``mean`` (to 0.01 %) at the cost of a joint fit. BPnd change: -9.97 % per
session against -10.12 % with a shared k2' (truth -10 %), same SD (0.23 %).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import least_squares

from bids_app.errors import ModelError
from bids_app.kinetics.basis import DEFAULT_K2A_RANGE_PER_MIN, DEFAULT_N_BASIS
from bids_app.kinetics.model import (
    FloatArray,
    ReferenceTissueFit,
    Sampling,
    build_grid,
    check_reference,
    check_sampling,
    check_tac,
    make_timing,
)
from bids_app.kinetics.srtm import SRTM_BOUNDS, SrtmCurves, fit_srtm
from bids_app.kinetics.weights import resolve_weights

logger = logging.getLogger(__name__)

K2PrimeMethod = Literal["roi", "voxel_median"]
_IQR_TO_SD = 1.349
_MEDIAN_SE_FACTOR = 1.2533
#: Bounds of the shared k2' of the joint fit, 1/min.
_K2PRIME_BOUNDS = (1e-3, 2.0)
_DEFAULT_K2PRIME_START = 0.15
_BOUND_RTOL = 1e-6
#: Floor of a session's residual variance relative to the TAC's mean square (noise-free data).
_NOISE_FLOOR = 1e-12


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
        return _from_voxels(fit, sampling)
    msg = f"k2' method must be 'roi' or 'voxel_median'; got {method!r}"
    raise ModelError(msg)


def _from_roi(
    frame_start: ArrayLike,
    frame_end: ArrayLike,
    ref_tac: ArrayLike,
    tac: FloatArray,
    weights: str | ArrayLike | None,
    sampling: Sampling,
) -> K2PrimeEstimate:
    fit = fit_srtm(frame_start, frame_end, ref_tac, tac, weights, method="nls", sampling=sampling)
    return _estimate_from_roi_fit(fit, sampling)


def _estimate_from_roi_fit(fit: ReferenceTissueFit, sampling: Sampling) -> K2PrimeEstimate:
    """K2PrimeEstimate of a 1-D NLS SRTM fit (unusable when failed or on a bound)."""
    se = float("nan") if fit.se is None else fit.se.get("k2prime", float("nan"))
    status = bool(fit.status) and not bool(fit.at_bound)
    if not status:
        logger.warning(
            "k2' from the ROI fit is not usable (status=%s, at_bound=%s)",
            fit.status,
            fit.at_bound,
        )
    return K2PrimeEstimate(
        k2prime=_as_float(fit.k2prime) if status else float("nan"),
        method="roi",
        n_voxels=1,
        n_candidates=1,
        se=se,
        iqr=float("nan"),
        status=status,
        bp_nd=_as_float(fit.bp_nd),
        r1=_as_float(fit.r1),
        sampling=sampling,
    )


def _from_voxels(fit: ReferenceTissueFit, sampling: Sampling) -> K2PrimeEstimate:
    """k2' as the median over voxels with a valid, interior fit and BPnd > 0."""
    k2prime = np.asarray(fit.k2prime, dtype=np.float64)
    bp_nd = np.asarray(fit.bp_nd, dtype=np.float64)
    r1 = np.asarray(fit.r1, dtype=np.float64)
    status = np.asarray(fit.status, dtype=bool)
    at_bound = np.asarray(fit.at_bound, dtype=bool)
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


def _as_float(value: float | FloatArray) -> float:
    """A 1-D fit attribute as a Python float."""
    return float(np.asarray(value).reshape(-1)[0])


# --------------------------------------------------------------------------------------------
# One k2' per participant
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionTACs:
    """The ROI TACs of one session that enter a participant-level k2' estimate.

    Attributes
    ----------
    frame_start_s, frame_end_s : (n_frames,) ndarray
        Frame start and end times, seconds from the injection (sessions may differ).
    ref_tac : (n_frames,) ndarray
        Reference-region TAC.
    roi_tac : (n_frames,) ndarray
        High-binding ROI TAC (the striatum), same units as ``ref_tac``.
    weights : None, {"duration", "uniform"} or (n_frames,) ndarray, default None
        Frame weights of this session (default duration-based).
    label : str, default ""
        Session label used in messages, e.g. ``"ses-baseline"``.
    """

    frame_start_s: FloatArray
    frame_end_s: FloatArray
    ref_tac: FloatArray
    roi_tac: FloatArray
    weights: str | FloatArray | None = None
    label: str = ""

    def __post_init__(self) -> None:
        for name in ("frame_start_s", "frame_end_s", "ref_tac", "roi_tac"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.float64))
        if self.roi_tac.ndim != 1:
            msg = (
                f"{self._where()}roi_tac must be a 1-D ROI TAC of n_frames values; got shape "
                f"{self.roi_tac.shape}. Average the ROI voxels first."
            )
            raise ModelError(msg)

    def _where(self) -> str:
        return f"{self.label}: " if self.label else ""


@dataclass(frozen=True)
class SharedK2PrimeFit:
    """Joint SRTM fit of several sessions of one participant with one shared k2'.

    Attributes
    ----------
    k2prime : float
        The shared k2', 1/min (NaN when the fit failed).
    k2prime_se : float
        Its asymptotic standard error, 1/min.
    r1, k2, bp_nd : tuple of float
        Per-session R1 (unitless), k2 = R1·k2' (1/min) and BPnd (unitless) of the ROI.
    noise_sd : tuple of float
        Per-session residual SD of the separate SRTM fits (data units), which weights each
        session's residuals by its own noise level (NaN when a TAC was unusable).
    fitted : tuple of (n_frames,) ndarray
        Model ROI TAC of each session (empty when the fit failed).
    status : bool
        True when the joint fit converged to a valid solution.
    at_bound : bool
        True when a parameter sits on its bound.
    """

    k2prime: float
    k2prime_se: float
    r1: tuple[float, ...]
    k2: tuple[float, ...]
    bp_nd: tuple[float, ...]
    noise_sd: tuple[float, ...]
    fitted: tuple[FloatArray, ...]
    status: bool
    at_bound: bool


ParticipantK2PrimeMethod = Literal["joint", "mean", "per_session"]
PARTICIPANT_K2PRIME_METHODS: tuple[str, ...] = ("joint", "mean", "per_session")


@dataclass(frozen=True)
class ParticipantK2Prime:
    """The k2' to fix in each session's SRTM2 fit, and how it was obtained.

    Attributes
    ----------
    method : {"joint", "mean", "per_session"}
        Estimator actually used (differs from ``requested_method`` after a fallback).
    requested_method : {"joint", "mean", "per_session"}
        Estimator asked for.
    k2prime : tuple of float
        k2' for each session, 1/min (one shared value for ``joint`` and ``mean``).
    se : tuple of float
        Standard error of each session's k2', 1/min.
    status : bool
        True when every session has a usable k2'.
    per_session : tuple of K2PrimeEstimate
        The separate SRTM ROI estimates of every session (always computed).
    joint : SharedK2PrimeFit or None
        The joint fit (``requested_method="joint"``).
    note : str
        Why a fallback was taken, or ``""``.
    """

    method: str
    requested_method: str
    k2prime: tuple[float, ...]
    se: tuple[float, ...]
    status: bool
    per_session: tuple[K2PrimeEstimate, ...]
    joint: SharedK2PrimeFit | None
    note: str

    def as_dict(self, session: int) -> dict[str, float | str | bool | list[float]]:
        """Sidecar fields of one session (index into the sessions given)."""
        return {
            "k2prime": self.k2prime[session],
            "k2prime_se": self.se[session],
            "k2prime_method": f"participant_{self.method}",
            "k2prime_requested_method": f"participant_{self.requested_method}",
            "k2prime_status": self.status,
            "k2prime_per_session": [e.k2prime for e in self.per_session],
            "k2prime_note": self.note,
        }


def estimate_participant_k2prime(
    sessions: Sequence[SessionTACs],
    method: ParticipantK2PrimeMethod = "per_session",
    *,
    sampling: Sampling = "frame_average",
) -> ParticipantK2Prime:
    """The k2' of every session of a participant: per session, or one shared value.

    See the module docstring for the measurement behind the default: a shared k2' removes
    independent k2' noise from the R1 change but adds a systematic one where BPnd changes.

    Parameters
    ----------
    sessions : sequence of SessionTACs
        One entry per session (>= 1), each with its own frame times, reference and ROI TACs.
    method : {"per_session", "mean", "joint"}, default "per_session"
        ``"per_session"``: each session keeps its own SRTM estimate. ``"mean"``: all sessions
        use the mean of their separate estimates. ``"joint"``: all sessions use the k2' of a
        joint SRTM fit with one shared k2' and separate R1, k2 and BPnd per session
        (:func:`fit_srtm_shared_k2prime`).
    sampling : {"frame_average", "midpoint"}, default "frame_average"
        Model sampling of the SRTM fits.

    Returns
    -------
    ParticipantK2Prime
        A failed joint fit falls back to the mean, and a session whose own fit failed is left
        out of the mean; both are logged and recorded in ``note``. ``status`` is False (and
        k2' NaN) when no session gives a usable estimate.

    Raises
    ------
    ModelError
        No sessions, an unknown method, or invalid TACs/frame times (naming the session).
    """
    if method not in PARTICIPANT_K2PRIME_METHODS:
        msg = (
            f"participant k2' method must be one of {PARTICIPANT_K2PRIME_METHODS}; got {method!r}"
        )
        raise ModelError(msg)
    prepared = _prepare_sessions(sessions, sampling)
    estimates = tuple(_estimate_from_roi_fit(p.fit, sampling) for p in prepared)
    n = len(prepared)
    nan = float("nan")
    if method == "per_session":
        return ParticipantK2Prime(
            method=method,
            requested_method=method,
            k2prime=tuple(e.k2prime for e in estimates),
            se=tuple(e.se for e in estimates),
            status=all(e.status for e in estimates),
            per_session=estimates,
            joint=None,
            note="",
        )
    notes: list[str] = []
    joint = None
    if method == "joint":
        joint = _fit_shared(prepared)
        if joint.status and not joint.at_bound:
            value = (joint.k2prime,) * n
            return ParticipantK2Prime(
                "joint", method, value, (joint.k2prime_se,) * n, True, estimates, joint, ""
            )
        notes.append(
            f"the joint SRTM fit failed (status={joint.status}, at_bound={joint.at_bound}); "
            "used the mean of the per-session estimates"
        )
    usable = [e for e in estimates if e.status]
    failed = [p.label for p, e in zip(prepared, estimates, strict=True) if not e.status]
    if failed and usable:
        notes.append(f"session(s) {', '.join(failed)} gave no usable k2' and were left out")
    note = "; ".join(notes)
    if note:
        logger.warning("participant k2': %s", note)
    if not usable:
        return ParticipantK2Prime(
            "mean", method, (nan,) * n, (nan,) * n, False, estimates, joint, note
        )
    mean = float(np.mean([e.k2prime for e in usable]))
    se = float(np.sqrt(np.sum([e.se**2 for e in usable])) / len(usable))
    return ParticipantK2Prime("mean", method, (mean,) * n, (se,) * n, True, estimates, joint, note)


def fit_srtm_shared_k2prime(
    sessions: Sequence[SessionTACs], *, sampling: Sampling = "frame_average"
) -> SharedK2PrimeFit:
    """Joint SRTM fit of several sessions with one shared k2' (bounded NLS).

    The parameters are k2' (shared) and R1, BPnd per session (k2 = R1·k2'). Each session's
    weighted residuals are divided by its own residual SD from a separate SRTM fit, so that
    a session with more counts (a larger injected dose) weighs as much as its noise allows and
    no more. Separate fits also give the starting values.

    Parameters
    ----------
    sessions : sequence of SessionTACs
        One entry per session (>= 1).
    sampling : {"frame_average", "midpoint"}, default "frame_average"
        Model sampling.

    Returns
    -------
    SharedK2PrimeFit
        NaN values and ``status`` False when the fit fails.

    Raises
    ------
    ModelError
        No sessions, or invalid TACs/frame times (naming the session).
    """
    return _fit_shared(_prepare_sessions(sessions, sampling))


@dataclass(frozen=True)
class _PreparedSession:
    label: str
    curves: SrtmCurves
    roi: FloatArray
    fit: ReferenceTissueFit


def _prepare_sessions(
    sessions: Sequence[SessionTACs], sampling: Sampling
) -> list[_PreparedSession]:
    """Validate every session and fit SRTM to each separately."""
    if len(sessions) == 0:
        raise ModelError("a participant-level k2' needs at least one session; got none")
    out = []
    for i, s in enumerate(sessions):
        label = s.label or f"session {i}"
        try:
            timing = make_timing(s.frame_start_s, s.frame_end_s)
            ref = check_reference(s.ref_tac, timing.n_frames)
            roi = np.asarray(check_tac(s.roi_tac, timing.n_frames), dtype=np.float64)
            weights = resolve_weights(s.weights, timing)
            grid = build_grid(timing, check_sampling(sampling))
        except ModelError as exc:
            raise ModelError(f"{label}: {exc}") from None
        fit = fit_srtm(
            s.frame_start_s, s.frame_end_s, ref, roi, weights, method="nls", sampling=sampling
        )
        out.append(_PreparedSession(label, SrtmCurves.build(grid, ref, weights), roi, fit))
    return out


def _is_usable(tac: FloatArray) -> bool:
    """All values finite and at least one non-zero."""
    return bool(np.all(np.isfinite(tac)) and np.any(tac != 0))


def _noise_sd(session: _PreparedSession) -> float:
    """Residual SD of the separate fit; the TAC's RMS when that fit failed (floored above 0)."""
    w = session.curves.weights
    mean_square = float(np.sum(w * session.roi**2) / np.count_nonzero(w))
    dof = int(np.count_nonzero(w)) - 3
    rss = _as_float(session.fit.rss)
    variance = rss / dof if bool(session.fit.status) and dof > 0 else mean_square
    return float(np.sqrt(max(variance, _NOISE_FLOOR * mean_square)))


def _failed_shared(n: int, noise_sd: tuple[float, ...], at_bound: bool) -> SharedK2PrimeFit:
    nan = float("nan")
    return SharedK2PrimeFit(
        nan, nan, (nan,) * n, (nan,) * n, (nan,) * n, noise_sd, (), False, at_bound
    )


def _fit_shared(prepared: list[_PreparedSession]) -> SharedK2PrimeFit:
    n = len(prepared)
    unusable = [p.label for p in prepared if not _is_usable(p.roi)]
    if unusable:
        logger.warning(
            "joint SRTM fit skipped: the ROI TAC of %s is all zero or not finite",
            ", ".join(unusable),
        )
        return _failed_shared(n, (float("nan"),) * n, False)
    sd = tuple(_noise_sd(p) for p in prepared)
    scale = [np.sqrt(p.curves.weights) / s for p, s in zip(prepared, sd, strict=True)]
    fits = [p.fit for p in prepared]
    valid_k2p = [_as_float(f.k2prime) for f in fits if bool(f.status)]
    k2p0 = float(np.median(valid_k2p)) if valid_k2p else _DEFAULT_K2PRIME_START
    x0 = [k2p0]
    for f in fits:
        x0 += [_as_float(f.r1), _as_float(f.bp_nd)] if bool(f.status) else [1.0, 1.5]
    lower = np.array([_K2PRIME_BOUNDS[0]] + [SRTM_BOUNDS["R1"][0], SRTM_BOUNDS["BPND"][0]] * n)
    upper = np.array([_K2PRIME_BOUNDS[1]] + [SRTM_BOUNDS["R1"][1], SRTM_BOUNDS["BPND"][1]] * n)
    span = upper - lower
    start = np.clip(np.array(x0), lower + 1e-3 * span, upper - 1e-3 * span)

    def curves_at(x: FloatArray) -> list[FloatArray]:
        k2p = float(x[0])
        return [
            p.curves.curve(float(x[1 + 2 * i]), float(x[1 + 2 * i]) * k2p, float(x[2 + 2 * i]))
            for i, p in enumerate(prepared)
        ]

    def residuals(x: FloatArray) -> FloatArray:
        return np.concatenate(
            [
                c * (model - p.roi)
                for c, model, p in zip(scale, curves_at(x), prepared, strict=True)
            ]
        )

    res = least_squares(
        residuals,
        start,
        bounds=(lower, upper),
        method="trf",
        x_scale="jac",
        ftol=1e-12,
        xtol=1e-12,
        gtol=1e-12,
        max_nfev=4000,
    )
    x = np.asarray(res.x, dtype=np.float64)
    r1 = tuple(float(v) for v in x[1::2])
    bp = tuple(float(v) for v in x[2::2])
    ok = bool(res.status > 0 and np.all(np.isfinite(x)) and x[0] > 0 and min(r1) > 0)
    at_bound = bool(
        np.any(res.active_mask != 0)
        or np.any(x - lower <= _BOUND_RTOL * span)
        or np.any(upper - x <= _BOUND_RTOL * span)
    )
    if not ok:
        logger.warning("joint SRTM fit with a shared k2' failed: %s", res.message)
        return _failed_shared(n, sd, at_bound)
    dof = int(sum(np.count_nonzero(p.curves.weights) for p in prepared)) - x.size
    jac = np.asarray(res.jac, dtype=np.float64)
    se = float("nan")
    if dof > 0:
        try:
            cov = np.linalg.inv(jac.T @ jac) * (2.0 * float(res.cost) / dof)
            se = float(np.sqrt(max(cov[0, 0], 0.0)))
        except np.linalg.LinAlgError:
            logger.warning("joint SRTM fit: singular Jacobian, no standard error for k2'")
    return SharedK2PrimeFit(
        k2prime=float(x[0]),
        k2prime_se=se,
        r1=r1,
        k2=tuple(v * float(x[0]) for v in r1),
        bp_nd=bp,
        noise_sd=sd,
        fitted=tuple(curves_at(x)),
        status=True,
        at_bound=at_bound,
    )
