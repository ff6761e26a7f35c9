"""Generating values, effects and the null twin of the simulator's study design."""

from __future__ import annotations

import numpy as np
import pytest

from petsim.design import (
    TISSUES,
    StudyEffects,
    sample_da_release,
    sample_participants,
)
from petsim.errors import InputError


def _designs(effects: StudyEffects, n: int = 12, seed: int = 3) -> list:
    ss = np.random.SeedSequence(seed).spawn(2)
    return sample_participants(
        np.random.default_rng(ss[0]), np.random.default_rng(ss[1]), n, effects, 0.04, (300, 380)
    )


def test_effects_defaults_and_null() -> None:
    default = StudyEffects()
    assert not default.is_null
    assert 0.08 <= default.dorsal_da_release_mean <= 0.15
    assert default.ventral_da_release_mean == 0.0
    assert StudyEffects.none().is_null
    assert all(v == 0.0 for v in StudyEffects.none().to_dict().values())


def test_da_release_population_and_nonresponders() -> None:
    effects = StudyEffects()
    means, n_near_zero = [], []
    for seed in range(200):
        dorsal, ventral = sample_da_release(np.random.default_rng(seed), 10, effects)
        means.append(dorsal.mean())
        n_near_zero.append(int(np.sum(np.abs(dorsal) < 0.04)))
        np.testing.assert_array_equal(ventral, 0.0)
    assert np.mean(means) == pytest.approx(effects.dorsal_da_release_mean, abs=0.005)
    assert np.median(n_near_zero) == 2  # 20 % non-responders of 10


def test_participants_effects_only_where_configured() -> None:
    designs = _designs(StudyEffects())
    for d in designs:
        sal, nal = d.sessions["sal"], d.sessions["nal"]
        # Same V_ND in every brain tissue and session.
        v_nd = {round(p.v_nd, 9) for c, p in sal.items() if TISSUES[c].v_nd_factor == 1.0}
        assert len(v_nd) == 1
        assert nal["caudate"].v_nd == pytest.approx(sal["caudate"].v_nd)
        assert d.r1_change["wm"] == 0.0
        assert d.r1_change["caudate"] == 0.0
        assert d.participant_id.startswith("sub-")
        assert 280 <= d.injected_mbq["sal"] <= 380
    dorsal_ratio = [
        d.sessions["nal"]["putamen"].bp_nd / d.sessions["sal"]["putamen"].bp_nd for d in designs
    ]
    ventral_ratio = [
        d.sessions["nal"]["ventral"].bp_nd / d.sessions["sal"]["ventral"].bp_nd for d in designs
    ]
    cortex_ratio = [
        d.sessions["nal"]["cortex"].bp_nd / d.sessions["sal"]["cortex"].bp_nd for d in designs
    ]
    assert np.mean(dorsal_ratio) < 0.93
    assert np.mean(ventral_ratio) == pytest.approx(1.0, abs=0.03)
    assert np.mean(cortex_ratio) == pytest.approx(1.0, abs=0.03)
    severity = np.array([d.severity for d in designs])
    pit = np.array([d.r1_change["pituitary"] for d in designs])
    assert np.corrcoef(severity, pit)[0, 1] > 0.5


def test_between_subject_variability() -> None:
    designs = _designs(StudyEffects(), n=60)
    bp = np.array([d.sessions["sal"]["putamen"].bp_nd for d in designs])
    k1 = np.array([d.sessions["sal"]["cerebellum"].k1 for d in designs])
    assert 0.07 < bp.std() / bp.mean() < 0.2
    assert 0.06 < k1.std() / k1.mean() < 0.18


def test_null_twin_shares_baseline_values() -> None:
    effect, null = _designs(StudyEffects()), _designs(StudyEffects.none())
    for a, b in zip(effect, null, strict=True):
        assert a.sessions["sal"] == b.sessions["sal"]
        assert a.injected_mbq == b.injected_mbq
        assert b.da_release_dorsal == 0.0
        assert b.severity == 0.0
        assert all(v == 0.0 for v in b.r1_change.values())
        for c in TISSUES:
            if c in ("caudate", "putamen", "ventral", "putamen", "insula", "habenula"):
                continue
            if c in ("pituitary", "carotid"):
                continue
            assert a.sessions["nal"][c] == b.sessions["nal"][c]


def test_needs_two_participants() -> None:
    with pytest.raises(InputError, match="n_participants must be >= 2"):
        _designs(StudyEffects(), n=1)


def test_is_null_counts_spreads() -> None:
    no_means = StudyEffects(
        **{k: 0.0 for k in StudyEffects().to_dict() if not k.endswith(("_sd", "_coupling"))}
    )
    assert not no_means.is_null  # a release SD alone still makes participants differ
    dorsal, _ = sample_da_release(np.random.default_rng(0), 10, no_means)
    assert np.any(dorsal != 0)
    assert StudyEffects.none().is_null
