"""SRTM and SRTM2 fits for ROI TACs (nonlinear least squares) and voxels (basis functions).

* SRTM: Lammertsma & Hume 1996 (NeuroImage 4:153); basis functions: Gunn et al. 1997
  (NeuroImage 6:279).
* SRTM2: Wu & Carson 2002 (JCBFM 22:1440): SRTM with the reference efflux ``k2' = k2/R1``
  fixed (one value per scan), which stabilises voxel fits.

Conventions: frame times in **seconds** from the injection (PET-BIDS ``FrameTimesStart`` and
``FrameTimesStart + FrameDuration``), converted once to minutes; rate constants in **1/min**.
By default the model is compared with the data **averaged over each frame** (exactly, see
:mod:`bids_app.kinetics.model`); ``sampling="midpoint"`` samples it at the frame mid-times like
kinfitr/PMOD. By default frames are weighted by their duration (:mod:`bids_app.kinetics.weights`).

A 1-D ``tac`` is fitted by bounded nonlinear least squares (``scipy.optimize.least_squares``,
trust-region reflective) started from a basis-function solution; a 2-D ``tac`` of shape
(n_frames, n_voxels) by the basis-function method, all voxels at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import least_squares

from bids_app.errors import ModelError
from bids_app.kinetics.basis import (
    DEFAULT_CHUNK_VOXELS,
    DEFAULT_K2A_RANGE_PER_MIN,
    DEFAULT_N_BASIS,
    BasisSet,
    BasisSolution,
    basis_rates,
    make_basis,
    solve_srtm2_basis,
    solve_srtm_basis,
    srtm2_k2a_range,
)
from bids_app.kinetics.model import (
    FloatArray,
    FrameGrid,
    ReferenceTissueFit,
    Sampling,
    bool_or_array,
    build_grid,
    check_k2prime,
    check_reference,
    check_sampling,
    check_tac,
    exp_convolution,
    float_or_array,
    make_timing,
)
from bids_app.kinetics.weights import resolve_weights

logger = logging.getLogger(__name__)

Method = Literal["nls", "basis"]
_METHOD_BY_NAME: dict[str, Method] = {"nls": "nls", "basis": "basis"}
METHODS: tuple[str, ...] = tuple(_METHOD_BY_NAME)

#: Bounds of the NLS parameters: R1 (unitless), k2 (1/min), BPnd (unitless).
SRTM_BOUNDS: dict[str, tuple[float, float]] = {
    "R1": (0.0, 10.0),
    "k2": (1e-4, 5.0),
    "BPND": (-0.9, 30.0),
}
#: Range of the basis functions used to start the NLS fits (wider than the voxel default).
NLS_START_K2A_RANGE_PER_MIN: tuple[float, float] = (1e-3, 3.0)
_NLS_START_N_BASIS = 200
_BOUND_RTOL = 1e-6


@dataclass(frozen=True)
class _Prepared:
    """Validated inputs of one fit."""

    grid: FrameGrid
    ref: FloatArray
    tac: NDArray[np.floating]
    weights: FloatArray
    method: Method


def _prepare(
    frame_start: ArrayLike,
    frame_end: ArrayLike,
    ref_tac: ArrayLike,
    tac: ArrayLike,
    weights: str | ArrayLike | None,
    method: str | None,
    sampling: str,
) -> _Prepared:
    timing = make_timing(frame_start, frame_end)
    ref = check_reference(ref_tac, timing.n_frames)
    data = check_tac(tac, timing.n_frames)
    w = resolve_weights(weights, timing)
    if method is None:
        method = "nls" if data.ndim == 1 else "basis"
    if method not in _METHOD_BY_NAME:
        raise ModelError(f"method must be one of {METHODS} or None; got {method!r}")
    grid = build_grid(timing, check_sampling(sampling))
    return _Prepared(grid, ref, data, w, _METHOD_BY_NAME[method])


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------
def fit_srtm(
    frame_start: ArrayLike,
    frame_end: ArrayLike,
    ref_tac: ArrayLike,
    tac: ArrayLike,
    weights: str | ArrayLike | None = None,
    *,
    method: Method | None = None,
    sampling: Sampling = "frame_average",
    k2a_range_per_min: tuple[float, float] = DEFAULT_K2A_RANGE_PER_MIN,
    n_basis: int = DEFAULT_N_BASIS,
    chunk_voxels: int = DEFAULT_CHUNK_VOXELS,
    return_fitted: bool = True,
) -> ReferenceTissueFit:
    """Fit the simplified reference tissue model (SRTM) to one TAC or to many voxels.

    Parameters
    ----------
    frame_start, frame_end : (n_frames,) array_like
        Frame start and end times, seconds from the injection.
    ref_tac : (n_frames,) array_like
        Reference-region TAC (finite, not all zero), same units as ``tac``.
    tac : (n_frames,) or (n_frames, n_voxels) array_like
        Target TAC(s); float32 voxel data are processed chunk by chunk without a full copy.
    weights : None, {"duration", "uniform"} or (n_frames,) array_like, default None
        Frame weights; ``None`` means duration-based (``w_i ∝ Δt_i``).
    method : {"nls", "basis"} or None, default None
        ``None`` picks NLS for a 1-D TAC and basis functions for 2-D. NLS on 2-D loops over
        voxels (slow; for a few ROI TACs only).
    sampling : {"frame_average", "midpoint"}, default "frame_average"
        Compare the model with frame averages or with mid-time values.
    k2a_range_per_min : (float, float), default (0.006, 0.6)
        Range of the log-spaced basis functions, 1/min (basis method).
    n_basis : int, default 100
        Number of basis functions (basis method).
    chunk_voxels : int, default 4096
        Voxels per vectorised block (basis method).
    return_fitted : bool, default True
        Return the model TACs in ``fitted``.

    Returns
    -------
    ReferenceTissueFit
        ``bp_nd, r1, k2, k2a`` and ``k2prime = k2/R1`` (floats for 1-D, arrays for 2-D).

    Raises
    ------
    ModelError
        Invalid frame times, lengths, reference TAC, weights or options.
    """
    prep = _prepare(frame_start, frame_end, ref_tac, tac, weights, method, sampling)
    if prep.method == "basis":
        rates = basis_rates(k2a_range_per_min, n_basis)
        basis = make_basis(prep.grid, prep.ref, rates)
        sol = solve_srtm_basis(
            basis,
            _as_2d(prep.tac),
            prep.weights,
            chunk_voxels=chunk_voxels,
            return_fitted=return_fitted,
        )
        return _from_basis("SRTM", sol, None, prep, (rates[0], rates[-1]), rates.size)
    return _nls_over_columns(prep, None, return_fitted)


def fit_srtm2(
    frame_start: ArrayLike,
    frame_end: ArrayLike,
    ref_tac: ArrayLike,
    tac: ArrayLike,
    k2prime: float,
    weights: str | ArrayLike | None = None,
    *,
    method: Method | None = None,
    sampling: Sampling = "frame_average",
    k2a_range_per_min: tuple[float, float] | None = None,
    n_basis: int = DEFAULT_N_BASIS,
    chunk_voxels: int = DEFAULT_CHUNK_VOXELS,
    return_fitted: bool = True,
) -> ReferenceTissueFit:
    """Fit SRTM2 (SRTM with k2' fixed; Wu & Carson 2002) to one TAC or to many voxels.

    Parameters
    ----------
    frame_start, frame_end : (n_frames,) array_like
        Frame start and end times, seconds from the injection.
    ref_tac : (n_frames,) array_like
        Reference-region TAC (finite, not all zero), same units as ``tac``.
    tac : (n_frames,) or (n_frames, n_voxels) array_like
        Target TAC(s); float32 voxel data are processed chunk by chunk without a full copy.
    k2prime : float
        Reference efflux rate k2', 1/min (from :func:`~bids_app.kinetics.estimate_k2prime`).
    weights : None, {"duration", "uniform"} or (n_frames,) array_like, default None
        Frame weights; ``None`` means duration-based (``w_i ∝ Δt_i``).
    method : {"nls", "basis"} or None, default None
        ``None`` picks NLS (parameters R1, BPnd) for 1-D and basis functions for 2-D.
    sampling : {"frame_average", "midpoint"}, default "frame_average"
        Compare the model with frame averages or with mid-time values.
    k2a_range_per_min : (float, float) or None, default None
        Range of the log-spaced basis functions, 1/min (basis method). ``None`` scales it to
        k2': ``(0.006, max(0.6, 8·k2'))`` (:func:`~bids_app.kinetics.srtm2_k2a_range`), so
        that voxels with a high R1 and BPnd near 0 are not clipped; the range used is in
        ``k2a_range_per_min`` of the result.
    n_basis : int, default 100
        Number of basis functions (basis method).
    chunk_voxels : int, default 4096
        Voxels per vectorised block (basis method).
    return_fitted : bool, default True
        Return the model TACs in ``fitted``.

    Returns
    -------
    ReferenceTissueFit
        ``bp_nd, r1, k2 (= R1·k2'), k2a`` (floats for 1-D, arrays of n_voxels for 2-D) and
        ``k2prime`` (the fixed value; broadcast to n_voxels for 2-D).

    Raises
    ------
    ModelError
        Invalid frame times, lengths, reference TAC, k2prime, weights or options.
    """
    k2p = check_k2prime(k2prime)
    prep = _prepare(frame_start, frame_end, ref_tac, tac, weights, method, sampling)
    if prep.method == "basis":
        k2a_range = srtm2_k2a_range(k2p) if k2a_range_per_min is None else k2a_range_per_min
        rates = basis_rates(k2a_range, n_basis)
        basis = make_basis(prep.grid, prep.ref, rates)
        sol = solve_srtm2_basis(
            basis,
            _as_2d(prep.tac),
            prep.weights,
            k2p,
            chunk_voxels=chunk_voxels,
            return_fitted=return_fitted,
        )
        return _from_basis("SRTM2", sol, k2p, prep, (rates[0], rates[-1]), rates.size)
    return _nls_over_columns(prep, k2p, return_fitted)


# --------------------------------------------------------------------------------------------
# Packaging results
# --------------------------------------------------------------------------------------------
def _as_2d(tac: NDArray[np.floating]) -> NDArray[np.floating]:
    return tac[:, None] if tac.ndim == 1 else tac


def _from_basis(
    model: str,
    sol: BasisSolution,
    k2prime: float | None,
    prep: _Prepared,
    k2a_range: tuple[float, float],
    n_basis: int,
) -> ReferenceTissueFit:
    one_d = prep.tac.ndim == 1
    if k2prime is None:
        with np.errstate(invalid="ignore", divide="ignore"):
            k2p: FloatArray = sol.k2 / sol.r1
    else:
        k2p = np.broadcast_to(np.float64(k2prime), sol.r1.shape)
    fitted = sol.fitted
    if fitted is not None and one_d:
        fitted = fitted[:, 0]
    n_bad = int(np.count_nonzero(~sol.status))
    if n_bad and not one_d:
        logger.info("%s basis fit: %d of %d voxels failed (NaN)", model, n_bad, sol.r1.size)
    return ReferenceTissueFit(
        model=model,
        method="basis",
        sampling=prep.grid.sampling,
        bp_nd=float_or_array(sol.bp_nd, one_d),
        r1=float_or_array(sol.r1, one_d),
        k2=float_or_array(sol.k2, one_d),
        k2a=float_or_array(sol.k2a, one_d),
        k2prime=float_or_array(k2p, one_d),
        status=bool_or_array(sol.status, one_d),
        at_bound=bool_or_array(sol.at_bound, one_d),
        fitted=fitted,
        weights=prep.weights,
        rss=float_or_array(sol.rss, one_d),
        k2a_range_per_min=(float(k2a_range[0]), float(k2a_range[1])),
        n_basis=n_basis,
    )


# --------------------------------------------------------------------------------------------
# Nonlinear least squares (ROI TACs)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _NLSOutcome:
    r1: float
    k2: float
    bp_nd: float
    rss: float
    status: bool
    at_bound: bool
    fitted: FloatArray
    se: dict[str, float] | None


@dataclass(frozen=True)
class SrtmCurves:
    """SRTM model curves against one reference TAC and frame schedule, built once per fit.

    Attributes
    ----------
    grid : FrameGrid
        Breakpoint grid and sampling of the frame schedule.
    ref_grid : (n_grid,) ndarray
        The piecewise-linear reference TAC at the grid breakpoints.
    ref_sampled : (n_frames,) ndarray
        The reference TAC as compared with the frames.
    weights : (n_frames,) ndarray
        Frame weights (mean 1).
    """

    grid: FrameGrid
    ref_grid: FloatArray
    ref_sampled: FloatArray
    weights: FloatArray

    @classmethod
    def build(cls, grid: FrameGrid, ref: FloatArray, weights: FloatArray) -> SrtmCurves:
        """Interpolate the reference TAC once.

        Parameters
        ----------
        grid : FrameGrid
            Frame schedule and sampling.
        ref : (n_frames,) ndarray
            Reference TAC (frame values).
        weights : (n_frames,) ndarray
            Frame weights.
        """
        ref_grid = grid.interp @ ref
        return cls(grid, ref_grid, grid.sample @ ref_grid, weights)

    def curve(self, r1: float, k2: float, bp_nd: float) -> FloatArray:
        """SRTM frame samples, shape (n_frames,), for R1, k2 (1/min) and BPnd (> -1)."""
        k2a = k2 / (1.0 + bp_nd)
        conv = exp_convolution(self.grid, self.ref_grid, np.array([k2a]))[0]
        model: FloatArray = r1 * self.ref_sampled + (k2 - r1 * k2a) * conv
        return model

    def start_values(self, data: FloatArray, k2prime: float | None) -> FloatArray:
        """Starting values of NLS fits from one basis-function solve over a wide k2a range.

        Parameters
        ----------
        data : (n_frames, n) ndarray
            TACs (finite).
        k2prime : float or None
            Fixed k2' (SRTM2), or None (SRTM).

        Returns
        -------
        (n, 3) or (n, 2) ndarray
            (R1, k2, BPnd) for SRTM or (R1, BPnd) for SRTM2; a generic start where the
            basis fit fails.
        """
        rates = basis_rates(NLS_START_K2A_RANGE_PER_MIN, _NLS_START_N_BASIS)
        basis = BasisSet(
            rates_per_min=rates,
            ref_sampled=self.ref_sampled,
            conv=exp_convolution(self.grid, self.ref_grid, rates),
        )
        if k2prime is None:
            sol = solve_srtm_basis(basis, data, self.weights, return_fitted=False)
            start = np.stack([sol.r1, sol.k2, sol.bp_nd], axis=1)
            return np.where(sol.status[:, None], start, np.array([1.0, 0.1, 1.5]))
        sol = solve_srtm2_basis(basis, data, self.weights, k2prime, return_fitted=False)
        start = np.stack([sol.r1, sol.bp_nd], axis=1)
        return np.where(sol.status[:, None], start, np.array([1.0, 1.5]))


def _nls_over_columns(
    prep: _Prepared, k2prime: float | None, return_fitted: bool
) -> ReferenceTissueFit:
    """Run the 1-D NLS fit on each column (a single one for a 1-D TAC)."""
    data = np.asarray(_as_2d(prep.tac), dtype=np.float64)
    curves = SrtmCurves.build(prep.grid, prep.ref, prep.weights)
    usable = np.all(np.isfinite(data), axis=0) & np.any(data != 0, axis=0)
    starts = curves.start_values(np.where(usable[None, :], data, 0.0), k2prime)
    outcomes = [
        _nls_one(curves, data[:, j], starts[j], k2prime)
        if usable[j]
        else _skipped_outcome(data.shape[0])
        for j in range(data.shape[1])
    ]
    one_d = prep.tac.ndim == 1
    r1 = np.array([o.r1 for o in outcomes])
    k2 = np.array([o.k2 for o in outcomes])
    bp = np.array([o.bp_nd for o in outcomes])
    with np.errstate(invalid="ignore", divide="ignore"):
        k2a = k2 / (1.0 + bp)
        k2p = k2 / r1 if k2prime is None else np.full(r1.shape, k2prime)
    fitted: NDArray[np.floating] | None = None
    if return_fitted:
        fitted = np.stack([o.fitted for o in outcomes], axis=1).astype(
            np.result_type(prep.tac.dtype, np.float32)
        )
        if one_d:
            fitted = fitted[:, 0]
    return ReferenceTissueFit(
        model="SRTM" if k2prime is None else "SRTM2",
        method="nls",
        sampling=prep.grid.sampling,
        bp_nd=float_or_array(bp, one_d),
        r1=float_or_array(r1, one_d),
        k2=float_or_array(k2, one_d),
        k2a=float_or_array(k2a, one_d),
        k2prime=float_or_array(k2p, one_d),
        status=bool_or_array(np.array([o.status for o in outcomes]), one_d),
        at_bound=bool_or_array(np.array([o.at_bound for o in outcomes]), one_d),
        fitted=fitted,
        weights=prep.weights,
        rss=float_or_array(np.array([o.rss for o in outcomes]), one_d),
        se=outcomes[0].se if one_d else None,
    )


def _failed_outcome(n_frames: int) -> _NLSOutcome:
    nan = float("nan")
    return _NLSOutcome(nan, nan, nan, nan, False, False, np.full(n_frames, nan), None)


def _skipped_outcome(n_frames: int) -> _NLSOutcome:
    logger.warning("NLS fit skipped: the TAC is all zero or has NaN/Inf values")
    return _failed_outcome(n_frames)


def _nls_one(
    curves: SrtmCurves, y: FloatArray, x0: FloatArray, k2prime: float | None
) -> _NLSOutcome:
    """Bounded NLS of SRTM (k2prime None) or SRTM2 on one finite, non-zero TAC."""
    sqrt_w = np.sqrt(curves.weights)
    names = ["R1", "BPND"] if k2prime is not None else ["R1", "k2", "BPND"]
    lower = np.array([SRTM_BOUNDS[n][0] for n in names])
    upper = np.array([SRTM_BOUNDS[n][1] for n in names])
    span = upper - lower
    x0 = np.clip(x0, lower + 1e-3 * span, upper - 1e-3 * span)

    def params(x: FloatArray) -> tuple[float, float, float]:
        if k2prime is None:
            return float(x[0]), float(x[1]), float(x[2])
        return float(x[0]), float(x[0]) * k2prime, float(x[1])

    def residuals(x: FloatArray) -> FloatArray:
        return sqrt_w * (curves.curve(*params(x)) - y)

    res = least_squares(
        residuals,
        x0,
        bounds=(lower, upper),
        method="trf",
        x_scale="jac",
        ftol=1e-12,
        xtol=1e-12,
        gtol=1e-12,
        max_nfev=2000,
    )
    r1, k2, bp = params(res.x)
    at_bound = bool(
        np.any(res.active_mask != 0)
        or np.any(res.x - lower <= _BOUND_RTOL * span)
        or np.any(upper - res.x <= _BOUND_RTOL * span)
    )
    ok = bool(res.status > 0 and np.all(np.isfinite(res.x)) and r1 > 0 and k2 > 0 and bp > -1)
    if not ok:
        logger.warning("NLS fit did not give a valid solution: %s", res.message)
        return _failed_outcome(y.size)
    jac = np.asarray(res.jac, dtype=np.float64)  # dense: no jac_sparsity, exact tr_solver
    se = _nls_standard_errors(jac, 2.0 * res.cost, curves.weights, names, res.x, k2prime)
    fitted = curves.curve(r1, k2, bp)
    return _NLSOutcome(r1, k2, bp, float(2.0 * res.cost), ok, at_bound, fitted, se)


def _nls_standard_errors(
    jac: FloatArray,
    rss: float,
    weights: FloatArray,
    names: list[str],
    x: FloatArray,
    k2prime: float | None,
) -> dict[str, float] | None:
    """Asymptotic standard errors from the Jacobian (delta method for derived parameters)."""
    dof = int(np.count_nonzero(weights)) - x.size
    if dof <= 0:
        return None
    try:
        cov = np.linalg.inv(jac.T @ jac) * (rss / dof)
    except np.linalg.LinAlgError:
        return None
    se = {n: float(np.sqrt(max(cov[i, i], 0.0))) for i, n in enumerate(names)}
    if k2prime is None:
        r1, k2 = float(x[0]), float(x[1])
        g = np.array([-k2 / r1**2, 1.0 / r1, 0.0])
        se["k2prime"] = float(np.sqrt(max(g @ cov @ g, 0.0)))
    else:
        se["k2"] = se["R1"] * k2prime
    return se
