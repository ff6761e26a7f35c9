"""The simulator's own anatomy and truth ROIs (HCPex, AAL, geometric regions).

Building the template anatomy reads the template and both atlases (~5 s), so the module is an
integration test.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from petsim import atlas
from petsim.anatomy import REFERENCE_ROI, TRUTH_ROIS, Anatomy, build_anatomy

pytestmark = pytest.mark.integration

ML_PER_VOXEL = 0.008


@pytest.fixture(scope="module")
def anatomy() -> Anatomy:
    return build_anatomy()


def _volume_ml(mask: np.ndarray) -> float:
    return float(mask.sum()) * ML_PER_VOXEL


def test_grid_is_the_2mm_mni_grid(anatomy: Anatomy) -> None:
    assert anatomy.shape == (99, 117, 95)
    np.testing.assert_allclose(anatomy.affine[:3, 3], [-98.0, -134.0, -72.0])
    np.testing.assert_allclose(np.diag(anatomy.affine)[:3], 2.0)
    total = anatomy.fractions.sum(axis=0)
    assert total.max() <= 1.0 + 1e-5
    assert anatomy.fractions.min() >= 0.0


@pytest.mark.parametrize(
    ("roi", "low_ml", "high_ml"),
    [
        ("caudate", 10.0, 18.0),
        ("putamen", 12.0, 20.0),
        ("ventral_striatum", 0.8, 3.0),
        ("pituitary", 0.3, 0.8),
        ("carotid", 3.0, 7.0),
        ("habenula", 0.15, 0.4),
        ("habenula_control", 0.15, 0.4),
        (REFERENCE_ROI, 10.0, 45.0),
    ],
)
def test_roi_volumes_are_anatomical(
    anatomy: Anatomy, roi: str, low_ml: float, high_ml: float
) -> None:
    assert low_ml <= _volume_ml(anatomy.roi_masks[roi]) <= high_ml


def test_composite_and_disjoint_rois(anatomy: Anatomy) -> None:
    m = anatomy.roi_masks
    np.testing.assert_array_equal(m["dorsal_striatum"], m["caudate"] | m["putamen"])
    np.testing.assert_array_equal(m["striatum"], m["dorsal_striatum"] | m["ventral_striatum"])
    for a, b in (
        ("pituitary", "carotid"),
        ("habenula", "habenula_control"),
        ("striatum", REFERENCE_ROI),
        ("caudate", "putamen"),
    ):
        assert not np.any(m[a] & m[b]), (a, b)
    assert set(TRUTH_ROIS) <= set(m)


def test_rois_sit_where_the_anatomy_is(anatomy: Anatomy) -> None:
    def centroid(roi: str) -> np.ndarray:
        return anatomy.grid.centres_mm(np.flatnonzero(anatomy.roi_masks[roi].ravel())).mean(0)

    caudate, putamen = centroid("caudate"), centroid("putamen")
    assert abs(caudate[0]) < 5
    assert abs(putamen[0]) < 5
    cerebellum = centroid(REFERENCE_ROI)
    assert cerebellum[1] < -50
    assert cerebellum[2] < -25
    assert centroid("pituitary")[2] < -25
    assert centroid("habenula_control")[1] - centroid("habenula")[1] == pytest.approx(10, abs=1)
    # the reference region is cerebellar grey matter only
    idx = anatomy.index("cerebellum")
    ref = anatomy.roi_masks[REFERENCE_ROI]
    assert anatomy.fractions[idx][ref].mean() > 0.5
    assert anatomy.fractions[anatomy.index("cortex")][ref].max() < 0.05


def test_deep_structures_replace_the_grey_white_mixture(anatomy: Anatomy) -> None:
    putamen = anatomy.roi_masks["putamen"]
    core = anatomy.fractions[anatomy.index("putamen")] > 0.99
    assert np.count_nonzero(core & putamen) > 0.5 * putamen.sum()
    assert anatomy.fractions[anatomy.index("wm")][core].max() == 0.0


def test_truth_rois_differ_from_the_apps_aal3_atlas() -> None:
    # The point of an independent atlas: its accumbens is not AAL3's N_Acc.
    src = atlas.load_sources()
    nii, _ = atlas.atlas_paths("AAL3")
    aal3 = nib.load(nii)
    aal3_grid = atlas.Grid(aal3.shape, np.asarray(aal3.affine, dtype=np.float64))  # type: ignore[arg-type]
    labels = atlas.resample_aligned(np.asarray(aal3.dataobj), aal3_grid, src.grid_1mm)
    aal3_accumbens = np.isin(labels, (157, 158))
    hcpex_accumbens = src.hcpex_mask(atlas.HCPEX_ACCUMBENS)
    overlap = np.count_nonzero(aal3_accumbens & hcpex_accumbens)
    dice = 2 * overlap / (aal3_accumbens.sum() + hcpex_accumbens.sum())
    assert 0.2 < dice < 0.8


def test_downsampling_keeps_volumes() -> None:
    rng = np.random.default_rng(0)
    volume = np.zeros((41, 40, 39))
    volume[5:30, 7:33, 9:31] = rng.uniform(0.0, 1.0, size=(25, 26, 22))
    down = atlas.downsample_2mm(volume)
    assert down.shape == (21, 20, 20)
    assert down.sum() * 8 == pytest.approx(volume.sum(), rel=1e-6)
