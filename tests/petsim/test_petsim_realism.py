"""Realism options of the simulator: whole-head T1w, individual anatomy, limited field of view,
noise levels. Needs the real template and atlases and one small study (~30 s in all)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from petsim import StudyPaths, atlas, generate_study, head, t1w
from petsim.anatomy import REFERENCE_ROI, brain_mask_1mm, build_anatomy
from petsim.calibration import voxel_bp_noise
from petsim.protocol import FOV_MARGIN_MM, NOISE_LEVELS, default_protocol
from petsim.study import pet_path
from petsim.warp import WarpSettings, load_warp, sample_warp

pytestmark = pytest.mark.integration

MATRIX = [f"m{i}{j}" for i in range(4) for j in range(4)]
T1 = head.T1_INTENSITY


@pytest.fixture(scope="module")
def geometry() -> head._Geometry:
    return head._geometry()


def _intensity(points: list[list[float]], geometry: head._Geometry) -> np.ndarray:
    return head.head_intensity(np.asarray(points, dtype=np.float64), geometry)


def _tissue_points() -> dict[str, np.ndarray]:
    """MNI points of deep white matter and of the lateral ventricles (every 50th voxel)."""
    src = atlas.load_sources()
    xyz = src.grid_1mm.centres_mm().reshape(*src.grid_1mm.shape, 3)
    central = (np.abs(xyz[..., 0]) < 30) & (xyz[..., 2] > 0) & (xyz[..., 2] < 30)
    ventricles = brain_mask_1mm() & (src.gm + src.wm < 0.05) & central
    white = src.wm >= 0.98
    return {
        name: src.grid_1mm.centres_mm(np.flatnonzero(mask.ravel())[::50])
        for name, mask in (("white", white), ("ventricles", ventricles))
    }


def _values_at(
    img: nib.Nifti1Image,
    pose: np.ndarray,
    head_points: np.ndarray,
    frame: int | None = None,
) -> np.ndarray:
    """Nearest-voxel values of an image at head-space points seen through its pose."""
    scanner = pose[:3, :3] @ head_points.T + pose[:3, 3:4]
    inv = np.linalg.inv(img.affine)
    ijk = np.rint(inv[:3, :3] @ scanner + inv[:3, 3:4]).astype(int)
    inside = np.all((ijk >= 0) & (ijk < np.asarray(img.shape[:3])[:, None]), axis=0)
    data = np.asarray(img.dataobj if frame is None else img.dataobj[..., frame], dtype=float)
    return data[tuple(ijk[:, inside])]


def test_head_model_has_mprage_contrast(geometry: head._Geometry) -> None:
    src = atlas.load_sources()
    brain = brain_mask_1mm()
    means = {}
    for name, mask in (
        ("wm", src.wm >= 0.95),
        ("gm", src.gm >= 0.9),
        ("csf", brain & (src.gm + src.wm < 0.05)),
    ):
        idx = np.flatnonzero(mask.ravel())[::400]
        means[name] = float(head.head_intensity(src.grid_1mm.centres_mm(idx), geometry).mean())
    assert means["wm"] > 0.95
    assert means["wm"] > means["gm"] + 0.3 > means["csf"] + 0.6
    assert max(T1.values()) == T1["fat"]


def test_skull_and_scalp_layers_above_the_vertex(geometry: head._Geometry) -> None:
    z = np.arange(60.0, 130.0, 0.25)
    line = np.c_[np.zeros_like(z), np.full_like(z, -20.0), z]
    d_icv = head._sample(geometry.icv_mm, geometry.grid, line, head._FAR_MM)
    d_head = head._sample(geometry.head_mm, geometry.grid, line, head._FAR_MM)
    # points at given distances outside the intracranial volume / inside the scalp surface
    cranial = [np.interp(d, d_icv, z) for d in (1.0, 3.0, 5.5, 8.0)]
    scalp = [np.interp(d, d_head, z) for d in (-4.0, -0.75, 5.0)]
    values = _intensity([[0.0, -20.0, zz] for zz in (*cranial, *scalp)], geometry)
    expected = ["csf", "cortical_bone", "marrow", "cortical_bone", "fat", "skin", "air"]
    np.testing.assert_allclose(values, [T1[t] for t in expected])
    assert scalp[1] - cranial[0] > 12.0  # skull plus scalp: the head is wider than the brain


def test_face_eyes_and_neck(geometry: head._Geometry) -> None:
    eyes = _intensity([[-31.0, 58.0, -38.0], [31.0, 58.0, -38.0], [31.0, 40.0, -38.0]], geometry)
    np.testing.assert_allclose(eyes, [T1["vitreous"], T1["vitreous"], T1["fat"]])
    neck = _intensity(
        [[30.0, -10.0, -120.0], [0.0, 2.0, -120.0], [0.0, -45.0, -120.0], [0.0, -22.0, -120.0]],
        geometry,
    )
    np.testing.assert_allclose(neck, [T1["muscle"], 0.0, T1["cord"], T1["marrow"]])
    assert _intensity([[0.0, 62.0, -52.0], [0.0, 0.0, 140.0]], geometry).tolist() == [0.0, 0.0]


def test_head_is_larger_than_the_brain_with_a_neck() -> None:
    source = head.head_t1_volume(3.0)
    vol = source.volume > 0.02
    xyz = source.grid.centres_mm().reshape(*source.grid.shape, 3)
    brain = brain_mask_1mm()
    b_xyz = atlas.load_sources().grid_1mm.centres_mm(np.flatnonzero(brain.ravel()))
    for axis in (0, 1):
        head_extent = np.ptp(xyz[..., axis][vol])
        brain_extent = np.ptp(b_xyz[:, axis])
        assert 1.15 < head_extent / brain_extent < 1.5, axis
    assert np.any(vol & (xyz[..., 2] < -140.0))  # a neck below the brain


def test_t1w_render_in_pose_with_bias_and_rician_noise(tmp_path: Path) -> None:
    anatomy = build_anatomy()
    warp = sample_warp(np.random.default_rng(4), anatomy.head_centre_mm, WarpSettings())
    path = tmp_path / "sub-01_T1w.nii.gz"
    pose = t1w.render_t1w(
        np.random.default_rng(9), path, head.head_t1_volume(3.0), warp, anatomy.head_centre_mm, 3.0
    )
    img = nib.load(path)
    data = np.asarray(img.dataobj, dtype=np.float64)
    assert img.get_data_dtype() == np.int16
    assert data.shape == tuple(int(np.ceil(f / 3.0)) for f in t1w.T1W_FOV_MM)
    corner = data[:8, :8, -8:]  # air: the Rician (Rayleigh) noise floor
    rayleigh_mean = t1w.RICIAN_SD * np.sqrt(np.pi / 2) * t1w.WM_INTENSITY
    assert corner.mean() == pytest.approx(rayleigh_mean, rel=0.3)
    points = _tissue_points()
    white = _values_at(img, pose, warp.to_head(points["white"]))
    ventricles = _values_at(img, pose, warp.to_head(points["ventricles"]))
    assert 750 < np.median(white) < 1300  # white matter = 1000 times a mild bias field
    assert np.median(ventricles) < 0.5 * np.median(white)


@pytest.fixture(scope="module")
def realistic_study(tmp_path_factory: pytest.TempPathFactory) -> StudyPaths:
    """Small study: individual anatomy, 108 mm axial field of view, whole-head T1w."""
    return generate_study(
        tmp_path_factory.mktemp("realism") / "study",
        small=True,
        n_participants=2,
        seed=5,
        anatomy="individual",
        axial_fov_mm=108.0,
        t1w_skull=True,
        n_jobs=2,
    )


def test_individual_anatomy_is_recorded(realistic_study: StudyPaths) -> None:
    truth = realistic_study.truth_dir
    table = pd.read_csv(truth / "individual_anatomy.tsv", sep="\t")
    assert table[["scale_x", "scale_y", "scale_z"]].stack().between(0.95, 1.05).all()
    assert table.displacement_sd_mm.between(2.0, 4.0).all()
    assert table.smoothness_mm.between(10.0, 20.0).all()
    assert (table.jacobian_min >= 0.2).all()
    meta = json.loads((truth / "truth.json").read_text())
    assert meta["settings"]["anatomy"] == "individual"
    assert "psi(y)" in meta["anatomy_convention"]
    warps = [load_warp(truth, sub) for sub in table.participant_id]
    assert not any(w.is_identity for w in warps)
    x = np.array([[20.0, 5.0, 2.0], [-12.0, 10.0, 10.0]])
    assert np.linalg.norm(warps[0].to_head(x) - warps[1].to_head(x), axis=1).min() > 0.5


def test_field_of_view_is_fixed_and_covers_the_reference(realistic_study: StudyPaths) -> None:
    truth = realistic_study.truth_dir
    protocol = dataclasses.replace(default_protocol(small=True), axial_fov_mm=108.0)
    coverage = pd.read_csv(truth / "fov_coverage.tsv", sep="\t")
    assert (coverage.coverage_min_frames <= coverage.coverage).all()
    ref = coverage[coverage.roi == REFERENCE_ROI]
    assert (ref.coverage == 1.0).all()
    poses = pd.read_csv(truth / "session_poses.tsv", sep="\t")
    anatomy = build_anatomy()
    cerebellum = anatomy.grid.centres_mm(np.flatnonzero(anatomy.cerebellum_whole.ravel()))
    affine = protocol.native_affine()
    fov_bottom = affine[2, 3] - 0.5 * affine[2, 2]
    for sub in ("sub-01", "sub-02"):
        head_points = load_warp(truth, sub).to_head(cerebellum)
        for ses in ("sal", "nal"):
            img = nib.load(pet_path(realistic_study.bids_dir, sub, ses))
            assert img.shape[:3] == (52, 60, 27)
            np.testing.assert_allclose(img.affine, affine)
            row = poses[(poses.participant_id == sub) & (poses.image == f"pet_ses-{ses}")]
            pose = row[MATRIX].to_numpy(dtype=float).reshape(4, 4)
            lowest = (pose[2, :3] @ head_points.T + pose[2, 3]).min()
            assert lowest == pytest.approx(fov_bottom + FOV_MARGIN_MM, abs=1e-6)
            late = np.asarray(img.dataobj)[..., -1]
            # the head extends beyond the top of the field of view: the top slice is brain
            assert late[..., -1].mean() > 0.3 * late[..., late.shape[2] // 2].mean()
    expected = pd.read_csv(truth / "expected_roi_measures.tsv", sep="\t")
    dorsal = expected[(expected.roi == "dorsal_striatum") & (expected.method == "roi_tac")]
    assert dorsal.BPND.between(1.0, 2.5).all()


def test_pet_and_t1w_show_the_same_individual_anatomy(realistic_study: StudyPaths) -> None:
    truth, bids = realistic_study.truth_dir, realistic_study.bids_dir
    poses = pd.read_csv(truth / "session_poses.tsv", sep="\t")
    rows = poses[poses.participant_id == "sub-01"].set_index("image")
    warp = load_warp(truth, "sub-01")
    anatomy = build_anatomy()

    def pose(image: str) -> np.ndarray:
        return rows.loc[image, MATRIX].to_numpy(dtype=float).reshape(4, 4)

    def head_points(roi: str) -> np.ndarray:
        mask = anatomy.roi_masks[roi].ravel()
        return warp.to_head(anatomy.grid.centres_mm(np.flatnonzero(mask)))

    pet = nib.load(pet_path(bids, "sub-01", "sal"))
    putamen = _values_at(pet, pose("pet_ses-sal"), head_points("putamen"), frame=-1)
    reference = _values_at(pet, pose("pet_ses-sal"), head_points(REFERENCE_ROI), frame=-1)
    assert putamen.mean() > 1.8 * reference.mean()
    anat = nib.load(bids / "sub-01" / "anat" / "sub-01_T1w.nii.gz")
    points = _tissue_points()
    white = _values_at(anat, pose("T1w"), warp.to_head(points["white"]))
    ventricles = _values_at(anat, pose("T1w"), warp.to_head(points["ventricles"]))
    assert np.median(white) > 2.0 * np.median(ventricles)


def test_noise_levels_reach_the_documented_voxel_cov() -> None:
    protocol = default_protocol()
    high = voxel_bp_noise(dataclasses.replace(protocol, noise_scale=NOISE_LEVELS["high"]), seed=1)
    example = voxel_bp_noise(protocol, seed=1)
    assert 0.10 <= high.cov <= 0.20
    assert example.cov < 0.05
    assert high.n_voxels > 3000
