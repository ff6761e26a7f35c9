"""Sign-flip permutation inference for paired designs (cluster-size and max-|t| FWE).

Under the null hypothesis of no challenge effect, each subject's difference map
``challenge - baseline`` is symmetric about zero, so flipping its sign gives an equally likely
data set. For every flip the t map is recomputed (with the same variance regularisation as the
observed map) and the largest cluster above the cluster-forming threshold is recorded; the
cluster-level FWE p of an observed cluster is the fraction of flips whose largest cluster is at
least as large (Nichols & Holmes 2002, Hum Brain Mapp 15:1-25).

With n ≤ 12 subjects all 2^n flips are enumerated (the identity included). Because the flip
``-s`` gives ``-t``, only half of them are computed; the other half is read off by swapping the
increase and decrease directions. For larger n a seeded random set is used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bids_app.errors import StatsError
from bids_app.stats.clusters import Connectivity, MaskLattice
from bids_app.stats.voxelwise import ROUNDING_ULPS, SPM_PET_VARIANCE_FRACTION

logger = logging.getLogger(__name__)

#: Largest number of subjects for which all 2^n sign flips are enumerated.
MAX_EXACT_SUBJECTS = 12
#: Number of random flips used when n > 12 and the caller asked for "exact".
DEFAULT_RANDOM_FLIPS = 10_000

__all__ = [
    "DEFAULT_RANDOM_FLIPS",
    "MAX_EXACT_SUBJECTS",
    "SignFlipNull",
    "cluster_fwe_p",
    "sign_flip_null",
    "sign_flips",
    "voxel_fwe_p",
]


def sign_flips(
    n_subjects: int,
    n_permutations: int | Literal["exact"] = "exact",
    seed: int = 0,
) -> tuple[NDArray[np.float64], bool]:
    """Sign-flip matrix: all 2^n flips for n ≤ 12, else the identity plus random flips.

    Parameters
    ----------
    n_subjects : int
        Number of paired subjects, n ≥ 1.
    n_permutations : int or "exact"
        Ignored when n ≤ 12 (enumeration is exact and cheap). For n > 12: the number of flips
        (identity included); "exact" then means ``DEFAULT_RANDOM_FLIPS``.
    seed : int
        Seed of the random flips (``numpy.random.default_rng``).

    Returns
    -------
    flips : (n_flips, n_subjects) ndarray
        Rows of ±1; row 0 is the identity (all +1). For exact enumeration the second half is
        the negation of the first half, row for row.
    exact : bool
        True when all 2^n flips are enumerated.
    """
    if n_subjects < 1:
        msg = f"n_subjects must be >= 1; got {n_subjects}."
        raise StatsError(msg)
    if n_subjects <= MAX_EXACT_SUBJECTS:
        half = _half_enumeration(n_subjects)
        return np.vstack([half, -half]), True
    if n_permutations == "exact":
        n_flips = DEFAULT_RANDOM_FLIPS
        logger.info(
            "n=%d > %d: using %d random sign flips", n_subjects, MAX_EXACT_SUBJECTS, n_flips
        )
    else:
        n_flips = int(n_permutations)
    if n_flips < 2:
        msg = f"n_permutations must be >= 2 (or 'exact'); got {n_permutations!r}."
        raise StatsError(msg)
    rng = np.random.default_rng(seed)
    random = rng.choice(np.array([-1.0, 1.0]), size=(n_flips - 1, n_subjects))
    return np.vstack([np.ones((1, n_subjects)), random]), False


def _half_enumeration(n_subjects: int) -> NDArray[np.float64]:
    """Enumerate the 2^(n-1) flips whose last subject keeps its sign; row 0 is the identity."""
    codes = np.arange(2 ** (n_subjects - 1), dtype=np.int64)
    bits = (codes[:, None] >> np.arange(n_subjects, dtype=np.int64)[None, :]) & 1
    return 1.0 - 2.0 * bits.astype(np.float64)


@dataclass(frozen=True)
class SignFlipNull:
    """Permutation distributions of the maximum statistics (index 0 = the unflipped data).

    Attributes
    ----------
    max_cluster_size_increase : (n_flips,) ndarray of int64
        Largest cluster of ``t > u`` per flip, voxels (0 when none).
    max_cluster_size_decrease : (n_flips,) ndarray of int64
        Largest cluster of ``t < -u`` per flip, voxels.
    max_t : (n_flips,) ndarray
        Largest t in the mask per flip.
    min_t : (n_flips,) ndarray
        Smallest t in the mask per flip.
    cluster_forming_t : float
        Threshold ``u``.
    exact : bool
        True when all 2^n flips were enumerated.
    seed : int
        Seed of the random flips (unused when exact).
    """

    max_cluster_size_increase: NDArray[np.int64]
    max_cluster_size_decrease: NDArray[np.int64]
    max_t: NDArray[np.float64]
    min_t: NDArray[np.float64]
    cluster_forming_t: float
    exact: bool
    seed: int

    @property
    def n_flips(self) -> int:
        """Number of flips (identity included)."""
        return int(self.max_t.size)


@dataclass(frozen=True)
class _FlipMaxima:
    size_increase: NDArray[np.int64]
    size_decrease: NDArray[np.int64]
    max_t: NDArray[np.float64]
    min_t: NDArray[np.float64]


def _flip_maxima(
    d: NDArray[np.float64],
    flips: NDArray[np.float64],
    lattice: MaskLattice,
    u: float,
    variance_regularisation: bool,
    chunk_size: int,
) -> _FlipMaxima:
    """Max cluster sizes and t extremes for each flip of masked differences ``d`` (n, V)."""
    n = d.shape[0]
    sum_sq = np.einsum("ij,ij->j", d, d)
    zero_var = ROUNDING_ULPS * np.finfo(np.float64).eps * sum_sq / (n - 1)
    n_flips = flips.shape[0]
    size_inc = np.zeros(n_flips, dtype=np.int64)
    size_dec = np.zeros(n_flips, dtype=np.int64)
    max_t = np.full(n_flips, np.nan)
    min_t = np.full(n_flips, np.nan)
    for start in range(0, n_flips, chunk_size):
        stop = min(start + chunk_size, n_flips)
        mean = flips[start:stop] @ d
        mean /= n
        var = sum_sq - n * mean**2
        var /= n - 1
        var[var <= zero_var] = 0.0  # cancellation noise of ΣD² - n mean²: a zero variance
        if variance_regularisation:
            var += SPM_PET_VARIANCE_FRACTION * var.max(axis=1, keepdims=True)
        var /= n
        with np.errstate(divide="ignore", invalid="ignore"):
            t = mean / np.sqrt(var, out=var)
        t[~np.isfinite(t)] = np.nan
        max_t[start:stop] = np.nanmax(t, axis=1, initial=-np.inf)
        min_t[start:stop] = np.nanmin(t, axis=1, initial=np.inf)
        for row in range(stop - start):
            trow = t[row]
            if max_t[start + row] > u:
                size_inc[start + row] = lattice.max_cluster_size(trow > u)
            if min_t[start + row] < -u:
                size_dec[start + row] = lattice.max_cluster_size(trow < -u)
    return _FlipMaxima(size_inc, size_dec, max_t, min_t)


def sign_flip_null(
    differences: ArrayLike,
    mask: ArrayLike,
    cluster_forming_t: float,
    *,
    variance_regularisation: bool = True,
    n_permutations: int | Literal["exact"] = "exact",
    seed: int = 0,
    connectivity: Connectivity = 18,
    chunk_size: int = 16,
) -> SignFlipNull:
    """Sign-flip null distributions of the largest cluster and of the t extremes.

    For a flip ``s`` (±1 per subject) ``mean = (s · D) / n`` and, since ``ΣD²`` does not change
    with the signs, ``ResMS = (ΣD² - n mean²) / (n - 1)``; all flips' means are one matrix
    product, evaluated in chunks of ``chunk_size`` flips. Clusters are sized on the sparse graph
    of suprathreshold voxels; flips with no suprathreshold voxel are skipped.

    Parameters
    ----------
    differences : (n, X, Y, Z) array_like
        ``challenge - baseline`` per subject.
    mask : (X, Y, Z) array_like of bool
        Analysis mask; differences must be finite inside it.
    cluster_forming_t : float
        Cluster-forming threshold ``u`` (> 0); increases use ``t > u``, decreases ``t < -u``.
    variance_regularisation : bool
        SPM's PET variance regularisation, applied per flip as for the observed map.
    n_permutations : int or "exact"
        See :func:`sign_flips`.
    seed : int
        Seed of the random flips when n > 12.
    connectivity : {6, 18, 26}
        Cluster neighbourhood (SPM: 18).
    chunk_size : int
        Flips per matrix product (memory ~ 5 · chunk_size · n_voxels · 8 bytes).

    Returns
    -------
    SignFlipNull
        Per-flip maxima; index 0 is the unflipped data.
    """
    diff = np.asarray(differences, dtype=np.float64)
    inside = np.asarray(mask).astype(bool)
    if diff.ndim != 4 or diff.shape[1:] != inside.shape:
        msg = (
            f"differences must have shape (n, X, Y, Z) matching the mask {inside.shape}; "
            f"got {diff.shape}."
        )
        raise StatsError(msg)
    n = diff.shape[0]
    if n < 2:
        msg = f"sign-flip inference needs at least 2 subjects; got {n}."
        raise StatsError(msg)
    if not cluster_forming_t > 0:
        msg = f"cluster_forming_t must be positive; got {cluster_forming_t}."
        raise StatsError(msg)
    d = diff[:, inside]
    if d.size == 0 or not np.all(np.isfinite(d)):
        msg = "differences must be finite at every mask voxel (and the mask not empty)."
        raise StatsError(msg)
    flips, exact = sign_flips(n, n_permutations, seed)
    lattice = MaskLattice.from_mask(inside, connectivity)
    u = float(cluster_forming_t)
    if exact:
        half = flips[: flips.shape[0] // 2]
        m = _flip_maxima(d, half, lattice, u, variance_regularisation, chunk_size)
        # flip -s gives -t: its increase is s's decrease and vice versa
        size_inc = np.concatenate([m.size_increase, m.size_decrease])
        size_dec = np.concatenate([m.size_decrease, m.size_increase])
        max_t = np.concatenate([m.max_t, -m.min_t])
        min_t = np.concatenate([m.min_t, -m.max_t])
    else:
        m = _flip_maxima(d, flips, lattice, u, variance_regularisation, chunk_size)
        size_inc, size_dec, max_t, min_t = m.size_increase, m.size_decrease, m.max_t, m.min_t
    logger.debug("sign-flip null: %d flips (exact=%s), u=%.4f", flips.shape[0], exact, u)
    return SignFlipNull(
        max_cluster_size_increase=size_inc,
        max_cluster_size_decrease=size_dec,
        max_t=max_t,
        min_t=min_t,
        cluster_forming_t=u,
        exact=exact,
        seed=int(seed),
    )


def cluster_fwe_p(null_max_sizes: ArrayLike, size_voxels: ArrayLike) -> NDArray[np.float64]:
    """Cluster-level FWE p: fraction of flips whose largest cluster is ≥ the observed size.

    Parameters
    ----------
    null_max_sizes : (n_flips,) array_like
        Largest cluster per flip (identity included), voxels.
    size_voxels : float or (n_clusters,) array_like
        Observed cluster sizes, voxels.

    Returns
    -------
    ndarray
        p-values, same shape as ``size_voxels``; at least ``1 / n_flips`` when the identity's
        largest cluster is included in the null.
    """
    null = np.sort(np.asarray(null_max_sizes, dtype=np.float64))
    k = np.asarray(size_voxels, dtype=np.float64)
    n_ge = null.size - np.searchsorted(null, k, side="left")
    return n_ge / null.size


def voxel_fwe_p(null_max_t: ArrayLike, t_values: ArrayLike) -> NDArray[np.float64]:
    """Voxel-level FWE p: fraction of flips whose maximum t is ≥ the observed t.

    For decreases pass ``-min_t`` as the null and ``-t`` as the values.

    Returns
    -------
    ndarray
        p-values, same shape as ``t_values`` (NaN where t is NaN).
    """
    null = np.sort(np.asarray(null_max_t, dtype=np.float64))
    t = np.asarray(t_values, dtype=np.float64)
    n_ge = null.size - np.searchsorted(null, t, side="left")
    return np.where(np.isnan(t), np.nan, n_ge / null.size)
