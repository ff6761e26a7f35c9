"""End-to-end voxelwise inference on synthetic paired groups (planted effect and null)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from scipy import stats

from bids_app.errors import StatsError
from bids_app.stats import rft
from bids_app.stats.inference import paired_cluster_inference
from bids_app.stats.voxelwise import smooth_volumes

BLOB_CENTRE = (12, 30, 18)
MakeGroup = Callable[..., Any]  # the conftest's make_group factory


def test_planted_decrease_is_found_at_fwe_below_005(make_group: MakeGroup) -> None:
    # seeds 100-119 all give p < 0.005 (RFT and permutation) with the peak <= 4.1 voxels off
    base, chal, mask = make_group(seed=7, effect=-0.25, centre=BLOB_CENTRE)
    res = paired_cluster_inference(base, chal, 2.0, explicit_mask=mask)
    assert res.df == 9
    assert res.n_permutations == 1024
    assert res.permutation_exact
    np.testing.assert_allclose(res.cluster_forming_t, stats.t.isf(0.01, 9))
    top = res.decrease.clusters[0]
    assert top.cluster_id == 1
    assert top.p_fwe_rft < 0.05
    assert top.p_fwe_perm < 0.05
    assert top.peak_t < -res.cluster_forming_t
    # the cluster sits on the blob
    assert np.linalg.norm(np.subtract(top.peak_index, BLOB_CENTRE)) <= 5.0
    assert res.decrease.labels[BLOB_CENTRE] == top.cluster_id
    assert (res.decrease.labels == 1).sum() == top.size_voxels
    # nothing significant in the opposite direction
    assert all(c.p_fwe_rft >= 0.05 for c in res.increase.clusters)
    # its RFT p-value is SPM's cluster-level p for the estimated smoothness and resels
    expected = rft.p_cluster_fwe(
        top.size_voxels, res.cluster_forming_t, (1, 9), res.resels, res.fwhm_vox
    )
    assert top.p_fwe_rft == expected


def test_null_group_has_no_significant_cluster(make_group: MakeGroup) -> None:
    base, chal, mask = make_group(seed=11, effect=0.0)  # seeds 200-219: no false positive
    res = paired_cluster_inference(base, chal, 2.0, explicit_mask=mask)
    clusters = res.increase.clusters + res.decrease.clusters
    assert clusters, "a null map at p < 0.01 still has some small clusters"
    assert all(c.p_fwe_rft >= 0.05 for c in clusters)
    assert all(c.p_fwe_perm >= 0.05 for c in clusters)
    for c in clusters:  # permutation p-values are multiples of 1/2^n within [1/2^n, 1]
        assert 1 / 1024 <= c.p_fwe_perm <= 1.0
        assert c.p_fwe_perm * 1024 == pytest.approx(round(c.p_fwe_perm * 1024))
        assert 0.0 < c.p_fwe_rft <= 1.0
        assert 1 / 1024 <= c.peak_p_fwe_perm <= 1.0


def test_smoothness_maps_and_bookkeeping(make_group: MakeGroup) -> None:
    base, chal, mask = make_group(seed=3, shape=(30, 32, 28), effect=0.0, fwhm_vox=4.0)
    res = paired_cluster_inference(
        base, chal, [2.0, 2.0, 3.0], explicit_mask=mask, n_permutations=0
    )
    # noise was smoothed with 4 voxels FWHM: the difference of two such fields is as smooth
    np.testing.assert_allclose(res.fwhm_vox, 4.0, rtol=0.12)
    np.testing.assert_allclose(res.fwhm_mm, res.fwhm_vox * [2.0, 2.0, 3.0])
    assert res.resels == rft.resel_counts(res.mask, res.fwhm_vox)
    inside = res.mask
    np.testing.assert_allclose(res.p_map_increase[inside] + res.p_map_decrease[inside], 1.0)
    np.testing.assert_allclose(res.p_map_increase[inside], stats.t.sf(res.t_map[inside], 9))
    assert np.all(np.isnan(res.t_map[~inside]))
    assert np.all(np.isnan(res.p_map_increase[~inside]))
    assert res.n_permutations == 0
    assert all(np.isnan(c.p_fwe_perm) for c in res.increase.clusters + res.decrease.clusters)
    assert res.direction("decrease") is res.decrease
    with pytest.raises(StatsError, match="direction"):
        res.direction("up")  # type: ignore[arg-type]


def test_smoothing_option_smooths_before_the_test(make_group: MakeGroup) -> None:
    base, chal, mask = make_group(seed=5, shape=(24, 26, 22), fwhm_vox=2.0)
    rough = paired_cluster_inference(base, chal, 2.0, explicit_mask=mask, n_permutations=0)
    smooth = paired_cluster_inference(
        base, chal, 2.0, explicit_mask=mask, n_permutations=0, smoothing_fwhm_mm=8.0
    )
    assert np.all(smooth.fwhm_mm > rough.fwhm_mm + 3.0)


def test_inference_rejects_bad_options(make_group: MakeGroup) -> None:
    base, chal, mask = make_group(seed=1, shape=(10, 11, 12), n=4)
    with pytest.raises(StatsError, match="cluster_forming_p"):
        paired_cluster_inference(base, chal, 2.0, explicit_mask=mask, cluster_forming_p=0.7)
    with pytest.raises(StatsError, match="voxel_size_mm"):
        paired_cluster_inference(base, chal, [2.0, -2.0, 2.0], explicit_mask=mask)


def test_search_volume_is_the_implicit_mask(make_group: MakeGroup) -> None:
    base, chal, ellipsoid = make_group(
        seed=4, shape=(24, 26, 22), effect=-0.3, centre=(12, 13, 11)
    )
    # participant maps are NaN outside their fit mask: no explicit mask needed
    base[:, ~ellipsoid] = np.nan
    chal[:, ~ellipsoid] = np.nan
    implicit = paired_cluster_inference(base, chal, 2.0, n_permutations=0)
    explicit = paired_cluster_inference(base, chal, 2.0, explicit_mask=ellipsoid, n_permutations=0)
    np.testing.assert_array_equal(implicit.mask, ellipsoid)
    assert not implicit.explicit_mask_used
    assert explicit.explicit_mask_used
    np.testing.assert_array_equal(implicit.t_map, explicit.t_map)
    assert implicit.resels == explicit.resels

    # a voxel missing in one participant's challenge map leaves the search volume
    hole = (12, 13, 11)
    chal[3][hole] = np.nan
    holed = paired_cluster_inference(base, chal, 2.0, n_permutations=0)
    assert not holed.mask[hole]
    assert holed.mask.sum() == ellipsoid.sum() - 1
    assert np.isnan(holed.t_map[hole])
    # the resels are those of the smaller search volume: one voxel fewer, and a cavity
    assert holed.resels == rft.resel_counts(holed.mask, holed.fwhm_vox)
    assert holed.resels != rft.resel_counts(ellipsoid, holed.fwhm_vox)
    assert rft.resel_counts(holed.mask, [1, 1, 1])[0] == 2  # Euler characteristic of a shell


def test_empty_search_volume_is_a_clear_error(make_group: MakeGroup) -> None:
    base, chal, _ = make_group(seed=2, shape=(10, 11, 12), n=4)
    base[0, :, :, :] = np.nan
    with pytest.raises(StatsError, match="search volume is empty"):
        paired_cluster_inference(base, chal, 2.0)


def test_clusters_list_maxima_and_condition_means(make_group: MakeGroup) -> None:
    shape, centre = (28, 30, 26), (10, 15, 13)
    base, chal, mask = make_group(seed=7, shape=shape, effect=-0.3, centre=centre)
    res = paired_cluster_inference(base, chal, 2.0, explicit_mask=mask, smoothing_fwhm_mm=4.0)
    top = res.decrease.clusters[0]
    assert res.decrease.labels[centre] == top.cluster_id
    peak = top.maxima[0]
    assert 1 <= len(top.maxima) <= 3
    assert peak.rank == 1
    assert peak.index == top.peak_index
    assert peak.t == top.peak_t
    assert peak.p_fwe_rft == top.peak_p_fwe_rft
    assert peak.p_fwe_perm == top.peak_p_fwe_perm
    np.testing.assert_allclose(peak.p_unc, stats.t.sf(-peak.t, 9), rtol=1e-12)
    np.testing.assert_allclose(peak.z_equivalent, stats.norm.isf(peak.p_unc), rtol=1e-12)
    for c in res.decrease.clusters + res.increase.clusters:
        assert [m.rank for m in c.maxima] == list(range(1, len(c.maxima) + 1))
        heights = [abs(m.t) for m in c.maxima]
        assert heights == sorted(heights, reverse=True)
        for a, b in itertools.combinations(c.maxima, 2):
            assert np.linalg.norm(np.subtract(a.index, b.index) * 2.0) > 8.0
        assert all(0.0 < m.p_fwe_rft <= 1.0 and 0.0 < m.p_unc < 0.01 for m in c.maxima)
    # condition means: each participant's average over the cluster on the SMOOTHED maps
    smooth_b = smooth_volumes(base, 2.0, 4.0)[:, res.decrease.labels == 1].mean(axis=1)
    smooth_c = smooth_volumes(chal, 2.0, 4.0)[:, res.decrease.labels == 1].mean(axis=1)
    np.testing.assert_allclose(
        [top.baseline_mean, top.baseline_sd, top.challenge_mean, top.challenge_sd],
        [smooth_b.mean(), smooth_b.std(ddof=1), smooth_c.mean(), smooth_c.std(ddof=1)],
        rtol=1e-12,
    )
    assert top.challenge_mean < top.baseline_mean
    # significance and the cluster-mask helper
    significant = res.decrease.significant(0.05)
    assert significant[0] is top
    assert all(c.p_fwe_rft < 0.05 for c in significant)
    kept = res.decrease.label_volume([c.cluster_id for c in significant])
    assert set(np.unique(kept)) == {0} | {c.cluster_id for c in significant}
    assert (kept == 1).sum() == top.size_voxels
    assert not res.decrease.label_volume([]).any()
