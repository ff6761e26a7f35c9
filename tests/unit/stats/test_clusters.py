"""Cluster labelling: connectivity, ordering, peaks, and the fast lattice sizer."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from bids_app.errors import StatsError
from bids_app.stats.clusters import (
    MaskLattice,
    cluster_local_maxima,
    cluster_means,
    connectivity_structure,
    find_clusters,
    label_fractions,
)

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


# ----------------------------------------------------------------------------------------------
# What SPM's table lists per cluster
# ----------------------------------------------------------------------------------------------
def _bumps(
    shape: tuple[int, int, int], bumps: list[tuple[tuple[int, int, int], float]]
) -> np.ndarray:
    grid = np.indices(shape, dtype=np.float64)
    image = np.zeros(shape)
    for centre, height in bumps:
        d2 = sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True))
        image = np.maximum(image, height * np.exp(-d2 / (2 * 1.5**2)))
    return image


def test_local_maxima_follow_spm_list_rules() -> None:
    # one ridge cluster with five bumps along x; voxels of 2 mm, so 8 mm = 4 voxels
    shape = (40, 12, 12)
    bumps = [((6, 6, 6), 5.0), ((9, 6, 6), 4.8), ((16, 6, 6), 4.5), ((24, 6, 6), 4.0),
             ((31, 6, 6), 4.2)]  # fmt: skip
    stat = _bumps(shape, bumps)
    # join them into one cluster with a ridge that falls away from every bump (no new maxima)
    x, y, z = np.indices(shape)
    near = np.min([np.abs(x - c[0][0]) for c in bumps], axis=0)
    ridge = 2.0 - 0.05 * near - 0.1 * (np.abs(y - 6) + np.abs(z - 6))
    box = (x >= 5) & (x <= 32) & (np.abs(y - 6) <= 1) & (np.abs(z - 6) <= 1)
    stat = np.where(box, np.maximum(stat, ridge), stat)
    found = find_clusters(stat, _full_mask(shape), 1.0)
    assert found.n_clusters == 1
    (maxima,) = cluster_local_maxima(stat, found.labels, 2.0)
    # (9, 6, 6) is only 6 mm from the peak: skipped; then 4.5, then 4.2 (4.0 is the 4th)
    assert [tuple(m) for m in maxima] == [(6, 6, 6), (16, 6, 6), (31, 6, 6)]
    assert tuple(maxima[0]) == tuple(found.peak_indices[0])
    # 1 mm voxels: 24 is exactly 8 mm from 16, and SPM keeps only maxima MORE than 8 mm apart
    (one_mm,) = cluster_local_maxima(stat, found.labels, 1.0, min_distance_mm=8.0)
    assert [tuple(m) for m in one_mm] == [(6, 6, 6), (16, 6, 6), (31, 6, 6)]
    # no distance rule: the three highest local maxima
    (close,) = cluster_local_maxima(stat, found.labels, 2.0, min_distance_mm=0.0)
    assert [tuple(m) for m in close] == [(6, 6, 6), (9, 6, 6), (16, 6, 6)]
    (five,) = cluster_local_maxima(stat, found.labels, 2.0, max_per_cluster=5)
    assert [tuple(m) for m in five] == [(6, 6, 6), (16, 6, 6), (31, 6, 6), (24, 6, 6)]
    # anisotropic voxels: distances use each axis' size
    (aniso,) = cluster_local_maxima(stat, found.labels, [3.0, 1.0, 1.0])
    assert [tuple(m) for m in aniso] == [(6, 6, 6), (9, 6, 6), (16, 6, 6)]


def test_local_maxima_per_cluster_and_plateaus() -> None:
    stat = np.zeros(SHAPE)
    stat[1:3, 1:3, 1:3] = 2.0  # a plateau: every voxel is a local maximum, one is listed first
    stat[5, 5, 5] = 3.0
    found = find_clusters(stat, _full_mask(), 1.0)
    maxima = cluster_local_maxima(stat, found.labels, 2.0)
    assert len(maxima) == 2
    assert [tuple(m) for m in maxima[0]] == [(1, 1, 1)]  # plateau (size 8) is cluster 1
    assert [tuple(m) for m in maxima[1]] == [(5, 5, 5)]
    assert cluster_local_maxima(stat, np.zeros(SHAPE, dtype=np.int32), 2.0) == ()
    with pytest.raises(StatsError, match="integer volume"):
        cluster_local_maxima(stat, found.labels.astype(float), 2.0)
    with pytest.raises(StatsError, match="voxel_size_mm"):
        cluster_local_maxima(stat, found.labels, [2.0, 0.0, 2.0])
    with pytest.raises(StatsError, match="max_per_cluster"):
        cluster_local_maxima(stat, found.labels, 2.0, max_per_cluster=0)


def test_cluster_means_average_each_image_over_each_cluster() -> None:
    labels = np.zeros(SHAPE, dtype=np.int32)
    labels[0, 0, :3] = 1
    labels[4, 4, 4] = 2
    values = np.stack([np.arange(np.prod(SHAPE), dtype=float).reshape(SHAPE)] * 2)
    values[1] *= 2.0
    values[1, 0, 0, 0] = np.nan  # a missing voxel does not count
    got = cluster_means(values, labels)
    first = values[0, 0, 0, :3].mean()
    np.testing.assert_allclose(got[0], [first, values[0, 4, 4, 4]])
    np.testing.assert_allclose(got[1], [2.0 * values[0, 0, 0, 1:3].mean(), values[1, 4, 4, 4]])
    assert cluster_means(values, np.zeros(SHAPE, dtype=np.int32)).shape == (2, 0)
    with pytest.raises(StatsError, match=r"\(n, X, Y, Z\)"):
        cluster_means(values[0], labels)


def test_label_fractions_are_shares_of_each_cluster() -> None:
    labels = np.zeros(SHAPE, dtype=np.int32)
    labels[0, 0, :4] = 1
    labels[3, 3, :2] = 2
    atlas = np.zeros(SHAPE, dtype=np.int16)
    atlas[0, 0, :3] = 77
    atlas[3, 3, :2] = 5
    atlas[0, 0, 3] = 0  # unlabelled voxel
    shares = label_fractions(labels, atlas)
    assert shares == (((77, 0.75), (0, 0.25)), ((5, 1.0),))
    assert label_fractions(np.zeros(SHAPE, dtype=np.int32), atlas) == ()
    with pytest.raises(StatsError, match="label_volume"):
        label_fractions(labels, atlas[:-1])
