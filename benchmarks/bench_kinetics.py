"""Benchmark: voxelwise SRTM2 (basis functions) on 230,000 voxels x 26 frames, one thread.

Run with ``python benchmarks/bench_kinetics.py [--voxels N] [--threads T] [--loop-voxels M]``.
Prints ``key=value`` lines:

* the wall time of ``fit_srtm2`` on the full voxel set with its defaults (target <= 0.25 s on
  one core), with and without the fitted TACs, and its peak traced memory;
* the previous solver (a verbatim copy kept below, commit aab6129) and the current one timed
  side by side in this process on the same basis functions, weights and float32 data, for
  SRTM2 and SRTM, with the speed ratio and the largest BPnd / R1 differences;
* the time of a per-voxel ``scipy.optimize.curve_fit`` loop on a subset (scaled to the full
  set) and the accuracy of both methods against the generating values.

The same lines go to ``benchmarks/results/kinetics.json`` (``--no-save`` skips that).

BLAS threads are limited with ``threadpoolctl`` (installed with nilearn -> scikit-learn);
numpy's element-wise operations are single-threaded. Times are the minimum of ``--repeats``.

Data: a 60-min [11C]raclopride-like schedule (26 frames), a smooth analytic reference TAC,
and target TACs from the SRTM2 forward model for 512 parameter sets (BPnd 0-3.5, R1 0.6-1.5),
tiled to the voxel count, with Gaussian noise (5 % of each TAC's peak, scaled by
1/sqrt(duration)); stored as float32 like a NIfTI image.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
from _results import load_average, save_results
from numpy.typing import NDArray
from scipy.optimize import curve_fit
from threadpoolctl import threadpool_info, threadpool_limits

from bids_app.errors import ModelError
from bids_app.kinetics import fit_srtm2, srtm2_model
from bids_app.kinetics.basis import (
    BasisSet,
    BasisSolution,
    basis_rates,
    make_basis,
    solve_srtm2_basis,
    solve_srtm_basis,
)
from bids_app.kinetics.model import FloatArray, build_grid, make_timing
from bids_app.kinetics.weights import resolve_weights

DURATIONS_S = np.array([15.0] * 8 + [30.0] * 4 + [60.0] * 4 + [180.0] * 4 + [400.0] * 6)
K2PRIME = 0.15
N_TEMPLATES = 512
#: Settings of the side-by-side comparison: the previous defaults.
COMPARE_K2A_RANGE_PER_MIN = (0.006, 0.6)
COMPARE_N_BASIS = 100


def _schedule() -> tuple[np.ndarray, np.ndarray]:
    start = np.concatenate([[0.0], np.cumsum(DURATIONS_S)[:-1]])
    return start, start + DURATIONS_S


def _reference(mid_min: np.ndarray) -> np.ndarray:
    """A smooth reference TAC (kBq/mL) with a peak near 1 min."""
    return 18.0 * (np.exp(-0.12 * mid_min) - np.exp(-2.5 * mid_min)) + 2.0 * (
        1.0 - np.exp(-0.5 * mid_min)
    ) * np.exp(-0.02 * mid_min)


def _simulate(n_voxels: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    start, end = _schedule()
    mid_min = 0.5 * (start + end) / 60.0
    ref = _reference(mid_min)
    bp = rng.uniform(0.0, 3.5, N_TEMPLATES)
    r1 = rng.uniform(0.6, 1.5, N_TEMPLATES)
    templates = srtm2_model(start, end, ref, r1, K2PRIME, bp)  # (26, 512)
    pick = rng.integers(0, N_TEMPLATES, n_voxels)
    noise_sd = 0.05 * templates.max(axis=0)[pick][None, :] / np.sqrt(DURATIONS_S / 60.0)[:, None]
    tac = templates[:, pick] + noise_sd * rng.standard_normal((DURATIONS_S.size, n_voxels))
    return {
        "start": start,
        "end": end,
        "ref": ref,
        "tac": tac.astype(np.float32),
        "bp": bp[pick],
        "r1": r1[pick],
    }


def _best_time(func: Callable[[], object], repeats: int) -> float:
    """Minimum wall time of ``repeats`` calls, seconds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return min(times)


def _curve_fit_loop(data: dict[str, np.ndarray], n_loop: int) -> tuple[float, np.ndarray]:
    """Per-voxel NLS with curve_fit on the first n_loop voxels; returns (seconds, BPnd)."""
    start, end, ref = data["start"], data["end"], data["ref"]
    sigma = 1.0 / np.sqrt(DURATIONS_S / DURATIONS_S.mean())

    def model(_x: np.ndarray, r1: float, bp: float) -> np.ndarray:
        return srtm2_model(start, end, ref, r1, K2PRIME, bp)

    out = np.full(n_loop, np.nan)
    t0 = time.perf_counter()
    for j in range(n_loop):
        try:
            popt, _ = curve_fit(
                model,
                None,
                data["tac"][:, j].astype(np.float64),
                p0=(1.0, 1.5),
                sigma=sigma,
                bounds=([0.0, -0.9], [10.0, 30.0]),
            )
            out[j] = popt[1]
        except RuntimeError:
            pass
    return time.perf_counter() - t0, out


def _compare(
    name: str,
    new: Callable[[], BasisSolution],
    old: Callable[[], BasisSolution],
    repeats: int,
) -> dict[str, object]:
    """Time the current and the previous solver back to back and compare their outputs."""
    t_new, t_old = [], []
    for _ in range(repeats):  # interleaved, so that load changes hit both alike
        t_old.append(_best_time(old, 1))
        t_new.append(_best_time(new, 1))
    a, b = new(), old()
    both = a.status & b.status
    d_bp = np.abs(a.bp_nd - b.bp_nd)[both]
    d_r1 = np.abs(a.r1 - b.r1)[both]
    if a.fitted is None or b.fitted is None:
        raise ModelError("the comparison needs the fitted TACs of both solvers")
    d_fit = np.nanmax(np.abs(a.fitted.astype(np.float64) - b.fitted))
    return {
        f"{name}_previous_s": f"{min(t_old):.3f}",
        f"{name}_current_s": f"{min(t_new):.3f}",
        f"{name}_speedup_vs_previous": f"{min(t_old) / min(t_new):.2f}",
        f"{name}_status_mismatch_voxels": int(np.count_nonzero(a.status != b.status)),
        f"{name}_at_bound_mismatch_voxels": int(np.count_nonzero(a.at_bound != b.at_bound)),
        f"{name}_max_abs_bp_diff": f"{d_bp.max():.2e}",
        f"{name}_p99_99_abs_bp_diff": f"{np.percentile(d_bp, 99.99):.2e}",
        f"{name}_voxels_bp_diff_above_1e-4": int(np.count_nonzero(d_bp > 1e-4)),
        f"{name}_max_abs_r1_diff": f"{d_r1.max():.2e}",
        f"{name}_voxels_r1_diff_above_1e-4": int(np.count_nonzero(d_r1 > 1e-4)),
        f"{name}_max_abs_fitted_diff": f"{d_fit:.2e}",
    }


def _side_by_side(data: dict[str, np.ndarray], repeats: int) -> dict[str, object]:
    timing = make_timing(data["start"], data["end"])
    grid = build_grid(timing, "frame_average")
    rates = basis_rates(COMPARE_K2A_RANGE_PER_MIN, COMPARE_N_BASIS)
    basis = make_basis(grid, data["ref"], rates)
    weights = resolve_weights(None, timing)
    tac = data["tac"]
    lines = _compare(
        "srtm2",
        lambda: solve_srtm2_basis(basis, tac, weights, K2PRIME),
        lambda: old_solve_srtm2_basis(basis, tac, weights, K2PRIME),
        repeats,
    )
    lines.update(
        _compare(
            "srtm",
            lambda: solve_srtm_basis(basis, tac, weights),
            lambda: old_solve_srtm_basis(basis, tac, weights),
            repeats,
        )
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voxels", type=int, default=230_000)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    parser.add_argument("--loop-voxels", type=int, default=300, help="0 skips curve_fit")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-save", action="store_true", help="do not write the JSON results")
    args = parser.parse_args(argv)
    load_before = load_average()
    with threadpool_limits(limits=args.threads):
        lines = _run(args)
    for key, value in lines.items():
        sys.stdout.write(f"{key}={value}\n")
    if not args.no_save:
        path = save_results("kinetics", {"threads": args.threads, **lines}, load_before)
        sys.stdout.write(f"results written to {path}\n")
    return 0


def _run(args: argparse.Namespace) -> dict[str, object]:
    rng = np.random.default_rng(2021)
    data = _simulate(args.voxels, rng)
    tac = data["tac"]
    start, end, ref = data["start"], data["end"], data["ref"]
    fit_srtm2(start, end, ref, tac[:, :1000], K2PRIME)  # warm-up
    fit = fit_srtm2(start, end, ref, tac, K2PRIME)
    wall = _best_time(lambda: fit_srtm2(start, end, ref, tac, K2PRIME), args.repeats)
    wall_nofit = _best_time(
        lambda: fit_srtm2(start, end, ref, tac, K2PRIME, return_fitted=False), args.repeats
    )
    tracemalloc.start()
    fit_srtm2(start, end, ref, tac, K2PRIME)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    n_tag = f"{args.voxels // 1000}k"
    blas_threads = [info.get("num_threads") for info in threadpool_info()]
    basis_bp = np.asarray(fit.bp_nd)
    lines: dict[str, object] = {
        "n_voxels": args.voxels,
        "n_frames": DURATIONS_S.size,
        "dtype": str(tac.dtype),
        "blas_threads": ",".join(str(t) for t in blas_threads),
        "defaults_n_basis": fit.n_basis,
        "defaults_k2a_range_per_min": fit.k2a_range_per_min,
        f"srtm2_basis_{n_tag}_voxels_s": f"{wall:.3f}",
        f"srtm2_basis_{n_tag}_voxels_no_fitted_s": f"{wall_nofit:.3f}",
        "srtm2_target_s": "0.25",
        "srtm2_basis_peak_traced_mb": f"{peak / 1e6:.1f}",
        "input_tac_mb": f"{tac.nbytes / 1e6:.1f}",
        "failed_voxels": int(np.count_nonzero(~np.asarray(fit.status))),
        "at_bound_voxels": int(np.count_nonzero(np.asarray(fit.at_bound))),
        "median_abs_bp_error_basis": f"{np.nanmedian(np.abs(basis_bp - data['bp'])):.4f}",
    }
    lines.update(_side_by_side(data, args.repeats))
    if args.loop_voxels > 0:
        loop_s, loop_bp = _curve_fit_loop(data, args.loop_voxels)
        loop_scaled = loop_s * args.voxels / args.loop_voxels
        err_loop = np.nanmedian(np.abs(loop_bp - data["bp"][: args.loop_voxels]))
        agree = np.nanmedian(np.abs(basis_bp[: args.loop_voxels] - loop_bp))
        lines.update(
            {
                "curve_fit_loop_voxels": args.loop_voxels,
                "curve_fit_loop_s": f"{loop_s:.3f}",
                f"curve_fit_loop_scaled_to_{n_tag}_s": f"{loop_scaled:.1f}",
                "speedup_vs_curve_fit": f"{loop_scaled / wall:.0f}",
                "median_abs_bp_error_curve_fit": f"{err_loop:.4f}",
                "median_abs_bp_basis_minus_curve_fit": f"{agree:.4f}",
            }
        )
    lines["process_max_rss_mb"] = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:.1f}"
    return lines


# --------------------------------------------------------------------------------------------
# The previous solvers (bids_app/kinetics/basis.py at commit aab6129), verbatim apart from the
# names, for the side-by-side timing and the equivalence check above. Not used by the package.
# --------------------------------------------------------------------------------------------
OLD_CHUNK_VOXELS = 16384


def _valid_columns(chunk: NDArray[np.floating]) -> NDArray[np.bool_]:
    """Voxels with all-finite values and at least one non-zero value."""
    return np.all(np.isfinite(chunk), axis=0) & np.any(chunk != 0, axis=0)


def _chunk_as_float64(
    chunk: NDArray[np.floating],
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Float64 copy of a chunk with invalid voxels zeroed, and the validity mask."""
    valid = _valid_columns(chunk)
    data = np.asarray(chunk, dtype=np.float64)
    if not np.all(valid):
        data = np.where(valid[None, :], data, 0.0)
    return data, valid


def _weighted_sumsq(weights: FloatArray, data: FloatArray) -> FloatArray:
    """Σ_f w_f · y_f² per voxel."""
    return np.einsum("f,fv,fv->v", weights, data, data)


def _empty_solution(n_voxels: int) -> dict[str, NDArray[np.generic]]:
    nan = np.full(n_voxels, np.nan)
    return {
        "r1": nan.copy(),
        "k2": nan.copy(),
        "k2a": nan.copy(),
        "bp_nd": nan.copy(),
        "rss": nan.copy(),
        "status": np.zeros(n_voxels, dtype=bool),
        "at_bound": np.zeros(n_voxels, dtype=bool),
    }


def old_solve_srtm2_basis(
    basis: BasisSet,
    tac: NDArray[np.floating],
    weights: FloatArray,
    k2prime: float,
    *,
    chunk_voxels: int = OLD_CHUNK_VOXELS,
    return_fitted: bool = True,
    refine: bool = True,
) -> BasisSolution:
    """SRTM2 basis-function fit of every voxel (Wu & Carson 2002).

    Parameters
    ----------
    basis : BasisSet
        Basis functions of the reference TAC.
    tac : (n_frames, n_voxels) ndarray
        Target TACs (float32 or float64).
    weights : (n_frames,) ndarray
        Frame weights (non-negative).
    k2prime : float
        Fixed reference efflux rate, 1/min.
    chunk_voxels : int, default 16384
        Voxels per BLAS product (caps memory at about n_basis · chunk_voxels · 8 bytes).
    return_fitted : bool, default True
        Also return the model TACs (same dtype as ``tac``).
    refine : bool, default True
        Refine k2a between basis functions (see the module docstring).

    Returns
    -------
    BasisSolution
    """
    rates = basis.rates_per_min
    funcs = basis.ref_sampled[None, :] + (k2prime - rates)[:, None] * basis.conv  # (nb, nf)
    norm = np.sqrt(np.einsum("f,bf,bf->b", weights, funcs, funcs))
    if not np.all(norm > 0):
        raise ModelError("a basis function has zero weighted norm; check ref_tac and weights")
    scaled = funcs * weights[None, :] / norm[:, None]  # <F_b, y>_w / ||F_b||_w = scaled @ y
    gram = (funcs * weights[None, :]) @ funcs.T  # (nb, nb)
    log_step = _log_step(rates)
    n_vox = tac.shape[1]
    out = _empty_solution(n_vox)
    fitted = np.full(tac.shape, np.nan, dtype=tac.dtype) if return_fitted else None
    last = rates.size - 1
    for lo in range(0, n_vox, chunk_voxels):
        sl = slice(lo, min(lo + chunk_voxels, n_vox))
        data, valid = _chunk_as_float64(tac[:, sl])
        corr = scaled @ data  # (nb, m)
        best = np.argmax(corr, axis=0)
        cols = np.arange(best.size)
        top = corr[best, cols]
        # default: the best basis itself (coefficients 1 on "best", 0 on its neighbours)
        coef = np.zeros((best.size, 3))
        coef[:, 1] = 1.0
        offset = np.zeros(best.size)
        interior = (best > 0) & (best < last)
        if refine and np.any(interior):
            nb_idx = np.clip(best[None, :] + np.array([-1, 0, 1])[:, None], 0, last)
            score = np.sign(corr[nb_idx, cols]) * corr[nb_idx, cols] ** 2
            offset = np.where(interior, _parabola_vertex(score), 0.0)
            coef = _quadratic_weights(offset)
        nb_idx = np.clip(best[None, :] + np.array([-1, 0, 1])[:, None], 0, last).T  # (m, 3)
        raw = corr[nb_idx.T, cols].T * norm[nb_idx]  # <F_j, y>_w, (m, 3)
        num = np.sum(coef * raw, axis=1)
        den = np.einsum("mi,mij,mj->m", coef, gram[nb_idx[:, :, None], nb_idx[:, None, :]], coef)
        r1 = num / den
        ok = valid & (r1 > 0) & (top > 0)
        k2a = rates[best] * np.exp(offset * log_step)
        k2 = r1 * k2prime
        out["r1"][sl] = np.where(ok, r1, np.nan)
        out["k2"][sl] = np.where(ok, k2, np.nan)
        out["k2a"][sl] = np.where(ok, k2a, np.nan)
        out["bp_nd"][sl] = np.where(ok, k2 / k2a - 1.0, np.nan)
        rss = np.maximum(_weighted_sumsq(weights, data) - num**2 / den, 0.0)
        out["rss"][sl] = np.where(ok, rss, np.nan)
        out["status"][sl] = ok
        out["at_bound"][sl] = ok & ((best == 0) | (best == last))
        if fitted is not None:
            model = np.einsum("mi,mif->fm", coef, funcs[nb_idx]) * r1[None, :]
            fitted[:, sl] = np.where(ok[None, :], model, np.nan)
    return BasisSolution(fitted=fitted, **out)  # type: ignore[arg-type]


def old_solve_srtm_basis(
    basis: BasisSet,
    tac: NDArray[np.floating],
    weights: FloatArray,
    *,
    chunk_voxels: int = OLD_CHUNK_VOXELS,
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
        Target TACs (float32 or float64).
    weights : (n_frames,) ndarray
        Frame weights (non-negative).
    chunk_voxels : int, default 16384
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
    ref = basis.ref_sampled
    ref_norm = np.sqrt(np.sum(weights * ref**2))
    u = ref / ref_norm
    proj = basis.conv @ (weights * u)  # (nb,) <B_b, u>_w
    resid = basis.conv - proj[:, None] * u[None, :]
    resid_norm = np.sqrt(np.einsum("f,bf,bf->b", weights, resid, resid))
    if ref_norm <= 0 or not np.all(resid_norm > 0):
        raise ModelError("SRTM basis functions are degenerate; check ref_tac and weights")
    v_scaled = resid * weights[None, :] / resid_norm[:, None]
    gram = (basis.conv * weights[None, :]) @ basis.conv.T  # <B_i, B_j>_w
    ref_b = basis.conv @ (weights * ref)  # <B_j, C_R>_w
    log_step = _log_step(rates)
    u_scaled = u * weights
    n_vox = tac.shape[1]
    out = _empty_solution(n_vox)
    fitted = np.full(tac.shape, np.nan, dtype=tac.dtype) if return_fitted else None
    last = rates.size - 1
    for lo in range(0, n_vox, chunk_voxels):
        sl = slice(lo, min(lo + chunk_voxels, n_vox))
        data, valid = _chunk_as_float64(tac[:, sl])
        a = u_scaled @ data  # (m,)
        corr = v_scaled @ data  # (nb, m)
        best = np.argmax(np.abs(corr), axis=0)
        cols = np.arange(best.size)
        coef = np.zeros((best.size, 3))
        coef[:, 1] = 1.0
        offset = np.zeros(best.size)
        nb_idx = np.clip(best[None, :] + np.array([-1, 0, 1])[:, None], 0, last)  # (3, m)
        interior = (best > 0) & (best < last)
        if refine and np.any(interior):
            offset = np.where(interior, _parabola_vertex(corr[nb_idx, cols] ** 2), 0.0)
            coef = _quadratic_weights(offset)
        ry = a * ref_norm  # <C_R, y>_w
        by = np.sum(coef * (resid_norm[nb_idx] * corr[nb_idx, cols] + proj[nb_idx] * a).T, axis=1)
        rb = np.sum(coef * ref_b[nb_idx].T, axis=1)
        idx = nb_idx.T
        bb = np.einsum("mi,mij,mj->m", coef, gram[idx[:, :, None], idx[:, None, :]], coef)
        det = ref_norm**2 * bb - rb**2
        r1 = (bb * ry - rb * by) / det
        theta2 = (ref_norm**2 * by - rb * ry) / det
        k2a = rates[best] * np.exp(offset * log_step)
        k2 = theta2 + r1 * k2a
        ok = valid & (r1 > 0) & (k2 > 0) & (det > 0)
        out["r1"][sl] = np.where(ok, r1, np.nan)
        out["k2"][sl] = np.where(ok, k2, np.nan)
        out["k2a"][sl] = np.where(ok, k2a, np.nan)
        out["bp_nd"][sl] = np.where(ok, k2 / k2a - 1.0, np.nan)
        rss = np.maximum(_weighted_sumsq(weights, data) - r1 * ry - theta2 * by, 0.0)
        out["rss"][sl] = np.where(ok, rss, np.nan)
        out["status"][sl] = ok
        out["at_bound"][sl] = ok & ((best == 0) | (best == last))
        if fitted is not None:
            conv = np.einsum("mi,mif->fm", coef, basis.conv[idx])
            model = r1[None, :] * ref[:, None] + theta2[None, :] * conv
            fitted[:, sl] = np.where(ok[None, :], model, np.nan)
    return BasisSolution(fitted=fitted, **out)  # type: ignore[arg-type]


def _log_step(rates: FloatArray) -> float:
    """Spacing of log-spaced rates, ln(k[i+1]/k[i])."""
    return float(np.log(rates[1] / rates[0]))


def _parabola_vertex(score: FloatArray) -> FloatArray:
    """Offset in (-0.5, 0.5) of the vertex of a parabola through scores at -1, 0, +1.

    Parameters
    ----------
    score : (3, m) ndarray
        Scores (to be maximised) at the neighbours of the best index.
    """
    s_m, s_0, s_p = score
    curvature = s_m - 2.0 * s_0 + s_p
    with np.errstate(invalid="ignore", divide="ignore"):
        offset = np.where(curvature < 0, 0.5 * (s_m - s_p) / curvature, 0.0)
    return np.clip(np.nan_to_num(offset), -0.5, 0.5)


def _quadratic_weights(offset: FloatArray) -> FloatArray:
    """Lagrange weights (m, 3) of nodes -1, 0, +1 for quadratic interpolation at ``offset``."""
    return np.stack(
        [0.5 * offset * (offset - 1.0), 1.0 - offset**2, 0.5 * offset * (offset + 1.0)], axis=1
    )


if __name__ == "__main__":
    raise SystemExit(main())
