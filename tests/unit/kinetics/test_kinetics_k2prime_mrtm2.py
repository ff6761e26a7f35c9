"""k2' estimation (ROI / voxel median / per participant), MRTM2 and frame weights."""

from __future__ import annotations

import numpy as np
import pytest
from srtm_testsim import Simulated, simulate

from bids_app.errors import ModelError
from bids_app.kinetics import (
    FrameTiming,
    SessionTACs,
    estimate_k2prime,
    estimate_participant_k2prime,
    fit_mrtm2,
    fit_srtm2,
    fit_srtm_shared_k2prime,
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


# ------------------------------------------------------------------- one k2' per participant
#: A second session's plasma input: a sharper, larger bolus and faster clearance.
OTHER_INPUT = {"input_amplitudes": (1200.0, 15.0, 30.0), "input_rates": (5.0, 0.2, 0.02)}
#: A second session's schedule: 24 frames over 70 min.
OTHER_DURATIONS_S = np.array([20.0] * 6 + [60.0] * 6 + [300.0] * 6 + [400.0] * 6)


def _session(sim: Simulated, label: str, roi: np.ndarray | None = None) -> SessionTACs:
    tac = sim.target if roi is None else roi
    return SessionTACs(sim.frame_start_s, sim.frame_end_s, sim.ref, tac, label=label)


def _pair() -> tuple[Simulated, Simulated]:
    base = simulate(3.0, 1.1)
    challenge = simulate(2.7, 1.1, OTHER_DURATIONS_S, **OTHER_INPUT)  # type: ignore[arg-type]
    return base, challenge


def test_joint_fit_recovers_shared_k2prime_and_session_parameters() -> None:
    base, challenge = _pair()
    assert not np.allclose(base.ref[:5], challenge.ref[:5], rtol=0.1)  # different references
    fit = fit_srtm_shared_k2prime([_session(base, "ses-a"), _session(challenge, "ses-b")])
    assert fit.status
    assert not fit.at_bound
    assert fit.k2prime == pytest.approx(base.k2prime, rel=1e-3)
    np.testing.assert_allclose(fit.r1, [1.1, 1.1], rtol=1e-3)
    np.testing.assert_allclose(fit.bp_nd, [3.0, 2.7], rtol=1e-3)
    np.testing.assert_allclose(fit.k2, np.array(fit.r1) * fit.k2prime, rtol=1e-12)
    assert len(fit.fitted) == 2
    np.testing.assert_allclose(fit.fitted[1], challenge.target, rtol=2e-3)


def test_joint_fit_with_noise_weights_each_session_by_its_noise(
    rng: np.random.Generator,
) -> None:
    base, challenge = _pair()
    noisy = []
    for sim, level in ((base, 0.01), (challenge, 0.03)):
        durations_min = (sim.frame_end_s - sim.frame_start_s) / 60.0
        sd = level * sim.target.max() / np.sqrt(durations_min)
        noisy.append(sim.target + sd * rng.standard_normal(sim.target.shape))
    sessions = [_session(base, "ses-a", noisy[0]), _session(challenge, "ses-b", noisy[1])]
    fit = fit_srtm_shared_k2prime(sessions)
    assert fit.status
    assert fit.noise_sd[1] > 2 * fit.noise_sd[0]
    assert 0 < fit.k2prime_se < 0.1 * fit.k2prime
    assert abs(fit.k2prime - base.k2prime) < 4 * fit.k2prime_se + 1e-3
    np.testing.assert_allclose(fit.bp_nd, [3.0, 2.7], rtol=0.05)


@pytest.mark.parametrize("method", ["joint", "mean", "per_session"])
def test_identical_sessions_give_the_per_session_value(
    sim_striatum: Simulated, rng: np.random.Generator, method: str
) -> None:
    s = sim_striatum
    noisy = s.target + 0.01 * s.target.max() * rng.standard_normal(s.target.shape)
    single = estimate_k2prime(s.frame_start_s, s.frame_end_s, s.ref, noisy)
    session = _session(s, "ses-a", noisy)
    est = estimate_participant_k2prime([session, session], method)  # type: ignore[arg-type]
    assert est.status
    assert est.method == method
    np.testing.assert_allclose(est.k2prime, [single.k2prime] * 2, rtol=1e-6)
    np.testing.assert_allclose([e.k2prime for e in est.per_session], single.k2prime, rtol=1e-6)


def test_mean_and_per_session_values() -> None:
    base, challenge = _pair()
    sessions = [_session(base, "ses-a"), _session(challenge, "ses-b")]
    per = estimate_participant_k2prime(sessions, "per_session")
    mean = estimate_participant_k2prime(sessions, "mean")
    joint = estimate_participant_k2prime(sessions, "joint")
    own = [e.k2prime for e in per.per_session]
    assert per.k2prime == tuple(own)
    assert mean.k2prime == (pytest.approx(np.mean(own)),) * 2
    assert joint.joint is not None
    assert joint.k2prime == (joint.joint.k2prime,) * 2
    sidecar = joint.as_dict(1)
    assert sidecar["k2prime_method"] == "participant_joint"
    assert sidecar["k2prime_per_session"] == own
    assert sidecar["k2prime_note"] == ""


def test_failed_session_is_left_out_of_the_mean() -> None:
    base, challenge = _pair()
    zero = np.zeros_like(challenge.target)
    sessions = [_session(base, "ses-a"), _session(challenge, "ses-b", zero)]
    est = estimate_participant_k2prime(sessions, "joint")
    assert est.status
    assert est.method == "mean"
    assert est.requested_method == "joint"
    assert est.joint is not None
    assert not est.joint.status
    assert est.k2prime == (est.per_session[0].k2prime,) * 2
    assert "joint SRTM fit failed" in est.note
    assert "ses-b" in est.note
    per = estimate_participant_k2prime(sessions, "per_session")
    assert not per.status
    assert np.isnan(per.k2prime[1])
    none = estimate_participant_k2prime([sessions[1], sessions[1]], "mean")
    assert not none.status
    assert np.isnan(none.k2prime).all()


def test_participant_k2prime_input_errors(sim_striatum: Simulated) -> None:
    s = sim_striatum
    with pytest.raises(ModelError, match="at least one session"):
        estimate_participant_k2prime([])
    with pytest.raises(ModelError, match="participant k2' method must be one of"):
        estimate_participant_k2prime([_session(s, "a")], "median")  # type: ignore[arg-type]
    short = SessionTACs(s.frame_start_s, s.frame_end_s, s.ref[:-1], s.target, label="ses-b")
    with pytest.raises(ModelError, match="ses-b: ref_tac must have one value per frame"):
        fit_srtm_shared_k2prime([_session(s, "ses-a"), short])
    with pytest.raises(ModelError, match="ses-c: roi_tac must be a 1-D ROI TAC"):
        SessionTACs(s.frame_start_s, s.frame_end_s, s.ref, np.ones((s.ref.size, 2)), label="ses-c")
