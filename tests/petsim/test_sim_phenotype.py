"""Simulated subjective and physiological measures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from petsim.design import StudyEffects
from petsim.phenotype import (
    AVERSIVE_ITEMS,
    CARDIO_TIMES_MIN,
    HORMONE_TIMES_MIN,
    SUBJECTIVE_ITEMS,
    SUBJECTIVE_TIMES_MIN,
    physiology_sidecar,
    physiology_table,
    subjective_sidecar,
    subjective_table,
)

IDS = [f"sub-{i:02d}" for i in range(1, 41)]


def _changes(df: pd.DataFrame, item: str, t: int) -> np.ndarray:
    """Challenge-minus-placebo change from the pre-injection value, per participant."""

    def one(ses: str) -> pd.Series:
        sub = df[df.session_id == ses].set_index(["participant_id", "time_min"])[item]
        return sub.xs(t, level="time_min") - sub.xs(-10, level="time_min")

    return (one("ses-nal") - one("ses-sal")).loc[IDS].to_numpy(dtype=float)


def test_subjective_columns_and_values(rng: np.random.Generator) -> None:
    df = subjective_table(rng, IDS, np.ones(len(IDS)), StudyEffects())
    assert list(df.columns[:3]) == ["participant_id", "session_id", "time_min"]
    assert len(SUBJECTIVE_ITEMS) == 16
    assert list(df.columns[3:]) == [i.name for i in SUBJECTIVE_ITEMS]
    assert sorted(df.time_min.unique()) == list(SUBJECTIVE_TIMES_MIN)
    assert set(df.session_id) == {"ses-sal", "ses-nal"}
    assert len(df) == len(IDS) * 2 * 4
    values = df.iloc[:, 3:].to_numpy()
    assert values.dtype.kind == "i"
    assert values.min() >= 0
    assert values.max() <= 10
    side = subjective_sidecar()
    assert all(c in side for c in df.columns)


def test_aversive_items_move_with_severity(rng: np.random.Generator) -> None:
    severity = rng.uniform(0.0, 2.0, len(IDS))
    df = subjective_table(rng, IDS, severity, StudyEffects())
    for item in AVERSIVE_ITEMS:
        change = _changes(df, item, 10)
        sign = 1 if item in ("anxiety", "annoyance", "restlessness") else -1
        assert sign * change.mean() > 0.8
        assert sign * np.corrcoef(change, severity)[0, 1] > 0.4
    for item in ("alertness", "pain", "desire_to_use"):
        assert abs(_changes(df, item, 10).mean()) < 0.6


def test_aversion_index_tracks_severity(rng: np.random.Generator) -> None:
    severity = np.clip(rng.normal(1.0, 0.6, len(IDS)), 0, None)
    df = subjective_table(rng, IDS, severity, StudyEffects())
    feats = np.array([_changes(df, i, t) for i in AVERSIVE_ITEMS for t in (10, 30, 60)]).T
    z = (feats - feats.mean(0)) / feats.std(0)
    u, s, _ = np.linalg.svd(z, full_matrices=False)
    r = abs(np.corrcoef(u[:, 0] * s[0], severity)[0, 1])
    assert 0.7 < r < 0.99


def test_null_has_no_behavioural_effect() -> None:
    severity = np.full(len(IDS), 1.0)
    effect = subjective_table(np.random.default_rng(5), IDS, severity, StudyEffects())
    null = subjective_table(np.random.default_rng(5), IDS, severity, StudyEffects.none())
    # Same noise: only the aversive items of the challenge session after the injection differ.
    differs = effect.iloc[:, 3:].ne(null.iloc[:, 3:])
    after_challenge = (effect.session_id == "ses-nal") & (effect.time_min > 0)
    assert not differs[~after_challenge].any().any()
    assert set(differs.columns[differs.any()]) <= set(AVERSIVE_ITEMS)
    for item in AVERSIVE_ITEMS:
        change = _changes(null, item, 10)
        t = change.mean() / (change.std(ddof=1) / np.sqrt(change.size))
        assert abs(t) < 4.0
    phys_e = physiology_table(np.random.default_rng(6), IDS, severity, StudyEffects())
    phys_n = physiology_table(np.random.default_rng(6), IDS, severity, StudyEffects.none())
    sal = phys_e.session_id == "ses-sal"
    pd.testing.assert_frame_equal(phys_e[sal], phys_n[sal])
    nal = ~sal & (phys_n.time_min > 0)
    assert (phys_e.loc[nal, "pulse"] > phys_n.loc[nal, "pulse"]).all()
    pd.testing.assert_series_equal(phys_e["prolactin"], phys_n["prolactin"])


def test_physiology_layout_and_effects(rng: np.random.Generator) -> None:
    df = physiology_table(rng, IDS, np.ones(len(IDS)), StudyEffects())
    assert list(df.columns) == [
        "participant_id",
        "session_id",
        "time_min",
        "cortisol",
        "prolactin",
        "systolic_bp",
        "diastolic_bp",
        "pulse",
    ]
    hormone_rows = df.time_min.isin(HORMONE_TIMES_MIN)
    assert df.loc[hormone_rows, "cortisol"].notna().all()
    assert df.loc[~hormone_rows, "cortisol"].isna().all()
    assert df.loc[df.time_min.isin(CARDIO_TIMES_MIN), "pulse"].notna().all()
    post = df[df.time_min.isin([30, 60])].groupby("session_id")[["cortisol", "prolactin"]].mean()
    assert post.loc["ses-nal", "cortisol"] / post.loc["ses-sal", "cortisol"] > 1.2
    assert post.loc["ses-nal", "prolactin"] / post.loc["ses-sal", "prolactin"] == pytest.approx(
        1.0, abs=0.1
    )
    early = df[df.time_min.isin([5, 10, 15])].groupby("session_id")["systolic_bp"].mean()
    assert early["ses-nal"] - early["ses-sal"] > 3.0
    assert all(c in physiology_sidecar() for c in df.columns)


@pytest.mark.parametrize(
    ("make_table", "make_sidecar"),
    [(subjective_table, subjective_sidecar), (physiology_table, physiology_sidecar)],
)
def test_wide_form_reads_back_as_the_long_table(make_table, make_sidecar, tmp_path) -> None:
    """The BIDS-valid wide form holds the same values; the app reads both forms alike."""
    from bids_app.bidsio.phenotype import read_phenotype
    from petsim.bids_writer import write_json, write_tsv
    from petsim.phenotype import wide_form

    ids = IDS[:6]
    long = make_table(np.random.default_rng(3), ids, np.linspace(0, 1, 6), StudyEffects())
    wide, sidecar = wide_form(long, make_sidecar())
    assert list(wide.columns[:2]) == ["participant_id", "session_id"]
    assert not wide.duplicated(["participant_id", "session_id"]).any()
    assert len(wide) == len(ids) * 2
    assert "time_min" not in wide.columns
    assert all(column in sidecar for column in wide.columns[2:])
    tables = {}
    for form, (table, side) in {"long": (long, make_sidecar()), "wide": (wide, sidecar)}.items():
        write_tsv(tmp_path / form / "phenotype" / "measures.tsv", table)
        write_json(tmp_path / form / "phenotype" / "measures.json", side)
        tables[form] = read_phenotype(tmp_path / form, "measures")
    key = ["participant_id", "session_id", "time_min"]
    read_long = tables["long"].dropna(how="all", subset=tables["long"].columns[3:])
    read_wide = tables["wide"][read_long.columns]
    merged = read_long.merge(read_wide, on=key, suffixes=("_long", "_wide"))
    assert len(merged) == len(read_long)
    for measure in read_long.columns[3:]:
        np.testing.assert_allclose(
            merged[f"{measure}_long"], merged[f"{measure}_wide"], equal_nan=True
        )
