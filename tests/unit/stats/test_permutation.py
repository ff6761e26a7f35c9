"""Sign-flip permutation: enumeration, hand-counted tiny cases, brute-force agreement."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import ndimage

from bids_app.errors import StatsError
from bids_app.stats.clusters import connectivity_structure
from bids_app.stats.permutation import (
    cluster_fwe_p,
    sign_flip_null,
    sign_flips,
    voxel_fwe_p,
)
from bids_app.stats.voxelwise import paired_t


def test_exact_enumeration_has_all_flips_identity_first_and_mirrored_halves() -> None:
    flips, exact = sign_flips(4)
    assert exact
    assert flips.shape == (16, 4)
    assert {tuple(r) for r in flips} == set(itertools.product((-1.0, 1.0), repeat=4))
    np.testing.assert_array_equal(flips[0], np.ones(4))
    np.testing.assert_array_equal(flips[8:], -flips[:8])


def test_exact_enumeration_ignores_n_permutations_up_to_12_subjects() -> None:
    flips, exact = sign_flips(12, n_permutations=100)
    assert exact
    assert flips.shape == (4096, 12)


def test_random_flips_are_seeded_and_include_the_identity() -> None:
    flips, exact = sign_flips(13, n_permutations=50, seed=3)
    assert not exact
    assert flips.shape == (50, 13)
    np.testing.assert_array_equal(flips[0], np.ones(13))
    assert set(np.unique(flips)) == {-1.0, 1.0}
    np.testing.assert_array_equal(flips, sign_flips(13, 50, seed=3)[0])
    assert not np.array_equal(flips, sign_flips(13, 50, seed=4)[0])
    assert sign_flips(13, "exact")[0].shape == (10_000, 13)


def test_sign_flips_rejects_bad_arguments() -> None:
    with pytest.raises(StatsError, match="n_subjects"):
        sign_flips(0)
    with pytest.raises(StatsError, match="n_permutations"):
        sign_flips(13, n_permutations=1)


def _row_case() -> tuple[np.ndarray, np.ndarray]:
    """3 subjects, 5 voxels in a row; the middle voxel has the third subject's sign reversed.

    Per-voxel differences are (1, 2, 3) at the outer voxels and (1, 2, -3) at the middle one.
    """
    d = np.empty((3, 5, 1, 1))
    d[:, :, 0, 0] = np.array([1.0, 2.0, 3.0])[:, None]
    d[2, 2, 0, 0] = -3.0
    return d, np.ones((5, 1, 1), dtype=bool)


@pytest.mark.parametrize("regularise", [False, True])
def test_three_subjects_in_a_row_counted_by_hand(regularise: bool) -> None:
    # Hand calculation (no regularisation), t = mean / (sd / sqrt(3)):
    #   values (1, 2, 3): flips +++ → 2√3 = 3.464, -++ → 1.109, +-+ → 0.459, ++- → 0
    #   and the negated flips give the negated t. The middle voxel (1, 2, -3) under flip s has
    #   the t of (1, 2, 3) under s with the third sign reversed.
    # With u = 1: largest cluster of t > u per flip (outer pairs {0,1}, {3,4}; middle alone):
    #   +++: 2  -++: 2  +-+: 0  ++-: 1  ---: 0  +--: 0  -+-: 1  --+: 0
    # and of t < -u: the same multiset (symmetry). The observed clusters have size 2.
    d, mask = _row_case()
    null = sign_flip_null(d, mask, 1.0, variance_regularisation=regularise)
    assert null.exact
    assert null.n_flips == 8
    assert sorted(null.max_cluster_size_increase.tolist()) == [0, 0, 0, 0, 1, 1, 2, 2]
    assert sorted(null.max_cluster_size_decrease.tolist()) == [0, 0, 0, 0, 1, 1, 2, 2]
    assert null.max_cluster_size_increase[0] == 2  # the identity comes first
    assert null.max_cluster_size_decrease[0] == 0
    np.testing.assert_allclose(cluster_fwe_p(null.max_cluster_size_increase, [2, 1]), [0.25, 0.5])
    if not regularise:
        t_hand = sorted([2 * math.sqrt(3), 2 * math.sqrt(3), 1.1094, 1.1094, 0.4588, 0.4588, 0, 0])
        np.testing.assert_allclose(sorted(null.max_t), t_hand, atol=1e-4)
        np.testing.assert_allclose(voxel_fwe_p(null.max_t, 2 * math.sqrt(3)), 0.25)


def _brute_force(
    d: np.ndarray, mask: np.ndarray, u: float, regularise: bool
) -> tuple[list[int], list[int], list[float]]:
    """Loop over all flips with paired_t + ndimage.label: an independent implementation."""
    n = d.shape[0]
    inc, dec, tmax = [], [], []
    structure = connectivity_structure(18)
    for signs in itertools.product((1.0, -1.0), repeat=n):
        flipped = d * np.asarray(signs)[:, None, None, None]
        t = paired_t(np.zeros_like(flipped), flipped, mask, regularise).t_map
        for sizes, supra in ((inc, t > u), (dec, t < -u)):
            labels, k = ndimage.label(np.nan_to_num(supra) & mask, structure=structure)
            sizes.append(int(np.bincount(labels.ravel())[1:].max()) if k else 0)
        tmax.append(float(np.nanmax(t)))
    return inc, dec, tmax


@pytest.mark.parametrize("regularise", [True, False])
def test_null_agrees_with_brute_force_enumeration(
    rng: np.random.Generator, regularise: bool
) -> None:
    shape = (9, 8, 7)
    d = ndimage.gaussian_filter(rng.standard_normal((5, *shape)), (0, 1.0, 1.0, 1.0)) + 0.05
    mask = rng.random(shape) < 0.9
    u = 2.0
    null = sign_flip_null(d, mask, u, variance_regularisation=regularise, chunk_size=5)
    inc, dec, tmax = _brute_force(d, mask, u, regularise)
    assert sorted(null.max_cluster_size_increase.tolist()) == sorted(inc)
    assert sorted(null.max_cluster_size_decrease.tolist()) == sorted(dec)
    np.testing.assert_allclose(np.sort(null.max_t), np.sort(tmax), rtol=1e-9)
    # the identity flip reproduces the observed t map
    observed = paired_t(np.zeros_like(d), d, mask, regularise).t_map
    np.testing.assert_allclose(null.max_t[0], np.nanmax(observed), rtol=1e-12)
    np.testing.assert_allclose(null.min_t[0], np.nanmin(observed), rtol=1e-12)


def test_random_flips_for_more_than_12_subjects(rng: np.random.Generator) -> None:
    d = rng.standard_normal((13, 6, 5, 4))
    mask = np.ones((6, 5, 4), dtype=bool)
    null = sign_flip_null(d, mask, 2.5, n_permutations=40, seed=1)
    assert not null.exact
    assert null.n_flips == 40
    assert null.seed == 1
    again = sign_flip_null(d, mask, 2.5, n_permutations=40, seed=1)
    np.testing.assert_array_equal(null.max_cluster_size_increase, again.max_cluster_size_increase)


def test_fwe_p_values_from_a_null() -> None:
    null = [0, 3, 5, 5, 10]
    np.testing.assert_allclose(cluster_fwe_p(null, [5, 11, 0, 4]), [0.6, 0.0, 1.0, 0.6])
    np.testing.assert_allclose(voxel_fwe_p([1.0, 2.0, 3.0, 4.0], [2.0, 4.5]), [0.75, 0.0])
    assert np.isnan(voxel_fwe_p([1.0, 2.0], [np.nan])[0])


def test_sign_flip_null_rejects_bad_input(rng: np.random.Generator) -> None:
    d = rng.standard_normal((4, 3, 3, 3))
    mask = np.ones((3, 3, 3), dtype=bool)
    with pytest.raises(StatsError, match="shape"):
        sign_flip_null(d, mask[:2], 2.0)
    with pytest.raises(StatsError, match="at least 2"):
        sign_flip_null(d[:1], mask, 2.0)
    with pytest.raises(StatsError, match="positive"):
        sign_flip_null(d, mask, 0.0)
    d[0, 1, 1, 1] = np.nan
    with pytest.raises(StatsError, match="finite"):
        sign_flip_null(d, mask, 2.0)
