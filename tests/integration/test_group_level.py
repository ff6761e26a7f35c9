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


def _run_group(bids: Path, out: Path, tmp_path: Path, *extra: str) -> int:
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
            *extra,
        ]
    )


def _cluster_mask(group: Path, measure: str, direction: str) -> np.ndarray:
    (path,) = group.glob(f"*meas-{measure}_*_desc-{direction}clusters_mask.nii.gz")
    return np.asarray(nib.load(path).dataobj)


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
    # the same test on the Mawlawi/Martinez definition, flagged by the 'definition' column
    mawlawi = stats.loc[("BPND", "dorsal_vs_ventral_mawlawi")]
    assert mawlawi["definition"] == "Mawlawi2001"
    assert stats.loc[("BPND", "dorsal_vs_ventral"), "definition"] == "AAL3"
    assert mawlawi["t"] < 0  # the planted release spares the accumbens part of the VST
    assert stats.loc[("BPND", "dst_mawlawi"), "p"] < 0.01
    measures = pd.read_csv(group / "participant_measures.tsv", sep="\t")
    assert len(measures) == N_PARTICIPANTS
    assert 0.03 < measures.net_da_release.mean() < 0.12
    # per-session k2' (kinpar.tsv) and the injection (no PET sidecar here: n/a, not an error)
    assert (measures.k2prime_baseline == 0.12).all()
    assert (measures.k2prime_challenge == 0.12).all()
    assert measures.injected_mass_baseline.isna().all()
    comparisons = pd.read_csv(group / "session_comparisons.tsv", sep="\t").set_index("quantity")
    assert comparisons.loc["k2prime", "n"] == N_PARTICIPANTS
    assert comparisons.loc["k2prime", "status"] == "zero_variance"
    assert comparisons.loc["injected_mass", "n"] == 0
    assert (group / "group.html").stat().st_size > 10_000
    assert "k2&#39; and injection" in (group / "group.html").read_text() or (
        "k2' and injection" in (group / "group.html").read_text()
    )
    t_maps = sorted(group.glob("*meas-BPND_contrast-nalMinussal_stat-t_statmap.nii.gz"))
    assert len(t_maps) == 1
    assert np.nanmin(nib.load(t_maps[0]).get_fdata()) < -4

    # SPM-style cluster table: every cluster, flagged, with condition means on smoothed maps
    assert (clusters.significant == (clusters.p_fwe_rft < 0.05)).all()
    assert top.significant
    assert top.challenge_mean < top.baseline_mean
    assert top.mean_change_pct < 0
    assert "Caudate" in top.label_shares or "Putamen" in top.label_shares
    sidecar = json.loads((group / "clusters.json").read_text())
    assert set(sidecar) == set(clusters.columns)
    assert "smoothed" in sidecar["baseline_mean"]["Description"]
    peaks = pd.read_csv(group / "cluster_peaks.tsv", sep="\t")
    assert peaks.groupby(["measure", "direction", "cluster_id"]).size().max() <= 3
    first = peaks[peaks["rank"] == 1].merge(clusters, on=["measure", "direction", "cluster_id"])
    assert len(first) == len(clusters)
    np.testing.assert_allclose(
        first[["x_mm", "y_mm", "z_mm"]], first[["peak_x", "peak_y", "peak_z"]]
    )
    np.testing.assert_allclose(first["t"], first["peak_t"])
    for _, maxima in peaks.groupby(["measure", "direction", "cluster_id"]):
        xyz = maxima[["x_mm", "y_mm", "z_mm"]].to_numpy()
        gaps = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1)[np.triu_indices(len(xyz), 1)]
        assert (gaps > 8.0).all()
    # the cluster-mask images hold the significant clusters only (default)
    kept = set(np.unique(_cluster_mask(group, "BPND", "decrease"))) - {0}
    assert kept == set(bp_dec.cluster_id[bp_dec.significant])
    # both net-change estimators, with their one-sample tests
    for column in ("net_da_release_roi", "net_rcbf_change", "net_rcbf_change_roi"):
        assert measures[column].notna().all(), column
    assert 0.03 < measures.net_da_release_roi.mean() < 0.12
    net = pd.read_csv(group / "net_change_stats.tsv", sep="\t").set_index("measure")
    assert net.loc["net_da_release", "estimator"] == "symmetric"
    assert net.loc["net_da_release_roi", "estimator"] == "roi_mean"
    assert net.loc["net_da_release", "p"] < 0.05
    # the search volume: every voxel all participant maps cover (here the app's fit mask)
    parameters = json.loads((group / "group_parameters.json").read_text())
    fit_mask = build_roi_atlas(2).analysis_mask
    assert parameters["search_volume"]["BPND"]["voxels"] == int(fit_mask.sum())
    assert parameters["search_volume"]["BPND"]["ml"] == pytest.approx(fit_mask.sum() * 0.008)


def test_null_study_has_no_significant_cluster(tmp_path: Path) -> None:
    bids, out = _study(tmp_path, effect=False, seed=2)
    # an explicit mask (the upper half of the grid) and every cluster in the mask images
    atlas = build_roi_atlas(2)
    upper = np.zeros(atlas.shape, dtype=np.uint8)
    upper[:, :, atlas.shape[2] // 2 :] = 1
    mask_path = tmp_path / "upper_mask.nii.gz"
    nib.save(nib.Nifti1Image(upper, atlas.affine), mask_path)
    extra = ("--explicit-mask", str(mask_path), "--cluster-masks", "all")
    assert _run_group(bids, out, tmp_path, *extra) == 0
    group = out / "group"
    clusters = pd.read_csv(group / "clusters.tsv", sep="\t")
    assert not (clusters.p_fwe_rft < 0.05).any()
    assert not clusters.significant.any()
    parameters = json.loads((group / "group_parameters.json").read_text())
    expected = int((atlas.analysis_mask & (upper > 0)).sum())
    assert parameters["search_volume"]["R1"]["voxels"] == expected
    assert parameters["explicit_mask"] == str(mask_path)
    for measure in ("BPND", "R1"):
        for direction in ("decrease", "increase"):
            found = clusters[(clusters.measure == measure) & (clusters.direction == direction)]
            labels = _cluster_mask(group, measure, direction)
            assert set(np.unique(labels)) - {0} == set(found.cluster_id)
            assert not labels[:, :, : atlas.shape[2] // 2].any()


def test_explicit_mask_on_another_grid_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bids, out = _study(tmp_path, effect=False, seed=3)
    mask_path = tmp_path / "mask_1mm.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((10, 10, 10), np.uint8), np.eye(4)), mask_path)
    assert _run_group(bids, out, tmp_path, "--explicit-mask", str(mask_path)) == 1
    err = capsys.readouterr().err
    assert "mask_1mm.nii.gz" in err
    assert "not the group grid" in err
    assert not (out / "group").exists()


def test_too_few_participants_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bids = tmp_path / "bids"
    bids.mkdir()
    (bids / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": "1.10.0"}')
    code = main([str(bids), str(tmp_path / "out"), "group", "--work-dir", str(tmp_path / "w")])
    assert code == 1
    assert "needs at least 3 participants" in capsys.readouterr().err
