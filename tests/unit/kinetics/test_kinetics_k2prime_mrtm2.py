"""k2' estimation (ROI / voxel median), MRTM2 and frame weights."""

from __future__ import annotations

import numpy as np
import pytest
from srtm_testsim import Simulated, simulate

from bids_app.errors import ModelError
from bids_app.kinetics import (
    FrameTiming,
    estimate_k2prime,
    fit_mrtm2,
    fit_srtm2,
    frame_weights,
)
from bids_app.kinetics.weights import resolve_weights


# ------------------------------------------------------------------------------------- k2'
def test_k2prime_from_roi(sim_striatum: Simulated) -> None:
    s = sim_striatum
    est = estimate_k2prime(s.frame_start_s, s.frame_end_s, s.ref, s.target)
    assert est.method == "roi"
    assert est.status
    assert est.k2prime == pytest.approx(s.k2prime, rel=1e-3)
    assert est.bp_nd == pytest.approx(2.5, rel=1e-3)
    assert est.n_voxels == 1
    assert np.isnan(est.iqr)
    assert est.as_dict()["k2prime_method"] == "roi"


def test_k2prime_roi_se_grows_with_noise(
    sim_striatum: Simulated, rng: np.random.Generator
) -> None:
    s = sim_striatum
    noisy = s.target + 0.02 * s.target.max() * rng.standard_normal(s.target.shape)
    est = estimate_k2prime(s.frame_start_s, s.frame_end_s, s.ref, noisy)
    assert est.status
    assert 0 < est.se < 0.05
    assert abs(est.k2prime - s.k2prime) < 4 * est.se + 1e-3


def test_k2prime_voxel_median(rng: np.random.Generator) -> None:
    n = 300
    bp = rng.uniform(-0.2, 3.0, n)  # some voxels with BPnd <= 0 are excluded
    sim = simulate(bp, rng.uniform(0.8, 1.3, n))
    durations_min = (sim.frame_end_s - sim.frame_start_s) / 60.0
    noisy = sim.target + 0.02 * sim.target.max() / np.sqrt(durations_min)[:, None] * (
        rng.standard_normal(sim.target.shape)
    )
    noisy[:, 0] = np.nan
    est = estimate_k2prime(
        sim.frame_start_s, sim.frame_end_s, sim.ref, noisy, method="voxel_median"
    )
    assert est.method == "voxel_median"
    assert est.status
    assert est.n_candidates == n
    assert 0.5 * n < est.n_voxels < n - 1
    assert est.k2prime == pytest.approx(sim.k2prime, rel=0.05)
    assert 0 < est.se < est.iqr


def test_k2prime_voxel_median_without_usable_voxels(sim_striatum: Simulated) -> None:
    s = sim_striatum
    tac = np.zeros((s.ref.size, 4))
    est = estimate_k2prime(s.frame_start_s, s.frame_end_s, s.ref, tac, method="voxel_median")
    assert not est.status
    assert np.isnan(est.k2prime)
    assert est.n_voxels == 0


def test_k2prime_input_errors(sim_striatum: Simulated) -> None:
    s = sim_striatum
    with pytest.raises(ModelError, match="method='roi' needs a 1-D ROI TAC"):
        estimate_k2prime(s.frame_start_s, s.frame_end_s, s.ref, np.ones((s.ref.size, 2)))
    with pytest.raises(ModelError, match="needs voxel TACs of shape"):
        estimate_k2prime(s.frame_start_s, s.frame_end_s, s.ref, s.target, method="voxel_median")
    with pytest.raises(ModelError, match="must be 'roi' or 'voxel_median'"):
        estimate_k2prime(s.frame_start_s, s.frame_end_s, s.ref, s.target, method="mean")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ MRTM2
@pytest.mark.parametrize("sampling", ["frame_average", "midpoint"])
def test_mrtm2_agrees_with_srtm2_on_noise_free_data(sampling: str) -> None:
    sim = simulate(np.array([0.3, 1.0, 2.5]), np.array([0.8, 1.0, 1.2]), sampling=sampling)
    mrtm2 = fit_mrtm2(
        sim.frame_start_s, sim.frame_end_s, sim.ref, sim.target, sim.k2prime, sampling=sampling
    )  # type: ignore[arg-type]
    srtm2 = fit_srtm2(
        sim.frame_start_s,
        sim.frame_end_s,
        sim.ref,
        sim.target,
        sim.k2prime,
        method="nls",
        sampling=sampling,
    )  # type: ignore[arg-type]
    np.testing.assert_allclose(mrtm2.bp_nd, srtm2.bp_nd, rtol=2e-2)
    np.testing.assert_allclose(mrtm2.r1, srtm2.r1, rtol=1e-2)
    np.testing.assert_allclose(mrtm2.bp_nd, sim.bp_nd, rtol=2e-2)
    assert mrtm2.model == "MRTM2"
    assert mrtm2.method == "linear"
    assert np.all(mrtm2.status)


def test_mrtm2_1d_t_star_and_failures(sim_voxels: Simulated) -> None:
    s = sim_voxels
    one = fit_mrtm2(
        s.frame_start_s, s.frame_end_s, s.ref, s.target[:, 5], s.k2prime, t_star_min=10.0
    )
    assert isinstance(one.bp_nd, float)
    assert one.bp_nd == pytest.approx(s.bp_nd[5], rel=1e-2)
    assert one.fitted is not None
    assert np.isnan(one.fitted[0])
    assert np.isfinite(one.fitted[-1])
    tac = s.target.copy()
    tac[:, 0] = 0.0
    tac[2, 1] = np.nan
    many = fit_mrtm2(s.frame_start_s, s.frame_end_s, s.ref, tac, s.k2prime)
    np.testing.assert_array_equal(np.asarray(many.status)[:3], [False, False, True])
    assert np.isnan(np.asarray(many.bp_nd)[:2]).all()


def test_mrtm2_needs_frames_after_t_star(sim_striatum: Simulated) -> None:
    s = sim_striatum
    with pytest.raises(ModelError, match="at least 3 weighted frames after t"):
        fit_mrtm2(s.frame_start_s, s.frame_end_s, s.ref, s.target, 0.15, t_star_min=55.0)
    with pytest.raises(ModelError, match="k2prime must be positive"):
        fit_mrtm2(s.frame_start_s, s.frame_end_s, s.ref, s.target, 0.0)


# ---------------------------------------------------------------------------------- weights
def test_frame_weights_schemes() -> None:
    timing = FrameTiming.from_seconds([0, 60, 180, 480], [60, 120, 300, 600])
    np.testing.assert_allclose(frame_weights(timing, "uniform"), 1.0)
    dur = frame_weights(timing, "duration")
    np.testing.assert_allclose(dur, np.array([1, 2, 5, 10]) / 4.5)
    decay = frame_weights(timing, "duration_decay", half_life_min=20.4)
    lam = np.log(2) / 20.4
    approx = timing.duration_min * np.exp(-lam * timing.mid_min)
    np.testing.assert_allclose(decay, approx / approx.mean(), rtol=5e-3)
    assert decay.mean() == pytest.approx(1.0)
    assert decay[-1] / decay[-2] < dur[-1] / dur[-2]  # decay down-weights the late frame


def test_frame_weights_errors() -> None:
    timing = FrameTiming.from_seconds([0, 60], [60, 60])
    with pytest.raises(ModelError, match="needs a positive half_life_min"):
        frame_weights(timing, "duration_decay")
    with pytest.raises(ModelError, match="weights scheme must be one of"):
        frame_weights(timing, "counts")  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="at least two frames need a positive weight"):
        resolve_weights([0.0, 1.0], timing)
    with pytest.raises(ModelError, match="weights must be finite"):
        resolve_weights([np.nan, 1.0], timing)
    np.testing.assert_allclose(resolve_weights(None, timing), [1.0, 1.0])
    np.testing.assert_allclose(resolve_weights([1.0, 3.0], timing), [0.5, 1.5])
