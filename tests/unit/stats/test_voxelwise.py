"""Smoothing and the voxelwise paired t-test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from bids_app.errors import StatsError
from bids_app.stats.voxelwise import implicit_mask, paired_t, smooth_volume, smooth_volumes

SHAPE = (7, 8, 9)


def _fwhm_of_profile(image: np.ndarray, axis: int) -> float:
    """FWHM (voxels) of a Gaussian-like image along one axis, from its second moment."""
    other = tuple(a for a in range(3) if a != axis)
    profile = image.sum(axis=other)
    x = np.arange(profile.size, dtype=np.float64)
    mean = np.sum(x * profile) / profile.sum()
    var = np.sum((x - mean) ** 2 * profile) / profile.sum()
    return math.sqrt(var) * 2.0 * math.sqrt(2.0 * math.log(2.0))


# ----------------------------------------------------------------------------------------------
# smooth_volume
# ----------------------------------------------------------------------------------------------
def test_smoothing_a_delta_gives_the_requested_fwhm() -> None:
    delta = np.zeros((41, 45, 39))
    delta[20, 22, 19] = 1.0
    out = smooth_volume(delta, [2.0, 2.5, 3.0], 8.0)
    np.testing.assert_allclose(out.sum(), 1.0, rtol=1e-6)
    # FWHM in voxels is fwhm_mm / voxel size along each axis
    for axis, voxel in enumerate([2.0, 2.5, 3.0]):
        np.testing.assert_allclose(_fwhm_of_profile(out, axis), 8.0 / voxel, rtol=0.01)
    assert np.unravel_index(np.argmax(out), out.shape) == (20, 22, 19)


def test_smoothing_is_normalised_around_missing_voxels(rng: np.random.Generator) -> None:
    data = np.full((12, 13, 14), 3.5)
    holes = rng.random(data.shape) < 0.2
    data[holes] = np.nan
    data[0, :, :] = np.inf  # non-finite counts as missing too
    out = smooth_volume(data, 2.0, 6.0)
    valid = np.isfinite(data)
    # a constant stays constant: missing voxels and the image edge do not pull it to zero
    np.testing.assert_allclose(out[valid], 3.5, rtol=1e-12)
    assert np.all(np.isnan(out[~valid]))


def test_smoothing_matches_weighted_average_definition(rng: np.random.Generator) -> None:
    data = rng.normal(size=(9, 10, 11))
    data[4, 5, 5] = np.nan
    out = smooth_volume(data, 1.0, 3.0)
    sigma = 3.0 / (2 * math.sqrt(2 * math.log(2)))
    # independent computation at one voxel: explicit Gaussian weights over valid neighbours
    i0, j0, k0 = 4, 4, 5
    ii, jj, kk = np.indices(data.shape)
    w = np.exp(-((ii - i0) ** 2 + (jj - j0) ** 2 + (kk - k0) ** 2) / (2 * sigma**2))
    valid = np.isfinite(data)
    expected = np.sum(w[valid] * data[valid]) / np.sum(w[valid])
    np.testing.assert_allclose(out[i0, j0, k0], expected, rtol=2e-3)


def test_smoothing_with_zero_fwhm_is_identity(rng: np.random.Generator) -> None:
    data = rng.normal(size=SHAPE)
    data[0, 0, 0] = np.nan
    out = smooth_volume(data, 2.0, 0.0)
    np.testing.assert_array_equal(out[1:], data[1:])
    assert np.isnan(out[0, 0, 0])


def test_smooth_volumes_smooths_each_volume(rng: np.random.Generator) -> None:
    data = rng.normal(size=(3, *SHAPE))
    out = smooth_volumes(data, 2.0, 5.0)
    np.testing.assert_allclose(out[1], smooth_volume(data[1], 2.0, 5.0))


def test_smoothing_rejects_bad_arguments() -> None:
    with pytest.raises(StatsError, match="3-D"):
        smooth_volume(np.zeros((4, 4)), 2.0, 6.0)
    with pytest.raises(StatsError, match="voxel_size_mm"):
        smooth_volume(np.zeros(SHAPE), [2.0, 2.0], 6.0)
    with pytest.raises(StatsError, match="positive"):
        smooth_volume(np.zeros(SHAPE), 0.0, 6.0)
    with pytest.raises(StatsError, match="fwhm_mm"):
        smooth_volume(np.zeros(SHAPE), 2.0, -1.0)
    with pytest.raises(StatsError, match=r"\(n, X, Y, Z\)"):
        smooth_volumes(np.zeros(SHAPE), 2.0, 6.0)


# ----------------------------------------------------------------------------------------------
# paired_t
# ----------------------------------------------------------------------------------------------
def _paired_data(
    rng: np.random.Generator, n: int = 6
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    base = rng.normal(2.0, 0.3, size=(n, *SHAPE))
    chal = base + rng.normal(-0.1, 0.2, size=(n, *SHAPE))
    mask = np.ones(SHAPE, dtype=bool)
    mask[0] = False
    return base, chal, mask


def test_paired_t_equals_scipy_ttest_rel_without_regularisation(rng: np.random.Generator) -> None:
    base, chal, mask = _paired_data(rng)
    res = paired_t(base, chal, mask, variance_regularisation=False)
    expected = stats.ttest_rel(chal, base, axis=0).statistic
    np.testing.assert_allclose(res.t_map[mask], expected[mask], rtol=1e-10)
    assert np.all(np.isnan(res.t_map[~mask]))
    assert res.df == 5
    assert res.n_subjects == 6
    assert res.variance_floor == 0.0
    np.testing.assert_allclose(res.mean_difference[mask], (chal - base).mean(axis=0)[mask])
    np.testing.assert_allclose(res.res_ms[mask], (chal - base).var(axis=0, ddof=1)[mask])


def test_paired_t_spm_pet_variance_regularisation(rng: np.random.Generator) -> None:
    base, chal, mask = _paired_data(rng)
    res = paired_t(base, chal, mask)
    d = (chal - base)[:, mask]
    var = d.var(axis=0, ddof=1)
    floor = 1e-3 * var.max()
    expected = d.mean(axis=0) / np.sqrt((var + floor) / d.shape[0])
    np.testing.assert_allclose(res.t_map[mask], expected, rtol=1e-12)
    np.testing.assert_allclose(res.variance_floor, floor)
    # regularisation only shrinks |t|
    plain = paired_t(base, chal, mask, variance_regularisation=False)
    assert np.all(np.abs(res.t_map[mask]) < np.abs(plain.t_map[mask]))


def test_paired_t_standardised_residuals(rng: np.random.Generator) -> None:
    base, chal, mask = _paired_data(rng, n=5)
    res = paired_t(base, chal, mask)
    r = res.standardized_residuals
    assert r.shape == (5, *SHAPE)
    np.testing.assert_allclose(r[:, mask].mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose((r[:, mask] ** 2).sum(axis=0), 4.0, rtol=1e-12)  # n - 1
    assert np.all(np.isnan(r[:, ~mask]))


def test_paired_t_drops_non_finite_voxels_from_the_mask(rng: np.random.Generator) -> None:
    base, chal, mask = _paired_data(rng)
    base[2, 3, 4, 5] = np.nan
    chal[0, 4, 4, 4] = np.inf
    res = paired_t(base, chal, mask)
    assert not res.mask[3, 4, 5]
    assert not res.mask[4, 4, 4]
    assert res.mask.sum() == mask.sum() - 2
    assert np.isnan(res.t_map[3, 4, 5])


def test_paired_t_zero_variance_voxel_is_nan_and_flagged(rng: np.random.Generator) -> None:
    base, chal, mask = _paired_data(rng)
    chal[:, 3, 3, 3] = base[:, 3, 3, 3] + 0.5  # constant difference: zero variance
    plain = paired_t(base, chal, mask, variance_regularisation=False)
    assert np.isnan(plain.t_map[3, 3, 3])
    assert plain.degenerate[3, 3, 3]
    assert plain.degenerate.sum() == 1
    # with SPM's regularisation the variance is positive: a large but finite t
    reg = paired_t(base, chal, mask)
    assert np.isfinite(reg.t_map[3, 3, 3])
    assert reg.t_map[3, 3, 3] > 10
    assert not reg.degenerate.any()


def test_paired_t_rejects_bad_input(rng: np.random.Generator) -> None:
    base, chal, mask = _paired_data(rng)
    with pytest.raises(StatsError, match=r"same|shape"):
        paired_t(base, chal[:, :-1], mask)
    with pytest.raises(StatsError, match="mask shape"):
        paired_t(base, chal, mask[:-1])
    with pytest.raises(StatsError, match="at least 2 subjects"):
        paired_t(base[:1], chal[:1], mask)
    with pytest.raises(StatsError, match="empty"):
        paired_t(base, chal, np.zeros(SHAPE, dtype=bool))


# ----------------------------------------------------------------------------------------------
# implicit_mask (SPM's search volume)
# ----------------------------------------------------------------------------------------------
def test_implicit_mask_keeps_voxels_finite_in_every_map(rng: np.random.Generator) -> None:
    base = rng.normal(2.0, 0.1, size=(4, *SHAPE))
    chal = rng.normal(2.0, 0.1, size=(4, *SHAPE))
    base[:, 0] = np.nan  # outside everyone's field of view
    base[2, 3, 4, 5] = np.nan  # one participant's baseline fit failed here
    chal[1, 5, 5, 5] = np.inf
    chal[3, 6, 7, 8] = 0.0  # zero is a value for floating-point maps (SPM: NaN is missing)
    mask = implicit_mask(base, chal)
    assert mask.dtype == np.bool_
    assert not mask[0].any()
    assert not mask[3, 4, 5]
    assert not mask[5, 5, 5]
    assert mask[6, 7, 8]
    assert mask.sum() == np.prod(SHAPE) - SHAPE[1] * SHAPE[2] - 2


def test_implicit_mask_within_an_explicit_mask(rng: np.random.Generator) -> None:
    base = rng.normal(size=(3, *SHAPE))
    chal = rng.normal(size=(3, *SHAPE))
    base[1, 2, 2, 2] = np.nan
    explicit = np.zeros(SHAPE)
    explicit[1:5, 1:6, 1:7] = 1.0
    explicit[1, 1, 1] = np.nan  # NaN and values <= 0 in a mask image are outside (SPM: > 0)
    explicit[1, 1, 2] = -1.0
    expected = explicit > 0
    expected[2, 2, 2] = False
    np.testing.assert_array_equal(implicit_mask(base, chal, explicit), expected)
    np.testing.assert_array_equal(implicit_mask(base, chal, explicit > 0), expected)
    with pytest.raises(StatsError, match="explicit mask has shape"):
        implicit_mask(base, chal, explicit[:-1])
    with pytest.raises(StatsError, match="n_subjects"):
        implicit_mask(base, chal[:2])
