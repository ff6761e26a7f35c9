"""Individual anatomy maps (petsim.warp): size, smoothness, invertibility, scaling."""

from __future__ import annotations

import numpy as np
import pytest

from petsim import warp
from petsim.errors import ModelError
from petsim.warp import IndividualWarp, WarpSettings, control_grid, sample_warp, smooth_field

CENTRE = np.array([0.0, -21.0, 8.0])


def _brain_points(n: int, seed: int = 5) -> np.ndarray:
    lo = [b[0] for b in warp.BRAIN_BOX_MM]
    hi = [b[1] for b in warp.BRAIN_BOX_MM]
    return np.random.default_rng(seed).uniform(lo, hi, size=(n, 3))


@pytest.fixture(scope="module")
def rough() -> IndividualWarp:
    """The roughest field the default ranges allow (4 mm RMS, 10 mm smoothness)."""
    return sample_warp(np.random.default_rng(2), CENTRE, WarpSettings((4.0, 4.0), (10.0, 10.0)))


def test_displacement_has_the_requested_size(rough: IndividualWarp) -> None:
    grid = rough.grid
    centres = grid.centres_mm().reshape(*grid.shape, 3)
    in_brain = np.ones(grid.shape, dtype=bool)
    for axis, (lo, hi) in enumerate(warp.BRAIN_BOX_MM):
        in_brain &= (centres[..., axis] >= lo) & (centres[..., axis] <= hi)
    v = rough.displacement_mm[:, in_brain]  # type: ignore[index]
    np.testing.assert_allclose(v.mean(axis=1), 0.0, atol=1e-9)
    assert np.sqrt(np.mean(np.sum(v**2, axis=0))) == pytest.approx(4.0, rel=1e-9)
    # between control points the field stays that large (the spline does not shrink it)
    between = rough.displacement(_brain_points(20_000))
    assert np.sqrt(np.mean(np.sum(between**2, axis=1))) == pytest.approx(4.0, rel=0.1)


@pytest.mark.parametrize("smoothness_mm", [10.0, 20.0])
def test_field_correlation_follows_the_smoothness(smoothness_mm: float) -> None:
    # Gaussian-smoothed white noise: correlation exp(-d^2 / (4 s^2)) at distance d.
    grid = control_grid()
    field = smooth_field(np.random.default_rng(7), grid, 3.0, smoothness_mm)
    lag_vox = 3  # 12 mm
    a, b = field[:, :-lag_vox], field[:, lag_vox:]
    corr = np.mean(a * b) / np.sqrt(np.mean(a * a) * np.mean(b * b))
    expected = np.exp(-((lag_vox * grid.voxel_mm) ** 2) / (4.0 * smoothness_mm**2))
    assert corr == pytest.approx(expected, abs=0.08)


def test_maps_are_inverse_and_the_jacobian_positive(rough: IndividualWarp) -> None:
    assert warp.MIN_JACOBIAN <= rough.jacobian_range[0] < 1.0 < rough.jacobian_range[1]
    assert rough.jacobian_range[1] <= 1.0 / warp.MIN_JACOBIAN
    x = _brain_points(5_000)
    head = rough.to_head(x)
    np.testing.assert_allclose(rough.to_template(head), x, atol=warp.INVERSE_TOLERANCE_MM)
    moved = np.linalg.norm(head - x, axis=1)
    assert 1.0 < float(np.median(moved)) < 10.0
    # the numerical Jacobian of psi is positive everywhere sampled
    h = 0.5
    jac = np.stack(
        [
            (rough.to_template(x + h * e) - rough.to_template(x - h * e)) / (2 * h)
            for e in np.eye(3)
        ],
        axis=2,
    )
    assert np.linalg.det(jac).min() > 0.0


def test_scaling_about_the_head_centre() -> None:
    scaled = IndividualWarp(
        centre_mm=CENTRE,
        scale=np.array([1.05, 0.95, 1.02]),
        grid=control_grid(),
        displacement_mm=None,
        sd_mm=0.0,
        smoothness_mm=0.0,
        n_draws=0,
        jacobian_range=(1.0, 1.0),
    )
    assert not scaled.is_identity
    x = np.array([[70.0, -21.0, 8.0], [0.0, 49.0, 8.0], [0.0, -21.0, 78.0], CENTRE])
    head = scaled.to_head(x)
    np.testing.assert_allclose(head[:3] - CENTRE, np.diag([70 * 1.05, 70 * 0.95, 70 * 1.02]))
    np.testing.assert_allclose(head[3], CENTRE)
    np.testing.assert_allclose(scaled.to_template(head), x, atol=1e-12)


def test_drawn_scaling_stays_in_range_and_is_reproducible() -> None:
    settings = WarpSettings(sd_range_mm=(2.0, 2.0), smoothness_range_mm=(20.0, 20.0))
    a = sample_warp(np.random.default_rng(11), CENTRE, settings)
    b = sample_warp(np.random.default_rng(11), CENTRE, settings)
    assert np.all((a.scale >= 0.95) & (a.scale <= 1.05))
    assert (a.sd_mm, a.smoothness_mm) == (2.0, 20.0)
    np.testing.assert_array_equal(a.displacement_mm, b.displacement_mm)  # type: ignore[arg-type]
    assert IndividualWarp.identity(CENTRE).is_identity


def test_folding_fields_are_redrawn_then_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(warp, "MIN_JACOBIAN", 0.999)
    monkeypatch.setattr(warp, "MAX_DRAWS", 3)
    with pytest.raises(ModelError, match="no individual warp within the Jacobian limits in 3"):
        sample_warp(np.random.default_rng(0), CENTRE, WarpSettings())
