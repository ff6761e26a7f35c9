"""Wall time per stage, peak memory and accuracy of one participant (two sessions).

Usage::

    python benchmarks/bench_participant.py [--study DIR] [--threads N] [--variants pet t1w]

Generates a default-size realistic synthetic study (2 participants with individual anatomy, a
whole-head T1w with skull, a 108 mm axial field of view; 26 frames of 84 x 96 x 68 voxels of
2.5 x 2.5 x 3 mm per session) unless ``--study`` points at one, then runs the
participant level for sub-01 in a child process (``--omp-nthreads N --nprocs 1``), once
PET-only (a copy of the BIDS folder without ``anat/``) and once via the T1w. From each run's
``logs/summary.tsv`` it prints the wall time of each stage group and the peak resident memory
of the child; from its derivatives and the study's ground truth, the motion error (RMS distance
on a 50 mm sphere, frame poses relative to the last frame, as in the integration test) and the
striatal ROI BPND error relative to the ideal pipeline (noise-free data, true poses, same
fits). The numbers go to ``benchmarks/results/participant.json`` (``--no-save`` skips that).

Targets (issue 14, 2 cores): <= 60 s PET-only and <= 90 s with a T1w, peak RSS <= 2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _results import load_average, save_results

from bids_app.pipelines.participant import TIMING_COLUMNS
from bids_app.preproc.transforms import params_to_matrix, sphere_points
from petsim import generate_study

TARGET_S = {"pet": 60.0, "t1w": 90.0}
TARGET_RSS_MB = 2048.0
PARAMS = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
SUBJECT = "01"


def pet_only_copy(bids_dir: Path, dest: Path) -> Path:
    """The BIDS folder without ``anat/`` (files symlinked, nothing copied)."""
    for src in bids_dir.rglob("*"):
        rel = src.relative_to(bids_dir)
        if "anat" in rel.parts:
            continue
        target = dest / rel
        if src.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(src)
    return dest


def run_participant(bids_dir: Path, root: Path, threads: int) -> tuple[float, int]:
    """Run sub-01 in a child process; return (wall seconds, exit code)."""
    cmd = [
        sys.executable,
        "-m",
        "bids_app",
        str(bids_dir),
        str(root / "out"),
        "participant",
        "--participant-label",
        SUBJECT,
        "--work-dir",
        str(root / "work"),
        "--nprocs",
        "1",
        "--omp-nthreads",
        str(threads),
        "--skip-bids-validation",
        "-q",
    ]
    start = time.perf_counter()
    completed = subprocess.run(cmd, check=False)
    return time.perf_counter() - start, completed.returncode


def motion_rms_mm(out: Path, truth_dir: Path) -> dict[str, float]:
    """Per session: RMS error of the frame poses (relative to the last frame), mm."""
    truth = pd.read_csv(truth_dir / "motion_truth.tsv", sep="\t")
    matrix_cols = [f"m{i}{j}" for i in range(4) for j in range(4)]
    errors = {}
    for folder in sorted((out / f"sub-{SUBJECT}").glob("ses-*/pet")):
        ses = folder.parent.name
        confounds = next(folder.glob("*_desc-confounds_timeseries.tsv"))
        est = pd.read_csv(confounds, sep="\t")
        sidecar = json.loads(confounds.with_suffix(".json").read_text())
        centre = sidecar["RotationCentre"]["Value"]
        rows = truth[(truth.participant_id == f"sub-{SUBJECT}") & (truth.session_id == ses)]
        rows = rows.sort_values("frame")
        true = [r[matrix_cols].to_numpy(float).reshape(4, 4) for _, r in rows.iterrows()]
        got = [params_to_matrix(r[PARAMS].to_numpy(float), centre) for _, r in est.iterrows()]
        points = np.c_[sphere_points(50.0, centre), np.ones(256)].T
        squared = []
        for t_k, e_k in zip(true, got, strict=True):
            diff = (t_k @ np.linalg.inv(true[-1]) - e_k @ np.linalg.inv(got[-1])) @ points
            squared.append(np.mean(np.sum(diff[:3] ** 2, axis=0)))
        errors[ses] = round(float(np.sqrt(np.mean(squared))), 3)
    return errors


def roi_bpnd_error_pct(out: Path, truth_dir: Path) -> float:
    """Largest |BPND / ideal - 1| over sessions and the dorsal/ventral striatum, %."""
    expected = pd.read_csv(truth_dir / "expected_roi_measures.tsv", sep="\t")
    expected = expected[expected.method == "roi_tac"].set_index(
        ["participant_id", "session_id", "roi"]
    )
    worst = 0.0
    for kinpar in sorted((out / f"sub-{SUBJECT}").glob("ses-*/pet/*_kinpar.tsv")):
        ses = kinpar.parent.parent.name
        table = pd.read_csv(kinpar, sep="\t").set_index("roi")
        for roi in ("dorsal_striatum", "ventral_striatum"):
            ideal = expected.loc[(f"sub-{SUBJECT}", ses, roi), "BPND"]
            worst = max(worst, abs(table.loc[roi, "BPND"] / ideal - 1.0))
    return round(100.0 * worst, 2)


def summary_row(out: Path) -> dict[str, Any]:
    """The participant's timing columns from ``logs/summary.tsv``."""
    table = pd.read_csv(out / "logs" / "summary.tsv", sep="\t")
    row = table[table.participant_id == f"sub-{SUBJECT}"].iloc[0]
    keys = ["status", "elapsed_s", *TIMING_COLUMNS, "peak_rss_mb"]
    return {k: (row[k].item() if hasattr(row[k], "item") else row[k]) for k in keys}


def run_variant(
    variant: str, bids_dir: Path, truth_dir: Path, work: Path, threads: int
) -> dict[str, Any]:
    """One participant run and its numbers."""
    source = pet_only_copy(bids_dir, work / "bids_pet") if variant == "pet" else bids_dir
    load = load_average()
    wall, code = run_participant(source, work, threads)
    out = work / "out"
    result: dict[str, Any] = {
        "exit_code": code,
        "wall_s": round(wall, 1),
        "load_average_before": load,
        "target_s": TARGET_S[variant],
        "target_peak_rss_mb": TARGET_RSS_MB,
    }
    if code == 0:
        result.update(summary_row(out))
        result["motion_rms_mm"] = motion_rms_mm(out, truth_dir)
        result["roi_bpnd_max_error_pct"] = roi_bpnd_error_pct(out, truth_dir)
    return result


def print_table(results: dict[str, dict[str, Any]]) -> None:
    """Stage groups as rows, variants as columns."""
    names = list(results)
    lines = [f"{'':<22}" + "".join(f"{n:>14}" for n in names)]
    rows = ["wall_s", "elapsed_s", *TIMING_COLUMNS, "peak_rss_mb", "roi_bpnd_max_error_pct"]
    for key in rows:
        cells = "".join(f"{results[n].get(key, 'n/a')!s:>14}" for n in names)
        lines.append(f"{key:<22}{cells}")
    for n in names:
        rms = results[n].get("motion_rms_mm", {})
        lines.append(
            f"motion RMS vs truth ({n}): " + ", ".join(f"{k} {v} mm" for k, v in rms.items())
        )
        lines.append(
            f"targets ({n}): wall <= {results[n]['target_s']:g} s, peak RSS <= "
            f"{TARGET_RSS_MB:g} MB; exit code {results[n]['exit_code']}"
        )
    sys.stdout.write("\n".join(lines) + "\n")


def main() -> int:
    """Run the benchmark and print (and store) its numbers."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", type=Path, help="an existing synthetic study with a T1w")
    parser.add_argument("--threads", type=int, default=2, help="--omp-nthreads (default 2)")
    parser.add_argument("--variants", nargs="+", choices=["pet", "t1w"], default=["pet", "t1w"])
    parser.add_argument("--no-save", action="store_true", help="do not write the JSON results")
    args = parser.parse_args()
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="bench_participant_") as tmp:
        root = Path(tmp)
        if args.study is None:
            study = generate_study(
                root / "study",
                n_participants=2,
                seed=5,
                with_t1w=True,
                anatomy="individual",
                t1w_skull=True,
                axial_fov_mm=108.0,
                n_jobs=args.threads,
            ).root
        else:
            study = args.study
        results = {
            variant: run_variant(
                variant, study / "bids", study / "truth", root / variant, args.threads
            )
            for variant in args.variants
        }
    print_table(results)
    if not args.no_save:
        settings = {"threads": args.threads, "nprocs": 1, "cpu_count": os.cpu_count()}
        path = save_results("participant", {"settings": settings, **results}, load_before)
        sys.stdout.write(f"results written to {path}\n")
    return max(r["exit_code"] for r in results.values())


if __name__ == "__main__":
    sys.exit(main())
