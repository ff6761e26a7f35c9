"""Forward kinetics of the simulator against closed forms and an ODE solver."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from petsim.errors import ModelError
from petsim.kinetics_sim import (
    CompartmentParameters,
    PlasmaInput,
    convolve_exponential,
    decay_correction_factors,
    fine_time_grid,
    frame_means,
    sample_plasma_input,
    tissue_curve,
    voxel_curve,
)
from petsim.protocol import (
    C11_HALF_LIFE_MIN,
    DEFAULT_SCHEDULE_S,
    SMALL_SCHEDULE_S,
    default_protocol,
    frame_schedule_seconds,
)
from petsim.timing import FrameTiming


def test_convolve_exponential_matches_closed_form() -> None:
    # exp(-b t) * exp(-a t) = (exp(-a t) - exp(-b t)) / (b - a)
    dt = 0.01
    t = np.arange(0, 30, dt)
    a, b = 0.3, 1.7
    got = convolve_exponential(np.exp(-b * t), a, dt)
    expected = (np.exp(-a * t) - np.exp(-b * t)) / (b - a)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-7)


def test_convolve_with_zero_rate_is_running_integral() -> None:
    dt = 0.05
    t = np.arange(0, 10, dt)
    got = convolve_exponential(2.0 * t, 0.0, dt)
    np.testing.assert_allclose(got, t**2, atol=1e-9)


def test_two_tissue_curve_matches_ode() -> None:
    plasma = PlasmaInput()
    p = CompartmentParameters(k1=0.13, k2=0.39, k3=0.75, k4=0.25, vb=0.0)
    dt = 1.0 / 120.0
    t = fine_time_grid(60.0, dt)
    got = tissue_curve(p, plasma(t), dt)

    def rhs(time: float, y: np.ndarray) -> list[float]:
        cp = float(plasma(np.array([time]))[0])
        c_nd, c_s = y
        return [p.k1 * cp - (p.k2 + p.k3) * c_nd + p.k4 * c_s, p.k3 * c_nd - p.k4 * c_s]

    sol = solve_ivp(rhs, (0, 60), [0, 0], t_eval=t, max_step=0.01, rtol=1e-8, atol=1e-10)
    expected = sol.y.sum(axis=0)
    np.testing.assert_allclose(got, expected, rtol=2e-3, atol=2e-3 * expected.max())


def test_steady_state_distribution_volume() -> None:
    # Constant input: the tissue tends to V_T = K1/k2 (1 + k3/k4).
    p = CompartmentParameters.from_macro(k1=0.1, v_nd=0.3, bp_nd=2.0, k4=0.2, vb=0.0)
    dt = 0.05
    t = fine_time_grid(400.0, dt)
    curve = tissue_curve(p, np.ones_like(t), dt)
    assert curve[-1] == pytest.approx(0.3 * 3.0, rel=1e-3)
    assert p.bp_nd == pytest.approx(2.0)
    assert p.v_nd == pytest.approx(0.3)


def test_blood_volume_mixes_plasma() -> None:
    p0 = CompartmentParameters(k1=0.1, k2=0.3, vb=0.0)
    p1 = CompartmentParameters(k1=0.1, k2=0.3, vb=0.25)
    dt = 0.01
    t = fine_time_grid(10, dt)
    cp = PlasmaInput()(t)
    np.testing.assert_allclose(
        voxel_curve(p1, cp, dt), 0.75 * voxel_curve(p0, cp, dt) + 0.25 * cp, rtol=1e-12
    )


def test_frame_means_plain_and_decay_weighted() -> None:
    frames = FrameTiming.from_seconds([0, 60, 300], [60, 240, 600])
    t = fine_time_grid(15, 0.01)
    linear = 3.0 + 2.0 * t
    np.testing.assert_allclose(frame_means(t, linear, frames, 0.0), 3 + 2 * frames.mid_min)
    lam = math.log(2) / C11_HALF_LIFE_MIN
    const = np.full_like(t, 4.2)
    np.testing.assert_allclose(frame_means(t, const, frames, lam), 4.2, rtol=1e-9)
    # Decay weighting pulls a rising curve's mean below the plain mean.
    assert np.all(frame_means(t, linear, frames, lam) < frame_means(t, linear, frames, 0.0))


def test_frame_means_rejects_short_grid() -> None:
    frames = FrameTiming.from_seconds([0], [600])
    t = fine_time_grid(5, 0.1)
    with pytest.raises(ModelError, match="fine grid ends"):
        frame_means(t, np.ones_like(t), frames, 0.0)


def test_decay_correction_factors() -> None:
    frames = FrameTiming.from_seconds([0, 3000], [60, 600])
    lam = math.log(2) / C11_HALF_LIFE_MIN
    dcf = decay_correction_factors(frames, lam)
    # Independent check: 1 / mean of exp(-lam t) over the frame.
    for k in range(2):
        tt = np.linspace(frames.start_min[k], frames.end_min[k], 20001)
        assert dcf[k] == pytest.approx(1.0 / np.exp(-lam * tt).mean(), rel=1e-6)
    assert dcf[0] == pytest.approx(1.0, abs=0.02)
    assert dcf[1] > 5.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k1": -0.1, "k2": 0.3}, "finite and >= 0"),
        ({"k1": 0.1, "k2": 0.3, "k3": 0.2, "k4": 0.0}, "k4 must be > 0"),
        ({"k1": 0.1, "k2": 0.3, "vb": 1.5}, "within \\[0, 1\\]"),
    ],
)
def test_compartment_parameters_validation(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ModelError, match=match):
        CompartmentParameters(**kwargs)


def test_plasma_input_shape_and_scaling(rng: np.random.Generator) -> None:
    t = fine_time_grid(60, 1.0 / 60)
    base = PlasmaInput()
    cp = base(t)
    assert cp[t <= base.delay_min].max() == 0.0
    assert 0.5 < t[np.argmax(cp)] < 2.0  # bolus peak within the first 2 min
    assert cp[-1] > 0.0
    assert cp.max() / cp[-1] > 10.0
    np.testing.assert_allclose(base.scaled(2.0)(t), 2.0 * cp)
    population = sample_plasma_input(rng, 370.0, variability=0.0)
    np.testing.assert_allclose(population(t), cp)
    half = sample_plasma_input(rng, 185.0, variability=0.0)
    np.testing.assert_allclose(half(t), 0.5 * cp)


def test_frame_schedules() -> None:
    start, dur = frame_schedule_seconds(DEFAULT_SCHEDULE_S)
    assert start.size == 26
    assert start[-1] + dur[-1] == 3600.0
    assert list(dur[:4]) == [15.0] * 4
    assert dur[-1] == 300.0
    np.testing.assert_allclose(start[1:], start[:-1] + dur[:-1])
    s_small, d_small = frame_schedule_seconds(SMALL_SCHEDULE_S)
    assert s_small.size == 12
    assert s_small[-1] + d_small[-1] == 3600.0
    assert default_protocol(small=True).frames().n_frames == 12


def test_native_affine_is_centred_and_unequal() -> None:
    protocol = default_protocol()
    affine = protocol.native_affine()
    centre_vox = (np.asarray(protocol.grid_shape) - 1) / 2
    np.testing.assert_allclose(affine[:3, :3] @ centre_vox + affine[:3, 3], 0.0, atol=1e-9)
    assert len(set(protocol.grid_shape)) == 3
    assert 2.5 <= min(protocol.voxel_size_mm) <= max(protocol.voxel_size_mm) <= 3.0
