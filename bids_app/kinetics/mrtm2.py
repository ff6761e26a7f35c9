"""MRTM2: the two-parameter multilinear reference tissue model (Ichise et al. 2003, JCBFM 23:1096).

With the reference efflux k2' known, integrating the reference-tissue equations gives the
operational equation

    C_T(T) = gamma1 · [∫_0^T C_R dt + C_R(T) / k2'] + gamma2 · ∫_0^T C_T dt,

with ``gamma1 = R1·k2'`` and ``gamma2 = -k2a``, so

    BPnd = -(gamma1/gamma2 + 1),   R1 = gamma1/k2',   k2 = gamma1,   k2a = -gamma2.

It is linear in (gamma1, gamma2) and solved by weighted least squares for every voxel at once
(closed-form 2x2 normal equations). Frames enter from ``t_star_min`` on (frame mid-time >= t*;
MRTM2 holds from t = 0 for tracers obeying SRTM, hence the default 0). The integrals use the
same piecewise-linear curves as SRTM (:mod:`bids_app.kinetics.model`): with
``sampling="frame_average"`` each frame's equation is averaged over the frame (consistent with
frame-averaged data); with ``"midpoint"`` it is evaluated at mid-times with trapezoidal
integrals from (0, 0), as kinfitr does.
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bids_app.errors import ModelError
from bids_app.kinetics.basis import DEFAULT_CHUNK_VOXELS
from bids_app.kinetics.model import (
    FloatArray,
    ReferenceTissueFit,
    Sampling,
    bool_or_array,
    build_grid,
    check_k2prime,
    check_reference,
    check_sampling,
    check_tac,
    float_or_array,
    make_timing,
)
from bids_app.kinetics.weights import resolve_weights

logger = logging.getLogger(__name__)

_DET_RTOL = 1e-12


def fit_mrtm2(
    frame_start: ArrayLike,
    frame_end: ArrayLike,
    ref_tac: ArrayLike,
    tac: ArrayLike,
    k2prime: float,
    t_star_min: float = 0.0,
    weights: str | ArrayLike | None = None,
    *,
    sampling: Sampling = "frame_average",
    chunk_voxels: int = DEFAULT_CHUNK_VOXELS,
) -> ReferenceTissueFit:
    """Fit MRTM2 (Ichise 2003) to one TAC or to many voxels by linear least squares.

    Parameters
    ----------
    frame_start, frame_end : (n_frames,) array_like
        Frame start and end times, seconds from the injection.
    ref_tac : (n_frames,) array_like
        Reference-region TAC.
    tac : (n_frames,) or (n_frames, n_voxels) array_like
        Target TAC(s).
    k2prime : float
        Reference efflux rate k2', 1/min.
    t_star_min : float, default 0.0
        Only frames whose mid-time is >= t* (minutes) enter the regression.
    weights : None, {"duration", "uniform"} or (n_frames,) array_like, default None
        Frame weights (default duration-based).
    sampling : {"frame_average", "midpoint"}, default "frame_average"
        How the operational equation is compared with the frames.
    chunk_voxels : int, default 4096
        Voxels per vectorised block.

    Returns
    -------
    ReferenceTissueFit
        ``model="MRTM2"``, ``method="linear"``. ``fitted`` holds the right-hand side of the
        operational equation (the model TAC) for the frames used, NaN elsewhere.
        ``status`` is False where the normal equations are singular or gamma2 >= 0.

    Raises
    ------
    ModelError
        Invalid inputs, or fewer than 3 frames with positive weight after t*.
    """
    k2p = check_k2prime(k2prime)
    timing = make_timing(frame_start, frame_end)
    ref = check_reference(ref_tac, timing.n_frames)
    data = check_tac(tac, timing.n_frames)
    w = resolve_weights(weights, timing)
    grid = build_grid(timing, check_sampling(sampling))
    w = np.where(timing.mid_min >= t_star_min, w, 0.0)
    if np.count_nonzero(w) < 3:
        msg = (
            f"MRTM2 needs at least 3 weighted frames after t* = {t_star_min:g} min; got "
            f"{np.count_nonzero(w)}. Lower t_star_min."
        )
        raise ModelError(msg)
    cumint_op = grid.cumint @ grid.interp  # (n_frames, n_frames): frame values -> ∫_0^t
    x1 = cumint_op @ ref + (grid.sample @ (grid.interp @ ref)) / k2p  # (n_frames,)
    one_d = data.ndim == 1
    y_all = data[:, None] if one_d else data
    n_vox = y_all.shape[1]
    gam1 = np.full(n_vox, np.nan)
    gam2 = np.full(n_vox, np.nan)
    fitted = np.full(y_all.shape, np.nan, dtype=np.result_type(y_all.dtype, np.float32))
    rss = np.full(n_vox, np.nan)
    a = float(np.sum(w * x1 * x1))
    used = w > 0
    for lo in range(0, n_vox, chunk_voxels):
        sl = slice(lo, min(lo + chunk_voxels, n_vox))
        y = np.asarray(y_all[:, sl], dtype=np.float64)
        valid = np.all(np.isfinite(y), axis=0) & np.any(y != 0, axis=0)
        y = np.where(valid[None, :], y, 0.0)
        x2 = cumint_op @ y  # (n_frames, m)
        b = (w * x1) @ x2
        c = np.einsum("f,fm,fm->m", w, x2, x2)
        d1 = (w * x1) @ y
        d2 = np.einsum("f,fm,fm->m", w, x2, y)
        det = a * c - b * b
        ok = valid & (det > _DET_RTOL * np.maximum(a * c, np.finfo(float).tiny))
        with np.errstate(invalid="ignore", divide="ignore"):
            g1 = (c * d1 - b * d2) / det
            g2 = (a * d2 - b * d1) / det
        ok &= np.isfinite(g1) & np.isfinite(g2) & (g2 < 0) & (g1 > 0)
        gam1[sl] = np.where(ok, g1, np.nan)
        gam2[sl] = np.where(ok, g2, np.nan)
        model = x1[:, None] * g1[None, :] + x2 * g2[None, :]
        resid = np.where(used[:, None], model - y, 0.0)
        rss[sl] = np.where(ok, np.einsum("f,fm,fm->m", w, resid, resid), np.nan)
        fitted[:, sl] = np.where(ok[None, :] & used[:, None], model, np.nan)
    status = np.isfinite(gam1)
    k2a = -gam2
    with np.errstate(invalid="ignore", divide="ignore"):
        bp = -(gam1 / gam2 + 1.0)
    r1 = gam1 / k2p
    n_bad = int(np.count_nonzero(~status))
    if n_bad and not one_d:
        logger.info("MRTM2: %d of %d voxels failed (NaN)", n_bad, n_vox)
    return _package(one_d, bp, r1, gam1, k2a, k2p, status, fitted, w, rss, grid.sampling)


def _package(
    one_d: bool,
    bp: FloatArray,
    r1: FloatArray,
    k2: FloatArray,
    k2a: FloatArray,
    k2prime: float,
    status: NDArray[np.bool_],
    fitted: NDArray[np.floating],
    weights: FloatArray,
    rss: FloatArray,
    sampling: str,
) -> ReferenceTissueFit:
    return ReferenceTissueFit(
        model="MRTM2",
        method="linear",
        sampling=sampling,
        bp_nd=float_or_array(bp, one_d),
        r1=float_or_array(r1, one_d),
        k2=float_or_array(k2, one_d),
        k2a=float_or_array(k2a, one_d),
        k2prime=k2prime if one_d else np.broadcast_to(np.float64(k2prime), r1.shape),
        status=bool_or_array(status, one_d),
        at_bound=False if one_d else np.zeros(r1.shape, dtype=bool),
        fitted=fitted[:, 0] if one_d else fitted,
        weights=weights,
        rss=float_or_array(rss, one_d),
    )
