"""Suprathreshold cluster labelling, SPM style (18-connectivity by default).

:func:`find_clusters` labels one statistic map with :func:`scipy.ndimage.label`.
:class:`MaskLattice` sizes clusters of many maps over the same mask quickly (used by the
permutation test): it works on the suprathreshold voxels only, as a sparse neighbour graph.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from bids_app.errors import StatsError

logger = logging.getLogger(__name__)

Connectivity = Literal[6, 18, 26]

__all__ = ["ClusterSet", "MaskLattice", "connectivity_structure", "find_clusters"]

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
    raw, n_found = ndimage.label(supra, structure=connectivity_structure(connectivity))
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
