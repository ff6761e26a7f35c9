"""Tests for bids_app.roi.atlas: the built-in AAL3-based atlas, resampling and custom atlases."""

from __future__ import annotations

import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import ndimage

from bids_app.errors import InputError
from bids_app.roi import atlas as atl
from bids_app.roi import template as tpl

ROI_NAMES = (
    "caudate",
    "putamen",
    "accumbens",
    "dorsal_striatum",
    "ventral_striatum",
    "striatum",
    "cerebellum",
    "pituitary",
    "carotid",
    "habenula",
    "habenula_control",
)


@pytest.fixture(scope="module")
def atlas() -> atl.RoiAtlas:
    return atl.build_roi_atlas(2)


@pytest.fixture(scope="module")
def xyz(atlas: atl.RoiAtlas) -> NDArray[np.float64]:
    ijk = np.indices(atlas.shape).reshape(3, -1).T
    return nib.affines.apply_affine(atlas.affine, ijk).reshape(*atlas.shape, 3)


@pytest.fixture(scope="module")
def brain() -> NDArray[np.bool_]:
    return np.asarray(tpl.load_brain_mask(2).dataobj) > 0


def _labels_named(atlas: atl.RoiAtlas, prefix: str) -> NDArray[np.bool_]:
    values = [v for v, n in atlas.label_names.items() if n.startswith(prefix)]
    return np.isin(atlas.labels, values)


# ---- structure ------------------------------------------------------------------------------
def test_atlas_grid_and_names(atlas: atl.RoiAtlas) -> None:
    assert atlas.name == "AAL3"
    assert atlas.shape == (99, 117, 95)
    np.testing.assert_allclose(atlas.affine, tpl.load_template(2).affine)
    assert set(ROI_NAMES) <= set(atlas.masks)
    assert set(atlas.descriptions) == set(atlas.masks)
    for name in ROI_NAMES:
        mask = atlas.masks[name]
        assert mask.dtype == np.bool_
        assert mask.shape == atlas.shape
        assert mask.any(), name


@pytest.mark.parametrize(
    ("roi", "low_ml", "high_ml"),
    [
        ("caudate", 10.0, 16.0),  # AAL3 caudate (1 mm: 13.2 mL bilateral)
        ("putamen", 13.0, 20.0),  # AAL3 putamen (1 mm: 16.5 mL)
        ("accumbens", 1.8, 3.2),  # AAL3 N_Acc (1 mm: 2.5 mL)
        ("cerebellum", 16.0, 56.0),  # 2,000-7,000 voxels of 2 mm
        ("pituitary", 0.4, 0.65),  # paper: 0.50 mL (63 voxels)
        ("carotid", 3.0, 7.0),  # paper: 5.33 mL
        ("habenula", 0.08, 0.5),
    ],
)
def test_roi_volumes(atlas: atl.RoiAtlas, roi: str, low_ml: float, high_ml: float) -> None:
    assert low_ml <= atlas.volume_ml(roi) <= high_ml


def test_majority_resampling_preserves_aal3_volumes(atlas: atl.RoiAtlas) -> None:
    src = nib.load(atl._aal3_paths()[0])
    data = np.asarray(src.dataobj)
    for value in (75, 76, 77, 78, 157, 158, 95):
        ml_1mm = (data == value).sum() / 1000.0
        ml_2mm = (atlas.labels == value).sum() * 8.0 / 1000.0
        assert ml_2mm == pytest.approx(ml_1mm, rel=0.05), atlas.label_names[value]


def test_composite_rois(atlas: atl.RoiAtlas) -> None:
    m = atlas.masks
    np.testing.assert_array_equal(m["dorsal_striatum"], m["caudate"] | m["putamen"])
    np.testing.assert_array_equal(m["ventral_striatum"], m["accumbens"])
    np.testing.assert_array_equal(m["striatum"], m["caudate"] | m["putamen"] | m["accumbens"])


# ---- disjointness, laterality, position -----------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("pituitary", "carotid"),
        ("habenula", "habenula_control"),
        ("cerebellum", "striatum"),
        ("caudate", "putamen"),
    ],
)
def test_disjoint(atlas: atl.RoiAtlas, a: str, b: str) -> None:
    assert not np.any(atlas.masks[a] & atlas.masks[b])


@pytest.mark.parametrize(
    "roi", ["caudate", "putamen", "accumbens", "cerebellum", "carotid", "habenula"]
)
def test_bilateral(atlas: atl.RoiAtlas, xyz: NDArray[np.float64], roi: str) -> None:
    x = xyz[atlas.masks[roi]][:, 0]
    n_left, n_right = int((x < 0).sum()), int((x > 0).sum())
    assert n_left > 0
    assert n_right > 0
    assert 0.7 < n_left / n_right < 1.4


def test_geometric_rois_are_mirror_symmetric(atlas: atl.RoiAtlas) -> None:
    # the 2 mm grid is symmetric about x = 0 (x = -98 .. +98)
    for roi in ("pituitary", "carotid", "habenula", "habenula_control"):
        np.testing.assert_array_equal(atlas.masks[roi], atlas.masks[roi][::-1], err_msg=roi)


def test_ventral_below_and_anterior_of_dorsal(
    atlas: atl.RoiAtlas, xyz: NDArray[np.float64]
) -> None:
    ventral = xyz[atlas.masks["ventral_striatum"]].mean(axis=0)
    dorsal = xyz[atlas.masks["dorsal_striatum"]].mean(axis=0)
    assert ventral[2] < dorsal[2] - 8.0
    assert ventral[1] > dorsal[1]


def test_reference_excludes_vermis_and_sits_below_occipital_lobe(
    atlas: atl.RoiAtlas, xyz: NDArray[np.float64]
) -> None:
    ref = atlas.masks["cerebellum"]
    assert not np.any(np.isin(atlas.labels[ref], atl.AAL3_VERMIS))
    assert np.all(np.isin(atlas.labels[ref], atl.AAL3_CEREBELLAR_HEMISPHERES))
    occipital = _labels_named(atlas, "Occipital")
    assert xyz[ref][:, 2].max() < xyz[occipital][:, 2].min()
    # at least 10 mm from any occipital or temporal voxel (spill-in from cortex above/beside)
    cortex = occipital | _labels_named(atlas, "Temporal") | _labels_named(atlas, "Fusiform")
    dist_mm = ndimage.distance_transform_edt(~cortex, sampling=2.0)
    assert dist_mm[ref].min() >= 10.0
    # and away from the brain edge (venous sinuses)
    brain = np.asarray(tpl.load_brain_mask(2).dataobj) > 0
    assert ndimage.distance_transform_edt(brain, sampling=2.0)[ref].min() > 8.0


def test_reference_is_grey_matter(atlas: atl.RoiAtlas) -> None:
    gm = np.asarray(tpl.load_tissue_probability("gm", 2).dataobj)
    assert gm[atlas.masks["cerebellum"]].min() >= 0.5


def test_pituitary_position(atlas: atl.RoiAtlas, brain: NDArray[np.bool_]) -> None:
    centroid = atlas.centroid_mm("pituitary")
    assert np.linalg.norm(centroid - np.array([0.0, 2.0, -32.0])) < 2.0
    assert not np.any(atlas.masks["pituitary"] & brain)


def test_carotid_outside_brain_and_beside_pituitary(
    atlas: atl.RoiAtlas, xyz: NDArray[np.float64], brain: NDArray[np.bool_]
) -> None:
    carotid = atlas.masks["carotid"]
    assert not np.any(carotid & brain)
    pts = xyz[carotid]
    assert np.all((np.abs(pts[:, 0]) >= 8.0) & (np.abs(pts[:, 0]) <= 24.0))
    assert -50.0 <= pts[:, 2].min()
    assert pts[:, 2].max() <= -15.0
    dist = ndimage.distance_transform_edt(~atlas.masks["pituitary"], sampling=2.0)
    assert 2.0 <= dist[carotid].min() <= 12.0  # adjacent to, but not touching, the pituitary


def test_habenula_and_control(atlas: atl.RoiAtlas, brain: NDArray[np.bool_]) -> None:
    hab, ctl = atlas.masks["habenula"], atlas.masks["habenula_control"]
    assert hab.sum() == ctl.sum()
    np.testing.assert_allclose(atlas.centroid_mm("habenula"), [0.0, -25.0, 2.0], atol=1.0)
    shift = atlas.centroid_mm("habenula_control") - atlas.centroid_mm("habenula")
    np.testing.assert_allclose(shift, [0.0, 10.0, 0.0], atol=1.0)
    assert np.all(brain[hab])
    assert np.all(brain[ctl])
    assert atlas.label_at((3.0, -25.0, 2.0)).removeprefix("near ").startswith("Thal")


def test_analysis_mask_keeps_rois_outside_brain(
    atlas: atl.RoiAtlas, brain: NDArray[np.bool_]
) -> None:
    am = atlas.analysis_mask
    assert np.all(am[brain])
    for name in ROI_NAMES:
        assert np.all(am[atlas.masks[name]]), name
    extra = am & ~brain
    assert extra.sum() == (atlas.masks["pituitary"] | atlas.masks["carotid"]).sum()


# ---- label_at -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("xyz_mm", "expected"),
    [
        ((-25.0, 2.0, 0.0), "Putamen_L"),
        ((25.0, 2.0, 0.0), "Putamen_R"),
        ((-14.0, 10.0, 12.0), "Caudate_L"),
        ((12.0, 12.0, -8.0), "N_Acc_R"),
        ((30.0, -70.0, -45.0), "Cerebellum_8_R"),
        ((200.0, 0.0, 0.0), "unlabelled"),
        ((0.0, 2.0, -32.0), "unlabelled"),  # pituitary: outside AAL3
    ],
)
def test_label_at(atlas: atl.RoiAtlas, xyz_mm: tuple[float, float, float], expected: str) -> None:
    assert atlas.label_at(xyz_mm) == expected


def test_label_at_near(atlas: atl.RoiAtlas) -> None:
    # an unlabelled voxel whose only labelled neighbours (within 4 mm) are Putamen_L
    put_l = atlas.labels == 77
    ring = ndimage.binary_dilation(put_l) & (atlas.labels == 0)
    other = ndimage.binary_dilation((atlas.labels != 0) & ~put_l, iterations=2)
    candidates = np.argwhere(ring & ~other)
    assert candidates.size
    xyz_mm = nib.affines.apply_affine(atlas.affine, candidates[0])
    assert atlas.label_at(xyz_mm) == "near Putamen_L"
    assert atlas.label_at(np.asarray(xyz_mm) + 0.4) == "near Putamen_L"


# ---- caching, immutability, speed -----------------------------------------------------------
def test_arrays_read_only_and_dicts_fresh(atlas: atl.RoiAtlas) -> None:
    with pytest.raises(ValueError, match="read-only"):
        atlas.masks["putamen"][0, 0, 0] = True
    with pytest.raises(ValueError, match="read-only"):
        atlas.analysis_mask[0, 0, 0] = False
    other = atl.build_roi_atlas(2)
    other.masks.pop("putamen")
    assert "putamen" in atl.build_roi_atlas(2).masks


def test_unknown_roi_raises(atlas: atl.RoiAtlas) -> None:
    with pytest.raises(InputError, match="has no ROI 'thalamus'"):
        atlas.volume_ml("thalamus")


def test_build_time_under_3_s() -> None:
    # CPU time of this process: robust to other jobs competing for the cores.
    # Measured on 2 idle cores: 0.3 s from a loaded template, ~2.2 s cold (nilearn import).
    atl._build_cached.cache_clear()
    atl._aal3_on_grid.cache_clear()
    t0 = time.process_time()
    atl.build_roi_atlas(2)
    assert time.process_time() - t0 < 3.0
    t0 = time.process_time()
    atl.build_roi_atlas(2)
    assert time.process_time() - t0 < 0.05  # cached per process


def test_mask_image_roundtrip(atlas: atl.RoiAtlas, tmp_path: Path) -> None:
    path = tmp_path / "pit.nii.gz"
    nib.save(atlas.mask_image("pituitary"), path)
    back = np.asarray(nib.load(path).dataobj) > 0
    np.testing.assert_array_equal(back, atlas.masks["pituitary"])


# ---- resampling and geometry helpers on toy grids -------------------------------------------
def test_majority_vote_hand_computed() -> None:
    # 1 mm source 6x6x6; 2 mm target 3x3x3 whose centres sit on source voxels 0, 2, 4
    src = np.zeros((6, 6, 6), dtype=np.int32)
    src[2, 2, 2] = 5  # a lone voxel at a target centre: weight 1 of 8 -> background wins
    src[:, :, 4:] = 7  # source z = 4, 5: target z = 2 holds centre+upper face (w 1.5 of 2)
    src[0:2, 0:2, 0:2] = 3  # cube filling the (+) octant of target voxel (0, 0, 0)
    tgt_affine = np.diag([2.0, 2.0, 2.0, 1.0])
    out = atl.resample_labels_majority(src, np.eye(4), tgt_affine, (3, 3, 3))
    assert out[1, 1, 1] == 0
    # target z = 2 holds source z = 3 (w 0.5), 4 (w 1), 5 (w 0.5): label 7 has 1.5 of 2 per z
    # column. Samples beyond the source edge (x or y = -1) vote background: at the corner
    # (0, 0, 2) label 7 weighs 1.5 * 1.5 * 1.5 = 3.375 of 8, so background wins there only.
    expected = np.full((3, 3), 7)
    expected[0, 0] = 0
    np.testing.assert_array_equal(out[:, :, 2], expected)
    # target voxel (1, 1, 1) covers source 1..3 per axis (weights 0.5, 1, 0.5)
    src[2:4, 2:4, 2:4] = 3  # centre + upper faces: (1 + 0.5)^3 = 3.375 of 8 -> background
    out = atl.resample_labels_majority(src, np.eye(4), tgt_affine, (3, 3, 3))
    assert out[1, 1, 1] == 0
    src[1:4, 2:4, 2:4] = 3  # plus the lower x face: 2 * 1.5 * 1.5 = 4.5 of 8 -> label 3
    out = atl.resample_labels_majority(src, np.eye(4), tgt_affine, (3, 3, 3))
    assert out[1, 1, 1] == 3


def test_majority_vote_general_path_matches_aligned_path(rng: np.random.Generator) -> None:
    src = ndimage.zoom(rng.integers(0, 4, size=(5, 6, 7)), 4, order=0).astype(np.int32)
    tgt_affine = np.diag([2.0, 2.0, 2.0, 1.0])
    tgt_affine[:3, 3] = 1.0
    aligned = atl.resample_labels_majority(src, np.eye(4), tgt_affine, (9, 11, 13))
    nudged = np.eye(4)
    nudged[:3, 3] = 1e-4  # breaks the exact-alignment fast path
    general = atl.resample_labels_majority(src, nudged, tgt_affine, (9, 11, 13))
    np.testing.assert_array_equal(aligned, general)


def test_same_grid_resampling_is_identity(rng: np.random.Generator) -> None:
    src = rng.integers(0, 9, size=(7, 8, 9)).astype(np.int32)
    out = atl.resample_labels_majority(src, np.eye(4), np.eye(4), (7, 8, 9))
    np.testing.assert_array_equal(out, src)


def test_tube_and_ellipsoid_volumes() -> None:
    g = np.arange(-40.0, 40.5, 1.0)
    xyz_mm = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1)
    tube = atl.tube_mask(xyz_mm, ((0.0, -15.0, 0.0), (0.0, 15.0, 0.0)), 5.0)
    expected = np.pi * 25 * 30 + 4 / 3 * np.pi * 125  # cylinder + two half-sphere caps, mm3
    assert tube.sum() == pytest.approx(expected, rel=0.03)
    ell = atl.ellipsoid_mask(xyz_mm, (1.0, 2.0, 3.0), (6.0, 5.0, 4.0))
    assert ell.sum() == pytest.approx(4 / 3 * np.pi * 120, rel=0.03)


# ---- custom atlas ---------------------------------------------------------------------------
def _write_custom(
    tmp_path: Path, shape: tuple[int, int, int], affine: NDArray[np.float64], rows: str
) -> tuple[Path, Path]:
    labels = np.zeros(shape, dtype=np.int16)
    labels[1:3, 1:3, 1:3] = 1
    labels[5:7, 1:3, 1:3] = 2
    labels[5:7, 5:7, 5:7] = 3
    img_path = tmp_path / "my_atlas_dseg.nii.gz"
    nib.save(nib.Nifti1Image(labels, affine), img_path)
    tsv_path = tmp_path / "my_atlas_dseg.tsv"
    tsv_path.write_text("index\tname\n" + rows, encoding="utf-8")
    return img_path, tsv_path


def test_custom_atlas_merges_names(tmp_path: Path) -> None:
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    template = nib.Nifti1Image(np.ones((8, 8, 8), dtype=np.float32), affine)
    img_path, tsv_path = _write_custom(
        tmp_path, (8, 8, 8), affine, "1\tputamen\n2\tputamen\n3\tcerebellum\n"
    )
    custom = atl.load_custom_atlas(img_path, tsv_path, template)
    assert custom.name == "myatlasdseg"
    assert set(custom.masks) == {"putamen", "cerebellum"}
    assert custom.masks["putamen"].sum() == 16
    assert custom.masks["cerebellum"].sum() == 8
    assert custom.analysis_mask.all()  # template non-zero everywhere
    assert custom.label_at((2.0, 2.0, 2.0)) == "putamen"


def test_custom_atlas_resampled_to_template_grid(tmp_path: Path) -> None:
    # 1 mm labels, 2 mm template whose voxel centres sit on label-voxel centres: a 4x4x4 mm
    # block (source 4..7) covers, per axis, target voxel 2 by 3/4, voxel 3 fully, voxel 4 by
    # 1/4. Majority (> 1/2 of a voxel): (3,3,3), three (2,3,3)-type (0.75) and three
    # (2,2,3)-type (0.5625) voxels, not (2,2,2) (0.42): 7 voxels = 56 mm3 for 64 mm3.
    labels = np.zeros((16, 16, 16), dtype=np.int16)
    labels[4:8, 4:8, 4:8] = 1
    labels[8:12, 8:12, 8:12] = 2
    img_path = tmp_path / "fine.nii.gz"
    nib.save(nib.Nifti1Image(labels, np.eye(4)), img_path)
    tsv_path = tmp_path / "fine.tsv"
    tsv_path.write_text("index\tname\n1\tcerebellum\n2\troi\n", encoding="utf-8")
    template = nib.Nifti1Image(np.ones((8, 8, 8), np.float32), np.diag([2.0, 2.0, 2.0, 1.0]))
    custom = atl.load_custom_atlas(img_path, tsv_path, template, name="fine")
    assert custom.shape == (8, 8, 8)
    assert custom.masks["cerebellum"].sum() == 7
    assert custom.masks["roi"].sum() == 7
    np.testing.assert_array_equal(np.argwhere(custom.masks["cerebellum"]).max(axis=0), [3, 3, 3])


def test_custom_atlas_without_cerebellum(tmp_path: Path) -> None:
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    template = nib.Nifti1Image(np.ones((8, 8, 8), dtype=np.float32), affine)
    img_path, tsv_path = _write_custom(tmp_path, (8, 8, 8), affine, "1\tputamen\n2\tcaudate\n")
    with pytest.raises(InputError, match=r"my_atlas_dseg\.tsv has no ROI named 'cerebellum'"):
        atl.load_custom_atlas(img_path, tsv_path, template)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("label\tname\n1\tcerebellum\n", r"lacks column\(s\) \['index'\]"),
        ("index\tname\nx\tcerebellum\n", "'index' must be positive integers"),
        ("index\tname\n9\tcerebellum\n", "'cerebellum' .* has no voxels"),
        ("index\tname\n1\tcerebellum\n1\tputamen\n", r"index value\(s\) \[1\] appear more"),
    ],
)
def test_custom_atlas_bad_tables(tmp_path: Path, content: str, match: str) -> None:
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    template = nib.Nifti1Image(np.ones((8, 8, 8), dtype=np.float32), affine)
    img_path, tsv_path = _write_custom(tmp_path, (8, 8, 8), affine, "")
    tsv_path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=match):
        atl.load_custom_atlas(img_path, tsv_path, template)


def test_custom_atlas_missing_file_and_4d(tmp_path: Path) -> None:
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    template = nib.Nifti1Image(np.ones((8, 8, 8), dtype=np.float32), affine)
    with pytest.raises(InputError, match="file not found"):
        atl.load_custom_atlas(tmp_path / "nope.nii.gz", tmp_path / "nope.tsv", template)
    img4d = tmp_path / "four.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((8, 8, 8, 2), dtype=np.int16), affine), img4d)
    tsv = tmp_path / "four.tsv"
    tsv.write_text("index\tname\n1\tcerebellum\n", encoding="utf-8")
    with pytest.raises(InputError, match="must be 3-D"):
        atl.load_custom_atlas(img4d, tsv, template)
