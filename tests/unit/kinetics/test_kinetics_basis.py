"""Basis-function solvers against a direct, per-voxel evaluation of the same equations."""

from __future__ import annotations

import numpy as np
import pytest
from srtm_testsim import Simulated

from bids_app.kinetics.basis import (
    BasisSet,
    basis_rates,
    make_basis,
    solve_srtm2_basis,
    solve_srtm_basis,
)
from bids_app.kinetics.model import build_grid, make_timing
from bids_app.kinetics.weights import resolve_weights

N_BASIS = 40


def _setup(sim: Simulated) -> tuple[BasisSet, np.ndarray]:
    timing = make_timing(sim.frame_start_s, sim.frame_end_s)
    rates = basis_rates((0.01, 0.6), N_BASIS)
    return make_basis(build_grid(timing, "frame_average"), sim.ref, rates), resolve_weights(
        None, timing
    )


def _noisy(sim: Simulated, rng: np.random.Generator) -> np.ndarray:
    tac = np.repeat(sim.target, 4, axis=1)
    return tac + 0.03 * tac.max() * rng.standard_normal(tac.shape)


def _lagrange(offset: float) -> np.ndarray:
    return np.array([0.5 * offset * (offset - 1.0), 1.0 - offset**2, 0.5 * offset * (offset + 1)])


def _interpolated(funcs: np.ndarray, rates: np.ndarray, k2a: float) -> np.ndarray:
    """Quadratic interpolation of basis rows at k2a (log-spaced nodes), or the node itself."""
    position = np.log(k2a / rates[0]) / np.log(rates[1] / rates[0])
    best = int(np.clip(np.round(position), 0, rates.size - 1))
    offset = position - best
    if best in (0, rates.size - 1):
        assert abs(offset) < 1e-9
        return funcs[best]
    return _lagrange(offset) @ funcs[best - 1 : best + 2]


def test_srtm2_unrefined_is_the_best_basis_by_brute_force(
    sim_voxels: Simulated, rng: np.random.Generator
) -> None:
    basis, w = _setup(sim_voxels)
    tac = _noisy(sim_voxels, rng)
    k2p = sim_voxels.k2prime
    sol = solve_srtm2_basis(basis, tac.astype(np.float32), w, k2p, refine=False, chunk_voxels=7)
    funcs = basis.ref_sampled + (k2p - basis.rates_per_min)[:, None] * basis.conv
    y = tac.astype(np.float32).astype(np.float64)
    r1_all = (funcs * w) @ y / np.einsum("f,bf,bf->b", w, funcs, funcs)[:, None]  # (nb, nv)
    rss_all = np.einsum("f,bfv->bv", w, (y[None] - r1_all[:, None, :] * funcs[:, :, None]) ** 2)
    rss_all[r1_all <= 0] = np.inf
    best = np.argmin(rss_all, axis=0)
    cols = np.arange(y.shape[1])
    np.testing.assert_array_equal(sol.k2a, basis.rates_per_min[best])
    np.testing.assert_allclose(sol.r1, r1_all[best, cols], rtol=1e-10)
    np.testing.assert_allclose(sol.rss, rss_all[best, cols], rtol=1e-8)
    np.testing.assert_array_equal(sol.at_bound, (best == 0) | (best == N_BASIS - 1))


def test_srtm2_refined_solution_matches_the_interpolated_basis(
    sim_voxels: Simulated, rng: np.random.Generator
) -> None:
    basis, w = _setup(sim_voxels)
    tac = _noisy(sim_voxels, rng)
    k2p = sim_voxels.k2prime
    sol = solve_srtm2_basis(basis, tac, w, k2p, chunk_voxels=5)
    assert sol.fitted is not None
    rates = basis.rates_per_min
    funcs = basis.ref_sampled + (k2p - rates)[:, None] * basis.conv
    assert np.all(sol.status)
    for j in range(tac.shape[1]):
        f = _interpolated(funcs, rates, float(sol.k2a[j]))
        r1 = np.sum(w * f * tac[:, j]) / np.sum(w * f * f)
        assert sol.r1[j] == pytest.approx(r1, rel=1e-10)
        assert sol.bp_nd[j] == pytest.approx(r1 * k2p / sol.k2a[j] - 1.0, rel=1e-10)
        np.testing.assert_allclose(sol.fitted[:, j], r1 * f, rtol=1e-10)
        rss = np.sum(w * (tac[:, j] - r1 * f) ** 2)
        assert sol.rss[j] == pytest.approx(rss, rel=1e-6)


def test_srtm_refined_solution_matches_the_interpolated_basis(
    sim_voxels: Simulated, rng: np.random.Generator
) -> None:
    basis, w = _setup(sim_voxels)
    tac = _noisy(sim_voxels, rng)
    sol = solve_srtm_basis(basis, tac, w, chunk_voxels=6)
    unrefined = solve_srtm_basis(basis, tac, w, refine=False)
    assert sol.fitted is not None
    rates = basis.rates_per_min
    assert np.all(sol.status)
    for j in range(tac.shape[1]):
        b = _interpolated(basis.conv, rates, float(sol.k2a[j]))
        design = np.stack([basis.ref_sampled, b], axis=1) * np.sqrt(w)[:, None]
        (r1, theta2), *_ = np.linalg.lstsq(design, np.sqrt(w) * tac[:, j], rcond=None)
        assert sol.r1[j] == pytest.approx(r1, rel=1e-9)
        assert sol.k2[j] == pytest.approx(theta2 + r1 * sol.k2a[j], rel=1e-9)
        model = r1 * basis.ref_sampled + theta2 * b
        np.testing.assert_allclose(sol.fitted[:, j], model, rtol=1e-9)
        assert sol.rss[j] == pytest.approx(np.sum(w * (tac[:, j] - model) ** 2), rel=1e-6)
        # the refinement moves k2a by at most half a basis step from the best basis
        step = np.log(rates[1] / rates[0])
        assert abs(np.log(sol.k2a[j] / unrefined.k2a[j])) <= 0.5 * step + 1e-12
