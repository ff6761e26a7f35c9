"""Benchmark of the group-level voxelwise statistics.

Run: ``python benchmarks/bench_group_stats.py``.

Simulates 10 subjects on a 2 mm MNI-like grid (91, 109, 91) whose maps are NaN outside an
ellipsoid "fit mask" of ~230k voxels (the search volume is then SPM's implicit mask, as in the
app), for two measures (BPND with a planted striatum-like decrease, R1 with a planted increase),
and times: smoothing (8 mm FWHM) of all maps, the paired t-test, smoothness and resel
estimation, RFT cluster p-values and the exact 1024-flip sign-flip permutation test, then the
one-call :func:`paired_cluster_inference` (which also lists SPM's local maxima and the
per-condition cluster means). Target: both measures <= 15 s on 2 cores. The numbers go to
``benchmarks/results/group_stats.json`` (``--no-save`` skips that).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from _results import load_average, save_results
from numpy.typing import NDArray

from bids_app.stats import rft
from bids_app.stats.clusters import find_clusters
from bids_app.stats.inference import paired_cluster_inference
from bids_app.stats.permutation import sign_flip_null
from bids_app.stats.voxelwise import paired_t, smooth_volumes

SHAPE = (91, 109, 91)
VOXEL_MM = 2.0
SMOOTH_MM = 8.0


def ellipsoid_mask(shape: tuple[int, int, int] = SHAPE) -> NDArray[np.bool_]:
    """Brain-like ellipsoid mask of ~230k voxels on the 2 mm grid."""
    ii, jj, kk = np.indices(shape, dtype=np.float64)
    centre = (np.array(shape) - 1) / 2.0
    semi_axes = (33.0, 42.0, 40.0)
    r2 = sum(((g - c) / a) ** 2 for g, c, a in zip((ii, jj, kk), centre, semi_axes, strict=True))
    return r2 <= 1.0


def simulate(
    rng: np.random.Generator, mask: NDArray[np.bool_], level: float, effect: float, n: int = 10
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Baseline and challenge maps with subject effects, white noise and a planted blob."""
    ii, jj, kk = np.indices(mask.shape, dtype=np.float64)
    blob = np.exp(-((ii - 35) ** 2 + (jj - 60) ** 2 + (kk - 45) ** 2) / (2 * 4.0**2))
    subject = rng.normal(0.0, 0.1 * level, size=(n, 1, 1, 1))
    base = level + subject + 0.2 * level * rng.standard_normal((n, *mask.shape))
    chal = level + subject + 0.2 * level * rng.standard_normal((n, *mask.shape))
    chal += effect * level * blob
    base[:, ~mask] = np.nan
    chal[:, ~mask] = np.nan
    return base, chal


def bench_measure(
    name: str, base: NDArray[np.float64], chal: NDArray[np.float64], mask: NDArray[np.bool_]
) -> dict[str, Any]:
    """Time each step for one measure, then the one-call entry; return the timings (s)."""
    t0 = time.perf_counter()
    sb = smooth_volumes(base, VOXEL_MM, SMOOTH_MM)
    sc = smooth_volumes(chal, VOXEL_MM, SMOOTH_MM)
    t1 = time.perf_counter()
    tm = paired_t(sb, sc, mask)
    t2 = time.perf_counter()
    fwhm = rft.estimate_smoothness(tm.standardized_residuals, tm.mask, dof=tm.df)
    resels = rft.resel_counts(tm.mask, fwhm)
    t3 = time.perf_counter()
    u = 2.821437925
    found = find_clusters(-tm.t_map, tm.mask, u)
    p = [rft.p_cluster_fwe(k, u, tm.df, resels, fwhm) for k in found.sizes]
    t4 = time.perf_counter()
    null = sign_flip_null(sc - sb, tm.mask, u)
    t5 = time.perf_counter()
    print(f"[{name}] voxels in mask: {int(tm.mask.sum())}, FWHM {np.round(fwhm * VOXEL_MM, 2)} mm")
    print(f"[{name}] smoothing 2x{base.shape[0]} maps: {t1 - t0:6.2f} s")
    print(f"[{name}] paired t:                {t2 - t1:6.2f} s")
    print(f"[{name}] smoothness + resels:     {t3 - t2:6.2f} s  resels={np.round(resels, 1)}")
    min_p = min(p, default=1.0)
    print(f"[{name}] clusters + RFT p:        {t4 - t3:6.2f} s  ", end="")
    print(f"({found.n_clusters} clusters, min p {min_p:.2g})")
    print(f"[{name}] sign flips ({null.n_flips}):      {t5 - t4:6.2f} s", end="")
    print(f"  ({1e3 * (t5 - t4) / null.n_flips:.2f} ms per flip)")
    t6 = time.perf_counter()
    res = paired_cluster_inference(base, chal, VOXEL_MM, smoothing_fwhm_mm=SMOOTH_MM)
    t7 = time.perf_counter()
    n_maxima = sum(len(c.maxima) for d in (res.increase, res.decrease) for c in d.clusters)
    print(f"[{name}] implicit search volume: {int(res.mask.sum())} voxels, {n_maxima} maxima")
    top = [c for d in (res.increase, res.decrease) for c in d.clusters[:1]]
    print(f"[{name}] paired_cluster_inference: {t7 - t6:6.2f} s; top clusters: ")
    for c in top:
        print(f"    k={c.size_voxels} peak_t={c.peak_t:.2f}", end=" ")
        print(f"p_fwe_rft={c.p_fwe_rft:.3g} p_fwe_perm={c.p_fwe_perm:.3g}")
    return {
        "voxels_in_mask": int(tm.mask.sum()),
        "smoothing_s": round(t1 - t0, 3),
        "paired_t_s": round(t2 - t1, 3),
        "smoothness_resels_s": round(t3 - t2, 3),
        "clusters_rft_s": round(t4 - t3, 3),
        "sign_flips": int(null.n_flips),
        "sign_flips_s": round(t5 - t4, 3),
        "ms_per_flip": round(1e3 * (t5 - t4) / null.n_flips, 3),
        "paired_cluster_inference_s": round(t7 - t6, 3),
    }


def main() -> None:
    """Run the benchmark for BPND and R1."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-save", action="store_true", help="do not write the JSON results")
    args = parser.parse_args()
    load_before = load_average()
    rng = np.random.default_rng(args.seed)
    mask = ellipsoid_mask()
    measures = {}
    for name, level, effect in (("BPND", 2.0, -0.15), ("R1", 1.0, 0.10)):
        base, chal = simulate(rng, mask, level, effect)
        measures[name] = bench_measure(name, base, chal, mask)
    total = sum(m["paired_cluster_inference_s"] for m in measures.values())
    print(f"total (paired_cluster_inference, both measures): {total:.2f} s (target <= 15 s)")
    if not args.no_save:
        results = {
            "n_subjects": 10,
            "grid": list(SHAPE),
            "smoothing_fwhm_mm": SMOOTH_MM,
            "measures": measures,
            "total_s": round(total, 2),
            "target_s": 15.0,
        }
        print(f"results written to {save_results('group_stats', results, load_before)}")


if __name__ == "__main__":
    main()
