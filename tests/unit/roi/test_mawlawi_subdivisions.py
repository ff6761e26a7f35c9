"""Mawlawi/Martinez striatal subdivisions: geometry on a toy grid and on the AAL3 atlas."""

from __future__ import annotations

import itertools

import nibabel as nib
import numpy as np
import pytest
from numpy.typing import NDArray

from bids_app.errors import InputError
from bids_app.roi import atlas as atl
from bids_app.roi import template as tpl

PARTS = ("vst_mawlawi", "pre_dca", "post_ca", "pre_dpu", "post_pu")


@pytest.fixture(scope="module")
def atlas() -> atl.RoiAtlas:
    return atl.build_roi_atlas(2)


@pytest.fixture(scope="module")
def y_mm(atlas: atl.RoiAtlas) -> NDArray[np.float64]:
    ijk = np.indices(atlas.shape).reshape(3, -1).T
    return nib.affines.apply_affine(atlas.affine, ijk)[:, 1].reshape(atlas.shape)


def test_parts_are_disjoint_and_cover_the_striatum(atlas: atl.RoiAtlas) -> None:
    m = atlas.masks
    for a, b in itertools.combinations(PARTS, 2):
        assert not (m[a] & m[b]).any(), (a, b)
    union = np.logical_or.reduce([m[p] for p in PARTS])
    assert np.array_equal(union, m["striatum"])
    dorsal = m["pre_dca"] | m["post_ca"] | m["pre_dpu"] | m["post_pu"]
    assert np.array_equal(m["dst_mawlawi"], dorsal)
    assert np.array_equal(m["dst_mawlawi"] | m["vst_mawlawi"], m["striatum"])
    assert set(atl.MAWLAWI_ROIS) <= set(atlas.descriptions)


def test_aal3_rois_unchanged(atlas: atl.RoiAtlas) -> None:
    assert np.array_equal(atlas.masks["ventral_striatum"], atlas.masks["accumbens"])
    assert int(atlas.masks["ventral_striatum"].sum()) == 306
    assert int(atlas.masks["dorsal_striatum"].sum()) == 3708


def test_pre_post_split_at_the_anterior_commissure(
    atlas: atl.RoiAtlas, y_mm: NDArray[np.float64]
) -> None:
    m = atlas.masks
    assert y_mm[m["pre_dca"]].min() > atl.AC_Y_MM
    assert y_mm[m["pre_dpu"]].min() > atl.AC_Y_MM
    assert y_mm[m["post_ca"]].max() <= atl.AC_Y_MM
    assert y_mm[m["post_pu"]].max() <= atl.AC_Y_MM
    # no VST behind the AC except AAL3 accumbens voxels
    behind = m["vst_mawlawi"] & (y_mm <= atl.AC_Y_MM)
    assert not (behind & ~m["accumbens"]).any()
    assert (m["vst_mawlawi"] & m["accumbens"]).sum() == 306


def test_volumes_are_plausible(atlas: atl.RoiAtlas) -> None:
    # measured at build: VST 814 voxels (6.51 mL), preDCA 960, postCA 397, preDPU 893,
    # postPU 950; the ranges allow AAL3's generous nuclei while catching a broken rule
    vst_ml = atlas.volume_ml("vst_mawlawi")
    assert 5.0 < vst_ml < 8.0
    share = vst_ml / atlas.volume_ml("striatum")
    assert 0.15 < share < 0.25
    for roi in ("pre_dca", "pre_dpu", "post_pu"):
        assert 5.5 < atlas.volume_ml(roi) < 9.0, roi
    assert 2.5 < atlas.volume_ml("post_ca") < 4.0


def test_vst_is_ventral_and_both_sides(atlas: atl.RoiAtlas) -> None:
    vst = atlas.centroid_mm("vst_mawlawi")
    assert vst[2] < atlas.centroid_mm("pre_dca")[2] - 8.0
    assert vst[2] < atlas.centroid_mm("pre_dpu")[2] - 3.0
    assert vst[1] > atl.AC_Y_MM + 5.0
    ijk = np.argwhere(atlas.masks["vst_mawlawi"])
    x = nib.affines.apply_affine(atlas.affine, ijk)[:, 0]
    left, right = int((x < 0).sum()), int((x > 0).sum())
    assert min(left, right) / max(left, right) > 0.75


def test_anterior_commissure_is_bright_white_matter() -> None:
    img = tpl.load_template(1)
    data = np.asarray(img.dataobj)
    ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(img.affine), atl.AC_MNI_MM))
    at_ac = float(data[tuple(ijk.astype(int))])
    assert at_ac > 0.8
    # 4 mm above and below: third ventricle / hypothalamus, much darker
    for dz in (-4.0, 4.0):
        xyz = np.add(atl.AC_MNI_MM, (0.0, 0.0, dz))
        ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(img.affine), xyz)).astype(int)
        assert float(data[tuple(ijk)]) < at_ac - 0.15


def _toy() -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_], NDArray[np.float64]]:
    """One hemisphere on a 1 mm grid: caudate column medial, putamen block lateral."""
    shape = (30, 10, 30)
    affine = np.eye(4)
    affine[:3, 3] = (1.0, -4.0, -15.0)  # x = 1..30, y = -4..5, z = -15..14
    caudate = np.zeros(shape, dtype=bool)
    putamen = np.zeros(shape, dtype=bool)
    accumbens = np.zeros(shape, dtype=bool)
    caudate[4:10, :, 5:25] = True  # x 5..10, z -10..9: centre (7.5, -0.5)
    putamen[14:24, :, 5:20] = True  # x 15..24, z -10..4; top-medial corner x = 15
    accumbens[10:14, 6:, 5:8] = True  # x 11..14, y 2..5, z -10..-8
    return caudate, putamen, accumbens, affine


def test_toy_line_geometry() -> None:
    caudate, putamen, accumbens, affine = _toy()
    out = atl.mawlawi_subdivisions(caudate, putamen, accumbens, affine, ac_y_mm=0.0)
    vst = out["vst_mawlawi"]
    # pre-commissural plane y = 3 (index 7): caudate + accumbens centre and the line
    cau = np.argwhere((caudate | accumbens)[:, 7, :])
    cx = float(cau[:, 0].mean() + 1.0)
    cz = float(cau[:, 1].mean() - 15.0)
    px, pz = 15.0, -10.0  # vertical through the putamen's top-medial corner, its lowest voxel
    slope = (pz - cz) / (px - cx)
    for i, k in np.argwhere(putamen[:, 7, :] | caudate[:, 7, :]):
        x, z = i + 1.0, k - 15.0
        line = cz + slope * max(x - cx, 0.0)
        assert vst[i, 7, k] == (z < line), (x, z)
    assert vst[accumbens].all()
    # post-commissural plane y = -2 (index 2): nothing ventral, split by nucleus
    assert not vst[:, 2, :].any()
    assert np.array_equal(out["post_ca"][:, 2, :], caudate[:, 2, :])
    assert np.array_equal(out["post_pu"][:, 2, :], putamen[:, 2, :])
    assert not (out["pre_dca"][:, :5, :]).any()
    assert out["pre_dca"][:, 7, :].sum() + vst[:, 7, :][caudate[:, 7, :]].sum() == (
        caudate[:, 7, :].sum()
    )


def test_bad_inputs_raise() -> None:
    caudate, putamen, accumbens, affine = _toy()
    with pytest.raises(InputError, match="overlap"):
        atl.mawlawi_subdivisions(caudate, caudate, accumbens, affine)
    oblique = affine.copy()
    oblique[0, 1] = 0.3
    with pytest.raises(InputError, match="axis-aligned"):
        atl.mawlawi_subdivisions(caudate, putamen, accumbens, oblique)
