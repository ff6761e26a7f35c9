"""Benchmark of the simulator (petsim): study generation time and voxel BPND noise.

Usage::

    python benchmarks/bench_sim.py [--part time|noise|all] [--n-jobs N] [--seeds 1 2 3]

Prints ``key=value`` lines.

* ``time``: wall time of :func:`petsim.generate_study` for the small (4 participants) and the
  default (10 participants) study, with the template and with the individual anatomy
  (``--n-jobs`` worker processes, default 2), each in a fresh temporary folder.
* ``noise``: the noise-induced coefficient of variation of voxelwise SRTM2 BPND over the dorsal
  striatum on 2 mm MNI maps of the default protocol (:func:`petsim.calibration.voxel_bp_noise`),
  for every named noise level and anatomy, one baseline session per seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from petsim import NOISE_LEVELS, default_protocol, generate_study
from petsim.calibration import voxel_bp_noise


def _times(n_jobs: int) -> None:
    for small in (True, False):
        for anatomy in ("template", "individual"):
            with tempfile.TemporaryDirectory(prefix="bench_sim_") as tmp:
                start = time.perf_counter()
                generate_study(Path(tmp) / "study", small=small, anatomy=anatomy, n_jobs=n_jobs)
                wall = time.perf_counter() - start
            size = "small" if small else "default"
            sys.stdout.write(f"generate_{size}_{anatomy}_wall_s={wall:.1f}\n")


def _noise(seeds: list[int]) -> None:
    for level, scale in NOISE_LEVELS.items():
        protocol = dataclasses.replace(default_protocol(), noise_scale=scale)
        for anatomy in ("template", "individual"):
            covs = [voxel_bp_noise(protocol, seed=s, anatomy=anatomy).cov for s in seeds]
            sys.stdout.write(
                f"voxel_bp_cov_{level}_{anatomy}="
                f"{np.mean(covs):.3f} (min {np.min(covs):.3f}, max {np.max(covs):.3f}, "
                f"noise_scale {scale:g}, seeds {seeds})\n"
            )


def main() -> int:
    """Run the chosen parts and print their numbers."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("time", "noise", "all"), default="all")
    parser.add_argument("--n-jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    if args.part in ("time", "all"):
        _times(args.n_jobs)
    if args.part in ("noise", "all"):
        _noise(args.seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
