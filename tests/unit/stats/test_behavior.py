"""Tests of bids_app.stats.behavior: effects, FDR, PC1 aversion index, correlations."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from bids_app.errors import StatsError
from bids_app.outputs.names import GROUP_FILES
from bids_app.outputs.sidecars import group_table_sidecar
from bids_app.stats.behavior import (
    BEHAVIOR_EFFECTS_COLUMNS,
    BehaviorDesign,
    analyze_behavior,
    aversion_index,
    behavior_effects,
    bh_fdr,
    change_column,
    correlations,
    descriptives,
    leave_one_out_r,
    subjective_effects,
    window_effects,
)

TIMES = (-10.0, 10.0, 30.0, 60.0)
SESSIONS = {"baseline_session": "sal", "challenge_session": "nal"}


def _long_table(rng: np.random.Generator, n: int = 10) -> pd.DataFrame:
    """Synthetic long phenotype table; nal raises anxiety and lowers happiness after 0 min."""
    rows = []
    for i in range(n):
        sensitivity = rng.normal(1.0, 0.5)
        for session in ("sal", "nal"):
            for time_min in TIMES:
                effect = sensitivity * (session == "nal") * (time_min > 0)
                rows.append(
                    {
                        "participant_id": f"{i:02d}",
                        "session_id": session,
                        "time_min": time_min,
                        "anxiety": 2 + 2 * effect + rng.normal(0, 0.5),
                        "happiness": 6 - 2 * effect + rng.normal(0, 0.5),
                        "pain": 3 + rng.normal(0, 1),
                        "cortisol": 10 + 5 * effect + rng.normal(0, 1),
                        "pulse": 70 + 4 * (session == "nal") + rng.normal(0, 2),
                    }
                )
    return pd.DataFrame(rows)


def _value(table: pd.DataFrame, pid: str, session: str, time_min: float, col: str) -> float:
    row = table[
        (table["participant_id"] == pid)
        & (table["session_id"] == session)
        & (table["time_min"] == time_min)
    ]
    return float(row[col].iloc[0])


def test_bh_fdr_matches_scipy(rng: np.random.Generator) -> None:
    p = np.concatenate([rng.uniform(0, 0.05, 5), rng.uniform(0, 1, 20), [0.0, 1.0, 0.3, 0.3]])
    np.testing.assert_allclose(bh_fdr(p), sps.false_discovery_control(p), rtol=1e-12)
    with_nan = np.insert(p, [3, 10], np.nan)
    adjusted = bh_fdr(with_nan)
    assert np.isnan(adjusted[[3, 11]]).all()
    np.testing.assert_allclose(adjusted[np.isfinite(with_nan)], sps.false_discovery_control(p))
    assert bh_fdr([]).size == 0
    with pytest.raises(StatsError, match=r"\[0, 1\]"):
        bh_fdr([0.5, 1.5])


def test_subjective_effects_match_hand_changes_and_scipy(rng: np.random.Generator) -> None:
    data = _long_table(rng)
    table, changes = subjective_effects(data, ["anxiety", "happiness"], **SESSIONS)
    assert len(table) == 6
    pids = [f"{i:02d}" for i in range(10)]
    d_nal = np.array(
        [
            _value(data, p, "nal", 30.0, "anxiety") - _value(data, p, "nal", -10.0, "anxiety")
            for p in pids
        ]
    )
    d_sal = np.array(
        [
            _value(data, p, "sal", 30.0, "anxiety") - _value(data, p, "sal", -10.0, "anxiety")
            for p in pids
        ]
    )
    ref = sps.ttest_rel(d_nal, d_sal)
    row = table[(table["measure"] == "anxiety") & (table["time_min"] == 30.0)].iloc[0]
    assert row["t"] == pytest.approx(ref.statistic)
    assert row["p"] == pytest.approx(ref.pvalue)
    assert row["df"] == 9
    assert row["t"] > 0
    np.testing.assert_allclose(changes[change_column("anxiety", 30.0)].to_numpy(), d_nal - d_sal)
    assert change_column("anxiety", 30.0) == "anxiety_30min"


def test_window_effects_hormone_and_cardiovascular(rng: np.random.Generator) -> None:
    data = _long_table(rng)
    # a missing 60-min sample: the window mean uses the 30-min sample alone
    missing = (data["participant_id"] == "03") & (data["session_id"] == "nal")
    data.loc[missing & (data["time_min"] == 60.0), "cortisol"] = np.nan
    table, changes = window_effects(
        data, ["cortisol"], times_min=(30.0, 60.0), kind="hormone", **SESSIONS
    )
    pids = [f"{i:02d}" for i in range(10)]

    def window(pid: str, session: str, times: tuple[float, ...], col: str) -> float:
        return float(np.nanmean([_value(data, pid, session, t, col) for t in times]))

    nal = np.array([window(p, "nal", (30.0, 60.0), "cortisol") for p in pids])
    sal = np.array([window(p, "sal", (30.0, 60.0), "cortisol") for p in pids])
    assert nal[3] == pytest.approx(_value(data, "03", "nal", 30.0, "cortisol"))
    ref = sps.ttest_rel(nal, sal)
    assert table.loc[0, "t"] == pytest.approx(ref.statistic)
    assert table.loc[0, "p"] == pytest.approx(ref.pvalue)
    assert np.isnan(table.loc[0, "time_min"])
    assert table.loc[0, "window"] == "mean of 30, 60 min"
    np.testing.assert_allclose(changes["cortisol_change"].to_numpy(), nal - sal)
    cardio, _ = window_effects(data, ["pulse"], times_min=None, kind="cardiovascular", **SESSIONS)
    nal_all = np.array([window(p, "nal", TIMES, "pulse") for p in pids])
    sal_all = np.array([window(p, "sal", TIMES, "pulse") for p in pids])
    assert cardio.loc[0, "t"] == pytest.approx(sps.ttest_rel(nal_all, sal_all).statistic)


def test_behavior_effects_fdr_and_selection(rng: np.random.Generator) -> None:
    data = _long_table(rng)
    design = BehaviorDesign(
        item_signs={"anxiety": 1, "happiness": -1, "pain": 1, "absent_item": 1},
        hormones=("cortisol", "prolactin"),
    )
    effects = behavior_effects(data, data, design, **SESSIONS)
    table = effects.table
    assert list(table.columns) == list(BEHAVIOR_EFFECTS_COLUMNS)
    assert len(table) == 9 + 2  # 3 items x 3 times + cortisol + pulse
    np.testing.assert_allclose(table["p_fdr"], sps.false_discovery_control(table["p"]))
    expected = (table["kind"] == "subjective") & (table["p"] < 0.05)
    assert table["selected"].tolist() == expected.tolist()
    assert not table.loc[table["kind"] != "subjective", "selected"].any()
    assert {c.split("_")[0] for c in effects.selected_columns} == {"anxiety", "happiness"}
    assert effects.orientation["happiness_10min"] == -1
    strict = BehaviorDesign(item_signs={"pain": 1}, selection_p=1e-12)
    assert behavior_effects(data, None, strict, **SESSIONS).selected_columns == ()


def test_behavior_effects_rejects_unknown_session(rng: np.random.Generator) -> None:
    data = _long_table(rng, n=3)
    with pytest.raises(StatsError, match=r"no rows for session\(s\) \['pla'\]"):
        behavior_effects(
            data,
            None,
            BehaviorDesign(item_signs={"pain": 1}),
            baseline_session="pla",
            challenge_session="nal",
        )


def _changes(rng: np.random.Generator, n: int = 12) -> pd.DataFrame:
    latent = rng.normal(size=n)
    return pd.DataFrame(
        {
            "anxiety_30min": latent + rng.normal(0, 0.6, n),
            "restlessness_10min": 2 * latent + rng.normal(0, 1.0, n),
            "happiness_30min": -latent + rng.normal(0, 0.6, n),
            "mood_60min": -0.5 * latent + rng.normal(0, 0.8, n),
        },
        index=pd.Index([f"{i:02d}" for i in range(n)], name="participant_id"),
    )


ORIENT = {"anxiety_30min": 1, "restlessness_10min": 1, "happiness_30min": -1, "mood_60min": -1}


def test_aversion_index_matches_eigendecomposition(rng: np.random.Generator) -> None:
    changes = _changes(rng)
    cols = list(ORIENT)
    res = aversion_index(changes, cols, ORIENT)
    assert res.status == "ok"
    assert res.n == 12
    corr = np.corrcoef(changes[cols].to_numpy(), rowvar=False)
    eigval, eigvec = np.linalg.eigh(corr)
    assert res.explained_variance_ratio == pytest.approx(eigval[-1] / eigval.sum(), rel=1e-10)
    np.testing.assert_allclose(np.abs(res.loadings.to_numpy()), np.abs(eigvec[:, -1]), atol=1e-10)
    z = (changes[cols] - changes[cols].mean()) / changes[cols].std(ddof=1)
    np.testing.assert_allclose(res.scores.to_numpy(), z.to_numpy() @ res.loadings.to_numpy())
    # higher = more aversive: positive with the sign-weighted mean z-score
    reference = (z * pd.Series(ORIENT)).mean(axis=1)
    assert np.corrcoef(res.scores, reference)[0, 1] > 0.9
    assert res.loadings["anxiety_30min"] > 0
    assert res.loadings["happiness_30min"] < 0


def test_aversion_index_orientation_survives_sign_flips(rng: np.random.Generator) -> None:
    changes = _changes(rng)
    cols = list(ORIENT)
    base = aversion_index(changes, cols, ORIENT).scores
    # flipping the data sign AND the declared direction of two columns changes nothing
    flipped = changes.copy()
    flipped[["anxiety_30min", "mood_60min"]] *= -1
    orient = {**ORIENT, "anxiety_30min": -1, "mood_60min": 1}
    np.testing.assert_allclose(aversion_index(flipped, cols, orient).scores, base, atol=1e-10)
    # negating all data with the same orientation reverses who is most aversive
    negated = aversion_index(-changes, cols, ORIENT).scores
    np.testing.assert_allclose(negated, -base, atol=1e-10)


def test_aversion_index_missing_values_and_few_columns(
    rng: np.random.Generator, caplog: pytest.LogCaptureFixture
) -> None:
    changes = _changes(rng)
    changes.loc["04", "mood_60min"] = np.nan
    res = aversion_index(changes, list(ORIENT), ORIENT)
    assert res.n == 11
    assert np.isnan(res.scores["04"])
    assert res.scores.drop("04").notna().all()
    single = aversion_index(changes, ["happiness_30min"], ORIENT)
    assert single.status == "single_item"
    col = changes["happiness_30min"]
    expected = -(col - col.mean()) / col.std(ddof=1)
    np.testing.assert_allclose(single.scores, expected)
    assert single.explained_variance_ratio == 1.0
    with caplog.at_level(logging.WARNING, logger="bids_app.stats.behavior"):
        none = aversion_index(changes, [], ORIENT)
    assert none.status == "no_selected_items"
    assert none.scores.isna().all()
    assert "no subjective change" in caplog.text
    few = aversion_index(changes.iloc[:2], list(ORIENT), ORIENT)
    assert few.status == "too_few_participants"
    with pytest.raises(StatsError, match="orientation must give"):
        aversion_index(changes, ["anxiety_30min"], {})
    with pytest.raises(StatsError, match="not in the changes table"):
        aversion_index(changes, ["craving_10min"], {"craving_10min": 1})


def test_correlations_match_pearsonr(rng: np.random.Generator) -> None:
    x = rng.normal(size=10)
    y = 0.8 * x + rng.normal(0, 0.5, 10)
    table = pd.DataFrame({"net_da_release": x, "aversion_index": y, "const": 1.0})
    table.loc[2, "aversion_index"] = np.nan
    out = correlations(
        table,
        [
            ("net_da_release", "aversion_index"),
            ("net_da_release", "const"),
            ("net_da_release", "cortisol_change"),
        ],
    )
    assert list(out.columns) == [
        "x",
        "y",
        "n",
        "r",
        "df",
        "p",
        "spearman_rho",
        "spearman_p",
        "r_loo_min",
        "r_loo_max",
    ]
    assert len(out) == 2  # the pair with an absent column is skipped
    keep = np.arange(10) != 2
    ref = sps.pearsonr(x[keep], y[keep])
    assert out.loc[0, "n"] == 9
    assert out.loc[0, "df"] == 7
    assert out.loc[0, "r"] == pytest.approx(ref.statistic, rel=1e-12)
    assert out.loc[0, "p"] == pytest.approx(ref.pvalue, rel=1e-12)
    # the hand formula (t with n - 2 df) gives the same p
    r = ref.statistic
    t = r * np.sqrt(7 / (1 - r * r))
    assert out.loc[0, "p"] == pytest.approx(2 * sps.t.sf(abs(t), 7), rel=1e-9)
    rho = sps.spearmanr(x[keep], y[keep])
    assert out.loc[0, "spearman_rho"] == pytest.approx(rho.statistic, rel=1e-12)
    assert out.loc[0, "spearman_p"] == pytest.approx(rho.pvalue, rel=1e-12)
    # Spearman is the Pearson correlation of the ranks
    ranks = sps.rankdata(x[keep]), sps.rankdata(y[keep])
    assert out.loc[0, "spearman_rho"] == pytest.approx(np.corrcoef(*ranks)[0, 1], rel=1e-12)
    assert out.loc[[1], ["r", "p", "spearman_rho", "spearman_p"]].isna().all(axis=None)


def test_analyze_behavior_end_to_end(rng: np.random.Generator) -> None:
    data = _long_table(rng)
    design = BehaviorDesign(item_signs={"anxiety": 1, "happiness": -1, "pain": 1})
    result = analyze_behavior(data, data, design, **SESSIONS)
    measures = result.participant_measures
    assert list(measures.columns) == ["aversion_index", "cortisol_change", "pulse_change"]
    assert result.aversion is not None
    assert result.aversion.status == "ok"
    # the simulated sensitivity drives both the aversion index and cortisol
    r = np.corrcoef(measures["aversion_index"], measures["cortisol_change"])[0, 1]
    assert r > 0.5
    only_phys = analyze_behavior(None, data, design, **SESSIONS)
    assert only_phys.aversion is None
    assert list(only_phys.participant_measures.columns) == ["cortisol_change", "pulse_change"]


def test_analyze_behavior_without_phenotype_tables() -> None:
    result = analyze_behavior(None, None, BehaviorDesign(), **SESSIONS)
    assert result.aversion is None
    assert len(result.effects.table) == 0
    assert list(result.effects.table.columns) == list(BEHAVIOR_EFFECTS_COLUMNS)
    assert result.effects.selected_columns == ()
    assert result.participant_measures.empty


def test_post_minus_pre_tests_the_challenge_session_alone(rng: np.random.Generator) -> None:
    data = _long_table(rng)
    # a baseline-session drift that the difference of differences subtracts, post_minus_pre not
    baseline_post = (data["session_id"] == "sal") & (data["time_min"] > 0)
    data.loc[baseline_post, "anxiety"] += 3.0
    table, changes = subjective_effects(
        data, ["anxiety"], effect="post_minus_pre", post_times_min=(30.0,), **SESSIONS
    )
    pids = sorted(data["participant_id"].unique())
    pre = np.array([_value(data, p, "nal", -10.0, "anxiety") for p in pids])
    post = np.array([_value(data, p, "nal", 30.0, "anxiety") for p in pids])
    ref = sps.ttest_rel(post, pre)
    row = table.iloc[0]
    assert row["t"] == pytest.approx(ref.statistic, rel=1e-10)
    assert row["p"] == pytest.approx(ref.pvalue, rel=1e-10)
    assert row["mean_difference"] == pytest.approx(np.mean(post - pre), rel=1e-10)
    assert row["window"] == "challenge session, 30 vs -10 min (post - pre)"
    np.testing.assert_allclose(changes["anxiety_30min"].to_numpy(), post - pre, rtol=1e-12)
    # the default subtracts the baseline-session change, which carries the +3 drift
    default, dod = subjective_effects(data, ["anxiety"], post_times_min=(30.0,), **SESSIONS)
    base_change = np.array(
        [
            _value(data, p, "sal", 30.0, "anxiety") - _value(data, p, "sal", -10.0, "anxiety")
            for p in pids
        ]
    )
    assert default.iloc[0]["window"] == "change from -10 to 30 min"
    assert default.iloc[0]["mean_difference"] == pytest.approx(
        np.mean(post - pre) - np.mean(base_change), rel=1e-10
    )
    assert np.mean(base_change) > 2.0
    assert not np.allclose(dod["anxiety_30min"], changes["anxiety_30min"])
    with pytest.raises(StatsError, match="challenge effect must be one of"):
        subjective_effects(data, ["anxiety"], effect="post_vs_pre", **SESSIONS)  # type: ignore[arg-type]


def test_design_challenge_effect_reaches_the_aversion_index(rng: np.random.Generator) -> None:
    data = _long_table(rng)
    signs = {"anxiety": 1, "happiness": -1}
    within = analyze_behavior(
        data, None, BehaviorDesign(item_signs=signs, challenge_effect="post_minus_pre"), **SESSIONS
    )
    default = analyze_behavior(data, None, BehaviorDesign(item_signs=signs), **SESSIONS)
    pids = sorted(data["participant_id"].unique())
    post_pre = [
        _value(data, p, "nal", 10.0, "happiness") - _value(data, p, "nal", -10.0, "happiness")
        for p in pids
    ]
    np.testing.assert_allclose(
        within.effects.subjective_changes["happiness_10min"].to_numpy(), post_pre, rtol=1e-12
    )
    assert not np.allclose(
        within.effects.subjective_changes["happiness_10min"],
        default.effects.subjective_changes["happiness_10min"],
    )


def test_descriptives_per_session_and_time(rng: np.random.Generator) -> None:
    data = _long_table(rng)
    data.loc[(data["participant_id"] == "03") & (data["time_min"] == 30.0), "cortisol"] = np.nan
    design = BehaviorDesign(item_signs={"anxiety": 1}, hormones=("cortisol",), cardiovascular=())
    result = analyze_behavior(data, data, design, **SESSIONS)
    table = result.descriptives
    assert list(table.columns) == [
        "measure",
        "kind",
        "condition",
        "session_id",
        "time_min",
        "n",
        "mean",
        "sd",
    ]
    # 2 measures x 2 sessions x 4 time points, baseline rows first within a measure
    assert len(table) == 16
    assert table["measure"].tolist() == ["anxiety"] * 8 + ["cortisol"] * 8
    assert table["condition"].tolist()[:8] == ["baseline"] * 4 + ["challenge"] * 4
    assert table["time_min"].tolist()[:4] == list(TIMES)
    row = table[
        (table["measure"] == "cortisol")
        & (table["condition"] == "challenge")
        & (table["time_min"] == 30.0)
    ].iloc[0]
    values = data[(data["session_id"] == "nal") & (data["time_min"] == 30.0)]["cortisol"]
    values = values.dropna().to_numpy()
    assert row["n"] == 9
    assert row["session_id"] == "nal"
    assert row["kind"] == "hormone"
    assert row["mean"] == pytest.approx(values.mean(), rel=1e-12)
    assert row["sd"] == pytest.approx(values.std(ddof=1), rel=1e-12)
    # one value gives no SD; a session without rows gives no row
    single = descriptives(
        [(data[data["participant_id"] == "00"], ["pulse"], "cardiovascular")],
        baseline_session="sal",
        challenge_session="placebo",
    )
    assert len(single) == 4
    assert (single["n"] == 1).all()
    assert single["sd"].isna().all()
    assert single["condition"].unique().tolist() == ["baseline"]


def test_aversion_loadings_table(rng: np.random.Generator) -> None:
    data = _long_table(rng)
    design = BehaviorDesign(item_signs={"anxiety": 1, "happiness": -1, "pain": 1})
    result = analyze_behavior(data, None, design, **SESSIONS)
    assert result.aversion is not None
    loadings = result.loadings
    selected = result.effects.selected_columns
    assert len(selected) >= 2
    assert loadings["column"].tolist() == list(result.aversion.loadings.index)
    np.testing.assert_allclose(
        loadings["loading"].to_numpy(), result.aversion.loadings.to_numpy(), rtol=1e-12
    )
    assert np.linalg.norm(loadings["loading"]) == pytest.approx(1.0, rel=1e-12)
    assert (loadings["explained_variance_ratio"] == result.aversion.explained_variance_ratio).all()
    assert 0.5 < result.aversion.explained_variance_ratio <= 1.0
    first = loadings.iloc[0]
    assert change_column(first["measure"], first["time_min"]) == first["column"]
    signs = dict(zip(loadings["measure"], loadings["aversive_sign"], strict=False))
    assert signs.get("anxiety", 1) == 1
    assert signs.get("happiness", -1) == -1
    # anxiety rises and happiness falls with the same sensitivity: both load as aversive
    assert (loadings["loading"] * loadings["aversive_sign"] > 0).all()
    assert (loadings["n"] == 10).all()
    none = analyze_behavior(
        data, None, BehaviorDesign(item_signs={"pain": 1}, selection_p=1e-12), **SESSIONS
    )
    assert len(none.loadings) == 0


def test_correlations_leave_one_out_range(rng: np.random.Generator) -> None:
    x = rng.normal(size=10)
    y = rng.normal(size=10)
    # one extreme participant makes an otherwise null correlation look strong
    x[0], y[0] = 6.0, 6.0
    table = pd.DataFrame({"a": x, "b": y, "c": x[::-1].copy()})
    table.loc[9, "c"] = np.nan
    out = correlations(table, [("a", "b"), ("a", "c")]).set_index("y")
    loo = [np.corrcoef(np.delete(x, i), np.delete(y, i))[0, 1] for i in range(10)]
    assert out.loc["b", "r_loo_min"] == pytest.approx(min(loo), rel=1e-10)
    assert out.loc["b", "r_loo_max"] == pytest.approx(max(loo), rel=1e-10)
    assert out.loc["b", "r"] > 0.7
    assert out.loc["b", "r_loo_min"] < 0.5 * out.loc["b", "r"]  # leaving out sub-0 drops r
    assert out.loc["b", "r_loo_min"] <= out.loc["b", "r"] <= out.loc["b", "r_loo_max"]
    # the pairwise-complete rows only: participant 9 has no c
    keep = np.arange(10) != 9
    xc, yc = x[keep], x[::-1][keep]
    loo_c = [np.corrcoef(np.delete(xc, i), np.delete(yc, i))[0, 1] for i in range(9)]
    assert out.loc["c", "n"] == 9
    assert out.loc["c", "r_loo_max"] == pytest.approx(max(loo_c), rel=1e-10)
    # 3 pairs leave subsets of 2: no leave-one-out r
    small = correlations(table.iloc[:3], [("a", "b")])
    assert np.isfinite(small.loc[0, "r"])
    assert small[["r_loo_min", "r_loo_max"]].isna().all(axis=None)
    four = leave_one_out_r(x[:4], y[:4])
    np.testing.assert_allclose(
        four, [sps.pearsonr(np.delete(x[:4], i), np.delete(y[:4], i))[0] for i in range(4)]
    )


def test_every_new_behaviour_column_has_a_sidecar_description(rng: np.random.Generator) -> None:
    data = _long_table(rng)
    result = analyze_behavior(
        data, data, BehaviorDesign(item_signs={"anxiety": 1, "happiness": -1}), **SESSIONS
    )
    corr = correlations(result.participant_measures, [("aversion_index", "cortisol_change")])
    tables = {
        "behavior_descriptives": result.descriptives,
        "aversion_loadings": result.loadings,
        "correlations": corr,
    }
    for kind, table in tables.items():
        assert len(table) > 0
        sidecar = group_table_sidecar(kind, list(table.columns))
        assert list(sidecar) == list(table.columns)
        assert GROUP_FILES[kind].endswith(".tsv")
    assert corr.loc[0, "r_loo_min"] <= corr.loc[0, "r"] <= corr.loc[0, "r_loo_max"]
