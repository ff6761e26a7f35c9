"""Basis-function solvers for SRTM and SRTM2, vectorised over voxels.

SRTM (Gunn et al. 1997, NeuroImage 6:279): for a fixed ``k2a`` the model
``C_T = θ1·C_R + θ2·B(k2a)`` with ``B(k) = C_R ⊗ exp(-k t)`` is linear in (θ1, θ2) with
``θ1 = R1`` and ``θ2 = k2 - R1·k2a``. A grid of ``n_basis`` log-spaced ``k2a`` values spans
``k2a_range_per_min``; every voxel takes the basis with the smallest weighted residual sum of
squares (RSS), then ``k2 = θ2 + R1·k2a`` and ``BPnd = k2/k2a - 1``.

SRTM2 (Wu & Carson 2002, JCBFM 22:1440): with ``k2'`` fixed the model
``C_T = R1·F(k2a)``, ``F(k) = C_R + (k2' - k)·B(k)`` has a single linear parameter per basis,
``R1 = <F, C>_w / <F, F>_w`` and ``RSS = <C, C>_w - <F, C>_w² / <F, F>_w``. The basis with the
smallest RSS *among those with R1 > 0* is chosen; ``k2 = R1·k2'``, ``BPnd = k2/k2a - 1``.

Implementation (cost close to the arithmetic floor of one matrix product)
-------------------------------------------------------------------------
The basis matrix is built once, with every row scaled to unit weighted norm (and, for SRTM,
orthogonalised against the reference), and stored transposed, shape (n_frames, n_basis). The
data enter only through one BLAS product per chunk of voxels, laid out as
``tac_chunk.T @ basis_t`` of shape (n_voxels_chunk, n_basis), so that the selection (``argmax``
along each row) reads contiguous memory. It runs one chunk of ``chunk_voxels`` voxels at a
time (4096 by default, about the L2 cache size), so float32 image data are converted to float64
one chunk at a time and the TAC array is never copied as a whole. The product stays in float64:
a float32 product is ~25 % faster but its rounding moves the refined k2a of some voxels (the
parabola below lives on differences of nearly equal products), by up to 1e-3 in BPnd.

Everything a voxel needs after the selection comes from three numbers per voxel (the products
with the best basis and its two neighbours) and from per-basis tables built once: the weighted
Gram quadratic form of the interpolated basis (a quartic polynomial in the refinement offset),
the interpolated projections (SRTM) and, for the fitted TACs, the interpolated basis functions.
There is no per-voxel 3x3 block gather and no per-voxel matrix algebra.

Refinement (``refine=True``, default): with 100 log-spaced rates 4.7 % apart, k2a is quantised
and BPnd biased by up to ~2 %. For interior voxels the RSS is interpolated by a parabola through
the best basis and its two neighbours (in log k2a); the basis function at the vertex is the
quadratic interpolation of the three neighbouring basis functions, and the linear parameters are
re-solved for it from the quantities above (no new convolution). Noise-free BPnd then agrees
with NLS to ~0.1 %.

Number of basis functions (:data:`DEFAULT_N_BASIS` = 100), chosen on simulated SRTM2 TACs
(``benchmarks/bench_basis_count.py``: 72,000 TACs per noise level, k2' = 0.15 /min, default
k2'-scaled range, so 100 bases are 5.5 % apart). At 2 %, 5 % and 10 % noise, 50, 100 and 200
bases give the same BPnd and R1 RMSE (to 0.02 percentage points), but 50 bases leave a grid
bias: striatal BPnd (3.0) +0.15 % at 2 % noise against +0.04 % with 100, and a noise-free error
of up to 0.009 against 0.002 (periodic in log k2a, so it does not cancel between sessions
whose k2a differ). 25 bases are worse (+0.5 %, RMSE 1.03 % against 0.80 % at 2 % noise).
200 bases cut the remaining grid error 4x (no RMSE change) at 1.5x the time. The fit of
230,000 voxels takes ~15 ms longer with 100 than with 50 bases (one core), which does not
justify the bias.

Voxels with non-finite values or an all-zero TAC get NaN parameters and ``status`` False;
voxels whose best basis is the first or last one get ``at_bound`` True.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from bids_app.errors import ModelError
from bids_app.kinetics.model import FloatArray, FrameGrid, exp_convolution

logger = logging.getLogger(__name__)

#: Default k2a range of SRTM basis fits, 1/min (and the floor of the SRTM2 default).
DEFAULT_K2A_RANGE_PER_MIN: tuple[float, float] = (0.006, 0.6)
#: The default SRTM2 upper k2a is at least this multiple of k2' (see :func:`srtm2_k2a_range`).
K2A_MAX_PER_K2PRIME = 8.0
DEFAULT_N_BASIS = 100
DEFAULT_CHUNK_VOXELS = 4096

#: Offsets of the neighbours used by the refinement.
_NEIGHBOURS = np.array([-1, 0, 1])
#: Coefficients of the Lagrange weights of nodes (-1, 0, +1) at offset δ, as polynomials in δ:
#: weights(δ) = _LAGRANGE[0] + δ·_LAGRANGE[1] + δ²·_LAGRANGE[2].
_LAGRANGE = np.array([[0.0, 1.0, 0.0], [-0.5, 0.0, 0.5], [0.5, -1.0, 0.5]])


@dataclass(frozen=True)
class BasisSet:
    """Sampled basis functions of one reference TAC and frame schedule.

    Attributes
    ----------
    rates_per_min : (n_basis,) ndarray
        The k2a values, log-spaced, 1/min.
    ref_sampled : (n_frames,) ndarray
        The reference TAC as compared with the frames.
    conv : (n_basis, n_frames) ndarray
        ``C_R ⊗ exp(-k t)`` sampled like the data, (units·min).
    """

    rates_per_min: FloatArray
    ref_sampled: FloatArray
    conv: FloatArray


@dataclass(frozen=True)
class BasisSolution:
    """Per-voxel output of a basis solve (arrays of n_voxels; NaN where invalid).

    Attributes
    ----------
    r1 : (n_voxels,) ndarray
        R1, unitless.
    k2 : (n_voxels,) ndarray
        k2, 1/min.
    k2a : (n_voxels,) ndarray
        k2a, 1/min.
    bp_nd : (n_voxels,) ndarray
        BPnd, unitless.
    rss : (n_voxels,) ndarray
        Weighted residual sum of squares, (data units)².
    status : (n_voxels,) ndarray of bool
        True where the fit is valid.
    at_bound : (n_voxels,) ndarray of bool
        True where the best basis is the first or last one.
    fitted : (n_frames, n_voxels) ndarray or None
        Model TACs (dtype of the input), NaN for failed voxels.
    """

    r1: FloatArray
    k2: FloatArray
    k2a: FloatArray
    bp_nd: FloatArray
    rss: FloatArray
    status: NDArray[np.bool_]
    at_bound: NDArray[np.bool_]
    fitted: NDArray[np.floating] | None


def basis_rates(k2a_range_per_min: tuple[float, float], n_basis: int) -> FloatArray:
    """Log-spaced k2a values of the basis functions.

    Parameters
    ----------
    k2a_range_per_min : (float, float)
        Smallest and largest k2a, 1/min; 0 < low < high.
    n_basis : int
        Number of basis functions, >= 2.

    Returns
    -------
    (n_basis,) ndarray
        k2a values, 1/min.
    """
    try:
        low, high = (float(v) for v in k2a_range_per_min)
    except (TypeError, ValueError):
        msg = f"k2a_range_per_min must be a pair (low, high) in 1/min; got {k2a_range_per_min!r}"
        raise ModelError(msg) from None
    if not (np.isfinite(low) and np.isfinite(high) and 0 < low < high):
        msg = f"k2a_range_per_min must satisfy 0 < low < high (1/min); got ({low!r}, {high!r})"
        raise ModelError(msg)
    if int(n_basis) != n_basis or n_basis < 2:
        raise ModelError(f"n_basis must be an integer >= 2; got {n_basis!r}")
    return np.geomspace(low, high, int(n_basis))


def srtm2_k2a_range(k2prime: float) -> tuple[float, float]:
    """Default k2a range of an SRTM2 basis fit for a given k2'.

    In SRTM2 ``k2a = R1·k2'/(1 + BPnd)``, so a fixed upper bound caps R1: with the historical
    0.6 /min and k2' = 0.15 /min, voxels with BPnd = 0 and R1 > 4 (vessels, the pituitary, the
    carotid) sit on the last basis function and R1 is clipped. The upper bound is therefore
    ``max(0.6, 8·k2')``: R1 up to ~7 at BPnd = 0 (and up to ~5.6 at BPnd = -0.2) stays inside
    the range with a margin for the refinement. The lower bound stays at 0.006 /min (BPnd up to
    ~25·R1 at k2' = 0.15 /min).

    Parameters
    ----------
    k2prime : float
        Reference efflux rate k2', 1/min (positive).

    Returns
    -------
    (float, float)
        (low, high) k2a, 1/min.
    """
    low, high = DEFAULT_K2A_RANGE_PER_MIN
    return low, max(high, K2A_MAX_PER_K2PRIME * float(k2prime))


def make_basis(grid: FrameGrid, ref: FloatArray, rates_per_min: FloatArray) -> BasisSet:
    """Compute the basis functions of a reference TAC on a frame grid.

    Parameters
    ----------
    grid : FrameGrid
        Frame schedule and sampling.
    ref : (n_frames,) ndarray
        Reference TAC (frame values).
    rates_per_min : (n_basis,) ndarray
        k2a values, 1/min.

    Returns
    -------
    BasisSet
    """
    ref_grid = grid.interp @ ref
    return BasisSet(
        rates_per_min=rates_per_min,
        ref_sampled=grid.sample @ ref_grid,
        conv=exp_convolution(grid, ref_grid, rates_per_min),
    )


# --------------------------------------------------------------------------------------------
# Per-basis tables (built once per fit)
# --------------------------------------------------------------------------------------------
def _neighbour_index(n_basis: int) -> NDArray[np.intp]:
    """(n_basis, 3) indices of each basis and its neighbours, clipped at the edges."""
    idx = np.arange(n_basis)[:, None] + _NEIGHBOURS[None, :]
    clipped: NDArray[np.intp] = np.clip(idx, 0, n_basis - 1)
    return clipped


def _edge_mask(n_basis: int) -> NDArray[np.bool_]:
    """True for the first and last basis (no refinement there)."""
    edge = np.zeros(n_basis, dtype=bool)
    edge[[0, -1]] = True
    return edge


def _interp_poly(values: FloatArray) -> FloatArray:
    """Quadratic interpolation of per-basis values around each basis, as polynomials in δ.

    Parameters
    ----------
    values : (n_basis, ...) ndarray
        One value (or vector) per basis.

    Returns
    -------
    (3, n_basis, ...) ndarray
        ``p[0] + δ p[1] + δ² p[2]`` is the value interpolated at offset δ from basis b (zero
        linear and quadratic terms at the two edge bases, where δ is always 0).
    """
    n_basis = values.shape[0]
    nbr = values[_neighbour_index(n_basis)]  # (n_basis, 3, ...)
    poly: FloatArray = np.einsum("pi,bi...->pb...", _LAGRANGE, nbr)
    poly[1:, _edge_mask(n_basis)] = 0.0
    return poly


def _quadratic_form_poly(gram: FloatArray) -> FloatArray:
    """``w(δ)ᵀ G w(δ)`` over each basis' 3x3 Gram block, as quartic polynomials in δ.

    Parameters
    ----------
    gram : (n_basis, n_basis) ndarray
        Weighted Gram matrix of the basis functions.

    Returns
    -------
    (5, n_basis) ndarray
        Coefficients of δ⁰ ... δ⁴ (only δ⁰ at the edge bases).
    """
    n_basis = gram.shape[0]
    idx = _neighbour_index(n_basis)
    block = gram[idx[:, :, None], idx[:, None, :]]  # (n_basis, 3, 3)
    c0, c1, c2 = _LAGRANGE

    def form(a: FloatArray, b: FloatArray) -> FloatArray:
        value: FloatArray = np.einsum("i,bij,j->b", a, block, b)
        return value

    poly = np.stack(
        [
            form(c0, c0),
            2.0 * form(c0, c1),
            form(c1, c1) + 2.0 * form(c0, c2),
            2.0 * form(c1, c2),
            form(c2, c2),
        ]
    )
    poly[1:, _edge_mask(n_basis)] = 0.0
    return poly


def _fitted_tables(funcs: FloatArray, dtype: np.dtype[np.floating]) -> NDArray[np.floating]:
    """Interpolated basis functions around each basis, (3, n_frames, n_basis), in ``dtype``."""
    poly = _interp_poly(funcs)  # (3, n_basis, n_frames)
    return np.ascontiguousarray(poly.transpose(0, 2, 1), dtype=dtype)


# --------------------------------------------------------------------------------------------
# Per-chunk helpers
# --------------------------------------------------------------------------------------------
def _load_chunk(
    tac: NDArray[np.floating], sl: slice, weights: FloatArray
) -> tuple[FloatArray, NDArray[np.bool_], FloatArray]:
    """One chunk of voxels in float64, with invalid voxels zeroed.

    Returns
    -------
    data : (n_frames, m) ndarray
        The chunk in float64 (a view of float64 input when no zeroing is needed).
    valid : (m,) ndarray of bool
        All values finite and the weighted sum of squares positive.
    sumsq : (m,) ndarray
        ``Σ_f w_f y_f²`` in float64 (0 for invalid voxels).
    """
    data = np.asarray(tac[:, sl], dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        sumsq: FloatArray = weights @ (data * data)
    valid = np.isfinite(sumsq) & (sumsq > 0)
    if not np.all(valid):
        data = np.where(valid[None, :], data, 0.0)
        sumsq = np.where(valid, sumsq, 0.0)
    return data, valid, sumsq


def _neighbour_values(
    product: NDArray[np.floating], best: NDArray[np.intp], n_basis: int
) -> tuple[FloatArray, NDArray[np.intp]]:
    """Products of each voxel with its best basis and the two neighbours.

    Parameters
    ----------
    product : (m, n_columns) ndarray
        C-contiguous products of the chunk; the first ``n_basis`` columns are the bases.
    best : (m,) ndarray of int
        Index of the best basis per voxel.
    n_basis : int
        Number of basis columns.

    Returns
    -------
    values : (3, m) ndarray
        Products at best - 1, best, best + 1 (clipped at the edges), float64.
    index : (3, m) ndarray of int
        The basis indices used.
    """
    m, n_columns = product.shape
    index = np.clip(best[None, :] + _NEIGHBOURS[:, None], 0, n_basis - 1)
    flat = product.reshape(-1)
    values = flat[index + (np.arange(m) * n_columns)[None, :]].astype(np.float64)
    return values, index


def _refine_offsets(
    score: FloatArray, best: NDArray[np.intp], n_basis: int, refine: bool
) -> FloatArray:
    """Parabolic vertex offsets for interior voxels, 0 at the edges or without refinement."""
    if not refine:
        return np.zeros(best.size)
    interior = (best > 0) & (best < n_basis - 1)
    return np.where(interior, _parabola_vertex(score), 0.0)


def _eval_poly(poly: FloatArray, offset: FloatArray) -> FloatArray:
    """Evaluate per-voxel polynomials ``Σ_k poly[k] δ^k`` by Horner's rule.

    Parameters
    ----------
    poly : (n_terms, m) ndarray
        Coefficients, lowest order first.
    offset : (m,) ndarray
        δ per voxel.
    """
    out: FloatArray = poly[-1].copy()
    for coef in poly[-2::-1]:
        out *= offset
        out += coef
    return out


def _interp3(values: FloatArray, offset: FloatArray) -> FloatArray:
    """Quadratic interpolation of neighbour values (3, m) at offsets δ (m,)."""
    v_m, v_0, v_p = values
    value: FloatArray = v_0 + offset * (0.5 * (v_p - v_m) + offset * (0.5 * (v_m + v_p) - v_0))
    return value


def _fitted_chunk(
    tables: NDArray[np.floating],
    best: NDArray[np.intp],
    offset: FloatArray,
    scale: FloatArray,
) -> NDArray[np.floating]:
    """``scale · f(δ)`` for each voxel, f the interpolated table column; shape (n_frames, m).

    ``scale`` is NaN for failed voxels, which makes their column NaN.
    """
    dtype = tables.dtype
    out = np.take(tables[0], best, axis=1)
    out *= scale.astype(dtype)[None, :]
    if np.any(offset):
        lin = np.take(tables[1], best, axis=1)
        lin *= (scale * offset).astype(dtype)[None, :]
        out += lin
        quad = np.take(tables[2], best, axis=1)
        quad *= (scale * offset**2).astype(dtype)[None, :]
        out += quad
    return out


def _empty_solution(n_voxels: int) -> dict[str, FloatArray]:
    return {name: np.full(n_voxels, np.nan) for name in ("r1", "k2", "k2a", "bp_nd", "rss")}


# --------------------------------------------------------------------------------------------
# Solvers
# --------------------------------------------------------------------------------------------
def solve_srtm2_basis(
    basis: BasisSet,
    tac: NDArray[np.floating],
    weights: FloatArray,
    k2prime: float,
    *,
    chunk_voxels: int = DEFAULT_CHUNK_VOXELS,
    return_fitted: bool = True,
    refine: bool = True,
) -> BasisSolution:
    """SRTM2 basis-function fit of every voxel (Wu & Carson 2002).

    Parameters
    ----------
    basis : BasisSet
        Basis functions of the reference TAC.
    tac : (n_frames, n_voxels) ndarray
        Target TACs (float32 or float64; any memory layout).
    weights : (n_frames,) ndarray
        Frame weights (non-negative).
    k2prime : float
        Fixed reference efflux rate, 1/min.
    chunk_voxels : int, default 4096
        Voxels per BLAS product (the product takes n_basis · chunk_voxels · 8 bytes).
    return_fitted : bool, default True
        Also return the model TACs (same dtype as ``tac``).
    refine : bool, default True
        Refine k2a between basis functions (see the module docstring).

    Returns
    -------
    BasisSolution
        ``status`` is False for invalid voxels and where no basis gives R1 > 0.
    """
    rates = basis.rates_per_min
    n_basis = rates.size
    funcs = basis.ref_sampled[None, :] + (k2prime - rates)[:, None] * basis.conv  # (nb, nf)
    norm = np.sqrt(np.einsum("f,bf,bf->b", weights, funcs, funcs))
    if not np.all(norm > 0):
        raise ModelError("a basis function has zero weighted norm; check ref_tac and weights")
    # <F_b, y>_w / ||F_b||_w = (y.T @ basis_t)[:, b]
    basis_t = np.ascontiguousarray((funcs * weights[None, :] / norm[:, None]).T)
    gram = (funcs * weights[None, :]) @ funcs.T
    den_poly = _quadratic_form_poly(gram)  # (5, nb): <F(δ), F(δ)>_w
    tables = _fitted_tables(funcs, tac.dtype) if return_fitted else None
    log_step = _log_step(rates)
    n_vox = tac.shape[1]
    out = _empty_solution(n_vox)
    status = np.zeros(n_vox, dtype=bool)
    at_bound = np.zeros(n_vox, dtype=bool)
    fitted = np.empty(tac.shape, dtype=tac.dtype) if tables is not None else None
    for lo in range(0, n_vox, chunk_voxels):
        sl = slice(lo, min(lo + chunk_voxels, n_vox))
        data, valid, sumsq = _load_chunk(tac, sl, weights)
        product = data.T @ basis_t  # (m, nb)
        best = np.argmax(product, axis=1)
        corr, index = _neighbour_values(product, best, n_basis)
        offset = _refine_offsets(np.sign(corr) * corr**2, best, n_basis, refine)
        num = _interp3(corr * norm[index], offset)  # <F(δ), y>_w
        den = _eval_poly(den_poly[:, best], offset)
        r1 = num / den
        ok = valid & (r1 > 0) & (corr[1] > 0)
        k2a = rates[best] * np.exp(offset * log_step)
        r1_ok = np.where(ok, r1, np.nan)
        out["r1"][sl] = r1_ok
        out["k2"][sl] = r1_ok * k2prime
        out["k2a"][sl] = np.where(ok, k2a, np.nan)
        out["bp_nd"][sl] = r1_ok * k2prime / k2a - 1.0
        out["rss"][sl] = np.where(ok, np.maximum(sumsq - num * r1, 0.0), np.nan)
        status[sl] = ok
        at_bound[sl] = ok & ((best == 0) | (best == n_basis - 1))
        if fitted is not None and tables is not None:
            fitted[:, sl] = _fitted_chunk(tables, best, offset, r1_ok)
    return BasisSolution(status=status, at_bound=at_bound, fitted=fitted, **out)


def solve_srtm_basis(
    basis: BasisSet,
    tac: NDArray[np.floating],
    weights: FloatArray,
    *,
    chunk_voxels: int = DEFAULT_CHUNK_VOXELS,
    return_fitted: bool = True,
    refine: bool = True,
) -> BasisSolution:
    """SRTM basis-function fit of every voxel (Gunn et al. 1997).

    The two regressors are orthogonalised once (weighted Gram-Schmidt of each basis function
    against the reference), so the RSS of every basis is
    ``<y, y>_w - <u, y>² - <v_b, y>²`` and the best basis is ``argmax |<v_b, y>|``.

    Parameters
    ----------
    basis : BasisSet
        Basis functions of the reference TAC.
    tac : (n_frames, n_voxels) ndarray
        Target TACs (float32 or float64; any memory layout).
    weights : (n_frames,) ndarray
        Frame weights (non-negative).
    chunk_voxels : int, default 4096
        Voxels per BLAS product.
    return_fitted : bool, default True
        Also return the model TACs (same dtype as ``tac``).
    refine : bool, default True
        Refine k2a between basis functions (see the module docstring).

    Returns
    -------
    BasisSolution
        ``status`` is False where the fit gives R1 <= 0 or k2 <= 0.
    """
    rates = basis.rates_per_min
    n_basis = rates.size
    ref = basis.ref_sampled
    ref_norm = float(np.sqrt(np.sum(weights * ref**2)))
    if ref_norm <= 0:
        raise ModelError("SRTM basis functions are degenerate; check ref_tac and weights")
    u = ref / ref_norm
    proj = basis.conv @ (weights * u)  # (nb,) <B_b, u>_w
    resid = basis.conv - proj[:, None] * u[None, :]
    resid_norm = np.sqrt(np.einsum("f,bf,bf->b", weights, resid, resid))
    if not np.all(resid_norm > 0):
        raise ModelError("SRTM basis functions are degenerate; check ref_tac and weights")
    # columns 0..nb-1: <v_b, y>_w with v_b the unit residual of B_b; column nb: <u, y>_w
    basis_t = np.ascontiguousarray(
        np.vstack([resid * weights[None, :] / resid_norm[:, None], u * weights]).T
    )
    gram = (basis.conv * weights[None, :]) @ basis.conv.T  # <B_i, B_j>_w
    bb_poly = _quadratic_form_poly(gram)  # (5, nb): <B(δ), B(δ)>_w
    proj_poly = _interp_poly(proj)  # (3, nb): <B(δ), u>_w
    tables = _fitted_tables(basis.conv, tac.dtype) if return_fitted else None
    ref_out = ref.astype(tac.dtype)
    log_step = _log_step(rates)
    n_vox = tac.shape[1]
    out = _empty_solution(n_vox)
    status = np.zeros(n_vox, dtype=bool)
    at_bound = np.zeros(n_vox, dtype=bool)
    fitted = np.empty(tac.shape, dtype=tac.dtype) if tables is not None else None
    abs_buffer = np.empty((min(chunk_voxels, n_vox), n_basis))
    for lo in range(0, n_vox, chunk_voxels):
        sl = slice(lo, min(lo + chunk_voxels, n_vox))
        data, valid, sumsq = _load_chunk(tac, sl, weights)
        product = data.T @ basis_t  # (m, nb + 1)
        m = product.shape[0]
        magnitude = np.abs(product[:, :n_basis], out=abs_buffer[:m])
        best = np.argmax(magnitude, axis=1)
        a = product[:, n_basis].astype(np.float64)  # <u, y>_w
        corr, index = _neighbour_values(product, best, n_basis)
        offset = _refine_offsets(corr**2, best, n_basis, refine)
        proj_d = _eval_poly(proj_poly[:, best], offset)
        ry = a * ref_norm  # <C_R, y>_w
        by = _interp3(corr * resid_norm[index], offset) + proj_d * a  # <B(δ), y>_w
        rb = proj_d * ref_norm  # <B(δ), C_R>_w
        bb = _eval_poly(bb_poly[:, best], offset)
        det = ref_norm**2 * bb - rb**2
        with np.errstate(invalid="ignore", divide="ignore"):
            r1 = (bb * ry - rb * by) / det
            theta2 = (ref_norm**2 * by - rb * ry) / det
        k2a = rates[best] * np.exp(offset * log_step)
        k2 = theta2 + r1 * k2a
        ok = valid & (det > 0) & (r1 > 0) & (k2 > 0)
        r1_ok = np.where(ok, r1, np.nan)
        k2_ok = np.where(ok, k2, np.nan)
        out["r1"][sl] = r1_ok
        out["k2"][sl] = k2_ok
        out["k2a"][sl] = np.where(ok, k2a, np.nan)
        out["bp_nd"][sl] = k2_ok / k2a - 1.0
        rss = np.maximum(sumsq - r1 * ry - theta2 * by, 0.0)
        out["rss"][sl] = np.where(ok, rss, np.nan)
        status[sl] = ok
        at_bound[sl] = ok & ((best == 0) | (best == n_basis - 1))
        if fitted is not None and tables is not None:
            theta2_ok = np.where(ok, theta2, np.nan)
            model = _fitted_chunk(tables, best, offset, theta2_ok)
            model += ref_out[:, None] * r1_ok.astype(tac.dtype)[None, :]
            fitted[:, sl] = model
    return BasisSolution(status=status, at_bound=at_bound, fitted=fitted, **out)


def _log_step(rates: FloatArray) -> float:
    """Spacing of log-spaced rates, ln(k[i+1]/k[i])."""
    return float(np.log(rates[1] / rates[0]))


def _parabola_vertex(score: FloatArray) -> FloatArray:
    """Offset in [-0.5, 0.5] of the vertex of a parabola through scores at -1, 0, +1.

    Parameters
    ----------
    score : (3, m) ndarray
        Scores (to be maximised) at the neighbours of the best index.

    Returns
    -------
    (m,) ndarray
        Offsets in units of the basis spacing; 0 where the parabola does not open downwards.
    """
    s_m, s_0, s_p = score
    curvature = s_m - 2.0 * s_0 + s_p
    with np.errstate(invalid="ignore", divide="ignore"):
        offset = np.where(curvature < 0, 0.5 * (s_m - s_p) / curvature, 0.0)
    clipped: FloatArray = np.clip(np.nan_to_num(offset), -0.5, 0.5)
    return clipped
