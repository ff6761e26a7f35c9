"""Reference-tissue model core: interpolation, exact convolution, frame sampling, results.

All reference-tissue models here (SRTM, SRTM2, MRTM2) share one description of the reference
TAC and one way of comparing a model curve with the measured frames.

Reference TAC between the frames
--------------------------------
The reference TAC is a continuous piecewise-linear curve with value 0 at t = 0 (the injection,
PET-BIDS ``TimeZero``) and one node at each frame mid-time; after the last mid-time it continues
the last segment's slope to the end of the last frame. How the node values are chosen depends on
``sampling``:

``sampling="frame_average"`` (default)
    The node values are solved for so that the **average of the curve over every frame equals
    the measured frame value** (a tridiagonal, diagonally dominant linear system; the last frame
    is reproduced exactly because a linear extrapolation is symmetric about its mid-time). A
    measured frame value is a time average, so this curve is consistent with the data, whereas a
    curve drawn *through* the frame values at the mid-times has frame averages that differ from
    the measurements wherever the TAC is curved (most near the peak).
``sampling="midpoint"``
    The node values are the measured values (linear interpolation through the mid-times with
    C(0) = 0), as kinfitr and PMOD do.

Model evaluation
----------------
The convolution ``C_R ⊗ exp(-k t)`` of the piecewise-linear reference with an exponential, and
its integral over any interval, are computed **exactly** (closed-form per linear segment, on the
grid of breakpoints {0, frame starts, mid-times, ends}); no fine time grid, no discretisation
error. This equals the "average over each frame on a fine uniform grid" in the limit of an
infinitely fine grid. The model is then compared with the data

* averaged over each frame (``"frame_average"``, default), or
* sampled at the frame mid-times (``"midpoint"``, like kinfitr, which interpolates on a 1024-point
  grid of mid-times; on kinfitr's own simulated data the two choices differ by up to ~0.01 in
  BPnd).

Times are minutes inside this module; the public fit functions take seconds (PET-BIDS) and
convert once through :class:`~bids_app.timing.FrameTiming`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bids_app.errors import ModelError
from bids_app.timing import FrameTiming

logger = logging.getLogger(__name__)

Sampling = Literal["frame_average", "midpoint"]
_SAMPLING_BY_NAME: dict[str, Sampling] = {"frame_average": "frame_average", "midpoint": "midpoint"}
SAMPLINGS: tuple[str, ...] = tuple(_SAMPLING_BY_NAME)
FloatArray = NDArray[np.float64]
_MERGE_TOL_MIN = 1e-9
_SERIES_X_MAX = 0.5
_SERIES_TERMS = 14
_RATES_PER_BLOCK = 256


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReferenceTissueFit:
    """Result of a reference-tissue model fit (SRTM, SRTM2 or MRTM2).

    For a 1-D TAC every parameter is a Python ``float`` and ``status``/``at_bound`` are
    ``bool``; for a 2-D TAC of shape (n_frames, n_voxels) they are arrays of n_voxels. Failed
    voxels (NaN input, all-zero TAC, no positive R1, singular solve) hold NaN, never 0.

    Attributes
    ----------
    model : {"SRTM", "SRTM2", "MRTM2"}
        The model fitted.
    method : {"nls", "basis", "linear"}
        Bounded nonlinear least squares, basis functions, or linear least squares.
    sampling : {"frame_average", "midpoint"}
        How the model was compared with the frames (see the module docstring).
    bp_nd : float or (n_voxels,) ndarray
        Non-displaceable binding potential, unitless.
    r1 : float or (n_voxels,) ndarray
        Relative delivery K1/K1', unitless.
    k2 : float or (n_voxels,) ndarray
        Target efflux rate constant, 1/min.
    k2a : float or (n_voxels,) ndarray
        Apparent efflux rate k2/(1 + BPnd), 1/min.
    k2prime : float or (n_voxels,) ndarray
        Reference efflux rate k2', 1/min (k2/R1 for SRTM; the fixed value for SRTM2/MRTM2).
    status : bool or (n_voxels,) ndarray of bool
        True where the fit is valid (finite, converged, R1 > 0 and k2 > 0).
    at_bound : bool or (n_voxels,) ndarray of bool
        True where the best basis function is the first or last one of the k2a range (basis),
        or a parameter sits on its bound (nls). Such fits are unreliable.
    fitted : (n_frames,) or (n_frames, n_voxels) ndarray or None
        Model TAC(s) as compared with the data, same shape (and, for 2-D, dtype) as ``tac``.
    weights : (n_frames,) ndarray
        Frame weights used (mean 1).
    rss : float or (n_voxels,) ndarray
        Weighted residual sum of squares, (data units)².
    k2a_range_per_min : tuple of float or None
        Range of the basis functions (basis method only), 1/min.
    n_basis : int or None
        Number of basis functions (basis method only).
    se : dict of str to float or None
        Asymptotic standard errors (1-D NLS only): keys ``R1``, ``k2``, ``BPND``, ``k2prime``.
    """

    model: str
    method: str
    sampling: str
    bp_nd: float | FloatArray
    r1: float | FloatArray
    k2: float | FloatArray
    k2a: float | FloatArray
    k2prime: float | FloatArray
    status: bool | NDArray[np.bool_]
    at_bound: bool | NDArray[np.bool_]
    fitted: NDArray[np.floating] | None
    weights: FloatArray
    rss: float | FloatArray
    k2a_range_per_min: tuple[float, float] | None = None
    n_basis: int | None = None
    se: dict[str, float] | None = field(default=None)

    @property
    def params(self) -> dict[str, float | FloatArray]:
        """Parameters under their PET output names (``BPND, R1, k2, k2a, k2prime``)."""
        return {
            "BPND": self.bp_nd,
            "R1": self.r1,
            "k2": self.k2,
            "k2a": self.k2a,
            "k2prime": self.k2prime,
        }

    @property
    def n_failed(self) -> int:
        """Number of voxels (or 0/1 for a 1-D fit) whose fit is not valid."""
        return int(np.size(self.status) - np.count_nonzero(self.status))


def float_or_array(values: FloatArray, one_d: bool) -> float | FloatArray:
    """The single value as a ``float`` for a 1-D fit, else the array of n_voxels values."""
    return float(values[0]) if one_d else values


def bool_or_array(values: NDArray[np.bool_], one_d: bool) -> bool | NDArray[np.bool_]:
    """The single flag as a ``bool`` for a 1-D fit, else the array of n_voxels flags."""
    return bool(values[0]) if one_d else values


# --------------------------------------------------------------------------------------------
# Input checks (once, at the model boundary)
# --------------------------------------------------------------------------------------------
def make_timing(frame_start: ArrayLike, frame_end: ArrayLike) -> FrameTiming:
    """Validate frame bounds in seconds and convert them to a :class:`FrameTiming` (minutes).

    Raises
    ------
    ModelError
        Lengths differ, non-finite times, non-positive durations, overlapping frames, or a
        frame starting before t = 0 (the injection).
    """
    start = np.asarray(frame_start, dtype=np.float64)
    end = np.asarray(frame_end, dtype=np.float64)
    if start.ndim != 1 or end.ndim != 1:
        msg = (
            f"frame_start and frame_end must be 1-D arrays of seconds; got shapes {start.shape} "
            f"and {end.shape}"
        )
        raise ModelError(msg)
    timing = FrameTiming.from_bounds_seconds(start, end)
    if timing.start_min[0] < 0:
        msg = (
            f"frame times are seconds from the injection and must be >= 0; the first frame "
            f"starts at {timing.start_s[0]:g} s. Shift the times so that t = 0 is the injection."
        )
        raise ModelError(msg)
    return timing


def check_reference(ref_tac: ArrayLike, n_frames: int) -> FloatArray:
    """Validate the reference TAC: 1-D, one value per frame, finite, not all zero."""
    ref = np.asarray(ref_tac, dtype=np.float64)
    if ref.ndim != 1 or ref.size != n_frames:
        msg = (
            f"ref_tac must have one value per frame ({n_frames}); got shape {ref.shape}. "
            "Check that the TAC and the frame times come from the same scan."
        )
        raise ModelError(msg)
    if not np.all(np.isfinite(ref)):
        bad = int(np.flatnonzero(~np.isfinite(ref))[0])
        msg = f"ref_tac must be finite; frame {bad} is {ref[bad]}. Check the reference mask."
        raise ModelError(msg)
    if not np.any(ref != 0):
        msg = "ref_tac is all zero; the reference region mask is probably empty or misplaced"
        raise ModelError(msg)
    return ref


def check_tac(tac: ArrayLike, n_frames: int) -> NDArray[np.floating]:
    """Validate a target TAC of shape (n_frames,) or (n_frames, n_voxels); keep float32."""
    arr = np.asarray(tac)
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if arr.ndim not in (1, 2) or arr.shape[0] != n_frames:
        msg = (
            f"tac must have shape (n_frames,) or (n_frames, n_voxels) with n_frames = "
            f"{n_frames}; got shape {arr.shape}. For voxel data of shape (n_voxels, n_frames) "
            "pass its transpose."
        )
        raise ModelError(msg)
    return arr


def check_k2prime(k2prime: float) -> float:
    """Validate a fixed k2' (1/min): a positive, finite number."""
    try:
        value = float(k2prime)
    except (TypeError, ValueError):
        msg = f"k2prime must be a positive number (1/min); got {k2prime!r}"
        raise ModelError(msg) from None
    if not np.isfinite(value) or value <= 0:
        msg = (
            f"k2prime must be positive and finite (1/min); got {value!r}. Estimate it with "
            "estimate_k2prime() first (typical [11C]raclopride values are 0.05-0.3 /min)."
        )
        raise ModelError(msg)
    return value


def check_sampling(sampling: str) -> Sampling:
    """Validate the ``sampling`` option."""
    if sampling not in _SAMPLING_BY_NAME:
        msg = f"sampling must be one of {SAMPLINGS}; got {sampling!r}"
        raise ModelError(msg)
    return _SAMPLING_BY_NAME[sampling]


# --------------------------------------------------------------------------------------------
# Grid, interpolation and sampling operators
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FrameGrid:
    """Breakpoint grid of a frame schedule and the linear operators defined on it.

    Attributes
    ----------
    timing : FrameTiming
        The frame schedule (minutes).
    sampling : {"frame_average", "midpoint"}
        How curves are compared with frames.
    t_min : (n_grid,) ndarray
        Sorted breakpoints {0, starts, mid-times, ends}, minutes.
    interp : (n_grid, n_frames) ndarray
        Maps frame values to the piecewise-linear curve's values at the breakpoints.
    sample : (n_frames, n_grid) ndarray
        Maps breakpoint values of a piecewise-linear curve to frame samples (averages or
        mid-time values).
    cumint : (n_frames, n_grid) ndarray
        Maps breakpoint values to samples of the running integral ∫_0^t C, (units·min).
    start_idx, mid_idx, end_idx : (n_frames,) ndarray of int
        Grid indices of each frame's start, mid-time and end.
    """

    timing: FrameTiming
    sampling: Sampling
    t_min: FloatArray
    interp: FloatArray
    sample: FloatArray
    cumint: FloatArray
    start_idx: NDArray[np.intp]
    mid_idx: NDArray[np.intp]
    end_idx: NDArray[np.intp]

    @property
    def h_min(self) -> FloatArray:
        """Segment lengths between breakpoints, minutes, shape (n_grid - 1,)."""
        return np.diff(self.t_min)

    def sample_segments(self, seg_integral: FloatArray, at_grid: FloatArray) -> FloatArray:
        """Sample a curve given its per-segment integrals and breakpoint values.

        Parameters
        ----------
        seg_integral : (..., n_grid - 1) ndarray
            Integral of the curve over each segment.
        at_grid : (..., n_grid) ndarray
            Value of the curve at each breakpoint.

        Returns
        -------
        (..., n_frames) ndarray
            Frame averages (``frame_average``) or mid-time values (``midpoint``).
        """
        if self.sampling == "midpoint":
            return at_grid[..., self.mid_idx]
        cum = np.concatenate(
            [np.zeros((*seg_integral.shape[:-1], 1)), np.cumsum(seg_integral, axis=-1)], axis=-1
        )
        averages: FloatArray = (cum[..., self.end_idx] - cum[..., self.start_idx]) / (
            self.timing.duration_min
        )
        return averages


def build_grid(timing: FrameTiming, sampling: Sampling) -> FrameGrid:
    """Build the breakpoint grid and the interpolation / sampling operators of a schedule.

    Parameters
    ----------
    timing : FrameTiming
        Frame schedule with the first start >= 0 (minutes).
    sampling : {"frame_average", "midpoint"}
        See the module docstring.

    Returns
    -------
    FrameGrid
    """
    mid = timing.mid_min
    points = np.sort(np.concatenate([[0.0], timing.start_min, mid, timing.end_min]))
    keep = np.concatenate([[True], np.diff(points) > _MERGE_TOL_MIN])
    t = points[keep]
    start_idx = _nearest(t, timing.start_min)
    mid_idx = _nearest(t, mid)
    end_idx = _nearest(t, timing.end_min)
    h = np.diff(t)
    hat = _hat_matrix(t, mid)  # (G, n): node values -> grid values
    average = _average_matrix(h, start_idx, end_idx, timing.duration_min)  # (n, G)
    if sampling == "frame_average":
        system = average @ hat
        interp = hat @ np.linalg.solve(system, np.eye(timing.n_frames))
        sample = average
    else:
        interp = hat
        sample = np.zeros((timing.n_frames, t.size))
        sample[np.arange(timing.n_frames), mid_idx] = 1.0
    running = _running_integral_matrix(h)  # (G, G): values -> ∫_0^t at grid points
    if sampling == "frame_average":
        # ∫ over a segment of the running integral F of a linear C: F_j h + h² (2 c_j + c_j+1)/6
        seg = running[:-1] * h[:, None]
        seg[np.arange(h.size), np.arange(h.size)] += h**2 / 3.0
        seg[np.arange(h.size), np.arange(1, h.size + 1)] += h**2 / 6.0
        cumint = _frame_sum_matrix(h.size, start_idx, end_idx, timing.duration_min) @ seg
    else:
        cumint = running[mid_idx]
    return FrameGrid(timing, sampling, t, interp, sample, cumint, start_idx, mid_idx, end_idx)


def _nearest(grid: FloatArray, x: FloatArray) -> NDArray[np.intp]:
    """Index of the grid point nearest to each x."""
    index: NDArray[np.intp] = np.abs(grid[None, :] - x[:, None]).argmin(axis=1).astype(np.intp)
    return index


def _hat_matrix(t: FloatArray, mid: FloatArray) -> FloatArray:
    """Piecewise-linear interpolation through (0, 0) and the mid-time nodes, shape (G, n).

    Beyond the last node the last segment's slope continues (constant for a single frame).
    """
    n = mid.size
    nodes = np.concatenate([[0.0], mid])
    hat = np.empty((t.size, n))
    for j in range(n):
        values = np.zeros(n + 1)
        values[j + 1] = 1.0
        hat[:, j] = np.interp(t, nodes, values)
    after = t > mid[-1]
    if n >= 2 and np.any(after):
        slope_pos = (t[after] - mid[-1]) / (mid[-1] - mid[-2])
        hat[after, :] = 0.0
        hat[after, -1] = 1.0 + slope_pos
        hat[after, -2] = -slope_pos
    return hat


def _frame_sum_matrix(
    n_seg: int, start_idx: NDArray[np.intp], end_idx: NDArray[np.intp], duration: FloatArray
) -> FloatArray:
    """(n_frames, n_seg) matrix summing segment integrals inside each frame / duration."""
    out = np.zeros((start_idx.size, n_seg))
    for i, (s, e) in enumerate(zip(start_idx, end_idx, strict=True)):
        out[i, s:e] = 1.0 / duration[i]
    return out


def _average_matrix(
    h: FloatArray, start_idx: NDArray[np.intp], end_idx: NDArray[np.intp], duration: FloatArray
) -> FloatArray:
    """(n_frames, G) matrix of frame averages of a piecewise-linear curve (trapezoid, exact)."""
    seg = np.zeros((h.size, h.size + 1))
    seg[np.arange(h.size), np.arange(h.size)] = h / 2.0
    seg[np.arange(h.size), np.arange(1, h.size + 1)] = h / 2.0
    return _frame_sum_matrix(h.size, start_idx, end_idx, duration) @ seg


def _running_integral_matrix(h: FloatArray) -> FloatArray:
    """(G, G) matrix: breakpoint values -> ∫_0^t_i of the piecewise-linear curve."""
    g = h.size + 1
    seg = np.zeros((h.size, g))
    seg[np.arange(h.size), np.arange(h.size)] = h / 2.0
    seg[np.arange(h.size), np.arange(1, g)] = h / 2.0
    out = np.zeros((g, g))
    out[1:] = np.cumsum(seg, axis=0)
    return out


# --------------------------------------------------------------------------------------------
# Exact convolution with exponentials
# --------------------------------------------------------------------------------------------
def _phi(x: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Stable closed forms of the segment integrals, as functions of x = k·h >= 0.

    Returns e0 = (1-e^-x)/x, e1 = (1-e^-x(1+x))/x², d = e0 - e1, ca = (1/2-e1)/x and
    cb = (1/2-d)/x, from their Taylor series for small x (no cancellation).
    """
    small = x < _SERIES_X_MAX
    xs = np.where(small, x, 0.0)
    xl = np.where(small, 1.0, x)
    em = np.expm1(-xl)
    e0 = -em / xl
    e1 = (-em - xl * np.exp(-xl)) / xl**2
    d = (xl + em) / xl**2
    ca = (0.5 - e1) / xl
    cb = (0.5 - d) / xl
    # series: sum_m (-x)^m a_m with factorial coefficients
    s_e0 = np.zeros_like(x)
    s_e1 = np.zeros_like(x)
    s_d = np.zeros_like(x)
    s_ca = np.zeros_like(x)
    s_cb = np.zeros_like(x)
    power = np.ones_like(x)
    fact = 1.0  # (m+1)!
    for m in range(_SERIES_TERMS):
        f2 = fact * (m + 2)  # (m+2)!
        f3 = f2 * (m + 3)  # (m+3)!
        s_e0 += power / fact
        s_e1 += power * (m + 1) / f2
        s_d += power / f2
        s_ca += power * (m + 2) / f3
        s_cb += power / f3
        power = power * -xs
        fact = f2
    return (
        np.where(small, s_e0, e0),
        np.where(small, s_e1, e1),
        np.where(small, s_d, d),
        np.where(small, s_ca, ca),
        np.where(small, s_cb, cb),
    )


def exp_convolution(
    grid: FrameGrid, curve_at_grid: FloatArray, rate_per_min: FloatArray
) -> FloatArray:
    """Frame samples of ``C ⊗ exp(-k t)`` for a piecewise-linear C, exactly.

    Parameters
    ----------
    grid : FrameGrid
        Breakpoints and sampling.
    curve_at_grid : (n_grid,) ndarray
        The piecewise-linear curve C at the breakpoints (e.g. ``grid.interp @ ref_tac``).
    rate_per_min : (n_k,) ndarray
        Positive rate constants k, 1/min.

    Returns
    -------
    (n_k, n_frames) ndarray
        ∫_0^t C(s) exp(-k (t - s)) ds averaged over each frame or sampled at mid-times,
        (units·min).
    """
    k_all = np.atleast_1d(np.asarray(rate_per_min, dtype=np.float64))
    out = np.empty((k_all.size, grid.timing.n_frames))
    for lo in range(0, k_all.size, _RATES_PER_BLOCK):
        out[lo : lo + _RATES_PER_BLOCK] = _exp_convolution_block(
            grid, curve_at_grid, k_all[lo : lo + _RATES_PER_BLOCK]
        )
    return out


def _exp_convolution_block(grid: FrameGrid, c: FloatArray, k: FloatArray) -> FloatArray:
    """:func:`exp_convolution` for one block of rates (memory ~ n_k · n_grid² · 8 bytes)."""
    t = grid.t_min
    h = grid.h_min
    x = k[:, None] * h[None, :]
    e0, e1, d, ca, cb = _phi(x)
    increment = h * (e1 * c[:-1] + d * c[1:])  # (n_k, G-1): contribution of segment j at t_j+1
    lag = t[:, None] - t[None, 1:]  # (G, G-1): t_i - t_{j+1}
    causal = lag >= 0
    decay = np.where(causal, np.exp(-k[:, None, None] * np.where(causal, lag, 0.0)), 0.0)
    conv = np.einsum("kij,kj->ki", decay, increment)  # (n_k, G)
    seg_integral = conv[:, :-1] * h * e0 + h**2 * (ca * c[:-1] + cb * c[1:])
    return grid.sample_segments(seg_integral, conv)


# --------------------------------------------------------------------------------------------
# Forward models (public)
# --------------------------------------------------------------------------------------------
def _srtm_curves(
    grid: FrameGrid,
    ref: FloatArray,
    r1: FloatArray,
    k2: FloatArray,
    bp_nd: FloatArray,
) -> FloatArray:
    """SRTM frame samples for parameter vectors of length n, shape (n, n_frames)."""
    ref_grid = grid.interp @ ref
    k2a = k2 / (1.0 + bp_nd)
    conv = exp_convolution(grid, ref_grid, k2a)
    ref_sampled = grid.sample @ ref_grid
    return r1[:, None] * ref_sampled[None, :] + (k2 - r1 * k2a)[:, None] * conv


def srtm_model(
    frame_start: ArrayLike,
    frame_end: ArrayLike,
    ref_tac: ArrayLike,
    r1: ArrayLike,
    k2: ArrayLike,
    bp_nd: ArrayLike,
    sampling: Sampling = "frame_average",
) -> FloatArray:
    """Simplified reference tissue model (Lammertsma & Hume 1996, NeuroImage 4:153).

    ``C_T = R1·C_R + (k2 - R1·k2a) · C_R ⊗ exp(-k2a t)`` with ``k2a = k2 / (1 + BPnd)``,
    sampled as described in the module docstring.

    Parameters
    ----------
    frame_start, frame_end : (n_frames,) array_like
        Frame start and end times, seconds from the injection.
    ref_tac : (n_frames,) array_like
        Reference-region TAC (any concentration unit).
    r1 : float or (n,) array_like
        R1 = K1/K1', unitless.
    k2 : float or (n,) array_like
        Target efflux rate, 1/min (> 0).
    bp_nd : float or (n,) array_like
        BPnd, unitless (> -1).
    sampling : {"frame_average", "midpoint"}, default "frame_average"
        Frame averages or mid-time values.

    Returns
    -------
    (n_frames,) or (n_frames, n) ndarray
        Model TAC(s) in the units of ``ref_tac``; 1-D when all parameters are scalars.
    """
    timing = make_timing(frame_start, frame_end)
    ref = check_reference(ref_tac, timing.n_frames)
    grid = build_grid(timing, check_sampling(sampling))
    scalar = all(np.ndim(p) == 0 for p in (r1, k2, bp_nd))
    r1_a, k2_a, bp_a = (np.atleast_1d(np.asarray(p, dtype=np.float64)) for p in (r1, k2, bp_nd))
    r1_a, k2_a, bp_a = np.broadcast_arrays(r1_a, k2_a, bp_a)
    if np.any(k2_a <= 0) or np.any(bp_a <= -1):
        raise ModelError("srtm_model needs k2 > 0 and bp_nd > -1 (so that k2a > 0)")
    curves = _srtm_curves(grid, ref, r1_a, k2_a, bp_a).T
    out: FloatArray = curves[:, 0] if scalar else curves
    return out


def srtm2_model(
    frame_start: ArrayLike,
    frame_end: ArrayLike,
    ref_tac: ArrayLike,
    r1: ArrayLike,
    k2prime: float,
    bp_nd: ArrayLike,
    sampling: Sampling = "frame_average",
) -> FloatArray:
    """SRTM2 (Wu & Carson 2002, JCBFM 22:1440): SRTM with k2 = R1·k2' and k2' fixed.

    ``C_T = R1·[C_R + (k2' - k2a) · C_R ⊗ exp(-k2a t)]``, ``k2a = R1·k2' / (1 + BPnd)``.

    Parameters
    ----------
    frame_start, frame_end : (n_frames,) array_like
        Frame start and end times, seconds from the injection.
    ref_tac : (n_frames,) array_like
        Reference-region TAC.
    r1 : float or (n,) array_like
        R1, unitless (> 0).
    k2prime : float
        Reference efflux rate k2', 1/min.
    bp_nd : float or (n,) array_like
        BPnd, unitless (> -1).
    sampling : {"frame_average", "midpoint"}, default "frame_average"
        Frame averages or mid-time values.

    Returns
    -------
    (n_frames,) or (n_frames, n) ndarray
        Model TAC(s) in the units of ``ref_tac``.
    """
    k2p = check_k2prime(k2prime)
    k2 = np.asarray(r1, dtype=np.float64) * k2p
    return srtm_model(frame_start, frame_end, ref_tac, r1, k2, bp_nd, sampling=sampling)
