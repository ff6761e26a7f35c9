"""Suprathreshold clusters, SPM style (18-connectivity by default), and what SPM lists for them.

:func:`find_clusters` labels one statistic map with :func:`scipy.ndimage.label`.
:func:`cluster_local_maxima` picks the local maxima SPM's results table lists per cluster (the
peak and up to two more, more than 8 mm apart); :func:`cluster_means` averages images over each
cluster and :func:`label_fractions` gives the share of each atlas label in each cluster.
:class:`MaskLattice` sizes clusters of many maps over the same mask quickly (used by the
permutation test): it works on the suprathreshold voxels only, as a sparse neighbour graph.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from bids_app.errors import StatsError

logger = logging.getLogger(__name__)

Connectivity = Literal[6, 18, 26]

__all__ = [
    "SPM_MAXIMA_PER_CLUSTER",
    "SPM_MIN_MAXIMA_DISTANCE_MM",
    "ClusterSet",
    "MaskLattice",
    "cluster_local_maxima",
    "cluster_means",
    "connectivity_structure",
    "find_clusters",
    "label_fractions",
]

#: Local maxima SPM's results table lists per cluster (``spm_list``: "Num").
SPM_MAXIMA_PER_CLUSTER = 3
#: Minimum distance between listed maxima of a cluster, mm (``spm_list``: "Dis").
SPM_MIN_MAXIMA_DISTANCE_MM = 8.0

_RANK = {6: 1, 18: 2, 26: 3}


def _check_connectivity(connectivity: int) -> int:
    if connectivity not in _RANK:
        msg = f"connectivity must be one of 6, 18 or 26; got {connectivity!r}."
        raise StatsError(msg)
    return _RANK[connectivity]


def connectivity_structure(connectivity: Connectivity = 18) -> NDArray[np.bool_]:
    """3x3x3 structuring element: 6 (faces), 18 (faces + edges, SPM) or 26 (+ corners).

    Returns
    -------
    (3, 3, 3) ndarray of bool
        Neighbourhood for :func:`scipy.ndimage.label`.
    """
    return ndimage.generate_binary_structure(3, _check_connectivity(connectivity))


@dataclass(frozen=True)
class ClusterSet:
    """Clusters of a thresholded statistic map, largest first.

    Attributes
    ----------
    labels : (X, Y, Z) ndarray of int32
        0 outside clusters; cluster ``i`` (1-based) is the i-th largest.
    sizes : (n_clusters,) ndarray of int64
        Cluster sizes, voxels (descending).
    peak_indices : (n_clusters, 3) ndarray of int64
        Voxel index (i, j, k) of each cluster's maximum.
    peak_values : (n_clusters,) ndarray
        Statistic value at each peak.
    threshold : float
        Cluster-forming threshold (voxels with ``stat > threshold``).
    connectivity : int
        6, 18 or 26.
    """

    labels: NDArray[np.int32]
    sizes: NDArray[np.int64]
    peak_indices: NDArray[np.int64]
    peak_values: NDArray[np.float64]
    threshold: float
    connectivity: int

    @property
    def n_clusters(self) -> int:
        """Number of clusters."""
        return int(self.sizes.size)


def find_clusters(
    stat_map: ArrayLike,
    mask: ArrayLike,
    threshold: float,
    connectivity: Connectivity = 18,
) -> ClusterSet:
    """Label the connected clusters of ``stat_map > threshold`` inside ``mask``.

    Parameters
    ----------
    stat_map : (X, Y, Z) array_like
        Statistic image (NaN never exceeds the threshold). For negative effects pass ``-t``.
    mask : (X, Y, Z) array_like of bool
        Search volume.
    threshold : float
        Cluster-forming threshold; voxels strictly above it are suprathreshold (as in SPM).
    connectivity : {6, 18, 26}
        Neighbourhood; SPM uses 18.

    Returns
    -------
    ClusterSet
        Labels renumbered by decreasing size (ties: higher peak first), sizes and peaks.
    """
    stat = np.asarray(stat_map, dtype=np.float64)
    inside = np.asarray(mask).astype(bool)
    if stat.ndim != 3 or stat.shape != inside.shape:
        msg = (
            "stat_map and mask must be 3-D with equal shapes; "
            f"got {stat.shape} and {inside.shape}."
        )
        raise StatsError(msg)
    with np.errstate(invalid="ignore"):
        supra = inside & (stat > threshold)
    # without an output array, label returns (label image, count)
    raw, n_found = cast(
        "tuple[NDArray[np.int32], int]",
        ndimage.label(supra, structure=connectivity_structure(connectivity)),
    )
    empty = ClusterSet(
        labels=np.zeros(stat.shape, dtype=np.int32),
        sizes=np.zeros(0, dtype=np.int64),
        peak_indices=np.zeros((0, 3), dtype=np.int64),
        peak_values=np.zeros(0, dtype=np.float64),
        threshold=float(threshold),
        connectivity=int(connectivity),
    )
    if n_found == 0:
        return empty

    flat_idx = np.flatnonzero(raw)
    lab = raw.ravel()[flat_idx]
    val = stat.ravel()[flat_idx]
    sizes = np.bincount(lab, minlength=n_found + 1)[1:]
    order_in = np.lexsort((-val, lab))  # by label, highest value first
    first = np.searchsorted(lab[order_in], np.arange(1, n_found + 1))
    peak_flat = flat_idx[order_in[first]]
    peak_val = val[order_in[first]]

    order = np.lexsort((-peak_val, -sizes))  # largest first, then highest peak
    relabel = np.zeros(n_found + 1, dtype=np.int32)
    relabel[order + 1] = np.arange(1, n_found + 1, dtype=np.int32)
    labels = relabel[raw]
    peaks = np.stack(np.unravel_index(peak_flat[order], stat.shape), axis=1).astype(np.int64)
    return ClusterSet(
        labels=labels,
        sizes=sizes[order].astype(np.int64),
        peak_indices=peaks,
        peak_values=peak_val[order],
        threshold=float(threshold),
        connectivity=int(connectivity),
    )


def _check_labels(labels: ArrayLike, shape: tuple[int, ...], name: str) -> NDArray[np.int64]:
    lab = np.asarray(labels)
    if lab.shape != shape or not np.issubdtype(lab.dtype, np.integer):
        msg = (
            f"{name} must be an integer volume of shape {shape}; "
            f"got dtype {lab.dtype} and shape {lab.shape}."
        )
        raise StatsError(msg)
    return lab.astype(np.int64, copy=False)


def cluster_local_maxima(
    stat_map: ArrayLike,
    labels: ArrayLike,
    voxel_size_mm: ArrayLike,
    *,
    max_per_cluster: int = SPM_MAXIMA_PER_CLUSTER,
    min_distance_mm: float = SPM_MIN_MAXIMA_DISTANCE_MM,
    connectivity: Connectivity = 18,
) -> tuple[NDArray[np.int64], ...]:
    """Local maxima listed per cluster, as in SPM's results table.

    A cluster voxel is a local maximum when no neighbour (``connectivity``) in the same
    cluster has a larger value (SPM's ``spm_max``/``spm_get_lm``). Per cluster the maxima are
    taken in decreasing order of value: the first is the cluster's peak, and each further one
    is kept when it is more than ``min_distance_mm`` from every maximum already kept, until
    ``max_per_cluster`` are kept (SPM's ``spm_list``: 3 maxima more than 8 mm apart). Ties are
    broken by the C-order voxel index, as in :func:`find_clusters`.

    Parameters
    ----------
    stat_map : (X, Y, Z) array_like
        Statistic image oriented so that the cluster is high (pass ``-t`` for decreases).
    labels : (X, Y, Z) array_like of int
        Cluster labels (0 = none, ``1..n_clusters``), e.g. :attr:`ClusterSet.labels`.
    voxel_size_mm : float or (3,) array_like
        Voxel size, mm (distances are ``|Δ index| * voxel_size``).
    max_per_cluster : int
        Largest number of maxima per cluster (>= 1).
    min_distance_mm : float
        Maxima of one cluster must be more than this far apart, mm.
    connectivity : {6, 18, 26}
        Neighbourhood of the local-maximum test (SPM: 18).

    Returns
    -------
    tuple of (n_k, 3) ndarray of int64
        Item ``i`` holds the voxel indices of cluster ``i + 1``'s maxima, highest first.
    """
    stat = np.asarray(stat_map, dtype=np.float64)
    if stat.ndim != 3:
        msg = f"stat_map must be a 3-D array; got shape {stat.shape}."
        raise StatsError(msg)
    lab = _check_labels(labels, stat.shape, "labels")
    voxel = np.asarray(voxel_size_mm, dtype=np.float64).ravel()
    voxel = np.repeat(voxel, 3) if voxel.size == 1 else voxel
    if voxel.size != 3 or not np.all(np.isfinite(voxel)) or np.any(voxel <= 0):
        msg = f"voxel_size_mm must be one or three positive numbers; got {voxel.tolist()}."
        raise StatsError(msg)
    if max_per_cluster < 1 or not min_distance_mm >= 0:
        msg = (
            "max_per_cluster must be >= 1 and min_distance_mm >= 0; "
            f"got {max_per_cluster} and {min_distance_mm}."
        )
        raise StatsError(msg)
    n_clusters = int(lab.max(initial=0))
    if n_clusters == 0:
        return ()
    in_cluster = lab > 0
    values = np.where(in_cluster & np.isfinite(stat), stat, -np.inf)
    # a neighbour in another cluster cannot touch this one (it would be the same cluster)
    neighbourhood_max = ndimage.maximum_filter(
        values, footprint=connectivity_structure(connectivity), mode="constant", cval=-np.inf
    )
    flat = np.flatnonzero(in_cluster & (values >= neighbourhood_max) & np.isfinite(values))
    cluster_of = lab.ravel()[flat]
    height = values.ravel()[flat]
    order = np.lexsort((flat, -height, cluster_of))  # by cluster, highest first, then index
    flat, cluster_of = flat[order], cluster_of[order]
    starts = np.searchsorted(cluster_of, np.arange(1, n_clusters + 2))
    result: list[NDArray[np.int64]] = []
    for c in range(n_clusters):
        candidates = np.stack(np.unravel_index(flat[starts[c] : starts[c + 1]], stat.shape), 1)
        kept: list[NDArray[np.int64]] = []
        for ijk in candidates:
            far = all(
                float(np.linalg.norm((ijk - other) * voxel)) > min_distance_mm for other in kept
            )
            if far:
                kept.append(ijk.astype(np.int64))
                if len(kept) == max_per_cluster:
                    break
        result.append(np.array(kept, dtype=np.int64).reshape(-1, 3))
    return tuple(result)


def cluster_means(values: ArrayLike, labels: ArrayLike) -> NDArray[np.float64]:
    """Average of each image over each cluster's voxels.

    Parameters
    ----------
    values : (n, X, Y, Z) array_like
        Images (e.g. each participant's smoothed BPND map), any units.
    labels : (X, Y, Z) array_like of int
        Cluster labels (0 = none, ``1..n_clusters``).

    Returns
    -------
    (n, n_clusters) ndarray
        Mean over the finite voxels of each cluster, in the images' units (NaN when a cluster
        has no finite voxel in an image).
    """
    data = np.asarray(values, dtype=np.float64)
    if data.ndim != 4:
        msg = f"values must have shape (n, X, Y, Z); got {data.shape}."
        raise StatsError(msg)
    lab = _check_labels(labels, data.shape[1:], "labels")
    n_clusters = int(lab.max(initial=0))
    inside = lab > 0
    idx = lab[inside]
    out = np.full((data.shape[0], n_clusters), np.nan)
    for i, image in enumerate(data):
        vals = image[inside]
        ok = np.isfinite(vals)
        total = np.bincount(idx[ok], weights=vals[ok], minlength=n_clusters + 1)[1:]
        count = np.bincount(idx[ok], minlength=n_clusters + 1)[1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[i] = np.where(count > 0, total / count, np.nan)
    return out


def label_fractions(
    labels: ArrayLike, label_volume: ArrayLike
) -> tuple[tuple[tuple[int, float], ...], ...]:
    """Share of each atlas label in each cluster.

    Parameters
    ----------
    labels : (X, Y, Z) array_like of int
        Cluster labels (0 = none, ``1..n_clusters``).
    label_volume : (X, Y, Z) array_like of int
        Atlas label image on the same grid (0 = unlabelled).

    Returns
    -------
    tuple of tuple of (int, float)
        Item ``i`` lists ``(label value, fraction of cluster i + 1's voxels)`` pairs, largest
        share first (ties: lower label value first); the fractions of a cluster sum to 1.
    """
    lab = _check_labels(labels, np.shape(labels), "labels")
    atlas = _check_labels(label_volume, lab.shape, "label_volume")
    n_clusters = int(lab.max(initial=0))
    inside = lab > 0
    pairs, counts = np.unique(np.stack([lab[inside], atlas[inside]]), axis=1, return_counts=True)
    sizes = np.bincount(lab[inside], minlength=n_clusters + 1)
    result: list[tuple[tuple[int, float], ...]] = []
    for c in range(1, n_clusters + 1):
        sel = pairs[0] == c
        values, n = pairs[1, sel], counts[sel]
        order = np.lexsort((values, -n))
        result.append(tuple((int(values[k]), float(n[k] / sizes[c])) for k in order))
    return tuple(result)


@dataclass(frozen=True)
class MaskLattice:
    """Neighbour structure of the voxels of a fixed mask, for fast repeated cluster sizing.

    Voxels are numbered in C order of the mask (``data[mask]`` order). Their flat indices in a
    grid padded by one voxel on every side make neighbour offsets constant and wrap-free.

    Attributes
    ----------
    padded_index : (n_voxels,) ndarray of int64
        Increasing flat index of each mask voxel in the padded grid.
    offsets : (n_offsets,) ndarray of int64
        Positive flat offsets of half of the neighbourhood (the other half is their negative).
    connectivity : int
        6, 18 or 26.
    """

    padded_index: NDArray[np.int64]
    offsets: NDArray[np.int64]
    connectivity: int

    @classmethod
    def from_mask(cls, mask: ArrayLike, connectivity: Connectivity = 18) -> MaskLattice:
        """Build the lattice of a 3-D boolean mask.

        Returns
        -------
        MaskLattice
        """
        inside = np.asarray(mask).astype(bool)
        if inside.ndim != 3:
            msg = f"mask must be a 3-D array; got shape {inside.shape}."
            raise StatsError(msg)
        rank = _check_connectivity(connectivity)
        padded_shape = tuple(s + 2 for s in inside.shape)
        coords = np.nonzero(inside)
        padded_index = np.ravel_multi_index(tuple(c + 1 for c in coords), padded_shape)
        strides = np.array([padded_shape[1] * padded_shape[2], padded_shape[2], 1])
        offsets = sorted(
            {
                int(np.dot(step, strides))
                for step in itertools.product((-1, 0, 1), repeat=3)
                if 0 < sum(abs(s) for s in step) <= rank
            }
        )
        positive = np.array([o for o in offsets if o > 0], dtype=np.int64)
        return cls(
            padded_index=padded_index.astype(np.int64), offsets=positive, connectivity=connectivity
        )

    @property
    def n_voxels(self) -> int:
        """Number of mask voxels."""
        return int(self.padded_index.size)

    def cluster_sizes(self, supra: NDArray[np.bool_]) -> NDArray[np.int64]:
        """Sizes of the connected clusters of suprathreshold mask voxels.

        Parameters
        ----------
        supra : (n_voxels,) ndarray of bool
            Suprathreshold flag of each mask voxel (``data[mask] > u``).

        Returns
        -------
        (n_clusters,) ndarray of int64
            Cluster sizes, voxels, in no particular order.
        """
        idx = np.flatnonzero(supra)
        m = idx.size
        if m <= 1:
            return np.ones(m, dtype=np.int64)
        pos = self.padded_index[idx]
        rows: list[NDArray[np.intp]] = []
        cols: list[NDArray[np.intp]] = []
        for offset in self.offsets:
            target = pos + offset
            j = np.searchsorted(pos, target)
            j_clip = np.minimum(j, m - 1)
            hit = pos[j_clip] == target
            rows.append(np.flatnonzero(hit))
            cols.append(j_clip[hit])
        r = np.concatenate(rows)
        c = np.concatenate(cols)
        graph = coo_matrix((np.ones(r.size, dtype=np.int8), (r, c)), shape=(m, m)).tocsr()
        _, comp = connected_components(graph, directed=False)
        return np.bincount(comp).astype(np.int64)

    def max_cluster_size(self, supra: NDArray[np.bool_]) -> int:
        """Size of the largest cluster of suprathreshold voxels (0 when there is none).

        Returns
        -------
        int
        """
        sizes = self.cluster_sizes(supra)
        return int(sizes.max()) if sizes.size else 0
