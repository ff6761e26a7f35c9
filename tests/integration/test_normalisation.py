"""Normalisation to MNI through the real ANTsPy chains: PET-only and PET -> T1w -> MNI.

Each test registers a synthetic PET (and a whole-head T1w) on the 2 mm MNI grid, put into a
scanner grid through a known mapping, and checks that the result lands back on the template.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from bids_app.preproc.motion import MotionEstimate
from bids_app.preproc.normalisation import normalise_to_template, template_brain_mask
from bids_app.preproc.registration import resample_to_template
from bids_app.preproc.transforms import params_to_matrix
from bids_app.roi.pet_template import load_pet_template
from bids_app.timing import FrameTiming

ants = pytest.importorskip("ants")


def _mni() -> nib.Nifti1Image:
    from nilearn.datasets import load_mni152_template

    tpl = load_mni152_template(resolution=2)
    return nib.Nifti1Image(tpl.get_fdata().astype(np.float32), tpl.affine)


def _to_pet_grid(
    source: np.ndarray, template: nib.Nifti1Image, template_to_pet: np.ndarray
) -> nib.Nifti1Image:
    """Put a template-space image into a 2.5 mm scanner grid through a known mapping."""
    shape = (80, 92, 76)
    aff = np.diag([2.5, 2.5, 2.5, 1.0])
    aff[:3, 3] = -(np.array(shape) - 1) / 2.0 * 2.5 + np.array([2.0, -15.0, 12.0])
    # mild non-linear scaling: a smooth bulge along x
    idx = np.indices(shape, dtype=np.float64)
    world = np.tensordot(aff[:3, :3], idx, axes=1) + aff[:3, 3][:, None, None, None]
    world[0] = world[0] * (1.0 + 0.04 * np.exp(-((world[2] - 20.0) ** 2) / (2 * 30.0**2)))
    pet_to_template = np.linalg.inv(template_to_pet)
    tw = np.tensordot(pet_to_template[:3, :3], world, axes=1)
    tw += pet_to_template[:3, 3][:, None, None, None]
    tvox = np.tensordot(np.linalg.inv(template.affine)[:3, :3], tw, axes=1)
    tvox += np.linalg.inv(template.affine)[:3, 3][:, None, None, None]
    data = ndimage.map_coordinates(source, tvox, order=1, cval=0.0)
    return nib.Nifti1Image(data.astype(np.float32), aff)


TRUE_TEMPLATE_TO_PET = params_to_matrix([6.0, -8.0, 5.0, *np.deg2rad([6.0, -4.0, 3.0])]) @ np.diag(
    [1.06, 0.95, 1.04, 1.0]
)


@pytest.mark.integration
def test_normalise_pet_only_lands_back_on_the_template(tmp_path: Path) -> None:
    template = _mni()
    brain = template_brain_mask(template)
    blurred = ndimage.gaussian_filter(template.get_fdata(), 6.0 / 2.355 / 2.0)
    pet = _to_pet_grid(blurred, template, TRUE_TEMPLATE_TO_PET)
    result = normalise_to_template(pet, template, tmp_path)
    assert result.method == "pet"
    assert all(p.is_file() and p.parent == tmp_path for p in result.transforms)
    assert result.affine_determinant == pytest.approx(
        np.linalg.det(TRUE_TEMPLATE_TO_PET[:3, :3]), rel=0.1
    )
    normalised = result.normalised_mean.get_fdata()
    valid = brain & np.isfinite(normalised)
    assert valid.sum() > 0.95 * brain.sum()
    assert np.corrcoef(normalised[valid], blurred[valid])[0, 1] > 0.95
    assert result.correlation > 0.8  # vs the sharp template: capped by the 6 mm blur
    assert result.brain_overlap > 0.85
    # the constant-in-brain check through the real (SyN) chain
    motionless = np.zeros((2, 6))
    timing_img = nib.Nifti1Image(np.stack([np.full(pet.shape, 2.0)] * 2, -1), pet.affine)
    motion = MotionEstimate(
        reference_to_frame=np.stack([params_to_matrix(p) for p in motionless]),
        confounds=None,  # type: ignore[arg-type]
        reference="test",
        reference_frames=(0,),
        reference_img=pet,
        centre_mm=np.zeros(3),
        signal_fraction=np.ones(2),
        timing=FrameTiming.from_seconds([0, 60], [60, 60]),
    )
    out = resample_to_template(timing_img, motion, result, template).get_fdata()
    inside = np.isfinite(out[..., 0])
    np.testing.assert_allclose(out[..., 0][inside], 2.0, rtol=1e-5)
    assert inside[brain].mean() > 0.95


def mprage_like_head(template: nib.Nifti1Image) -> np.ndarray:
    """A whole-head T1w on the template grid: the template brain inside CSF, a dark skull,
    bright scalp fat, skin, eyes in orbital fat and a neck (MPRAGE-like intensities)."""
    t = template.get_fdata()
    brain = template_brain_mask(template)
    outside_mm = ndimage.distance_transform_edt(~brain) * 2.0
    world = np.tensordot(template.affine[:3, :3], np.indices(t.shape, dtype=float), axes=1)
    x, y, z = (world[i] + template.affine[i, 3] for i in range(3))
    head = np.where(brain, t / np.percentile(t[brain], 99), 0.0)
    layers = ((0, 3, 0.12), (3, 8, 0.05), (8, 11, 1.1), (11, 13, 0.45))
    for lo, hi, value in layers:
        head[(outside_mm > lo) & (outside_mm <= hi)] = value
    neck = ((x / 45.0) ** 2 + ((y + 15.0) / 50.0) ** 2 <= 1.0) & (z < -30.0) & (outside_mm > 3)
    head[neck] = 0.45
    head[neck & (((x / 45.0) ** 2 + ((y + 15.0) / 50.0) ** 2) > 0.8)] = 1.1
    for side in (-1.0, 1.0):
        r = np.sqrt((x - side * 32.0) ** 2 + (y - 52.0) ** 2 + (z + 12.0) ** 2)
        head[(r <= 16.0) & (outside_mm > 3)] = 1.0
        head[(r <= 11.0) & (outside_mm > 3)] = 0.08
    return ndimage.gaussian_filter(head, 0.5)


@pytest.mark.integration
def test_normalise_via_t1w(tmp_path: Path) -> None:
    template = _mni()
    brain = template_brain_mask(template)
    t = template.get_fdata()
    # a whole-head T1w (skull, scalp fat, eyes, neck), in its own pose
    t1w = _to_pet_grid(mprage_like_head(template), template, TRUE_TEMPLATE_TO_PET)
    # the PET: grey-matter-like contrast, 6 mm blur, in another pose (PET -> T1w rigid)
    pet_src = ndimage.gaussian_filter(np.where(brain, 1.5 - 2.0 * np.abs(t - 0.55), 0.0), 1.27)
    t1_to_pet = params_to_matrix([-4.0, 5.0, -3.0, *np.deg2rad([-3.0, 2.0, 4.0])])
    pet = _to_pet_grid(pet_src, template, t1_to_pet @ TRUE_TEMPLATE_TO_PET)
    result = normalise_to_template(
        pet, template, tmp_path, t1w=t1w, pet_template=load_pet_template(2)
    )
    assert result.method == "t1w"
    assert len(result.transforms) == 3
    # the brain was extracted, not the head: no inflation onto the skull (the mapping also has
    # a 4 % non-linear bulge that SyN, not the affine, takes up)
    assert result.affine_determinant == pytest.approx(
        np.linalg.det(TRUE_TEMPLATE_TO_PET[:3, :3]), rel=0.1
    )
    assert result.metrics["t1w_template_dice"] > 0.95
    assert result.metrics["t1w_prior_dice"] > 0.9
    assert 1000.0 < result.metrics["t1w_brain_volume_ml"] < 2200.0
    normalised = result.normalised_mean.get_fdata()
    valid = brain & np.isfinite(normalised)
    assert np.corrcoef(normalised[valid], pet_src[valid])[0, 1] > 0.95
    assert result.brain_overlap > 0.85
    assert result.t1w_mni is not None
