"""The simulator's own SRTM/SRTM2 (petsim.srtm): closed forms, recovery, kinfitr agreement.

The kinfitr numbers come from ``tests/data/kinfitr_simref`` (copied from the shared reference
folder, see its SOURCE.md), so these tests never skip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import quad

from petsim.errors import ModelError
from petsim.kinetics_sim import (
    CompartmentParameters,
    PlasmaInput,
    fine_time_grid,
    frame_means,
    voxel_curve,
)
from petsim.protocol import default_protocol
from petsim.srtm import (
    ReferenceInput,
    exp_convolution,
    fit_srtm,
    fit_srtm2,
    fit_srtm2_voxels,
    srtm_model,
)
from petsim.timing import FrameTiming

DATA = Path(__file__).resolve().parents[1] / "data" / "kinfitr_simref"
REGIONS = ("ROI1", "ROI2", "ROI3")


def test_exp_convolution_matches_quadrature() -> None:
    nodes = np.array([0.0, 0.5, 1.25, 3.0, 7.0, 12.0])
    values = np.array([0.0, 4.0, 9.0, 6.0, 3.0, 2.5])
    rates = np.array([1e-7, 0.05, 0.4, 2.5])
    got = exp_convolution(nodes, values, rates)

    def c(u: float) -> float:
        return float(np.interp(u, nodes, values))

    for i, k in enumerate(rates):
        for j, t in enumerate(nodes):
            expected, _ = quad(
                lambda u, k=k, t=t: c(u) * np.exp(-k * (t - u)),
                0.0,
                t,
                points=nodes[nodes < t],
                limit=200,
                epsabs=1e-13,
                epsrel=1e-12,
            )
            assert got[i, j] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_reference_input_keeps_the_frame_means() -> None:
    frames = default_protocol().frames()
    ref = np.abs(np.sin(frames.mid_min)) * 5.0 + 1.0
    inp = ReferenceInput.from_frames(frames, ref, "frame_mean")
    pieces = 0.5 * (inp.node_values[1:] + inp.node_values[:-1]) * np.diff(inp.node_min)
    cumulative = np.concatenate([[0.0], np.cumsum(pieces)])
    means = (cumulative[inp.end_idx] - cumulative[inp.start_idx]) / frames.duration_min
    np.testing.assert_allclose(means, ref, rtol=1e-10)
    midpoint = ReferenceInput.from_frames(frames, ref, "midpoint")
    np.testing.assert_allclose(midpoint.node_values[midpoint.mid_idx], ref, rtol=1e-12)


@pytest.mark.parametrize("small", [True, False])
@pytest.mark.parametrize("bp_nd", [0.3, 1.5, 3.0])
def test_recovers_a_one_tissue_target_exactly(small: bool, bp_nd: float) -> None:
    # A 1TC target with a 1TC reference obeys SRTM exactly: BPnd = V_T / V_ND - 1.
    protocol = default_protocol(small=small)
    frames = protocol.frames()
    t = fine_time_grid(float(frames.end_min[-1]), protocol.fine_dt_min)
    cp = PlasmaInput()(t)
    lam = protocol.decay_constant_per_min
    ref_params = CompartmentParameters(k1=0.11, k2=0.33, vb=0.0)
    target = CompartmentParameters(k1=0.13, k2=0.13 / (1.0 / 3.0 * (1.0 + bp_nd)), vb=0.0)
    dt = protocol.fine_dt_min
    ref = frame_means(t, voxel_curve(ref_params, cp, dt), frames, lam)
    tac = frame_means(t, voxel_curve(target, cp, dt), frames, lam)
    srtm = fit_srtm(frames, ref, tac)
    assert srtm.ok
    assert srtm.bp_nd == pytest.approx(bp_nd, rel=2e-3)
    assert srtm.r1 == pytest.approx(0.13 / 0.11, rel=2e-3)
    # k2' = k2 / R1 is the least determined parameter (0.7 % on the coarse 12-frame schedule)
    assert srtm.k2prime_per_min == pytest.approx(0.33, rel=1e-2)
    srtm2 = fit_srtm2(frames, ref, tac, 0.33)
    assert srtm2.bp_nd == pytest.approx(bp_nd, rel=2e-3)


def test_voxel_solver_equals_the_roi_fit_and_the_model() -> None:
    frames = default_protocol().frames()
    ref = 10.0 * np.exp(-0.03 * frames.mid_min) * (1.0 - np.exp(-2.0 * frames.mid_min))
    truth = [(0.8, 0.6), (1.0, 1.5), (1.2, 3.0), (0.9, 0.1)]
    k2prime = 0.3
    tacs = np.stack([srtm_model(frames, ref, r1, r1 * k2prime, bp) for r1, bp in truth], axis=1)
    maps = fit_srtm2_voxels(frames, ref, tacs, k2prime)
    assert maps.ok.all()
    np.testing.assert_allclose(maps.r1, [r for r, _ in truth], rtol=1e-6)
    np.testing.assert_allclose(maps.bp_nd, [b for _, b in truth], rtol=1e-6)
    one = fit_srtm2(frames, ref, tacs[:, 2], k2prime)
    assert one.bp_nd == pytest.approx(3.0, rel=1e-6)
    assert one.k2_per_min == pytest.approx(1.2 * k2prime, rel=1e-6)


def test_voxel_fit_flags_tacs_it_cannot_fit() -> None:
    frames = default_protocol(small=True).frames()
    ref = 10.0 * np.exp(-0.03 * frames.mid_min) * (1.0 - np.exp(-2.0 * frames.mid_min))
    flat = np.stack([ref, -ref], axis=1)  # an implausible negative TAC cannot be fitted
    maps = fit_srtm2_voxels(frames, ref, flat, 0.3)
    assert maps.ok.tolist() == [True, False]
    assert np.isnan(maps.bp_nd[1])


@pytest.mark.parametrize(
    ("ref", "tac", "k2prime", "match"),
    [
        (np.zeros(12), np.ones(12), 0.3, "at least one positive value"),
        (np.ones(11), np.ones(12), 0.3, "11 values but there are 12 frames"),
        (np.ones(12), np.full(12, np.nan), 0.3, "NaN or Inf"),
        (np.ones(12), np.ones(12), 0.0, "positive finite rate"),
    ],
)
def test_invalid_inputs(ref: np.ndarray, tac: np.ndarray, k2prime: float, match: str) -> None:
    frames = default_protocol(small=True).frames()
    with pytest.raises(ModelError, match=match):
        fit_srtm2_voxels(frames, ref, tac, k2prime)


def test_agrees_with_kinfitr_on_simref() -> None:
    tacs = pd.read_csv(DATA / "simref_tacs_long.csv")
    tacs = tacs[tacs["frame_index"] > 0]  # drop the artificial t = 0 row
    fits = pd.read_csv(DATA / "simref_kinfitr_fits_subjects01-10.csv")
    assert len(fits) == 30
    for row in fits.itertuples():
        s = tacs[tacs["subj_index"] == row.subj_index].sort_values("frame_index")
        start = s["StartTime"].to_numpy()
        frames = FrameTiming(start, start + s["Duration"].to_numpy())
        ref, tac, w = s["Reference"], s[row.region].to_numpy(), s["Weights"].to_numpy()
        srtm = fit_srtm(frames, ref, tac, weights=w, sampling="midpoint")
        srtm2 = fit_srtm2(
            frames, ref, tac, row.srtm2_k2prime_fixed, weights=w, sampling="midpoint"
        )
        for got, want in (
            (srtm.bp_nd, row.srtm_bp),
            (srtm.r1, row.srtm_R1),
            (srtm2.bp_nd, row.srtm2_bp),
            (srtm2.r1, row.srtm2_R1),
        ):
            assert abs(got - want) <= max(0.02 * abs(want), 0.015), (row.Subjname, row.region)
