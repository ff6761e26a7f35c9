"""Tests of bids_app.stats.roi: paired tests, corrections, net DA release."""

from __future__ import annotations

import typing

import numpy as np
import pandas as pd
import pytest
import striatum_sim as sim
from scipy import stats as sps

from bids_app.errors import StatsError
from bids_app.stats.roi import (
    DEFAULT_BASELINE_FLOOR,
    ROI_STATS_COLUMNS,
    CorrectionFamily,
    NetMethod,
    describe_net_change,
    dorsal_vs_ventral_test,
    net_da_release,
    net_rcbf_change,
    one_sample_test,
    paired_roi_test,
    relative_change_voxelwise,
    roi_participant_measures,
    roi_statistics,
)


def test_paired_roi_test_matches_scipy_and_hand_values(rng: np.random.Generator) -> None:
    baseline = rng.normal(1.9, 0.25, size=10)
    challenge = baseline - rng.normal(0.2, 0.1, size=10)
    res = paired_roi_test(baseline, challenge)
    ref = sps.ttest_rel(challenge, baseline)
    diff = challenge - baseline
    assert res.n == 10
    assert res.df == 9
    assert res.t == pytest.approx(ref.statistic, rel=1e-12)
    assert res.p == pytest.approx(ref.pvalue, rel=1e-10)
    assert res.cohen_d == pytest.approx(diff.mean() / diff.std(ddof=1), rel=1e-12)
    assert res.cohen_d < 0  # challenge lowered the values
    assert res.baseline_mean == pytest.approx(baseline.mean())
    assert res.challenge_sd == pytest.approx(challenge.std(ddof=1))
    expected_pct = 100 * (challenge.mean() - baseline.mean()) / baseline.mean()
    assert res.mean_change_pct == pytest.approx(expected_pct)
    assert res.status == "ok"


def test_paired_roi_test_drops_incomplete_pairs() -> None:
    b = np.array([2.0, 1.5, np.nan, 1.8, 2.2, 1.0])
    c = np.array([1.8, 1.4, 1.2, np.inf, 2.0, 1.1])
    res = paired_roi_test(b, c)
    keep = [0, 1, 4, 5]
    ref = sps.ttest_rel(c[keep], b[keep])
    assert res.n == 4
    assert res.t == pytest.approx(ref.statistic)
    assert res.p == pytest.approx(ref.pvalue)
    assert res.baseline_mean == pytest.approx(b[keep].mean())


def test_paired_roi_test_degenerate_inputs_give_nan_and_status() -> None:
    too_few = paired_roi_test([1.0, np.nan], [0.9, 1.0])
    assert too_few.n == 1
    assert too_few.status == "too_few_pairs"
    assert np.isnan(too_few.t)
    assert np.isnan(too_few.p)
    assert np.isnan(too_few.cohen_d)
    constant = paired_roi_test([1.0, 2.0, 3.0], [1.5, 2.5, 3.5])
    assert constant.status == "zero_variance"
    assert np.isnan(constant.t)
    assert np.isnan(constant.p)
    assert constant.df == 2
    with pytest.raises(StatsError, match="3 baseline and 2 challenge"):
        paired_roi_test([1.0, 2.0, 3.0], [1.0, 2.0])


def test_one_sample_test_matches_scipy(rng: np.random.Generator) -> None:
    values = np.append(rng.normal(0.05, 0.05, size=10), np.nan)
    res = one_sample_test(values)
    finite = values[:10]
    ref = sps.ttest_1samp(finite, 0.0)
    assert res.n == 10
    assert res.t == pytest.approx(ref.statistic)
    assert res.p == pytest.approx(ref.pvalue)
    assert res.cohen_d == pytest.approx(finite.mean() / finite.std(ddof=1))
    assert one_sample_test([0.1]).status == "too_few_values"


def test_dorsal_vs_ventral_hand_made() -> None:
    # relative changes: dorsal [-0.1, -0.2, -0.05], ventral [0, 0.1, -0.05]
    # differences dorsal - ventral: [-0.1, -0.3, 0.0] -> t = -1.5118578920369088 (df 2)
    res = dorsal_vs_ventral_test(
        [2.0, 2.0, 2.0], [1.8, 1.6, 1.9], [1.0, 1.0, 1.0], [1.0, 1.1, 0.95]
    )
    assert res.n == 3
    assert res.df == 2
    assert res.t == pytest.approx(-1.5118578920369088, rel=1e-9)
    assert res.p == pytest.approx(2 * sps.t.sf(1.5118578920369088, 2), rel=1e-9)
    assert res.mean_change_pct == pytest.approx(-100 * 0.4 / 3)
    sd = np.std([-0.1, -0.3, 0.0], ddof=1)
    assert res.cohen_d == pytest.approx(-0.4 / 3 / sd)
    assert np.isnan(res.baseline_mean)
    assert np.isnan(res.challenge_sd)


def _tidy_table(rng: np.random.Generator, n: int = 8) -> pd.DataFrame:
    rows = []
    specs = {
        ("BPND", "dorsal_striatum"): (1.93, -0.2),
        ("BPND", "ventral_striatum"): (1.47, 0.0),
        ("BPND", "striatum"): (1.7, -0.1),
        ("R1", "pituitary"): (0.8, 0.1),
        ("R1", "carotid"): (1.2, 0.05),
        ("R1", "habenula"): (1.0, 0.06),
        ("R1", "habenula_control"): (1.0, 0.0),
    }
    for i in range(n):
        for (measure, roi), (level, shift) in specs.items():
            b = level + rng.normal(0, 0.1)
            rows.append(
                {
                    "participant_id": f"{i:02d}",
                    "measure": measure,
                    "roi": roi,
                    "baseline": b,
                    "challenge": b + shift + rng.normal(0, 0.05),
                }
            )
    return pd.DataFrame(rows)


def test_roi_statistics_columns_rows_and_corrections(rng: np.random.Generator) -> None:
    table = _tidy_table(rng)
    out = roi_statistics(table)
    assert list(out.columns) == list(ROI_STATS_COLUMNS)
    assert list(zip(out["measure"], out["roi"], strict=True)) == [
        ("BPND", "dorsal_striatum"),
        ("BPND", "ventral_striatum"),
        ("BPND", "striatum"),
        ("BPND", "dorsal_vs_ventral"),
        ("R1", "pituitary"),
        ("R1", "carotid"),
        ("R1", "habenula"),
        ("R1", "habenula_control"),
    ]
    rows = out.set_index(["measure", "roi"])
    hab = table[(table["measure"] == "R1") & (table["roi"] == "habenula")]
    p_hab = sps.ttest_rel(hab["challenge"], hab["baseline"]).pvalue
    assert rows.loc[("R1", "habenula"), "p"] == pytest.approx(p_hab)
    assert rows.loc[("R1", "habenula"), "p_corrected"] == pytest.approx(min(1.0, 2 * p_hab))
    assert rows.loc[("R1", "habenula"), "correction"] == "bonferroni_n2"
    assert rows.loc[("R1", "habenula_control"), "correction"] == "bonferroni_n2"
    for key in [("BPND", "dorsal_striatum"), ("R1", "pituitary"), ("BPND", "dorsal_vs_ventral")]:
        assert rows.loc[key, "correction"] == "none"
        assert rows.loc[key, "p_corrected"] == rows.loc[key, "p"]
    dorsal = table[table["roi"] == "dorsal_striatum"].reset_index()
    ventral = table[table["roi"] == "ventral_striatum"].reset_index()
    dvv = dorsal_vs_ventral_test(
        dorsal["baseline"], dorsal["challenge"], ventral["baseline"], ventral["challenge"]
    )
    assert rows.loc[("BPND", "dorsal_vs_ventral"), "t"] == pytest.approx(dvv.t)
    assert rows.loc[("BPND", "dorsal_vs_ventral"), "t"] < 0  # dorsal decreased more
    assert (out["n"] == 8).all()


def test_roi_statistics_custom_family_and_subsets(rng: np.random.Generator) -> None:
    table = _tidy_table(rng)
    family = CorrectionFamily((("R1", "pituitary"), ("R1", "carotid"), ("R1", "habenula")))
    out = roi_statistics(
        table, rois=["pituitary", "carotid"], measures=["R1"], corrections=[family]
    )
    assert list(out["roi"]) == ["pituitary", "carotid"]
    assert (out["correction"] == "bonferroni_n3").all()
    np.testing.assert_allclose(out["p_corrected"], np.minimum(1.0, 3 * out["p"]))


def test_roi_statistics_rejects_bad_tables(rng: np.random.Generator) -> None:
    table = _tidy_table(rng, n=3)
    with pytest.raises(StatsError, match=r"missing column\(s\) \['challenge'\]"):
        roi_statistics(table.drop(columns="challenge"))
    with pytest.raises(StatsError, match="duplicate"):
        roi_statistics(pd.concat([table, table.iloc[:1]]))
    family = CorrectionFamily((("R1", "habenula"),))
    with pytest.raises(StatsError, match="more than one correction family"):
        roi_statistics(table, corrections=[family, family])


def _toy_maps() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    baseline = np.array([[[2.0, 1.0], [0.05, np.nan]], [[1.0, 3.0], [1.0, 1.0]]])
    challenge = np.array([[[1.8, 0.9], [0.01, 1.0]], [[9.0, 3.0], [1.0, 1.0]]])
    mask = np.zeros((2, 2, 2), dtype=bool)
    mask[0] = True  # four voxels: two valid, one below the floor, one NaN
    return baseline, challenge, mask


def test_net_da_release_toy_map_all_methods() -> None:
    baseline, challenge, mask = _toy_maps()
    res = net_da_release(baseline, challenge, mask)
    # valid voxels (session mean > 0.1): (2, 1.8) and (1, 0.9), both a 10 % release
    assert res.value == pytest.approx(0.1, rel=1e-12)
    assert (res.n_voxels, res.n_excluded, res.method) == (2, 2, "symmetric")
    literal = net_da_release(baseline, challenge, mask, method="voxel_ratio")
    assert literal.value == pytest.approx(0.1)
    assert (literal.n_voxels, literal.method) == (2, "voxel_ratio")
    roi = net_da_release(baseline, challenge, mask, method="roi_mean")
    # finite voxels in both sessions: baseline 2 + 1 + 0.05, challenge 1.8 + 0.9 + 0.01
    assert roi.value == pytest.approx((3.05 - 2.71) / 3.05)
    assert roi.n_voxels == 3
    rcbf = net_rcbf_change(baseline, challenge, mask)
    assert rcbf.value == pytest.approx(-0.1, rel=1e-12)
    rel = relative_change_voxelwise(baseline, challenge, mask, "decrease")
    assert np.count_nonzero(np.isfinite(rel)) == 2
    assert np.isnan(rel[1]).all()  # outside the mask
    assert DEFAULT_BASELINE_FLOOR == pytest.approx(0.1)


def test_symmetric_net_change_is_the_voxel_mean_on_noise_free_maps() -> None:
    # two voxels releasing 5 % and 25 %: the mean voxel release is 15 %
    baseline = np.array([2.0, 3.0, 2.5, 2.5]).reshape(1, 2, 2)
    release = np.array([0.05, 0.25, 0.05, 0.25]).reshape(1, 2, 2)
    mask = np.ones((1, 2, 2), dtype=bool)
    res = net_da_release(baseline, baseline * (1 - release), mask)
    s = 2 * release / (2 - release)  # each voxel's symmetric change
    assert res.value == pytest.approx(2 * s.mean() / (2 + s.mean()), rel=1e-12)
    # averaging s before the (curved) back-transform departs from the voxel mean by about
    # 0.4 Var_v(s): here 0.0055 for releases as different as 5 % and 25 %
    assert res.value - 0.15 == pytest.approx(0.4 * s.var(), rel=0.05)
    increase = net_rcbf_change(baseline, baseline * (1 + release), mask)
    s_up = 2 * release / (2 + release)
    assert increase.value == pytest.approx(2 * s_up.mean() / (2 - s_up.mean()), rel=1e-12)
    # one release everywhere: exact
    uniform = net_da_release(baseline, 0.88 * baseline, mask)
    assert uniform.value == pytest.approx(0.12, rel=1e-12)
    # the voxel selection is symmetric in the sessions: the SESSION MEAN must exceed the floor
    low_b, low_c = np.array([[[0.15, 2.0]]]), np.array([[[0.04, 1.8]]])
    pair = np.ones((1, 1, 2), dtype=bool)
    symmetric = net_da_release(low_b, low_c, pair)
    assert (symmetric.n_voxels, symmetric.value) == (1, pytest.approx(0.1, rel=1e-12))
    assert net_da_release(low_b, low_c, pair, method="voxel_ratio").n_voxels == 2
    with pytest.raises(StatsError, match="'symmetric', 'roi_mean', 'voxel_ratio'"):
        net_da_release(baseline, baseline, mask, method="smoothed")  # type: ignore[arg-type]


def test_net_change_errors_and_empty_valid_set() -> None:
    baseline, challenge, mask = _toy_maps()
    with pytest.raises(StatsError, match="same shape"):
        net_da_release(baseline, challenge[0], mask)
    with pytest.raises(StatsError, match="mask is empty"):
        net_da_release(baseline, challenge, np.zeros_like(mask))
    with pytest.raises(StatsError, match="direction must be one of"):
        relative_change_voxelwise(baseline, challenge, mask, "up")  # type: ignore[arg-type]
    res = net_da_release(baseline, challenge, mask, baseline_floor=10.0)
    assert np.isnan(res.value)
    assert res.n_voxels == 0


def test_roi_participant_measures_fractions() -> None:
    table = pd.DataFrame(
        {
            "participant_id": ["01", "01", "02", "02"],
            "measure": ["BPND", "R1", "BPND", "R1"],
            "roi": ["dorsal_striatum", "pituitary", "dorsal_striatum", "pituitary"],
            "baseline": [2.0, 0.8, 1.6, 1.0],
            "challenge": [1.8, 1.0, 1.6, 0.9],
        }
    )
    out = roi_participant_measures(table)
    assert list(out.columns) == ["dorsal_da_release", "pituitary_r1_change"]
    assert out.loc["01", "dorsal_da_release"] == pytest.approx(0.1)
    assert out.loc["02", "dorsal_da_release"] == pytest.approx(0.0)
    assert out.loc["01", "pituitary_r1_change"] == pytest.approx(0.25)
    assert out.loc["02", "pituitary_r1_change"] == pytest.approx(-0.1)


# ----------------------------------------------------------------------------------------------
# Noise bias of the net-release estimators on simulated maps (see striatum_sim)
# ----------------------------------------------------------------------------------------------
N_PAIRS = 20  # antithetic noise pairs: the linear noise terms cancel within each pair


@pytest.fixture(scope="module")
def toy_study() -> tuple[sim.ToyStriatum, np.ndarray]:
    """The toy striatum and 2 x N_PAIRS unit-SD noise fields (4 mm FWHM), built once."""
    return sim.toy_striatum(), sim.unit_noise(np.random.default_rng(2024), 2 * N_PAIRS, 4.0)


def _bias(
    anatomy: sim.ToyStriatum,
    noise: np.ndarray,
    release: np.ndarray,
    cov: float,
    method: str,
) -> tuple[float, float]:
    """Mean error of ``method`` (and its standard error) against the noise-free truth.

    The truth is the CONTRACT's definition on the noise-free (partial-volume blurred) maps:
    the mean over striatal voxels of (BP_b - BP_c) / BP_b.
    """
    striatum = anatomy.striatum
    b0, c0 = sim.noise_free_maps(anatomy, release)
    truth = net_da_release(b0, c0, striatum, method="voxel_ratio").value
    sd = cov * float(b0[striatum].mean())
    pair_means = []
    for k in range(N_PAIRS):
        values = [
            net_da_release(
                b0 + sign * sd * noise[2 * k],
                c0 + sign * sd * noise[2 * k + 1],
                striatum,
                method=method,  # type: ignore[arg-type]
            ).value
            for sign in (1.0, -1.0)
        ]
        pair_means.append(np.mean(values))
    errors = np.asarray(pair_means) - truth
    return float(errors.mean()), float(errors.std(ddof=1) / np.sqrt(N_PAIRS))


@pytest.mark.parametrize("cov", [0.05, 0.10, 0.20])
@pytest.mark.parametrize("pattern", ["dorsal", "null"])
def test_net_da_release_is_unbiased_by_voxel_noise(
    toy_study: tuple[sim.ToyStriatum, np.ndarray], cov: float, pattern: str
) -> None:
    anatomy, noise = toy_study
    # the example study's pattern: 11.5 % release in caudate and putamen, none ventrally
    release = np.where(anatomy.dorsal, 0.115, 0.0) if pattern == "dorsal" else np.zeros(sim.SHAPE)
    bias, se = _bias(anatomy, noise, release, cov, "symmetric")
    assert se < 0.001  # the simulation resolves biases well below the bound
    assert abs(bias) <= (0.003 if pattern == "dorsal" else 0.0015)
    # the ratio of striatal means has no noise bias either, only its BPND weighting (+0.004
    # for a dorsal-only release, which weights the high-BPND dorsal voxels more)
    roi_bias, _ = _bias(anatomy, noise, release, cov, "roi_mean")
    assert roi_bias == pytest.approx(0.004 if pattern == "dorsal" else 0.0, abs=0.001)
    # the literal mean of voxel ratios: -(c/b) CV^2 per voxel, 6 points at 20 % COV
    literal, _ = _bias(anatomy, noise, release, cov, "voxel_ratio")
    assert literal < -0.5 * cov**2
    assert literal == pytest.approx(-1.5 * cov**2, rel=0.25)


def test_every_net_method_has_a_quotable_definition() -> None:
    for method in typing.get_args(NetMethod):
        release = describe_net_change(method, "decrease", "BPND")
        rcbf = describe_net_change(method, "increase", "R1")
        assert "BPND_baseline - " in release
        assert "R1_challenge - " in rcbf
    assert describe_net_change("roi_mean", "decrease", "BPND") == (
        "(mean BPND_baseline - mean BPND_challenge) / mean BPND_baseline over the striatal "
        "voxels finite in both sessions (ratio of regional means; unsmoothed maps)"
    )
    assert "2 s_mean / (2 - s_mean)" in describe_net_change("symmetric", "increase", "R1")
    with pytest.raises(StatsError, match="method must be one of"):
        describe_net_change("median", "decrease", "BPND")  # type: ignore[arg-type]


def test_roi_statistics_both_striatal_definitions(rng: np.random.Generator) -> None:
    table = _tidy_table(rng)
    extra = []
    for pid in table["participant_id"].unique():
        # Mawlawi: dorsal falls 10 %, ventral 2 %, with participant noise
        for roi, level, change in (("dst_mawlawi", 2.0, -0.10), ("vst_mawlawi", 1.6, -0.02)):
            b = level + rng.normal(0, 0.1)
            c = b * (1 + change + rng.normal(0, 0.01))
            extra.append(
                {"participant_id": pid, "measure": "BPND", "roi": roi}
                | {"baseline": b, "challenge": c}
            )
    table = pd.concat([table, pd.DataFrame(extra)], ignore_index=True)
    out = roi_statistics(table)
    bpnd = out[out["measure"] == "BPND"]
    assert list(bpnd["roi"]) == [
        "dorsal_striatum",
        "ventral_striatum",
        "striatum",
        "dst_mawlawi",
        "vst_mawlawi",
        "dorsal_vs_ventral",
        "dorsal_vs_ventral_mawlawi",
    ]
    rows = out.set_index(["measure", "roi"])
    assert rows.loc[("BPND", "dorsal_vs_ventral"), "definition"] == "AAL3"
    assert rows.loc[("BPND", "dorsal_striatum"), "definition"] == "AAL3"
    assert rows.loc[("BPND", "vst_mawlawi"), "definition"] == "Mawlawi2001"
    assert rows.loc[("BPND", "dorsal_vs_ventral_mawlawi"), "definition"] == "Mawlawi2001"
    assert pd.isna(rows.loc[("R1", "pituitary"), "definition"])
    d = table[table["roi"] == "dst_mawlawi"].reset_index()
    v = table[table["roi"] == "vst_mawlawi"].reset_index()
    rel = (d["challenge"] - d["baseline"]) / d["baseline"] - (
        (v["challenge"] - v["baseline"]) / v["baseline"]
    )
    expected = sps.ttest_1samp(rel, 0.0)
    row = rows.loc[("BPND", "dorsal_vs_ventral_mawlawi")]
    assert row["t"] == pytest.approx(expected.statistic)
    assert row["p"] == pytest.approx(expected.pvalue)
    assert row["mean_change_pct"] == pytest.approx(100 * rel.mean())
    assert row["mean_change_pct"] == pytest.approx(-8.0, abs=1.5)
    assert row["correction"] == "none"
