"""Benchmark: voxelwise SRTM2 (basis functions) on 230,000 voxels x 26 frames.

Run with ``python benchmarks/bench_kinetics.py [--voxels N] [--loop-voxels M] [--float64]``.
Prints ``key=value`` lines: wall time and peak traced memory of ``fit_srtm2`` on the full set,
the time of a per-voxel ``scipy.optimize.curve_fit`` loop on a subset (scaled to the full set),
the speed-up, and the accuracy of both against the generating values.

Data: a 60-min [11C]raclopride-like schedule (26 frames), a reference TAC from a one-tissue
response to a Feng-type input, and target TACs from the SRTM2 forward model for 512 parameter
sets (BPnd 0-3.5, R1 0.6-1.5), tiled to the voxel count, with Gaussian noise (5 % of each
TAC's peak, scaled by 1/sqrt(duration)); stored as float32 like a NIfTI image.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc

import numpy as np
from scipy.optimize import curve_fit

from bids_app.kinetics import fit_srtm2, srtm2_model

DURATIONS_S = np.array([15.0] * 8 + [30.0] * 4 + [60.0] * 4 + [180.0] * 4 + [400.0] * 6)
K2PRIME = 0.15
N_TEMPLATES = 512


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


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voxels", type=int, default=230_000)
    parser.add_argument("--loop-voxels", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--float64", action="store_true", help="pass float64 instead of float32")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(2021)
    data = _simulate(args.voxels, rng)
    tac = data["tac"].astype(np.float64) if args.float64 else data["tac"]
    fit_srtm2(data["start"], data["end"], data["ref"], tac[:, :1000], K2PRIME)  # warm-up

    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        fit = fit_srtm2(data["start"], data["end"], data["ref"], tac, K2PRIME)
        times.append(time.perf_counter() - t0)
    wall = min(times)
    tracemalloc.start()
    fit_srtm2(data["start"], data["end"], data["ref"], tac, K2PRIME)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    fit_nofit = None
    t0 = time.perf_counter()
    fit_nofit = fit_srtm2(
        data["start"], data["end"], data["ref"], tac, K2PRIME, return_fitted=False
    )
    wall_nofit = time.perf_counter() - t0

    loop_s, loop_bp = _curve_fit_loop(data, args.loop_voxels)
    loop_scaled = loop_s * args.voxels / args.loop_voxels
    basis_bp = np.asarray(fit.bp_nd)
    err_basis = np.nanmedian(np.abs(basis_bp - data["bp"]))
    err_loop = np.nanmedian(np.abs(loop_bp - data["bp"][: args.loop_voxels]))
    agree = np.nanmedian(np.abs(basis_bp[: args.loop_voxels] - loop_bp))
    n_tag = f"{args.voxels // 1000}k"
    lines = {
        "n_voxels": args.voxels,
        "n_frames": DURATIONS_S.size,
        "dtype": str(tac.dtype),
        "threads_cpu_count": os.cpu_count(),
        f"srtm2_basis_{n_tag}_voxels_s": f"{wall:.3f}",
        f"srtm2_basis_{n_tag}_voxels_no_fitted_s": f"{wall_nofit:.3f}",
        "srtm2_basis_peak_traced_mb": f"{peak / 1e6:.1f}",
        "process_max_rss_mb": f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:.1f}",
        "input_tac_mb": f"{tac.nbytes / 1e6:.1f}",
        "curve_fit_loop_voxels": args.loop_voxels,
        "curve_fit_loop_s": f"{loop_s:.3f}",
        f"curve_fit_loop_scaled_to_{n_tag}_s": f"{loop_scaled:.1f}",
        "speedup_vs_curve_fit": f"{loop_scaled / wall:.0f}",
        "failed_voxels": int(np.count_nonzero(~np.asarray(fit_nofit.status))),
        "at_bound_voxels": int(np.count_nonzero(np.asarray(fit.at_bound))),
        "median_abs_bp_error_basis": f"{err_basis:.4f}",
        "median_abs_bp_error_curve_fit": f"{err_loop:.4f}",
        "median_abs_bp_basis_minus_curve_fit": f"{agree:.4f}",
    }
    for key, value in lines.items():
        sys.stdout.write(f"{key}={value}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
