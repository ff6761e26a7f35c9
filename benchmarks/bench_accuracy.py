"""Accuracy on realistic simulated participants, for both normalisation paths.

Run: ``python benchmarks/bench_accuracy.py [--n 10] [--seed 0] [--paths t1w pet] [--work DIR]``.

Generates (or reuses) a realistic ``petsim`` study -- individual anatomy (smooth random
deformation and scaling of the template), a whole-head T1w, a 108 mm axial field of view -- and
its null twin (same participants, noise and motion, no drug effect), runs the participant and
group levels for each path (``t1w``: PET -> T1w -> MNI; ``pet``: the same data without the T1w
images) and compares with what an ideal pipeline measures on the app's own ROIs
(:func:`petsim.ideal.ideal_roi_measures`: noise-free data through the scanner grid and one
resampling with the true mapping). Prints ``key=value`` lines and writes
``benchmarks/results/accuracy.json``.

Targets (issue "Individual anatomy", point 6): striatal ROI BPND median |error| vs the ideal
pipeline <= 8 %; per-participant dorsal change within 0.02 of the ideal; the dorsal-striatum
BPND decrease found at cluster pFWE < 0.05 with no significant cluster far (> 20 mm) from the
striatum; no significant cluster in the null study.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _results import load_average, save_results
from scipy import ndimage

from bids_app.cli.run import main as bids_app_main
from bids_app.roi.atlas import build_roi_atlas
from petsim import generate_study
from petsim.ideal import ideal_roi_measures

STRIATAL_ROIS = ("dorsal_striatum", "ventral_striatum")
REPORTED_ROIS = ("dorsal_striatum", "ventral_striatum", "caudate", "putamen", "striatum")
FAR_FROM_STRIATUM_MM = 20.0
ALPHA = 0.05


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10, help="participants (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--paths", nargs="+", choices=["t1w", "pet"], default=["t1w", "pet"])
    parser.add_argument("--work", type=Path, default=Path("bench_accuracy_work"))
    parser.add_argument("--nprocs", type=int, default=2)
    parser.add_argument("--no-null", action="store_true", help="skip the null study")
    return parser.parse_args()


def make_study(root: Path, n: int, seed: int, null: bool, nprocs: int) -> Path:
    """Generate the realistic study once (reused when present)."""
    if not (root / "bids" / "dataset_description.json").is_file():
        generate_study(
            root,
            n_participants=n,
            seed=seed,
            null=null,
            anatomy="individual",
            t1w_skull=True,
            axial_fov_mm=108.0,
            n_jobs=nprocs,
            overwrite=True,
        )
    return root


def pet_only_view(bids: Path, view: Path) -> Path:
    """The same dataset without ``anat/`` folders (symbolic links, nothing copied)."""
    if view.exists():
        return view
    for path in sorted(bids.rglob("*")):
        rel = path.relative_to(bids)
        if "anat" in rel.parts or path.is_dir():
            continue
        target = view / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(path.resolve(), target)
    return view


def run_app(bids: Path, out: Path, work: Path, nprocs: int) -> dict[str, float]:
    """Participant and group levels; returns their wall times (s)."""
    common = [str(bids), str(out), "--work-dir", str(work), "--skip-bids-validation"]
    t0 = time.perf_counter()
    code = bids_app_main(
        [
            str(bids),
            str(out),
            "participant",
            "--nprocs",
            str(nprocs),
            "--work-dir",
            str(work),
            "--skip-bids-validation",
        ]
    )
    t1 = time.perf_counter()
    if code != 0:
        sys.stderr.write(f"participant level exited {code} for {bids}\n")
    code = bids_app_main([*common[:2], "group", *common[2:4]])
    t2 = time.perf_counter()
    if code != 0:
        sys.stderr.write(f"group level exited {code} for {bids}\n")
    return {"participant_s": t1 - t0, "group_s": t2 - t1}


def roi_errors(out: Path, ideal: pd.DataFrame) -> pd.DataFrame:
    """App ROI BPND against the ideal pipeline's, per participant, session and ROI."""
    rows = []
    for kinpar in sorted(out.glob("sub-*/ses-*/pet/*_kinpar.tsv")):
        sub, ses = kinpar.name.split("_")[:2]
        table = pd.read_csv(kinpar, sep="\t", na_values=["n/a"]).set_index("roi")
        for roi in REPORTED_ROIS:
            expected = ideal[
                (ideal.participant_id == sub) & (ideal.session_id == ses) & (ideal.roi == roi)
            ]
            if roi not in table.index or expected.empty:
                continue
            app = float(table.loc[roi, "BPND"])
            exp = float(expected.BPND.iloc[0])
            rows.append(
                {
                    "participant_id": sub,
                    "session_id": ses,
                    "roi": roi,
                    "app": app,
                    "ideal": exp,
                    "error_pct": 100.0 * (app / exp - 1.0),
                }
            )
    return pd.DataFrame(rows)


def dorsal_change(errors: pd.DataFrame) -> pd.DataFrame:
    """Relative dorsal BPND decrease (baseline - challenge) / baseline, app and ideal."""
    dorsal = errors[errors.roi == "dorsal_striatum"].pivot(
        index="participant_id", columns="session_id", values=["app", "ideal"]
    )
    out = pd.DataFrame(index=dorsal.index)
    for kind in ("app", "ideal"):
        base, chal = dorsal[(kind, "ses-sal")], dorsal[(kind, "ses-nal")]
        out[kind] = (base - chal) / base
    out["difference"] = out["app"] - out["ideal"]
    return out


def cluster_summary(out: Path, striatum: np.ndarray, affine: np.ndarray) -> dict[str, object]:
    """Significant BPND-decrease clusters at the striatum, and any far from it."""
    clusters = pd.read_csv(out / "group" / "clusters.tsv", sep="\t", na_values=["n/a"])
    significant = clusters[clusters["p_fwe_rft"] < ALPHA]
    distance_mm = ndimage.distance_transform_edt(~striatum) * 2.0
    inverse = np.linalg.inv(affine)

    def distance(row: pd.Series) -> float:
        ijk = np.rint(inverse @ np.array([row.peak_x, row.peak_y, row.peak_z, 1.0]))[:3]
        i, j, k = (int(v) for v in ijk)
        return float(distance_mm[i, j, k])

    dists = [distance(r) for _, r in significant.iterrows()]
    near = [
        d <= 10.0 and r.measure == "BPND" and r.direction == "decrease"
        for d, (_, r) in zip(dists, significant.iterrows(), strict=True)
    ]
    far = [d > FAR_FROM_STRIATUM_MM for d in dists]
    return {
        "n_significant": len(significant),
        "dorsal_decrease_found": bool(any(near)),
        "n_far_from_striatum": int(sum(far)),
        "best_p_fwe": float(significant["p_fwe_rft"].min()) if len(significant) else None,
    }


def evaluate(study: Path, out: Path, atlas: object) -> dict[str, object]:
    """All accuracy numbers of one run."""
    masks = {k: np.asarray(v) for k, v in atlas.masks.items()}  # type: ignore[attr-defined]
    ideal = ideal_roi_measures(study / "truth", masks)
    errors = roi_errors(out, ideal)
    striatal = errors[errors.roi.isin(STRIATAL_ROIS)]
    change = dorsal_change(errors)
    summary = pd.read_csv(out / "logs" / "summary.tsv", sep="\t", dtype=str)
    return {
        "striatal_median_abs_error_pct": float(striatal.error_pct.abs().median()),
        "median_abs_error_pct": {
            roi: float(g.error_pct.abs().median()) for roi, g in errors.groupby("roi")
        },
        "median_error_pct": {roi: float(g.error_pct.median()) for roi, g in errors.groupby("roi")},
        "dorsal_change_max_abs_difference": float(change["difference"].abs().max()),
        "dorsal_change_mean_difference": float(change["difference"].mean()),
        "clusters": cluster_summary(
            out,
            masks["striatum"],
            atlas.affine,  # type: ignore[attr-defined]
        ),
        "qc": summary.drop_duplicates("participant_id")["qc"]
        .str.split(":")
        .str[0]
        .value_counts()
        .to_dict(),
        "n_participants": int(change.shape[0]),
    }


def main() -> int:
    args = parse_args()
    load_before = load_average()
    work = args.work.resolve()
    atlas = build_roi_atlas(2)
    results: dict[str, object] = {"settings": vars(args) | {"work": str(work)}}
    studies = {"effect": make_study(work / "study", args.n, args.seed, False, args.nprocs)}
    if not args.no_null:
        studies["null"] = make_study(work / "null", args.n, args.seed, True, args.nprocs)
    for kind, study in studies.items():
        for path in args.paths:
            bids = (
                study / "bids"
                if path == "t1w"
                else pet_only_view(study / "bids", work / f"{kind}_pet_only_bids")
            )
            out = work / f"out_{kind}_{path}"
            times = {}
            if not (out / "group" / "group.html").is_file():
                times = run_app(bids, out, work / f"work_{kind}_{path}", args.nprocs)
            numbers = evaluate(study, out, atlas) | times
            results[f"{kind}_{path}"] = numbers
            print(f"== {kind} study, {path} path")
            for key, value in numbers.items():
                print(f"{kind}_{path}.{key}={value}")
    path = save_results("accuracy", json.loads(json.dumps(results, default=str)), load_before)
    print(f"results written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
