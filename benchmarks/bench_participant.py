"""Wall time and peak memory of one participant (two sessions) on the default example study.

Usage::

    python benchmarks/bench_participant.py [--study DIR] [--threads N]

Generates a 1-participant default-size study (2.5 x 2.5 x 3 mm native voxels, 26 frames) unless
``--study`` points at an existing one, runs the participant level in a child process and prints
``participant_wall_s`` and ``participant_peak_rss_mb`` (the child's maximum resident set size).
Targets (issue): <= 180 s and <= 3000 MB on 2 cores.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from petsim import generate_study


def main() -> int:
    """Run the benchmark and print its numbers."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", type=Path, help="an existing synthetic study folder")
    parser.add_argument("--threads", type=int, default=2, help="--omp-nthreads (default 2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_participant_") as tmp:
        root = Path(tmp)
        study = args.study or generate_study(root / "study", n_participants=2, seed=5).root
        cmd = [
            sys.executable,
            "-m",
            "bids_app",
            str(study / "bids"),
            str(root / "out"),
            "participant",
            "--participant-label",
            "01",
            "--work-dir",
            str(root / "work"),
            "--omp-nthreads",
            str(args.threads),
            "--skip-bids-validation",
            "-q",
        ]
        start = time.perf_counter()
        completed = subprocess.run(cmd, check=False)
        wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    sys.stdout.write(
        f"participant_exit_code={completed.returncode}\n"
        f"participant_wall_s={wall:.1f}\n"
        f"participant_peak_rss_mb={peak_mb:.0f}\n"
        f"target_wall_s=180 ratio_to_target={wall / 180:.2f}\n"
    )
    return completed.returncode


if __name__ == "__main__":
    sys.exit(main())
