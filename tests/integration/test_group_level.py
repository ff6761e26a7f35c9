"""Group level end to end on participant derivatives with a planted effect (no registration)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from helpers.derivatives import smooth_noise, write_participant

from bids_app.cli.run import main
from bids_app.roi.atlas import build_roi_atlas

pytestmark = pytest.mark.integration

N_PARTICIPANTS = 10
SESSIONS = {"baseline": "sal", "challenge": "nal"}


def _study(tmp_path: Path, effect: bool, seed: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    atlas = build_roi_atlas(2)
    bids = tmp_path / "bids"
    bids.mkdir()
    (bids / "dataset_description.json").write_text(
        json.dumps({"Name": "group test", "BIDSVersion": "1.10.0"})
    )
    out = tmp_path / "out"
    dorsal = atlas.masks["dorsal_striatum"]
    ventral = atlas.masks["ventral_striatum"]
    putamen = atlas.masks["putamen"]
    for i in range(N_PARTICIPANTS):
        bp = np.full(atlas.shape, 0.3) + smooth_noise(rng, atlas.shape, 0.05)
        bp[dorsal] += 1.7
        bp[ventral] += 1.2
        bp *= rng.normal(1.0, 0.1)
        r1 = 1.0 + smooth_noise(rng, atlas.shape, 0.04)
        release = rng.normal(0.10, 0.04) if effect else 0.0
        bp_c = bp + smooth_noise(rng, atlas.shape, 0.05)
        bp_c[dorsal] *= 1.0 - release
        r1_c = r1 + smooth_noise(rng, atlas.shape, 0.04)
        if effect:
            r1_c[putamen] *= 1.08
        maps = {
            ("BPND", "baseline"): bp,
            ("BPND", "challenge"): bp_c,
            ("R1", "baseline"): r1,
            ("R1", "challenge"): r1_c,
        }
        write_participant(out, f"{i + 1:02d}", atlas, maps, SESSIONS)
    return bids, out


def _run_group(bids: Path, out: Path, tmp_path: Path) -> int:
    return main(
        [
            str(bids),
            str(out),
            "group",
            "--work-dir",
            str(tmp_path / "work"),
            "--n-permutations",
            "64",
            "--skip-bids-validation",
        ]
    )


def test_planted_dorsal_decrease_is_found(tmp_path: Path) -> None:
    bids, out = _study(tmp_path, effect=True, seed=1)
    assert _run_group(bids, out, tmp_path) == 0
    group = out / "group"
    clusters = pd.read_csv(group / "clusters.tsv", sep="\t")
    bp_dec = clusters[(clusters.measure == "BPND") & (clusters.direction == "decrease")]
    assert (bp_dec.p_fwe_rft < 0.05).any()
    top = bp_dec.sort_values("size_voxels").iloc[-1]
    assert abs(top.peak_x) > 8  # caudate/putamen are lateral
    assert -10 < top.peak_z < 25
    stats = pd.read_csv(group / "roi_stats.tsv", sep="\t").set_index(["measure", "roi"])
    assert stats.loc[("BPND", "dorsal_striatum"), "p"] < 0.01
    assert stats.loc[("BPND", "dorsal_striatum"), "t"] < 0
    assert stats.loc[("BPND", "ventral_striatum"), "p"] > 0.01
    assert stats.loc[("BPND", "dorsal_vs_ventral"), "p"] < 0.05
    measures = pd.read_csv(group / "participant_measures.tsv", sep="\t")
    assert len(measures) == N_PARTICIPANTS
    assert 0.03 < measures.net_da_release.mean() < 0.12
    assert (group / "group.html").stat().st_size > 10_000
    t_maps = sorted(group.glob("*meas-BPND_contrast-nalMinussal_stat-t_statmap.nii.gz"))
    assert len(t_maps) == 1
    assert np.nanmin(nib.load(t_maps[0]).get_fdata()) < -4


def test_null_study_has_no_significant_cluster(tmp_path: Path) -> None:
    bids, out = _study(tmp_path, effect=False, seed=2)
    assert _run_group(bids, out, tmp_path) == 0
    clusters = pd.read_csv(out / "group" / "clusters.tsv", sep="\t")
    assert not (clusters.p_fwe_rft < 0.05).any()


def test_too_few_participants_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bids = tmp_path / "bids"
    bids.mkdir()
    (bids / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": "1.10.0"}')
    code = main([str(bids), str(tmp_path / "out"), "group", "--work-dir", str(tmp_path / "w")])
    assert code == 1
    assert "needs at least 3 participants" in capsys.readouterr().err
