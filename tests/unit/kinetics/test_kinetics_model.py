"""Interpolation, exact convolution and forward models (bids_app.kinetics.model)."""

from __future__ import annotations

import numpy as np
import pytest
from srtm_testsim import RACLOPRIDE_DURATIONS_S, Simulated, simulate

from bids_app.errors import ModelError
from bids_app.kinetics import srtm2_model, srtm_model
from bids_app.kinetics.model import build_grid, exp_convolution, make_timing

START_S = np.concatenate([[0.0], np.cumsum(RACLOPRIDE_DURATIONS_S)[:-1]])
END_S = START_S + RACLOPRIDE_DURATIONS_S


@pytest.mark.parametrize("sampling", ["frame_average", "midpoint"])
@pytest.mark.parametrize("rate", [0.006, 0.08, 0.6, 5.0])
def test_exp_convolution_of_a_ramp_is_exact(sampling: str, rate: float) -> None:
    """C(t) = t is piecewise linear, so the closed form must match the analytic result."""
    timing = make_timing(START_S + 30.0, END_S + 30.0)  # a gap before the first frame
    grid = build_grid(timing, sampling)  # type: ignore[arg-type]
    conv = exp_convolution(grid, grid.t_min.copy(), np.array([rate]))[0]

    def primitive(t: np.ndarray) -> np.ndarray:  # ∫ (s/k - (1 - e^{-ks})/k²) ds
        return t**2 / (2 * rate) - t / rate**2 + (1 - np.exp(-rate * t)) / rate**3

    if sampling == "midpoint":
        t = timing.mid_min
        expected = t / rate - (1 - np.exp(-rate * t)) / rate**2
    else:
        expected = (primitive(timing.end_min) - primitive(timing.start_min)) / timing.duration_min
    # the reference formula itself loses digits to cancellation (1/k³ terms) at small k
    np.testing.assert_allclose(conv, expected, rtol=1e-7)


def test_frame_average_interpolant_reproduces_the_frames(rng: np.random.Generator) -> None:
    timing = make_timing(START_S, END_S)
    grid = build_grid(timing, "frame_average")
    values = rng.uniform(0.5, 20.0, timing.n_frames)
    np.testing.assert_allclose(grid.sample @ (grid.interp @ values), values, rtol=1e-10)
    # the midpoint interpolant passes through the values at mid-times instead
    mid_grid = build_grid(timing, "midpoint")
    np.testing.assert_allclose(mid_grid.interp[mid_grid.mid_idx] @ values, values, rtol=1e-12)


def test_reference_model_identity() -> None:
    """R1 = 1 and BPnd = 0 give back the reference TAC."""
    sim = simulate(1.0, 1.0)
    out = srtm_model(sim.frame_start_s, sim.frame_end_s, sim.ref, 1.0, 0.2, 0.0)
    np.testing.assert_allclose(out, sim.ref, rtol=1e-9)


@pytest.mark.parametrize("sampling", ["frame_average", "midpoint"])
def test_srtm_model_matches_the_analytic_simulator(sampling: str) -> None:
    sim = simulate(np.array([0.5, 2.5]), np.array([0.8, 1.2]), sampling=sampling)
    out = srtm_model(
        sim.frame_start_s, sim.frame_end_s, sim.ref, sim.r1, sim.k2, sim.bp_nd, sampling=sampling
    )
    assert out.shape == sim.target.shape
    peak = sim.target.max(axis=0)
    tol = 1e-3 if sampling == "frame_average" else 1e-2
    assert np.all(np.abs(out - sim.target) <= tol * peak)


def test_srtm2_model_is_srtm_with_k2_from_k2prime(sim_striatum: Simulated) -> None:
    s = sim_striatum
    a = srtm2_model(s.frame_start_s, s.frame_end_s, s.ref, 1.1, 0.15, 2.5)
    b = srtm_model(s.frame_start_s, s.frame_end_s, s.ref, 1.1, 1.1 * 0.15, 2.5)
    np.testing.assert_allclose(a, b, rtol=1e-12)
    assert a.ndim == 1
    np.testing.assert_allclose(a, s.target, rtol=2e-3, atol=1e-3 * s.target.max())


def test_forward_model_rejects_invalid_parameters(sim_striatum: Simulated) -> None:
    s = sim_striatum
    with pytest.raises(ModelError, match="k2 > 0 and bp_nd > -1"):
        srtm_model(s.frame_start_s, s.frame_end_s, s.ref, 1.0, 0.1, -1.0)
    with pytest.raises(ModelError, match="sampling must be one of"):
        srtm_model(s.frame_start_s, s.frame_end_s, s.ref, 1.0, 0.1, 1.0, sampling="mid")  # type: ignore[arg-type]
