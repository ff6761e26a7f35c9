"""Accuracy of the SRTM2 basis-function fit against the number of basis functions.

Run with ``python benchmarks/bench_basis_count.py [--replicates N] [--seed S]``. Prints one
table per noise level: for each number of basis functions, the bias and RMSE of BPnd (relative
to the true value, %) in a cortex-like (BPnd 0.3), a thalamus-like (1.0) and a striatum-like
(3.0) class, the bias and RMSE of R1 (%) over all classes, the fraction of fits on the edge of
the k2a range, and the largest BPnd error on noise-free TACs with BPnd 0-4 in steps of 0.01
and R1 = 1 (the quantisation of the grid left after the parabolic refinement).

Data: the 26-frame, 60-min schedule of ``bench_kinetics.py`` and its analytic reference TAC;
target TACs from the app's SRTM2 forward model (:func:`bids_app.kinetics.srtm2_model`,
k2' = 0.15 /min) for BPnd in {0.3, 1, 3} x R1 in {0.8, 1.0, 1.3}; Gaussian noise with SD
``level x (TAC peak) / sqrt(frame duration in min)`` (5 % gives ~10 % of the peak in the
15-s frames and ~2 % in the 400-s frames). Every number of basis functions fits the same
noisy TACs (paired comparison), with the default duration weights and the default k2'-scaled
k2a range. The model is exact, so the errors are those of the noise and of the basis grid.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

from bids_app.kinetics import fit_srtm2, srtm2_model

DURATIONS_S = np.array([15.0] * 8 + [30.0] * 4 + [60.0] * 4 + [180.0] * 4 + [400.0] * 6)
K2PRIME = 0.15
BP_CLASSES = (0.3, 1.0, 3.0)
R1_VALUES = (0.8, 1.0, 1.3)
N_BASIS = (25, 50, 100, 200)
NOISE_LEVELS = (0.02, 0.05, 0.10)


def _schedule() -> tuple[np.ndarray, np.ndarray]:
    start = np.concatenate([[0.0], np.cumsum(DURATIONS_S)[:-1]])
    return start, start + DURATIONS_S


def _reference(mid_min: np.ndarray) -> np.ndarray:
    """The analytic reference TAC of ``bench_kinetics.py`` (kBq/mL)."""
    return 18.0 * (np.exp(-0.12 * mid_min) - np.exp(-2.5 * mid_min)) + 2.0 * (
        1.0 - np.exp(-0.5 * mid_min)
    ) * np.exp(-0.02 * mid_min)


def _truth() -> tuple[np.ndarray, np.ndarray]:
    bp, r1 = np.meshgrid(BP_CLASSES, R1_VALUES, indexing="ij")
    return bp.ravel(), r1.ravel()


def _relative_stats(estimate: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Bias and RMSE of estimate/truth - 1, in %, over finite estimates."""
    rel = estimate / truth - 1.0
    rel = rel[np.isfinite(rel)]
    return 100.0 * float(np.mean(rel)), 100.0 * float(np.sqrt(np.mean(rel**2)))


def _row(fit_bp: np.ndarray, fit_r1: np.ndarray, bp: np.ndarray, r1: np.ndarray) -> list[float]:
    cells: list[float] = []
    for value in BP_CLASSES:
        sel = bp == value
        cells.extend(_relative_stats(fit_bp[sel], bp[sel]))
    cells.extend(_relative_stats(fit_r1, r1))
    return cells


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=8000, help="noisy TACs per cell")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    start, end = _schedule()
    ref = _reference(0.5 * (start + end) / 60.0)
    bp_cell, r1_cell = _truth()
    clean_cells = srtm2_model(start, end, ref, r1_cell, K2PRIME, bp_cell)  # (n_frames, n_cells)
    clean = np.repeat(clean_cells, args.replicates, axis=1)
    bp = np.repeat(bp_cell, args.replicates)
    r1 = np.repeat(r1_cell, args.replicates)
    unit_noise = rng.standard_normal(clean.shape) / np.sqrt(DURATIONS_S / 60.0)[:, None]
    peak = clean.max(axis=0)[None, :]
    out = sys.stdout
    header = (
        f"{'n_basis':>7} | "
        + " | ".join(f"BP {v:<3g} bias  rmse" for v in BP_CLASSES)
        + " | R1 bias  rmse | at_bound % | noise-free max|dBP| | fit s"
    )
    with threadpool_limits(limits=1):
        sweep_bp = np.linspace(0.0, 4.0, 401)
        sweep = srtm2_model(start, end, ref, np.ones_like(sweep_bp), K2PRIME, sweep_bp)
        quantisation = {}
        for n_basis in N_BASIS:
            fit = fit_srtm2(start, end, ref, sweep, K2PRIME, n_basis=n_basis)
            quantisation[n_basis] = float(np.max(np.abs(np.asarray(fit.bp_nd) - sweep_bp)))
        for level in NOISE_LEVELS:
            tac = (clean + level * peak * unit_noise).astype(np.float32)
            out.write(f"\nnoise {100 * level:g} % ({tac.shape[1]} TACs; bias/RMSE in %)\n")
            out.write(header + "\n")
            for n_basis in N_BASIS:
                t0 = time.perf_counter()
                fit = fit_srtm2(start, end, ref, tac, K2PRIME, n_basis=n_basis)
                seconds = time.perf_counter() - t0
                cells = _row(np.asarray(fit.bp_nd), np.asarray(fit.r1), bp, r1)
                pairs = [f"{cells[i]:+8.3f} {cells[i + 1]:5.2f}" for i in range(0, len(cells), 2)]
                at_bound = 100.0 * float(np.mean(np.asarray(fit.at_bound)))
                out.write(
                    f"{n_basis:>7} | "
                    + " | ".join(pairs)
                    + f" | {at_bound:10.2f} | {quantisation[n_basis]:19.2e} | {seconds:5.3f}\n"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
