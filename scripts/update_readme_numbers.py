"""Regenerate the measured numbers in README.md from the benchmarks' JSON results.

Usage::

    python benchmarks/bench_kinetics.py          # each writes benchmarks/results/<name>.json
    python benchmarks/bench_group_stats.py
    python benchmarks/bench_participant.py
    python scripts/update_readme_numbers.py      # rewrites the block in README.md
    python scripts/update_readme_numbers.py --check   # exit 1 if README.md is out of date

The block between ``<!-- numbers:start -->`` and ``<!-- numbers:end -->`` in README.md is
replaced; nothing else in the file changes. Every number in it comes from a results file, with
the machine (CPU model, usable CPUs) and the load average it was measured under: the
development machines are shared, so a timing means little without its load. Comparisons with
other methods are only those a benchmark measured side by side in the same process.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
START = "<!-- numbers:start -->"
END = "<!-- numbers:end -->"
#: The multiplication sign of the README prose (written as an escape: ruff flags the glyph).
TIMES = "\u00d7"
STAGE_LABELS = {
    "motion_s": "motion",
    "means_s": "means",
    "coregistration_s": "co-registration",
    "normalisation_s": "normalisation",
    "resample_s": "resampling",
    "model_s": "kinetic model",
    "outputs_s": "outputs and report",
}


def load_results(results_dir: Path) -> dict[str, dict[str, Any]]:
    """Every ``<name>.json`` of the results folder, by benchmark name."""
    found = {}
    for path in sorted(results_dir.glob("*.json")):
        payload = json.loads(path.read_text(encoding="utf-8"))
        found[payload["benchmark"]] = payload
    return found


def conditions(payload: dict[str, Any]) -> str:
    """Where and under which load a benchmark ran, e.g. ``"Xeon ..., 2 CPUs, load 5.1"``."""
    machine = payload["machine"]
    load = machine.get("load_average_before") or []
    load_text = f"load average {load[0]:.1f} at the start" if load else "load not recorded"
    day = machine.get("finished_utc", "")[:10]
    return f"{machine['cpu_model']}, {machine['usable_cpus']} CPUs, {load_text}, {day}"


def _missing(name: str) -> str:
    return f"not measured yet: run `python benchmarks/bench_{name}.py`"


def participant_lines(payload: dict[str, Any] | None) -> list[str]:
    """The participant-level bullet."""
    head = f"- **One participant**, two sessions of 26 frames (84 {TIMES} 96 {TIMES} 68 voxels)"
    if payload is None:
        return [f"{head}: {_missing('participant')}."]
    res = payload["results"]
    threads = res.get("settings", {}).get("threads", "?")
    lines = [
        f"{head}, `--omp-nthreads {threads}` (`benchmarks/bench_participant.py`; "
        f"{conditions(payload)}):"
    ]
    names = {"pet": "PET-only", "t1w": "With a T1w"}
    for key, label in names.items():
        run = res.get(key)
        if run is None:
            continue
        if run.get("exit_code") != 0:
            lines.append(f"  - {label}: the run failed (exit code {run.get('exit_code')}).")
            continue
        stages = ", ".join(
            f"{text} {run[col]:.0f} s" for col, text in STAGE_LABELS.items() if col in run
        )
        load = run.get("load_average_before") or []
        load_text = f", load average {load[0]:.1f}" if load else ""
        lines.append(
            f"  - {label}: **{run['wall_s']:.0f} s** wall (target ≤ {run['target_s']:.0f} s"
            f"{load_text}): {stages}; peak memory {run['peak_rss_mb']:.0f} MB "
            f"(target ≤ {run['target_peak_rss_mb'] / 1024:.0f} GB)."
        )
    accuracy = [res[k] for k in names if k in res and res[k].get("exit_code") == 0]
    if accuracy:
        rms = max(v for run in accuracy for v in run["motion_rms_mm"].values())
        bp = max(run["roi_bpnd_max_error_pct"] for run in accuracy)
        lines.append(
            f"  - Head motion within {rms:.2f} mm RMS of the truth (50 mm sphere); dorsal and "
            f"ventral striatal BPND within {bp:.1f} % of the ideal pipeline."
        )
    return lines


def group_lines(payload: dict[str, Any] | None) -> list[str]:
    """The group-level bullet."""
    head = "- **Group statistics**, 10 participants, BPND and R1, 1024 sign flips"
    if payload is None:
        return [f"{head}: {_missing('group_stats')}."]
    res = payload["results"]
    flips_s = sum(m["sign_flips_s"] for m in res["measures"].values())
    per_flip = sorted(m["ms_per_flip"] for m in res["measures"].values())
    spread = (
        f"{per_flip[0]:.1f}"
        if per_flip[0] == per_flip[-1]
        else (f"{per_flip[0]:.1f}-{per_flip[-1]:.1f}")
    )
    return [
        f"{head} (`benchmarks/bench_group_stats.py`; {conditions(payload)}): "
        f"**{res['total_s']:.1f} s** (target ≤ {res['target_s']:.0f} s); timed on their own, "
        f"the sign-flip null distributions of both measures take {flips_s:.1f} s "
        f"({spread} ms per flip)."
    ]


def _number(results: dict[str, Any], suffix: str) -> float:
    """The value of the one key ending in ``suffix`` (the kinetics keys carry the voxel count)."""
    keys = [k for k in results if k.endswith(suffix)]
    if len(keys) != 1:
        msg = f"kinetics results: expected one key ending in {suffix!r}; found {keys}"
        raise KeyError(msg)
    return float(results[keys[0]])


def kinetics_lines(payload: dict[str, Any] | None) -> list[str]:
    """The voxelwise SRTM2 bullet, with the side-by-side comparisons the benchmark made."""
    head = "- **Voxelwise SRTM2** (basis functions)"
    if payload is None:
        return [f"{head}: {_missing('kinetics')}."]
    res = payload["results"]
    n_voxels = int(res["n_voxels"])
    wall = _number(res, "_voxels_s")
    lines = [
        f"{head}, {n_voxels:,} voxels {TIMES} {res['n_frames']} frames, {res['threads']} thread "
        f"(`benchmarks/bench_kinetics.py`; {conditions(payload)}): **{wall:.2f} s**."
    ]
    side = []
    if "srtm2_previous_s" in res:
        side.append(
            f"the previous solver {float(res['srtm2_previous_s']):.2f} s "
            f"({float(res['srtm2_speedup_vs_previous']):.1f}{TIMES} slower)"
        )
    if "curve_fit_loop_voxels" in res:
        loop = next(float(v) for k, v in res.items() if k.startswith("curve_fit_loop_scaled"))
        side.append(
            f"a per-voxel `scipy.optimize.curve_fit` loop {loop:,.0f} s (timed on "
            f"{res['curve_fit_loop_voxels']} voxels and scaled; "
            f"{float(res['speedup_vs_curve_fit']):,.0f}{TIMES} slower)"
        )
    if side:
        lines.append("  Timed side by side in the same process: " + "; ".join(side) + ".")
    return lines


def _accuracy_run(label: str, run: dict[str, Any], null: dict[str, Any] | None) -> str:
    """One path's accuracy line."""
    err = run["median_abs_error_pct"]
    rois = ", ".join(
        f"{name} {err[roi]:.1f} %"
        for roi, name in (
            ("dorsal_striatum", "dorsal"),
            ("caudate", "caudate"),
            ("putamen", "putamen"),
            ("ventral_striatum", "ventral"),
        )
        if roi in err
    )
    clusters = run["clusters"]
    found = "found" if clusters["dorsal_decrease_found"] else "**not found**"
    qc = ", ".join(f"{n} {status}" for status, n in sorted(run.get("qc", {}).items()))
    median = run["striatal_median_abs_error_pct"]
    release = run["dorsal_change_max_abs_difference"]
    far = clusters["n_far_from_striatum"]
    text = (
        f"  - {label}: striatal BPND median |error| **{median:.1f} %** ({rois}); "
        f"per-participant dorsal release within {release:.3f} of the ideal; the dorsal BPND "
        f"decrease {found} at cluster pFWE < 0.05, {far} significant cluster(s) more than "
        "20 mm from the striatum"
    )
    if null is not None:
        text += f"; null study: {null['clusters']['n_significant']} significant cluster(s)"
    return text + (f"; QC {qc}." if qc else ".")


def accuracy_lines(payload: dict[str, Any] | None) -> list[str]:
    """The realistic-anatomy accuracy bullet (both normalisation paths)."""
    head = "- **Accuracy on realistic anatomy**"
    if payload is None:
        return [f"{head}: {_missing('accuracy')}."]
    res = payload["results"]
    settings = res.get("settings", {})
    lines = [
        f"{head}, {settings.get('n', '?')} participants with individual brains, a whole-head "
        "T1w and a 108 mm axial field of view, against an ideal pipeline on the same ROIs "
        f"(`benchmarks/bench_accuracy.py`; {conditions(payload)}):"
    ]
    for path, label in (("t1w", "With a T1w"), ("pet", "PET-only")):
        run = res.get(f"effect_{path}")
        if run is not None:
            lines.append(_accuracy_run(label, run, res.get(f"null_{path}")))
    return lines


def render_block(results: dict[str, dict[str, Any]]) -> str:
    """The text between the markers (markers included)."""
    body = [
        START,
        "<!-- Generated by scripts/update_readme_numbers.py from benchmarks/results/*.json; "
        "edit those scripts, not this block. -->",
        *participant_lines(results.get("participant")),
        *group_lines(results.get("group_stats")),
        *kinetics_lines(results.get("kinetics")),
        *accuracy_lines(results.get("accuracy")),
        END,
    ]
    return "\n".join(body)


def replace_block(text: str, block: str, readme: Path) -> str:
    """``text`` with its marked block replaced by ``block``."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        msg = (
            f"{readme} has no '{START}' ... '{END}' block; add both markers where the "
            "measured numbers belong"
        )
        raise SystemExit(msg)
    return text[:start] + block + text[end + len(END) :]


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with ``--check``, compare) the README block."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--check", action="store_true", help="exit 1 if the README is stale")
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    updated = replace_block(text, render_block(load_results(args.results)), args.readme)
    if args.check:
        if updated != text:
            sys.stderr.write(f"{args.readme}: the numbers block is out of date\n")
            return 1
        return 0
    if updated != text:
        args.readme.write_text(updated, encoding="utf-8")
        sys.stdout.write(f"updated the numbers block of {args.readme}\n")
    else:
        sys.stdout.write(f"{args.readme} already up to date\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
