"""The paper's design end to end: 10 participants, participant + group level, against truth.

Slow (about 5 minutes on 2 cores): a 10-participant synthetic study in small mode (4 mm native
voxels, 12 frames) with the paper-like effects, and the same study without any effect.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bids_app.cli.run import main
from bids_app.roi.atlas import build_roi_atlas
from petsim import generate_study
from petsim.ideal import ideal_roi_measures

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _run_study(root: Path, *, null: bool, n_participants: int = 10) -> Path:
    paths = generate_study(
        root / "study", small=True, n_participants=n_participants, seed=11, null=null, n_jobs=2
    )
    out = root / "out"
    common = [
        str(paths.bids_dir),
        str(out),
        "--work-dir",
        str(root / "work"),
        "--skip-bids-validation",
    ]
    assert main([*common[:2], "participant", *common[2:], "--nprocs", "2"]) == 0
    assert main([*common[:2], "group", *common[2:]]) == 0
    return out / "group"


def test_paper_design_recovers_the_dorsal_decrease(tmp_path: Path) -> None:
    group = _run_study(tmp_path, null=False)
    truth = pd.read_csv(tmp_path / "study" / "truth" / "participants_truth.tsv", sep="\t")
    clusters = pd.read_csv(group / "clusters.tsv", sep="\t")
    significant = clusters[clusters.p_fwe_rft < 0.05]
    decrease = significant[(significant.measure == "BPND") & (significant.direction == "decrease")]
    assert len(decrease) >= 1
    top = decrease.sort_values("size_voxels").iloc[-1]
    assert any(name in top.label for name in ("Caudate", "Putamen", "Pallidum"))
    assert top.p_fwe_perm < 0.05
    # no BPND increase anywhere (none was simulated)
    assert significant[
        (significant.measure == "BPND") & (significant.direction == "increase")
    ].empty

    stats = pd.read_csv(group / "roi_stats.tsv", sep="\t").set_index(["measure", "roi"])
    assert stats.loc[("BPND", "dorsal_striatum"), "p"] < 0.05
    assert stats.loc[("BPND", "dorsal_striatum"), "t"] < 0
    assert stats.loc[("BPND", "dorsal_vs_ventral"), "p"] < 0.05

    measures = pd.read_csv(group / "participant_measures.tsv", sep="\t").set_index(
        "participant_id"
    )
    truth = truth.set_index("participant_id")
    # the simulated ventral change is only partial-volume spill-over from the dorsal striatum
    assert truth["exp_ventral_da_release"].mean() < 0.5 * truth["exp_dorsal_da_release"].mean()
    # the app measures what an ideal pipeline measures on the app's own ventral ROI,
    # participant by participant. (That ROI, AAL3's accumbens, holds part of the simulator's
    # HCPex caudate/putamen: it reads about 0.6 of the dorsal release where the simulator's own
    # accumbens reads 0.25, a difference of atlases, not of processing.)
    masks = build_roi_atlas(2).masks
    rois = ("ventral_striatum", "striatum", "cerebellum")
    ideal_bp = ideal_roi_measures(
        tmp_path / "study" / "truth", {roi: masks[roi] for roi in rois}
    ).pivot_table(index="participant_id", columns=["roi", "session_id"], values="BPND")
    baseline = ideal_bp[("ventral_striatum", "ses-sal")]
    ideal_ventral = (baseline - ideal_bp[("ventral_striatum", "ses-nal")]) / baseline
    diff = measures["ventral_da_release"] - ideal_ventral.loc[measures.index]
    assert diff.abs().max() < 0.03
    net = measures["net_da_release"] - truth.loc[measures.index, "exp_net_da_release"]
    assert net.abs().max() < 0.02
    # the DA-aversion correlation is a property of the simulated sample; the app must report
    # what the true net DA release gives with the same aversion index
    corr = pd.read_csv(group / "correlations.tsv", sep="\t").set_index(["x", "y"])
    row = corr.loc[("net_da_release", "aversion_index")]
    assert row["df"] == 8
    ideal = truth.loc[measures.index, "exp_net_da_release"].corr(measures["aversion_index"])
    assert row["r"] == pytest.approx(ideal, abs=0.1)
    assert (group / "group.html").stat().st_size < 5_000_000


def test_null_study_has_no_significant_cluster(tmp_path: Path) -> None:
    # six participants: enough for every cluster and ROI test, and 40 % less CI time than ten
    group = _run_study(tmp_path, null=True, n_participants=6)
    clusters = pd.read_csv(group / "clusters.tsv", sep="\t")
    assert not (clusters.p_fwe_rft < 0.05).any()
    stats = pd.read_csv(group / "roi_stats.tsv", sep="\t").set_index(["measure", "roi"])
    assert stats.loc[("BPND", "dorsal_striatum"), "p"] > 0.05
