"""End-to-end voxelwise inference on synthetic paired groups (planted effect and null)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from scipy import stats

from bids_app.errors import StatsError
from bids_app.stats import rft
from bids_app.stats.inference import paired_cluster_inference

BLOB_CENTRE = (12, 30, 18)
MakeGroup = Callable[..., Any]  # the conftest's make_group factory


def test_planted_decrease_is_found_at_fwe_below_005(make_group: MakeGroup) -> None:
    # seeds 100-119 all give p < 0.005 (RFT and permutation) with the peak <= 4.1 voxels off
    base, chal, mask = make_group(seed=7, effect=-0.25, centre=BLOB_CENTRE)
    res = paired_cluster_inference(base, chal, mask, voxel_size_mm=2.0)
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
    res = paired_cluster_inference(base, chal, mask, voxel_size_mm=2.0)
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
        base, chal, mask, voxel_size_mm=[2.0, 2.0, 3.0], n_permutations=0
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
    rough = paired_cluster_inference(base, chal, mask, 2.0, n_permutations=0)
    smooth = paired_cluster_inference(
        base, chal, mask, 2.0, n_permutations=0, smoothing_fwhm_mm=8.0
    )
    assert np.all(smooth.fwhm_mm > rough.fwhm_mm + 3.0)


def test_inference_rejects_bad_options(make_group: MakeGroup) -> None:
    base, chal, mask = make_group(seed=1, shape=(10, 11, 12), n=4)
    with pytest.raises(StatsError, match="cluster_forming_p"):
        paired_cluster_inference(base, chal, mask, 2.0, cluster_forming_p=0.7)
    with pytest.raises(StatsError, match="voxel_size_mm"):
        paired_cluster_inference(base, chal, mask, [2.0, -2.0, 2.0])
