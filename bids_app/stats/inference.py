"""Group-level voxelwise inference for a paired (baseline vs challenge) design.

:func:`paired_cluster_inference` chains the steps SPM12 takes for a paired t-test and adds a
sign-flip permutation test: SPM's implicit search mask (voxels with a value in every map,
optionally within an explicit mask) → paired t map (PET variance regularisation) → smoothness
from the standardised residuals → resel counts of the search mask → clusters above the
cluster-forming threshold in each direction → SPM's cluster-level FWE p (random field theory)
and the permutation cluster-level FWE p → what SPM's results table lists per cluster: up to 3
local maxima more than 8 mm apart with their peak-level p-values. Each cluster also carries the
mean and SD across participants of each condition's cluster-average value on the maps tested.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from bids_app.errors import StatsError
from bids_app.stats import rft
from bids_app.stats.clusters import (
    SPM_MAXIMA_PER_CLUSTER,
    SPM_MIN_MAXIMA_DISTANCE_MM,
    ClusterSet,
    Connectivity,
    cluster_local_maxima,
    cluster_means,
    find_clusters,
)
from bids_app.stats.permutation import SignFlipNull, cluster_fwe_p, sign_flip_null, voxel_fwe_p
from bids_app.stats.voxelwise import PairedTResult, implicit_mask, paired_t, smooth_volumes

logger = logging.getLogger(__name__)

Direction = Literal["increase", "decrease"]

__all__ = [
    "Cluster",
    "Direction",
    "DirectionResult",
    "LocalMaximum",
    "PairedInference",
    "paired_cluster_inference",
]


@dataclass(frozen=True)
class LocalMaximum:
    """One local maximum of a cluster, as a row of SPM's results table.

    Attributes
    ----------
    rank : int
        1 for the cluster's peak, then 2, 3 by decreasing height.
    index : tuple of 3 int
        Voxel index (i, j, k).
    t : float
        t value (negative for decreases).
    z_equivalent : float
        The standard normal value with the same one-sided uncorrected p (SPM's "Z_E").
    p_unc : float
        One-sided uncorrected p of the t value.
    p_fwe_rft : float
        Peak-level p(FWE-corr) from random field theory, capped by Bonferroni over the search
        voxels (SPM's peak-level "p(FWE-corr)").
    p_fwe_perm : float
        Sign-flip max-t FWE p of this height (NaN when permutations were not run).
    """

    rank: int
    index: tuple[int, int, int]
    t: float
    z_equivalent: float
    p_unc: float
    p_fwe_rft: float
    p_fwe_perm: float


@dataclass(frozen=True)
class Cluster:
    """One suprathreshold cluster and its p-values.

    Attributes
    ----------
    cluster_id : int
        1-based, by decreasing size; equals the value in the direction's label volume.
    size_voxels : int
        Extent, voxels.
    peak_index : tuple of 3 int
        Voxel index (i, j, k) of the peak.
    peak_t : float
        t at the peak (negative for decreases).
    p_fwe_rft : float
        SPM's cluster-level p(FWE-corr) from random field theory.
    p_unc_rft : float
        SPM's cluster-level p(unc).
    p_fwe_perm : float
        Sign-flip cluster-level FWE p (NaN when permutations were not run).
    peak_p_fwe_rft : float
        SPM's peak-level p(FWE-corr) (RFT, capped by Bonferroni over the mask voxels).
    peak_p_fwe_perm : float
        Sign-flip max-|t| voxel-level FWE p of the peak (NaN when not run).
    maxima : tuple of LocalMaximum
        The peak and up to two more local maxima more than 8 mm apart (SPM's table).
    baseline_mean, baseline_sd, challenge_mean, challenge_sd : float
        Mean and SD (``ddof=1``) across participants of each participant's average over the
        cluster's voxels, per condition, on the maps that were tested (smoothed when the
        inference smoothed them), in the maps' units.
    """

    cluster_id: int
    size_voxels: int
    peak_index: tuple[int, int, int]
    peak_t: float
    p_fwe_rft: float
    p_unc_rft: float
    p_fwe_perm: float
    peak_p_fwe_rft: float
    peak_p_fwe_perm: float
    maxima: tuple[LocalMaximum, ...]
    baseline_mean: float
    baseline_sd: float
    challenge_mean: float
    challenge_sd: float


@dataclass(frozen=True)
class DirectionResult:
    """Clusters of one direction ("increase": t > u; "decrease": t < -u).

    Attributes
    ----------
    direction : {"increase", "decrease"}
    clusters : tuple of Cluster
        Largest first.
    labels : (X, Y, Z) ndarray of int32
        Cluster index volume: 0 outside clusters, else ``cluster_id``.
    """

    direction: Direction
    clusters: tuple[Cluster, ...]
    labels: NDArray[np.int32]

    def significant(self, alpha: float) -> tuple[Cluster, ...]:
        """Clusters whose RFT cluster-level p(FWE) is below ``alpha``, largest first."""
        return tuple(c for c in self.clusters if c.p_fwe_rft < alpha)

    def label_volume(self, cluster_ids: Sequence[int]) -> NDArray[np.int32]:
        """Cluster index volume restricted to ``cluster_ids`` (other clusters set to 0).

        Returns
        -------
        (X, Y, Z) ndarray of int32
            ``cluster_id`` inside the kept clusters, 0 elsewhere.
        """
        keep = np.isin(self.labels, np.asarray(list(cluster_ids), dtype=np.int64))
        return np.where(keep, self.labels, 0).astype(np.int32)


@dataclass(frozen=True)
class PairedInference:
    """Result of :func:`paired_cluster_inference`.

    Attributes
    ----------
    t_map : (X, Y, Z) ndarray
        t of challenge - baseline; NaN outside the mask.
    p_map_increase : (X, Y, Z) ndarray
        One-sided uncorrected p for challenge > baseline; NaN outside the mask.
    p_map_decrease : (X, Y, Z) ndarray
        One-sided uncorrected p for challenge < baseline; NaN outside the mask.
    mean_difference : (X, Y, Z) ndarray
        Mean of challenge - baseline.
    mask : (X, Y, Z) ndarray of bool
        Search mask used: voxels finite in every map (SPM's implicit mask), within the
        explicit mask when one was given.
    explicit_mask_used : bool
        True when an explicit mask restricted the search volume.
    df : int
        Error degrees of freedom (n - 1).
    n_subjects : int
    fwhm_vox : (3,) ndarray
        Estimated smoothness, voxels.
    fwhm_mm : (3,) ndarray
        Estimated smoothness, mm.
    resels : tuple of 4 float
        Resel counts (R0..R3) of the mask.
    cluster_forming_p : float
    cluster_forming_t : float
        t threshold ``u`` with one-sided p = ``cluster_forming_p`` at ``df``.
    increase, decrease : DirectionResult
    n_permutations : int
        Number of sign flips run (0 when not run).
    permutation_exact : bool
        True when all 2^n flips were enumerated.
    seed : int
    variance_regularisation : bool
    """

    t_map: NDArray[np.float64]
    p_map_increase: NDArray[np.float64]
    p_map_decrease: NDArray[np.float64]
    mean_difference: NDArray[np.float64]
    mask: NDArray[np.bool_]
    explicit_mask_used: bool
    df: int
    n_subjects: int
    fwhm_vox: NDArray[np.float64]
    fwhm_mm: NDArray[np.float64]
    resels: tuple[float, float, float, float]
    cluster_forming_p: float
    cluster_forming_t: float
    increase: DirectionResult
    decrease: DirectionResult
    n_permutations: int
    permutation_exact: bool
    seed: int
    variance_regularisation: bool

    def direction(self, name: Direction) -> DirectionResult:
        """Return the result of one direction by name."""
        if name == "increase":
            return self.increase
        if name == "decrease":
            return self.decrease
        msg = f"direction must be 'increase' or 'decrease'; got {name!r}."
        raise StatsError(msg)


def _check_voxel_size(voxel_size_mm: ArrayLike) -> NDArray[np.float64]:
    voxel = np.asarray(voxel_size_mm, dtype=np.float64).ravel()
    if voxel.size == 1:
        voxel = np.repeat(voxel, 3)
    if voxel.size != 3 or not np.all(np.isfinite(voxel)) or np.any(voxel <= 0):
        msg = f"voxel_size_mm must be one or three positive numbers; got {voxel.tolist()}."
        raise StatsError(msg)
    return voxel


@dataclass(frozen=True)
class _Context:
    """What every direction's cluster table needs from the fitted model."""

    tmap: PairedTResult
    baseline: NDArray[np.float64]
    challenge: NDArray[np.float64]
    u: float
    fwhm_vox: NDArray[np.float64]
    resels: tuple[float, float, float, float]
    voxel_mm: NDArray[np.float64]
    null: SignFlipNull | None
    connectivity: Connectivity

    @property
    def rft_ok(self) -> bool:
        """True when the smoothness, hence the RFT p-values, could be estimated."""
        return bool(np.all(np.isfinite(self.fwhm_vox)))


def _permutation_null(
    ctx: _Context, direction: Direction, found: ClusterSet
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Sign-flip null of one direction: largest cluster and largest t per flip (empty if none)."""
    if ctx.null is None:
        return np.zeros(0), np.zeros(0)
    null = ctx.null
    null_sizes = (
        null.max_cluster_size_increase
        if direction == "increase"
        else null.max_cluster_size_decrease
    ).astype(np.float64)
    null_t = (null.max_t if direction == "increase" else -null.min_t).copy()
    if found.n_clusters:
        # index 0 is the unflipped data: make it agree exactly with the observed clusters
        # (the flip arithmetic may round the observed t differently in the last bits)
        null_sizes[0] = max(float(null_sizes[0]), float(found.sizes[0]))
        null_t[0] = max(float(null_t[0]), float(found.peak_values.max()))
    return null_sizes, null_t


def _local_maxima(
    ctx: _Context,
    sign: float,
    oriented_t: NDArray[np.float64],
    indices: NDArray[np.int64],
    null_t: NDArray[np.float64],
) -> tuple[LocalMaximum, ...]:
    df = ctx.tmap.df
    n_voxels = int(ctx.tmap.mask.sum())
    maxima = []
    for rank, ijk in enumerate(indices, start=1):
        i, j, k = (int(v) for v in ijk)
        height = float(oriented_t[i, j, k])
        p_unc = float(stats.t.sf(height, df))
        p_rft = rft.p_peak_fwe(height, df, ctx.resels, n_voxels, "T") if ctx.rft_ok else np.nan
        p_perm = float(voxel_fwe_p(null_t, height)) if null_t.size else float("nan")
        maxima.append(
            LocalMaximum(
                rank=rank,
                index=(i, j, k),
                t=sign * height,
                z_equivalent=float(stats.norm.isf(p_unc)),
                p_unc=p_unc,
                p_fwe_rft=float(p_rft),
                p_fwe_perm=p_perm,
            )
        )
    return tuple(maxima)


def _mean_sd(values: NDArray[np.float64]) -> tuple[float, float]:
    ok = values[np.isfinite(values)]
    mean = float(ok.mean()) if ok.size else float("nan")
    sd = float(ok.std(ddof=1)) if ok.size >= 2 else float("nan")
    return mean, sd


def _direction_result(ctx: _Context, direction: Direction) -> DirectionResult:
    sign = 1.0 if direction == "increase" else -1.0
    oriented = sign * ctx.tmap.t_map
    found = find_clusters(oriented, ctx.tmap.mask, ctx.u, ctx.connectivity)
    n_voxels = int(ctx.tmap.mask.sum())
    null_sizes, null_t = _permutation_null(ctx, direction, found)
    if null_sizes.size:
        perm_p = cluster_fwe_p(null_sizes, found.sizes)
        peak_perm_p = voxel_fwe_p(null_t, found.peak_values)
    else:
        perm_p = np.full(found.n_clusters, np.nan)
        peak_perm_p = np.full(found.n_clusters, np.nan)
    maxima = cluster_local_maxima(
        oriented,
        found.labels,
        ctx.voxel_mm,
        max_per_cluster=SPM_MAXIMA_PER_CLUSTER,
        min_distance_mm=SPM_MIN_MAXIMA_DISTANCE_MM,
        connectivity=ctx.connectivity,
    )
    base_means = cluster_means(ctx.baseline, found.labels)
    chal_means = cluster_means(ctx.challenge, found.labels)
    clusters = []
    for i in range(found.n_clusters):
        size = int(found.sizes[i])
        peak = float(found.peak_values[i])
        if ctx.rft_ok:
            p_fwe, p_unc = rft.p_cluster(size, ctx.u, ctx.tmap.df, ctx.resels, ctx.fwhm_vox, "T")
            peak_fwe = rft.p_peak_fwe(peak, ctx.tmap.df, ctx.resels, n_voxels, "T")
        else:
            p_fwe = p_unc = peak_fwe = float("nan")
        i_, j_, k_ = (int(v) for v in found.peak_indices[i])
        b_mean, b_sd = _mean_sd(base_means[:, i])
        c_mean, c_sd = _mean_sd(chal_means[:, i])
        clusters.append(
            Cluster(
                cluster_id=i + 1,
                size_voxels=size,
                peak_index=(i_, j_, k_),
                peak_t=sign * peak,
                p_fwe_rft=p_fwe,
                p_unc_rft=p_unc,
                p_fwe_perm=float(perm_p[i]),
                peak_p_fwe_rft=peak_fwe,
                peak_p_fwe_perm=float(peak_perm_p[i]),
                maxima=_local_maxima(ctx, sign, oriented, maxima[i], null_t),
                baseline_mean=b_mean,
                baseline_sd=b_sd,
                challenge_mean=c_mean,
                challenge_sd=c_sd,
            )
        )
    return DirectionResult(direction=direction, clusters=tuple(clusters), labels=found.labels)


def paired_cluster_inference(
    baseline: ArrayLike,
    challenge: ArrayLike,
    voxel_size_mm: ArrayLike,
    *,
    explicit_mask: ArrayLike | None = None,
    cluster_forming_p: float = 0.01,
    variance_regularisation: bool = True,
    n_permutations: int | Literal["exact"] = "exact",
    seed: int = 0,
    smoothing_fwhm_mm: float | None = None,
    connectivity: Connectivity = 18,
) -> PairedInference:
    """Voxelwise paired t-test with SPM cluster-level RFT and sign-flip permutation FWE.

    Parameters
    ----------
    baseline, challenge : (n, X, Y, Z) array_like
        One parametric map per subject and session (e.g. BPND), same subject order; NaN where
        a map has no value (outside the subject's fit mask or field of view).
    voxel_size_mm : float or (3,) array_like
        Voxel size, mm (converts the FWHM to mm, the smoothing kernel to voxels and the
        distance between listed maxima to mm).
    explicit_mask : (X, Y, Z) array_like, optional
        Restricts the search volume to its voxels (bool, or finite and > 0). The search volume
        is always SPM's implicit mask: the voxels finite in every map (see
        :func:`~bids_app.stats.voxelwise.implicit_mask`).
    cluster_forming_p : float
        One-sided uncorrected p of the cluster-forming threshold (default 0.01).
    variance_regularisation : bool
        SPM's PET variance regularisation of ResMS (default True).
    n_permutations : int or "exact"
        ``0`` skips the permutation test. n ≤ 12 always enumerates all 2^n flips; for n > 12 an
        int gives that many random flips ("exact" then means 10,000).
    seed : int
        Seed of the random flips (n > 12).
    smoothing_fwhm_mm : float, optional
        Smooth every map with this Gaussian FWHM (mm, NaN-aware) before the test; default none
        (pass maps that are already smoothed).
    connectivity : {6, 18, 26}
        Cluster neighbourhood (SPM: 18).

    Returns
    -------
    PairedInference
        Maps, search mask, smoothness, resels, threshold and the clusters of both directions.
    """
    if not 0.0 < cluster_forming_p < 0.5:
        msg = f"cluster_forming_p must be in (0, 0.5); got {cluster_forming_p}."
        raise StatsError(msg)
    voxel = _check_voxel_size(voxel_size_mm)
    base = np.asarray(baseline, dtype=np.float64)
    chal = np.asarray(challenge, dtype=np.float64)
    search = implicit_mask(base, chal, explicit_mask)
    logger.info(
        "search volume: %d voxels (%.1f mL) with a value in all %d maps%s",
        int(search.sum()), float(search.sum() * np.prod(voxel)) / 1000.0, 2 * base.shape[0],
        "" if explicit_mask is None else ", within the explicit mask",
    )  # fmt: skip
    if not search.any():
        msg = (
            "the search volume is empty: no voxel has a finite value in every participant's "
            "baseline and challenge maps"
            + ("" if explicit_mask is None else " inside the explicit mask")
            + ". Check the participant maps (NaN outside the fit mask/field of view)."
        )
        raise StatsError(msg)
    if smoothing_fwhm_mm:
        base = smooth_volumes(base, voxel, smoothing_fwhm_mm)
        chal = smooth_volumes(chal, voxel, smoothing_fwhm_mm)

    tmap = paired_t(base, chal, search, variance_regularisation=variance_regularisation)
    df = tmap.df
    fwhm_vox = rft.estimate_smoothness(tmap.standardized_residuals, tmap.mask, dof=df)
    fwhm_ok = bool(np.all(np.isfinite(fwhm_vox)))
    if fwhm_ok:
        resels = rft.resel_counts(tmap.mask, fwhm_vox)
    else:
        logger.warning(
            "smoothness could not be estimated (FWHM %s): RFT p-values are NaN", fwhm_vox
        )
        resels = (float("nan"),) * 4
    u = float(stats.t.isf(cluster_forming_p, df))
    logger.info(
        "paired t: n=%d, df=%d, %d voxels, FWHM=%s mm, resels=%s, u=%.3f",
        tmap.n_subjects, df, int(tmap.mask.sum()), np.round(fwhm_vox * voxel, 2),
        np.round(resels, 2), u,
    )  # fmt: skip

    null: SignFlipNull | None = None
    if n_permutations != 0:
        null = sign_flip_null(
            chal - base,
            tmap.mask,
            u,
            variance_regularisation=variance_regularisation,
            n_permutations=n_permutations,
            seed=seed,
            connectivity=connectivity,
        )

    with np.errstate(invalid="ignore"):
        p_inc = np.asarray(stats.t.sf(tmap.t_map, df), dtype=np.float64)
        p_dec = np.asarray(stats.t.cdf(tmap.t_map, df), dtype=np.float64)
    ctx = _Context(tmap, base, chal, u, fwhm_vox, resels, voxel, null, connectivity)
    return PairedInference(
        t_map=tmap.t_map,
        p_map_increase=p_inc,
        p_map_decrease=p_dec,
        mean_difference=tmap.mean_difference,
        mask=tmap.mask,
        explicit_mask_used=explicit_mask is not None,
        df=df,
        n_subjects=tmap.n_subjects,
        fwhm_vox=fwhm_vox,
        fwhm_mm=fwhm_vox * voxel,
        resels=resels,
        cluster_forming_p=float(cluster_forming_p),
        cluster_forming_t=u,
        increase=_direction_result(ctx, "increase"),
        decrease=_direction_result(ctx, "decrease"),
        n_permutations=0 if null is None else null.n_flips,
        permutation_exact=False if null is None else null.exact,
        seed=int(seed),
        variance_regularisation=variance_regularisation,
    )
