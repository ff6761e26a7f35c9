"""SRTM / SRTM2 fits: recovery, noise, voxel handling and input errors."""

from __future__ import annotations

import numpy as np
import pytest
from srtm_testsim import Simulated, simulate

from bids_app.errors import ModelError
from bids_app.kinetics import ReferenceTissueFit, fit_srtm, fit_srtm2, srtm2_k2a_range

BP = np.array([0.2, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 0.8])
R1 = np.array([0.7, 0.9, 1.0, 1.1, 1.2, 1.4, 1.0, 1.3])


def _assert_recovered(fit: ReferenceTissueFit, sim: Simulated, rtol: float) -> None:
    np.testing.assert_allclose(fit.bp_nd, sim.bp_nd, rtol=rtol)
    np.testing.assert_allclose(fit.r1, sim.r1, rtol=rtol)
    np.testing.assert_allclose(fit.k2a, sim.k2a, rtol=rtol)
    assert np.all(fit.status)
    assert not np.any(fit.at_bound)


@pytest.mark.parametrize("sampling", ["frame_average", "midpoint"])
@pytest.mark.parametrize("method", ["nls", "basis"])
def test_srtm_noise_free_recovery(method: str, sampling: str) -> None:
    sim = simulate(BP, R1, sampling=sampling)
    tac = sim.target if method == "basis" else sim.target[:, 5]
    fit = fit_srtm(
        sim.frame_start_s,
        sim.frame_end_s,
        sim.ref,
        tac,
        method=method,  # type: ignore[arg-type]
        sampling=sampling,
    )  # type: ignore[arg-type]
    if method == "nls":
        sim = simulate(BP[5], R1[5], sampling=sampling)
        assert isinstance(fit.bp_nd, float)
        assert isinstance(fit.status, bool)
    _assert_recovered(fit, sim, rtol=1e-2)
    np.testing.assert_allclose(fit.k2prime, sim.k2prime, rtol=1e-2)
    assert fit.model == "SRTM"
    assert fit.method == method
    assert fit.sampling == sampling


@pytest.mark.parametrize("sampling", ["frame_average", "midpoint"])
@pytest.mark.parametrize("method", ["nls", "basis"])
def test_srtm2_noise_free_recovery(method: str, sampling: str) -> None:
    sim = simulate(BP, R1, sampling=sampling)
    fit = fit_srtm2(
        sim.frame_start_s,
        sim.frame_end_s,
        sim.ref,
        sim.target,
        sim.k2prime,
        method=method,
        sampling=sampling,
    )  # type: ignore[arg-type]
    _assert_recovered(fit, sim, rtol=1e-2)
    np.testing.assert_allclose(fit.k2, sim.r1 * sim.k2prime, rtol=1e-2)
    assert fit.model == "SRTM2"
    assert fit.k2prime.shape == (BP.size,)  # type: ignore[union-attr]
    assert np.all(fit.k2prime == sim.k2prime)


def test_frame_average_default_is_nearly_exact(sim_voxels: Simulated) -> None:
    """With frame-averaged data the default sampling leaves only quadrature-level error."""
    s = sim_voxels
    fit = fit_srtm2(s.frame_start_s, s.frame_end_s, s.ref, s.target, s.k2prime)
    np.testing.assert_allclose(fit.bp_nd, s.bp_nd, rtol=1e-3)
    nls = fit_srtm(s.frame_start_s, s.frame_end_s, s.ref, s.target[:, 3])
    assert nls.bp_nd == pytest.approx(s.bp_nd[3], rel=1e-3)
    assert nls.k2prime == pytest.approx(s.k2prime, rel=1e-3)
    assert nls.se is not None
    assert set(nls.se) == {"R1", "k2", "BPND", "k2prime"}


def test_basis_agrees_with_nls_on_noise_free_voxels(sim_voxels: Simulated) -> None:
    s = sim_voxels
    basis = fit_srtm(s.frame_start_s, s.frame_end_s, s.ref, s.target, method="basis")
    nls = fit_srtm(s.frame_start_s, s.frame_end_s, s.ref, s.target, method="nls")
    np.testing.assert_allclose(basis.bp_nd, nls.bp_nd, rtol=2e-3)
    np.testing.assert_allclose(basis.r1, nls.r1, rtol=2e-3)
    basis2 = fit_srtm2(s.frame_start_s, s.frame_end_s, s.ref, s.target, 0.15, method="basis")
    nls2 = fit_srtm2(s.frame_start_s, s.frame_end_s, s.ref, s.target, 0.15, method="nls")
    np.testing.assert_allclose(basis2.bp_nd, nls2.bp_nd, rtol=2e-3)


def test_unrefined_basis_is_quantised(sim_voxels: Simulated) -> None:
    """Without refinement k2a sits exactly on the log-spaced grid (documents the refinement)."""
    from bids_app.kinetics.basis import basis_rates, make_basis, solve_srtm2_basis
    from bids_app.kinetics.model import build_grid, make_timing
    from bids_app.kinetics.weights import resolve_weights

    s = sim_voxels
    timing = make_timing(s.frame_start_s, s.frame_end_s)
    rates = basis_rates((0.006, 0.6), 100)
    basis = make_basis(build_grid(timing, "frame_average"), s.ref, rates)
    w = resolve_weights(None, timing)
    raw = solve_srtm2_basis(basis, s.target, w, s.k2prime, refine=False)
    assert np.all(np.isin(raw.k2a, rates))
    refined = solve_srtm2_basis(basis, s.target, w, s.k2prime)
    err_raw = np.abs(raw.bp_nd - s.bp_nd).max()
    err_ref = np.abs(refined.bp_nd - s.bp_nd).max()
    assert err_ref < err_raw / 5


def test_fitted_reproduces_noise_free_data(sim_voxels: Simulated) -> None:
    s = sim_voxels
    for fit in (
        fit_srtm(s.frame_start_s, s.frame_end_s, s.ref, s.target),
        fit_srtm2(s.frame_start_s, s.frame_end_s, s.ref, s.target, s.k2prime),
        fit_srtm2(s.frame_start_s, s.frame_end_s, s.ref, s.target[:, 0], s.k2prime),
    ):
        assert fit.fitted is not None
        expected = s.target if fit.fitted.ndim == 2 else s.target[:, 0]
        np.testing.assert_allclose(fit.fitted, expected, rtol=0, atol=2e-3 * s.target.max())
        assert np.all(np.asarray(fit.rss) >= 0)


@pytest.mark.parametrize("model", ["SRTM", "SRTM2"])
def test_noisy_voxels_median_bias_below_5_percent(model: str, rng: np.random.Generator) -> None:
    n = 200
    sim = simulate(np.full(n, 2.0), np.full(n, 1.1))
    durations_min = (sim.frame_end_s - sim.frame_start_s) / 60.0
    sd = 0.04 * sim.target.max() / np.sqrt(durations_min)
    noisy = sim.target + sd[:, None] * rng.standard_normal(sim.target.shape)
    if model == "SRTM":
        fit = fit_srtm(sim.frame_start_s, sim.frame_end_s, sim.ref, noisy)
    else:
        fit = fit_srtm2(sim.frame_start_s, sim.frame_end_s, sim.ref, noisy, sim.k2prime)
    ok = np.asarray(fit.status)
    assert ok.mean() > 0.95
    bias_bp = np.median(np.asarray(fit.bp_nd)[ok]) / 2.0 - 1
    bias_r1 = np.median(np.asarray(fit.r1)[ok]) / 1.1 - 1
    assert abs(bias_bp) < 0.05
    assert abs(bias_r1) < 0.05
    # the noise must actually spread the estimates (the test can fail)
    assert np.std(np.asarray(fit.bp_nd)[ok]) > 0.01


def test_float32_chunked_matches_float64(sim_voxels: Simulated, rng: np.random.Generator) -> None:
    s = sim_voxels
    tac = np.repeat(s.target, 50, axis=1)
    tac = tac + 0.01 * tac.max() * rng.standard_normal(tac.shape)
    f64 = fit_srtm2(s.frame_start_s, s.frame_end_s, s.ref, tac, 0.15)
    f32 = fit_srtm2(
        s.frame_start_s, s.frame_end_s, s.ref, tac.astype(np.float32), 0.15, chunk_voxels=37
    )
    np.testing.assert_allclose(f32.bp_nd, f64.bp_nd, rtol=1e-4)
    assert f32.fitted is not None
    assert f32.fitted.dtype == np.float32
    none = fit_srtm2(s.frame_start_s, s.frame_end_s, s.ref, tac, 0.15, return_fitted=False)
    assert none.fitted is None


def test_nan_and_zero_voxels_give_nan_not_zero(sim_voxels: Simulated) -> None:
    s = sim_voxels
    tac = s.target.copy()
    tac[3, 1] = np.nan
    tac[:, 2] = 0.0
    for fit in (
        fit_srtm(s.frame_start_s, s.frame_end_s, s.ref, tac),
        fit_srtm2(s.frame_start_s, s.frame_end_s, s.ref, tac, 0.15),
    ):
        status = np.asarray(fit.status)
        assert not status[1]
        assert not status[2]
        assert status[[0, 3, 4, 5, 6, 7]].all()
        for value in (fit.bp_nd, fit.r1, fit.k2, fit.k2a):
            assert np.isnan(np.asarray(value)[[1, 2]]).all()
        assert fit.fitted is not None
        assert np.isnan(fit.fitted[:, [1, 2]]).all()
        assert fit.n_failed == 2
    one = fit_srtm2(s.frame_start_s, s.frame_end_s, s.ref, tac[:, 1], 0.15)
    assert one.status is False
    assert np.isnan(one.bp_nd)
    zero = fit_srtm(s.frame_start_s, s.frame_end_s, s.ref, tac[:, 2])
    assert zero.status is False
    assert np.isnan(zero.r1)


def test_negative_tac_is_invalid_for_srtm2(sim_voxels: Simulated) -> None:
    s = sim_voxels
    fit = fit_srtm2(s.frame_start_s, s.frame_end_s, s.ref, -s.target[:, :2], 0.15)
    assert not np.any(fit.status)
    assert np.isnan(fit.bp_nd).all()  # type: ignore[arg-type]


def test_reference_equal_to_target(sim_striatum: Simulated) -> None:
    s = sim_striatum
    for fit in (
        fit_srtm(s.frame_start_s, s.frame_end_s, s.ref, s.ref),
        fit_srtm2(s.frame_start_s, s.frame_end_s, s.ref, s.ref, s.k2prime),
        fit_srtm2(s.frame_start_s, s.frame_end_s, s.ref, np.stack([s.ref, s.ref], 1), 0.15),
    ):
        np.testing.assert_allclose(fit.bp_nd, 0.0, atol=5e-3)
        np.testing.assert_allclose(fit.r1, 1.0, atol=5e-3)


def test_k2a_outside_range_is_flagged_at_bound() -> None:
    sim = simulate(np.array([2.0, 20.0]), np.array([1.0, 1.0]))  # k2a = 0.05 and 0.007
    fit = fit_srtm2(
        sim.frame_start_s,
        sim.frame_end_s,
        sim.ref,
        sim.target,
        sim.k2prime,
        k2a_range_per_min=(0.02, 0.6),
    )
    np.testing.assert_array_equal(fit.at_bound, [False, True])
    assert fit.k2a_range_per_min == (0.02, 0.6)
    assert fit.n_basis == 100


def test_nls_on_2d_loops_over_columns(sim_voxels: Simulated) -> None:
    s = sim_voxels
    loop = fit_srtm2(s.frame_start_s, s.frame_end_s, s.ref, s.target[:, :3], 0.15, method="nls")
    single = fit_srtm2(s.frame_start_s, s.frame_end_s, s.ref, s.target[:, 1], 0.15)
    assert loop.bp_nd[1] == pytest.approx(single.bp_nd, rel=1e-9)  # type: ignore[index]
    assert loop.method == "nls"


def test_params_use_pet_names(sim_striatum: Simulated) -> None:
    s = sim_striatum
    fit = fit_srtm2(s.frame_start_s, s.frame_end_s, s.ref, s.target, 0.15, weights="uniform")
    assert set(fit.params) == {"BPND", "R1", "k2", "k2a", "k2prime"}
    np.testing.assert_allclose(fit.weights, 1.0)
    assert fit.params["BPND"] == fit.bp_nd


# ------------------------------------------------------------------------------- input errors
def _args(sim: Simulated) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return sim.frame_start_s, sim.frame_end_s, sim.ref, sim.target


def test_mismatched_lengths(sim_striatum: Simulated) -> None:
    start, end, ref, tac = _args(sim_striatum)
    with pytest.raises(ModelError, match="same length"):
        fit_srtm(start[:-1], end, ref, tac)
    with pytest.raises(ModelError, match="ref_tac must have one value per frame"):
        fit_srtm(start, end, ref[:-1], tac)
    with pytest.raises(ModelError, match="tac must have shape"):
        fit_srtm2(start, end, ref, tac[:-1], 0.15)
    with pytest.raises(ModelError, match="tac must have shape"):
        fit_srtm2(start, end, ref, np.ones((3, tac.size)), 0.15)


def test_negative_durations_and_times(sim_striatum: Simulated) -> None:
    start, end, ref, tac = _args(sim_striatum)
    bad_end = end.copy()
    bad_end[4] = start[4] - 1.0
    with pytest.raises(ModelError, match="frame durations must be positive; frame 4"):
        fit_srtm(start, bad_end, ref, tac)
    with pytest.raises(ModelError, match="must be >= 0"):
        fit_srtm(start - 30.0, end - 30.0, ref, tac)
    with pytest.raises(ModelError, match="non-overlapping"):
        fit_srtm(start - np.r_[0, 0, 10.0, np.zeros(start.size - 3)], end, ref, tac)


@pytest.mark.parametrize("k2prime", [0.0, -0.1, np.nan, np.inf, "abc"])
def test_k2prime_must_be_positive_finite(sim_striatum: Simulated, k2prime: object) -> None:
    start, end, ref, tac = _args(sim_striatum)
    with pytest.raises(ModelError, match="k2prime must be"):
        fit_srtm2(start, end, ref, tac, k2prime)  # type: ignore[arg-type]


def test_bad_reference(sim_striatum: Simulated) -> None:
    start, end, ref, tac = _args(sim_striatum)
    with pytest.raises(ModelError, match="ref_tac is all zero"):
        fit_srtm(start, end, np.zeros_like(ref), tac)
    bad = ref.copy()
    bad[2] = np.nan
    with pytest.raises(ModelError, match="ref_tac must be finite; frame 2"):
        fit_srtm2(start, end, bad, tac, 0.15)


def test_bad_weights_and_options(sim_striatum: Simulated) -> None:
    start, end, ref, tac = _args(sim_striatum)
    with pytest.raises(ModelError, match="one value per frame"):
        fit_srtm(start, end, ref, tac, weights=np.ones(3))
    w = np.ones(ref.size)
    w[1] = -1.0
    with pytest.raises(ModelError, match="non-negative; frame 1"):
        fit_srtm(start, end, ref, tac, weights=w)
    with pytest.raises(ModelError, match="weights must be None, 'duration', 'uniform'"):
        fit_srtm(start, end, ref, tac, weights="poisson")
    with pytest.raises(ModelError, match="method must be one of"):
        fit_srtm(start, end, ref, tac, method="lm")  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="k2a_range_per_min must satisfy"):
        fit_srtm2(start, end, ref, tac, 0.15, method="basis", k2a_range_per_min=(0.6, 0.006))
    with pytest.raises(ModelError, match="n_basis must be an integer >= 2"):
        fit_srtm2(start, end, ref, tac, 0.15, method="basis", n_basis=1)


# ------------------------------------------------------------------ k2'-scaled basis range
def test_default_srtm2_range_scales_with_k2prime() -> None:
    assert srtm2_k2a_range(0.05) == (0.006, 0.6)
    assert srtm2_k2a_range(0.15) == pytest.approx((0.006, 1.2))
    assert srtm2_k2a_range(0.3) == pytest.approx((0.006, 2.4))


def test_high_r1_voxels_are_not_clipped() -> None:
    """R1 = 4 at BPnd = 0 has k2a = 0.6 /min: the old fixed range put it on its last basis."""
    sim = simulate(np.array([0.0, 0.0, 3.0]), np.array([4.0, 6.0, 1.0]))
    args = (sim.frame_start_s, sim.frame_end_s, sim.ref, sim.target, sim.k2prime)
    fit = fit_srtm2(*args)
    assert fit.k2a_range_per_min == pytest.approx((0.006, 8 * sim.k2prime))
    assert not np.any(fit.at_bound)
    np.testing.assert_allclose(fit.r1, sim.r1, rtol=0.02)
    np.testing.assert_allclose(fit.bp_nd, sim.bp_nd, atol=0.02)
    fixed = fit_srtm2(*args, k2a_range_per_min=(0.006, 0.6))
    np.testing.assert_array_equal(fixed.at_bound, [True, True, False])
    assert fixed.r1[1] < 0.7 * sim.r1[1]  # type: ignore[index]
    # a striatum-like voxel (R1 = 1, BPnd = 3) is unchanged by the wider range
    assert fit.bp_nd[2] == pytest.approx(fixed.bp_nd[2], rel=2e-3)  # type: ignore[index]
    assert fit.r1[2] == pytest.approx(fixed.r1[2], rel=2e-3)  # type: ignore[index]
    assert fit.bp_nd[2] == pytest.approx(3.0, rel=2e-3)  # type: ignore[index]


def test_noisy_high_r1_voxels_stay_inside_the_default_range(rng: np.random.Generator) -> None:
    n = 100
    sim = simulate(np.zeros(n), np.full(n, 4.0))
    durations_min = (sim.frame_end_s - sim.frame_start_s) / 60.0
    noise = 0.04 * sim.target.max() / np.sqrt(durations_min)[:, None]
    noisy = sim.target + noise * rng.standard_normal(sim.target.shape)
    args = (sim.frame_start_s, sim.frame_end_s, sim.ref, noisy, sim.k2prime)
    fit = fit_srtm2(*args)
    fixed = fit_srtm2(*args, k2a_range_per_min=(0.006, 0.6))
    assert np.count_nonzero(fit.at_bound) == 0
    assert np.count_nonzero(fixed.at_bound) > n // 2
    assert np.median(np.asarray(fit.r1)) == pytest.approx(4.0, rel=0.02)
