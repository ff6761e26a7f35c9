"""Cluster labelling: connectivity, ordering, peaks, and the fast lattice sizer."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from bids_app.errors import StatsError
from bids_app.stats.clusters import MaskLattice, connectivity_structure, find_clusters

SHAPE = (7, 8, 9)


def _full_mask(shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    return np.ones(shape, dtype=bool)


def test_structuring_elements_have_the_right_neighbour_counts() -> None:
    assert connectivity_structure(6).sum() == 7
    assert connectivity_structure(18).sum() == 19
    assert connectivity_structure(26).sum() == 27
    with pytest.raises(StatsError, match="6, 18 or 26"):
        connectivity_structure(8)  # type: ignore[arg-type]


def test_edge_neighbours_join_in_18_but_not_6() -> None:
    stat = np.zeros(SHAPE)
    stat[2, 2, 2] = 5.0
    stat[3, 3, 2] = 4.0  # shares an edge with (2, 2, 2)
    assert find_clusters(stat, _full_mask(), 1.0, connectivity=18).sizes.tolist() == [2]
    assert find_clusters(stat, _full_mask(), 1.0, connectivity=6).sizes.tolist() == [1, 1]


def test_corner_neighbours_join_only_in_26() -> None:
    stat = np.zeros(SHAPE)
    stat[2, 2, 2] = 5.0
    stat[3, 3, 3] = 4.0  # shares only a corner
    assert find_clusters(stat, _full_mask(), 1.0).sizes.tolist() == [1, 1]  # SPM default 18
    assert find_clusters(stat, _full_mask(), 1.0, connectivity=26).sizes.tolist() == [2]


def test_clusters_sorted_by_size_with_peaks_and_labels() -> None:
    stat = np.zeros(SHAPE)
    stat[0, 0, 0:2] = [2.0, 3.0]  # size 2, peak 3 at (0, 0, 1)
    stat[4:7, 5:8, 6:9] = 1.5  # size 27
    stat[5, 6, 7] = 9.0  # its peak
    stat[0, 7, 8] = 2.5  # size 1
    found = find_clusters(stat, _full_mask(), 1.0)
    assert found.n_clusters == 3
    assert found.sizes.tolist() == [27, 2, 1]
    assert [tuple(p) for p in found.peak_indices] == [(5, 6, 7), (0, 0, 1), (0, 7, 8)]
    np.testing.assert_array_equal(found.peak_values, [9.0, 3.0, 2.5])
    assert found.labels.dtype == np.int32
    for cid, size in enumerate(found.sizes, start=1):
        assert (found.labels == cid).sum() == size
    assert found.labels[stat <= 1.0].max() == 0


def test_threshold_is_strict_and_mask_and_nan_are_respected() -> None:
    stat = np.zeros(SHAPE)
    stat[1, 1, 1] = 3.0  # exactly at threshold: not suprathreshold (SPM: Z > u)
    stat[4, 4, 4] = 3.5
    stat[4, 4, 5] = 3.6
    stat[5, 5, 5] = np.nan
    mask = _full_mask()
    mask[4, 4, 5] = False
    found = find_clusters(stat, mask, 3.0)
    assert found.sizes.tolist() == [1]
    assert tuple(found.peak_indices[0]) == (4, 4, 4)


def test_empty_result_has_consistent_shapes() -> None:
    found = find_clusters(np.zeros(SHAPE), _full_mask(), 1.0)
    assert found.n_clusters == 0
    assert found.peak_indices.shape == (0, 3)
    assert not found.labels.any()


def test_find_clusters_rejects_mismatched_shapes() -> None:
    with pytest.raises(StatsError, match="equal shapes"):
        find_clusters(np.zeros(SHAPE), np.ones((7, 8, 8), bool), 1.0)


@pytest.mark.parametrize("connectivity", [6, 18, 26])
def test_mask_lattice_sizes_equal_ndimage_label(
    rng: np.random.Generator, connectivity: int
) -> None:
    shape = (13, 11, 12)
    mask = rng.random(shape) < 0.85
    for _ in range(5):
        field = ndimage.gaussian_filter(rng.standard_normal(shape), 1.0)
        supra = (field > 0.15) & mask
        labels, n = ndimage.label(supra, structure=connectivity_structure(connectivity))  # type: ignore[arg-type]
        expected = np.sort(np.bincount(labels.ravel())[1:])
        lattice = MaskLattice.from_mask(mask, connectivity)  # type: ignore[arg-type]
        got = np.sort(lattice.cluster_sizes(supra[mask]))
        np.testing.assert_array_equal(got, expected)
        assert lattice.max_cluster_size(supra[mask]) == (expected.max() if n else 0)


def test_mask_lattice_does_not_wrap_around_edges() -> None:
    mask = np.ones((4, 4, 4), dtype=bool)
    supra = np.zeros((4, 4, 4), dtype=bool)
    supra[0, 0, 3] = True  # flat neighbours in an unpadded grid: (0, 0, 3) + 1 = (0, 1, 0)
    supra[0, 1, 0] = True
    lattice = MaskLattice.from_mask(mask)
    assert sorted(lattice.cluster_sizes(supra[mask]).tolist()) == [1, 1]
    assert lattice.max_cluster_size(np.zeros(64, dtype=bool)) == 0
    assert lattice.n_voxels == 64
