"""The simulator's own reference-tissue fits (SRTM, SRTM2) for its "ideal pipeline" truth.

Written independently of the analysis package so that the expected values in the truth do not
inherit the analysed code's mistakes.

Models (times in minutes, rate constants in 1/min):

* SRTM (Lammertsma & Hume, NeuroImage 1996;4:153):
  ``C_T(t) = R1 C_R(t) + (k2 - R1 k2a) [C_R * exp(-k2a t)](t)`` with ``k2a = k2 / (1 + BPnd)``;
* SRTM2 (Wu & Carson, JCBFM 2002;22:1440): ``k2' = k2 / R1`` fixed (one value per scan), so
  ``C_T = R1 (C_R + (k2' - k2a) [C_R * exp(-k2a t)])`` and ``BPnd = R1 k2' / k2a - 1``.

Input function: the reference TAC is a piecewise-linear curve through ``(0, 0)`` and knots at
the frame mid-times, continued linearly after the last mid-time. Its convolution with
``exp(-k t)`` is computed exactly (closed form on each linear piece, summed by a recursion over
the pieces: :func:`exp_convolution`), so no time grid is involved.

Sampling of the model: ``"frame_mean"`` (default) compares frame means with frame means. The
knot values are solved for so that the curve's mean over every frame equals the measured frame
value (a small linear system; it undoes the bias of joining frame means at the mid-times, which
cost 0.3-0.8 % of BPnd on a 4-30 s early framing), and the convolution term is its exact mean
over the frame, ``(int C_R - (I(end) - I(start))) / k`` since ``dI/dt = C_R - k I``.
``"midpoint"`` takes the knots at the measured values and evaluates the model at the frame
mid-times, like kinfitr (without its 1024-point grid).

ROI TACs: SRTM by bounded nonlinear least squares (:func:`scipy.optimize.least_squares`) started
from the best of a grid of ``k2a`` values; SRTM2 by profiling ``R1`` out (linear for a given
``k2a``) and minimising over ``k2a``. Voxels: the same SRTM2 profile for all voxels at once,
a 400-value ``k2a`` grid followed by a vectorised golden-section search between the grid
neighbours of each voxel's best value (exact to ~1e-7 relative in ``k2a``). Frames are weighted
by their duration unless weights are given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import least_squares

from petsim.errors import ModelError
from petsim.timing import FrameTiming

Sampling = Literal["frame_mean", "midpoint"]

K2A_RANGE_PER_MIN: tuple[float, float] = (1e-3, 5.0)
"""Range searched for the apparent efflux ``k2a``, 1/min."""

N_K2A_GRID = 400
"""Number of log-spaced ``k2a`` values of the initial grid."""

_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0
_GOLDEN_ITERATIONS = 48
_SMALL_KDT = 1e-5


def exp_convolution(
    node_min: NDArray[np.float64], values: NDArray[np.float64], rate_per_min: ArrayLike
) -> NDArray[np.float64]:
    """Exact ``[c * exp(-k t)](t)`` of a piecewise-linear ``c`` at its own nodes.

    Parameters
    ----------
    node_min : (n_nodes,) ndarray
        Strictly increasing node times, minutes, the first one 0 (where the integral starts).
    values : (n_nodes,) ndarray
        ``c`` at the nodes (linear in between).
    rate_per_min : float or (m,) array_like
        Rates ``k`` (> 0), 1/min.

    Returns
    -------
    (m, n_nodes) ndarray
        ``int_0^t c(u) exp(-k (t - u)) du`` at every node, one row per rate.
    """
    k = np.atleast_1d(np.asarray(rate_per_min, dtype=np.float64))[:, None]
    dt = np.diff(node_min)[None, :]
    kdt = k * dt
    decay = np.exp(-kdt)
    small = kdt < _SMALL_KDT
    safe_k = np.where(small, 1.0, k)
    # int_0^dt exp(-k (dt - v)) dv and int_0^dt v exp(-k (dt - v)) dv, with series for k dt -> 0
    a = np.where(small, dt * (1.0 - 0.5 * kdt), -np.expm1(-kdt) / safe_k)
    b = np.where(
        small, dt**2 * (0.5 - kdt / 6.0 + kdt**2 / 24.0), (kdt + np.expm1(-kdt)) / safe_k**2
    )
    slope = np.diff(values) / np.diff(node_min)
    increment = values[None, :-1] * a + slope[None, :] * b
    out = np.zeros((k.shape[0], node_min.size))
    for i in range(node_min.size - 1):
        out[:, i + 1] = decay[:, i] * out[:, i] + increment[:, i]
    return out


def _knot_basis(nodes: NDArray[np.float64], mid: NDArray[np.float64]) -> NDArray[np.float64]:
    """(n_nodes, n_frames) matrix: node values of the interpolant of unit knot vectors.

    The interpolant is piecewise linear through (0, 0) and the knots at the mid-times,
    continued linearly after the last mid-time.
    """
    basis = np.empty((nodes.size, mid.size))
    knot_t = np.concatenate([[0.0], mid]) if mid[0] > 0 else mid
    for j in range(mid.size):
        unit = np.zeros(mid.size)
        unit[j] = 1.0
        knot_v = np.concatenate([[0.0], unit]) if mid[0] > 0 else unit
        column = np.interp(nodes, knot_t, knot_v)
        if knot_t.size >= 2:
            tail = nodes > knot_t[-1]
            slope = (knot_v[-1] - knot_v[-2]) / (knot_t[-1] - knot_t[-2])
            column[tail] = knot_v[-1] + slope * (nodes[tail] - knot_t[-1])
        basis[:, j] = column
    return basis


def _frame_mean_matrix(
    nodes: NDArray[np.float64],
    basis: NDArray[np.float64],
    start_idx: NDArray[np.intp],
    end_idx: NDArray[np.intp],
) -> NDArray[np.float64]:
    """(n_frames, n_frames) matrix: frame means of the interpolant of unit knot vectors."""
    pieces = 0.5 * (basis[1:] + basis[:-1]) * np.diff(nodes)[:, None]
    cumulative = np.vstack([np.zeros((1, basis.shape[1])), np.cumsum(pieces, axis=0)])
    area = cumulative[end_idx] - cumulative[start_idx]
    return area / (nodes[end_idx] - nodes[start_idx])[:, None]


@dataclass(frozen=True)
class ReferenceInput:
    """The reference TAC as a piecewise-linear input, ready for exact convolutions.

    Build with :meth:`from_frames`.

    Attributes
    ----------
    node_min : (n_nodes,) ndarray
        0, frame starts, mid-times and ends (sorted, unique), minutes.
    node_values : (n_nodes,) ndarray
        The interpolated reference at the nodes, kBq/mL.
    start_idx, end_idx, mid_idx : (n_frames,) int ndarray
        Positions of each frame's start, end and mid-time in ``node_min``.
    frame_values : (n_frames,) ndarray
        The measured reference TAC, kBq/mL.
    duration_min : (n_frames,) ndarray
        Frame durations, minutes.
    sampling : {"frame_mean", "midpoint"}
        How the model is compared with the data.
    """

    node_min: NDArray[np.float64]
    node_values: NDArray[np.float64]
    start_idx: NDArray[np.intp]
    end_idx: NDArray[np.intp]
    mid_idx: NDArray[np.intp]
    frame_values: NDArray[np.float64]
    duration_min: NDArray[np.float64]
    sampling: Sampling

    @classmethod
    def from_frames(
        cls, frames: FrameTiming, ref_tac: ArrayLike, sampling: Sampling = "frame_mean"
    ) -> ReferenceInput:
        """The reference input of a TAC of frame values (see the module docstring).

        Raises
        ------
        ModelError
            Wrong length, non-finite values, an unknown ``sampling``, or a reference TAC
            without any positive value.
        """
        ref = np.asarray(ref_tac, dtype=np.float64).reshape(-1)
        if ref.size != frames.n_frames:
            msg = f"reference TAC has {ref.size} values but there are {frames.n_frames} frames"
            raise ModelError(msg)
        if not np.all(np.isfinite(ref)) or not np.any(ref > 0):
            msg = "reference TAC must be finite with at least one positive value"
            raise ModelError(msg)
        if sampling not in ("frame_mean", "midpoint"):
            msg = f"sampling must be 'frame_mean' or 'midpoint'; got {sampling!r}"
            raise ModelError(msg)
        mid = frames.mid_min
        nodes = np.unique(np.concatenate([[0.0], frames.start_min, mid, frames.end_min]))
        start_idx = np.searchsorted(nodes, frames.start_min)
        end_idx = np.searchsorted(nodes, frames.end_min)
        basis = _knot_basis(nodes, mid)
        if sampling == "frame_mean":
            # knot values whose interpolant has exactly the measured frame means
            knots = np.linalg.solve(_frame_mean_matrix(nodes, basis, start_idx, end_idx), ref)
        else:
            knots = ref
        values = basis @ knots
        return cls(
            node_min=nodes,
            node_values=values,
            start_idx=start_idx,
            end_idx=end_idx,
            mid_idx=np.searchsorted(nodes, mid),
            frame_values=ref,
            duration_min=frames.duration_min,
            sampling=sampling,
        )

    def convolved(self, rate_per_min: ArrayLike) -> NDArray[np.float64]:
        """The convolution term ``[C_R * exp(-k t)]`` as compared with the data.

        Returns
        -------
        (m, n_frames) ndarray
            Frame means (``"frame_mean"``) or mid-time values (``"midpoint"``), per rate.
        """
        k = np.atleast_1d(np.asarray(rate_per_min, dtype=np.float64))
        conv = exp_convolution(self.node_min, self.node_values, k)
        if self.sampling == "midpoint":
            return conv[:, self.mid_idx]
        pieces = 0.5 * (self.node_values[1:] + self.node_values[:-1]) * np.diff(self.node_min)
        cumulative = np.concatenate([[0.0], np.cumsum(pieces)])
        area = cumulative[self.end_idx] - cumulative[self.start_idx]
        rise = conv[:, self.end_idx] - conv[:, self.start_idx]
        return (area[None, :] - rise) / (k[:, None] * self.duration_min[None, :])

    def reference_term(self) -> NDArray[np.float64]:
        """The ``C_R`` term of the model at the data's sampling, shape (n_frames,)."""
        if self.sampling == "midpoint":
            return self.node_values[self.mid_idx]
        return self.frame_values


def frame_weights(frames: FrameTiming, weights: ArrayLike | None) -> NDArray[np.float64]:
    """Frame weights normalised to a mean of 1 (default: proportional to the duration).

    Raises
    ------
    ModelError
        Wrong length, negative or non-finite weights, or all weights zero.
    """
    w = frames.duration_min if weights is None else np.asarray(weights, dtype=np.float64)
    w = w.reshape(-1)
    if w.size != frames.n_frames or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        msg = (
            f"weights must be {frames.n_frames} finite, non-negative values, not all zero; "
            f"got {w.tolist()}"
        )
        raise ModelError(msg)
    return w * (w.size / w.sum())


@dataclass(frozen=True)
class SrtmFit:
    """Result of an SRTM or SRTM2 fit of one TAC.

    Attributes
    ----------
    r1 : float
        ``K1 / K1'`` (unitless).
    k2_per_min : float
        Target efflux ``k2``, 1/min.
    bp_nd : float
        Binding potential (unitless).
    k2prime_per_min : float
        Reference efflux ``k2' = k2 / R1``, 1/min (fixed for SRTM2).
    ok : bool
        False when the optimum sits on a bound of ``k2a`` or the fit failed (values are NaN).
    """

    r1: float
    k2_per_min: float
    bp_nd: float
    k2prime_per_min: float
    ok: bool


def _check_tac(tac: ArrayLike, n_frames: int) -> NDArray[np.float64]:
    """A finite TAC of ``n_frames`` values (1-D) or ``(n_frames, n_voxels)`` (2-D)."""
    y = np.asarray(tac, dtype=np.float64)
    if y.shape[0] != n_frames or y.ndim not in (1, 2):
        msg = f"TAC must have shape ({n_frames},) or ({n_frames}, n_voxels); got {y.shape}"
        raise ModelError(msg)
    if not np.all(np.isfinite(y)):
        raise ModelError("TAC contains NaN or Inf; mask such voxels before fitting")
    return y


def _k2a_grid() -> NDArray[np.float64]:
    """Log-spaced initial grid of ``k2a`` values, 1/min."""
    return np.geomspace(*K2A_RANGE_PER_MIN, N_K2A_GRID)


def fit_srtm(
    frames: FrameTiming,
    ref_tac: ArrayLike,
    tac: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    sampling: Sampling = "frame_mean",
) -> SrtmFit:
    """Fit SRTM (R1, k2, BPnd) to one TAC by bounded nonlinear least squares.

    Parameters
    ----------
    frames : FrameTiming
        Frame schedule.
    ref_tac, tac : (n_frames,) array_like
        Reference and target TACs, kBq/mL.
    weights : (n_frames,) array_like or None
        Frame weights; None weights by frame duration.
    sampling : {"frame_mean", "midpoint"}
        See the module docstring.

    Returns
    -------
    SrtmFit
        ``k2prime_per_min = k2 / R1``.
    """
    ref = ReferenceInput.from_frames(frames, ref_tac, sampling)
    y = _check_tac(tac, frames.n_frames)
    if y.ndim != 1:
        raise ModelError("fit_srtm fits one TAC; got a 2-D array")
    sqrt_w = np.sqrt(frame_weights(frames, weights))
    grid = _k2a_grid()
    conv_grid = ref.convolved(grid)
    ref_term = ref.reference_term()
    best = (np.inf, 1.0, 0.1, 0.0)
    for j, k2a in enumerate(grid):  # linear in (R1, k2 - R1 k2a) for a fixed k2a
        design = np.stack([ref_term, conv_grid[j]], axis=1) * sqrt_w[:, None]
        coef, *_ = np.linalg.lstsq(design, y * sqrt_w, rcond=None)
        r1, k2 = coef[0], coef[1] + coef[0] * k2a
        rss = float(np.sum((design @ coef - y * sqrt_w) ** 2))
        if rss < best[0] and r1 > 0 and k2 > 0:
            best = (rss, float(r1), float(k2), float(k2 / k2a - 1.0))

    def residuals(p: NDArray[np.float64]) -> NDArray[np.float64]:
        r1, k2, bp = p
        k2a = k2 / (1.0 + bp)
        model = r1 * ref_term + (k2 - r1 * k2a) * ref.convolved(k2a)[0]
        return (model - y) * sqrt_w

    lower = np.array([1e-6, 1e-5, -0.95])
    upper = np.array([20.0, 10.0, 50.0])
    start = np.clip(np.array(best[1:]), lower + 1e-9, upper - 1e-9)
    res = least_squares(residuals, start, bounds=(lower, upper), x_scale="jac", xtol=1e-12)
    r1, k2, bp = (float(v) for v in res.x)
    k2a = k2 / (1.0 + bp)
    ok = bool(res.success) and K2A_RANGE_PER_MIN[0] < k2a < K2A_RANGE_PER_MIN[1]
    if not ok:
        return SrtmFit(np.nan, np.nan, np.nan, np.nan, False)
    return SrtmFit(r1=r1, k2_per_min=k2, bp_nd=bp, k2prime_per_min=k2 / r1, ok=True)


@dataclass(frozen=True)
class Srtm2Maps:
    """Voxelwise SRTM2 results.

    Attributes
    ----------
    r1, bp_nd, k2a_per_min : (n_voxels,) ndarray
        Estimates (NaN where ``ok`` is False).
    ok : (n_voxels,) bool ndarray
        False where the optimum sits on the ``k2a`` range edge or ``R1 <= 0``.
    k2prime_per_min : float
        The fixed reference efflux, 1/min.
    """

    r1: NDArray[np.float64]
    bp_nd: NDArray[np.float64]
    k2a_per_min: NDArray[np.float64]
    ok: NDArray[np.bool_]
    k2prime_per_min: float


def _profile(
    ref: ReferenceInput,
    k2a: NDArray[np.float64],
    k2prime: float,
    wy: NDArray[np.float64],
    w: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Profiled SRTM2 fit at one ``k2a`` per voxel: (R1, explained sum of squares)."""
    basis = ref.reference_term()[None, :] + (k2prime - k2a)[:, None] * ref.convolved(k2a)
    cross = np.einsum("vf,fv->v", basis, wy)
    norm = np.einsum("vf,f,vf->v", basis, w, basis)
    return cross / norm, np.where(cross > 0, cross**2 / norm, -np.inf)


def fit_srtm2_voxels(
    frames: FrameTiming,
    ref_tac: ArrayLike,
    tacs: ArrayLike,
    k2prime_per_min: float,
    *,
    weights: ArrayLike | None = None,
    sampling: Sampling = "frame_mean",
) -> Srtm2Maps:
    """Weighted least-squares SRTM2 of many TACs at once (exact profile, no per-voxel loop).

    Parameters
    ----------
    frames : FrameTiming
        Frame schedule.
    ref_tac : (n_frames,) array_like
        Reference TAC, kBq/mL.
    tacs : (n_frames,) or (n_frames, n_voxels) array_like
        Target TACs, kBq/mL.
    k2prime_per_min : float
        Fixed reference efflux ``k2'`` (> 0), 1/min.
    weights : (n_frames,) array_like or None
        Frame weights; None weights by frame duration.
    sampling : {"frame_mean", "midpoint"}
        See the module docstring.

    Returns
    -------
    Srtm2Maps
        One value per voxel.
    """
    if not (np.isfinite(k2prime_per_min) and k2prime_per_min > 0):
        msg = f"k2prime must be a positive finite rate (1/min); got {k2prime_per_min!r}"
        raise ModelError(msg)
    ref = ReferenceInput.from_frames(frames, ref_tac, sampling)
    y = _check_tac(tacs, frames.n_frames)
    y = y[:, None] if y.ndim == 1 else y
    w = frame_weights(frames, weights)
    wy = w[:, None] * y
    grid = _k2a_grid()
    basis = ref.reference_term()[None, :] + (k2prime_per_min - grid)[:, None] * ref.convolved(grid)
    cross = basis @ wy
    norm = np.einsum("jf,f,jf->j", basis, w, basis)
    score = np.where(cross > 0, cross**2 / norm[:, None], -np.inf)
    best = np.argmax(score, axis=0)
    lo = np.log(grid[np.maximum(best - 1, 0)])
    hi = np.log(grid[np.minimum(best + 1, grid.size - 1)])
    a = hi - _GOLDEN * (hi - lo)
    b = lo + _GOLDEN * (hi - lo)
    fa = _profile(ref, np.exp(a), k2prime_per_min, wy, w)[1]
    fb = _profile(ref, np.exp(b), k2prime_per_min, wy, w)[1]
    for _ in range(_GOLDEN_ITERATIONS):  # maximise the explained sum of squares
        left = fa > fb
        hi = np.where(left, b, hi)
        lo = np.where(left, lo, a)
        b_new = np.where(left, a, lo + _GOLDEN * (hi - lo))
        a_new = np.where(left, hi - _GOLDEN * (hi - lo), b)
        x_new = np.where(left, a_new, b_new)
        f_new = _profile(ref, np.exp(x_new), k2prime_per_min, wy, w)[1]
        fa, fb = np.where(left, f_new, fb), np.where(left, fa, f_new)
        a, b = a_new, b_new
    k2a = np.exp(0.5 * (lo + hi))
    r1, explained = _profile(ref, k2a, k2prime_per_min, wy, w)
    on_edge = (best == 0) | (best == grid.size - 1)
    ok = np.isfinite(explained) & (r1 > 0) & ~on_edge
    bp = r1 * k2prime_per_min / k2a - 1.0
    return Srtm2Maps(
        r1=np.where(ok, r1, np.nan),
        bp_nd=np.where(ok, bp, np.nan),
        k2a_per_min=np.where(ok, k2a, np.nan),
        ok=ok,
        k2prime_per_min=float(k2prime_per_min),
    )


def fit_srtm2(
    frames: FrameTiming,
    ref_tac: ArrayLike,
    tac: ArrayLike,
    k2prime_per_min: float,
    *,
    weights: ArrayLike | None = None,
    sampling: Sampling = "frame_mean",
) -> SrtmFit:
    """SRTM2 of one TAC (the voxel solver applied to a single column).

    Parameters
    ----------
    frames : FrameTiming
        Frame schedule.
    ref_tac, tac : (n_frames,) array_like
        Reference and target TACs, kBq/mL.
    k2prime_per_min : float
        Fixed reference efflux, 1/min.
    weights : (n_frames,) array_like or None
        Frame weights; None weights by frame duration.
    sampling : {"frame_mean", "midpoint"}
        See the module docstring.

    Returns
    -------
    SrtmFit
        ``k2_per_min = R1 k2'``.
    """
    y = _check_tac(tac, frames.n_frames)
    if y.ndim != 1:
        raise ModelError("fit_srtm2 fits one TAC; use fit_srtm2_voxels for many")
    maps = fit_srtm2_voxels(
        frames, ref_tac, y, k2prime_per_min, weights=weights, sampling=sampling
    )
    r1, bp = float(maps.r1[0]), float(maps.bp_nd[0])
    return SrtmFit(
        r1=r1,
        k2_per_min=r1 * k2prime_per_min,
        bp_nd=bp,
        k2prime_per_min=float(k2prime_per_min),
        ok=bool(maps.ok[0]),
    )


def srtm_model(
    frames: FrameTiming,
    ref_tac: ArrayLike,
    r1: float,
    k2_per_min: float,
    bp_nd: float,
    sampling: Sampling = "frame_mean",
) -> NDArray[np.float64]:
    """SRTM prediction of a target TAC from a reference TAC (the model the fits use).

    Returns
    -------
    (n_frames,) ndarray
        Model TAC, kBq/mL.
    """
    ref = ReferenceInput.from_frames(frames, ref_tac, sampling)
    k2a = k2_per_min / (1.0 + bp_nd)
    return r1 * ref.reference_term() + (k2_per_min - r1 * k2a) * ref.convolved(k2a)[0]
