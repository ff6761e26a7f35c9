"""Brain extraction of a whole-head T1w (MPRAGE-like), offline and template-guided.

Registering a whole head (skull, scalp fat, eyes, neck) to a skull-stripped template invites the
affine to inflate the brain onto the skull (measured: volume scaling 1.32 on an individual head).
So the brain is extracted first, in three steps, all on a 2 mm copy of the T1w:

1. **Intensity candidates.** After N4 bias correction (ANTs), the head's intensities are split
   by a 3-class Otsu (dark: air, bone, CSF; middle: grey matter, muscle; bright: white matter,
   fat). Brain tissue is the middle and bright classes up to a little above the white-matter
   peak (the brightest fat is excluded).
2. **Morphology.** The candidates are eroded by ``EROSION_MM`` (cuts the thin bridges to the
   scalp, the optic nerves and the neck muscles), the largest component in the upper head is
   kept, dilated back inside the candidates and its holes (ventricles) filled.
3. **Template prior.** The rough brain is registered to the template brain (affine, Mattes MI);
   the template brain mask, dilated by ``PRIOR_MARGIN_MM``, is pulled back into the T1w and
   intersected with the rough mask. This removes what morphology cannot (brainstem/cord below the
   template's field, residual eye or neck tissue) while the boundary stays the individual's.

The result is reported with its QC numbers: brain volume and the Dice of the rough mask with
the template prior (a failed extraction gives an implausible volume or a low Dice).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bids_app.errors import RegistrationError
from bids_app.preproc._ants import (
    Stage,
    import_ants,
    nifti_to_ants,
    read_affine,
    run_registration,
)

logger = logging.getLogger(__name__)

#: Isotropic voxel size of the working copy, mm.
WORK_VOXEL_MM = 2.0
#: Erosion that separates the brain from scalp, eyes and neck, mm.
EROSION_MM = 4.0
#: Margin of the template brain mask used as a prior, mm.
PRIOR_MARGIN_MM = 6.0
#: Brightest brain intensity relative to the white-matter peak (fat is brighter).
WM_CEILING = 1.15
#: Plausible adult brain volumes (mL), for the QC of the extraction.
BRAIN_VOLUME_ML = (900.0, 2100.0)


@dataclass(frozen=True)
class BrainExtraction:
    """A brain mask of a T1w and how it was obtained.

    Attributes
    ----------
    mask : nibabel.Nifti1Image
        uint8 brain mask on the 2 mm working grid (world coordinates of the T1w).
    brain : nibabel.Nifti1Image
        The bias-corrected T1w on that grid, 0 outside the mask (float32, scaled so that the
        white-matter peak is 1).
    volume_ml : float
        Brain volume, mL.
    prior_dice : float
        Dice of the morphological mask with the template prior (before intersection).
    prior_template_to_t1w : (4, 4) ndarray
        The affine of the prior registration (template points -> T1w points, RAS mm): a good
        start for the normalisation.
    """

    mask: nib.Nifti1Image
    brain: nib.Nifti1Image
    volume_ml: float
    prior_dice: float
    prior_template_to_t1w: NDArray[np.float64]


def _resample_isotropic(img: nib.spatialimages.SpatialImage, voxel_mm: float) -> nib.Nifti1Image:
    """Resample a 3-D image to an isotropic grid covering the same box (linear)."""
    data = np.asarray(img.dataobj, dtype=np.float32)
    data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    affine = np.asarray(img.affine, dtype=np.float64)
    zooms = np.linalg.norm(affine[:3, :3], axis=0)
    shape = np.maximum(1, np.round(np.asarray(data.shape) * zooms / voxel_mm)).astype(int)
    new_affine = affine.copy()
    new_affine[:3, :3] = affine[:3, :3] / zooms * voxel_mm
    # keep the box centre where it was
    old_centre = affine @ np.append((np.asarray(data.shape) - 1) / 2.0, 1.0)
    new_centre = new_affine @ np.append((shape - 1) / 2.0, 1.0)
    new_affine[:3, 3] += (old_centre - new_centre)[:3]
    to_old = np.linalg.inv(affine) @ new_affine
    sigma = np.maximum(0.0, (voxel_mm / zooms - 1.0) * 0.5)
    smooth = ndimage.gaussian_filter(data, sigma) if np.any(sigma > 0) else data
    out = ndimage.affine_transform(
        smooth, to_old[:3, :3], offset=to_old[:3, 3], output_shape=tuple(shape), order=1
    )
    return nib.Nifti1Image(out.astype(np.float32), new_affine)


def _ball(radius_vox: float) -> NDArray[np.bool_]:
    r = int(np.ceil(radius_vox))
    grid = np.indices((2 * r + 1,) * 3) - r
    return np.asarray((grid**2).sum(axis=0) <= radius_vox**2 + 1e-9)


def _otsu_thresholds(values: NDArray[np.float64], n_bins: int = 256) -> tuple[float, float]:
    """Two thresholds of a 3-class Otsu split (maximum between-class variance)."""
    hist, edges = np.histogram(values, bins=n_bins)
    p = hist.astype(np.float64) / max(hist.sum(), 1)
    centres = 0.5 * (edges[:-1] + edges[1:])
    w = np.cumsum(p)
    mu = np.cumsum(p * centres)
    mu_total = mu[-1]
    best, best_t = -1.0, (centres[n_bins // 3], centres[2 * n_bins // 3])
    for i in range(1, n_bins - 2):
        for j in range(i + 1, n_bins - 1):
            w0, w1, w2 = w[i], w[j] - w[i], 1.0 - w[j]
            if w0 <= 0 or w1 <= 0 or w2 <= 0:
                continue
            m0 = mu[i] / w0
            m1 = (mu[j] - mu[i]) / w1
            m2 = (mu_total - mu[j]) / w2
            between = w0 * (m0 - mu_total) ** 2 + w1 * (m1 - mu_total) ** 2
            between += w2 * (m2 - mu_total) ** 2
            if between > best:
                best, best_t = between, (edges[i + 1], edges[j + 1])
    return float(best_t[0]), float(best_t[1])


def _head_mask(data: NDArray[np.float32]) -> NDArray[np.bool_]:
    positive = data[data > 0]
    if positive.size == 0:
        return np.zeros(data.shape, dtype=bool)
    # background (air) is the dark mode: threshold halfway to the tissue median
    threshold = 0.25 * float(np.percentile(positive, 60))
    head = ndimage.binary_closing(data > threshold, structure=_ball(2), iterations=1)
    labels, n = ndimage.label(head)
    if n == 0:
        return head
    sizes = ndimage.sum(head, labels, range(1, n + 1))
    head = labels == (int(np.argmax(sizes)) + 1)
    return np.asarray(ndimage.binary_fill_holes(head), dtype=bool)


def _rough_brain(data: NDArray[np.float32], voxel_mm: float) -> tuple[NDArray[np.bool_], float]:
    """Intensity candidates and morphology; returns the mask and the white-matter peak."""
    head = _head_mask(data)
    values = data[head].astype(np.float64)
    if values.size < 1000:
        msg = "the T1w has almost no signal (no head found); check the image"
        raise RegistrationError(msg)
    low, high = _otsu_thresholds(values)
    bright = values[values >= high]
    hist, edges = np.histogram(bright, bins=128)
    wm_peak = float(0.5 * (edges[np.argmax(hist)] + edges[np.argmax(hist) + 1]))
    candidates = head & (data >= low) & (data <= WM_CEILING * wm_peak)
    core = ndimage.binary_erosion(candidates, structure=_ball(EROSION_MM / voxel_mm))
    labels, n = ndimage.label(core)
    if n == 0:
        msg = "no brain-like tissue survived the erosion; check the T1w contrast (T1-weighted?)"
        raise RegistrationError(msg)
    # the brain is the largest component whose centre lies in the upper part of the head
    sizes = ndimage.sum(core, labels, range(1, n + 1))
    head_z = np.flatnonzero(head.any(axis=(0, 1)))
    z_cut = head_z[0] + 0.35 * (head_z[-1] - head_z[0])
    centres = ndimage.center_of_mass(core, labels, range(1, n + 1))
    order = np.argsort(sizes)[::-1]
    keep = next((int(i) + 1 for i in order if centres[i][2] >= z_cut), int(order[0]) + 1)
    brain = labels == keep
    brain = ndimage.binary_dilation(brain, structure=_ball(EROSION_MM / voxel_mm), mask=candidates)
    brain = ndimage.binary_closing(brain, structure=_ball(1.5), iterations=1)
    return np.asarray(ndimage.binary_fill_holes(brain), dtype=bool), wm_peak


def extract_brain(
    t1w: nib.spatialimages.SpatialImage,
    template: nib.spatialimages.SpatialImage,
    template_mask: NDArray[np.bool_],
    work_dir: Path,
    n_threads: int = 1,
) -> BrainExtraction:
    """Extract the brain of a whole-head T1w (see the module docstring).

    Parameters
    ----------
    t1w : nibabel image
        The participant's T1w, 3-D, any voxel size and orientation.
    template : nibabel image
        The skull-stripped template (its brain intensities guide the prior registration).
    template_mask : (X, Y, Z) bool ndarray
        The template's brain mask on its grid.
    work_dir : Path
        Scratch folder (its transform files are deleted).
    n_threads : int
        ITK threads.

    Returns
    -------
    BrainExtraction
        Mask and skull-stripped T1w on a 2 mm grid, with QC numbers.

    Raises
    ------
    RegistrationError
        When no head or no brain-like tissue is found, or the prior registration fails.
    """
    ants = import_ants(n_threads)
    work_img = _resample_isotropic(t1w, WORK_VOXEL_MM)
    corrected = ants.n4_bias_field_correction(
        nifti_to_ants(work_img), shrink_factor=4, convergence={"iters": [25, 25], "tol": 1e-5}
    )
    data = np.asarray(corrected.numpy(), dtype=np.float32)
    data = np.clip(np.nan_to_num(data), 0.0, None)
    rough, wm_peak = _rough_brain(data, WORK_VOXEL_MM)
    scaled = data / np.float32(wm_peak)
    affine = work_img.affine

    # template prior: rough brain -> template brain (affine), then the template mask back
    tmp = Path(work_dir) / "brain_prior"
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        tpl_data = np.asarray(template.dataobj, dtype=np.float32)
        fixed = nifti_to_ants(template, np.where(template_mask, tpl_data, 0.0))
        moving = nifti_to_ants(nib.Nifti1Image(np.where(rough, scaled, 0.0), affine))
        lin = ((1000, 500, 250), (4, 2, 1), (2.0, 1.0, 0.0))
        stages = [
            Stage("Rigid[0.1]", "Mattes", 32, "Regular", 0.25, *lin),
            Stage("Affine[0.1]", "Mattes", 32, "Regular", 0.25, *lin),
        ]
        files = run_registration(fixed, moving, stages, tmp / "prior_", initial="mass")
        tpl_to_t1w = read_affine(files.affine)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    margin = ndimage.binary_dilation(
        template_mask, structure=_ball(PRIOR_MARGIN_MM / _voxel_mm(template))
    )
    # pull the dilated template mask onto the working grid: work voxel -> world -> template
    to_tpl = np.linalg.inv(template.affine) @ np.linalg.inv(tpl_to_t1w) @ affine
    prior = (
        ndimage.affine_transform(
            margin.astype(np.float32),
            to_tpl[:3, :3],
            offset=to_tpl[:3, 3],
            output_shape=data.shape,
            order=1,
        )
        > 0.5
    )
    prior_dice = _dice(rough, prior & ndimage.binary_erosion(prior, _ball(PRIOR_MARGIN_MM / 2)))
    brain = rough & prior
    labels, n = ndimage.label(brain)
    if n > 1:
        sizes = ndimage.sum(brain, labels, range(1, n + 1))
        brain = labels == (int(np.argmax(sizes)) + 1)
    brain = np.asarray(ndimage.binary_fill_holes(brain), dtype=bool)
    volume_ml = float(brain.sum()) * WORK_VOXEL_MM**3 / 1000.0
    logger.info(
        "brain extraction: %.0f mL, Dice with the template prior %.2f", volume_ml, prior_dice
    )
    mask_img = nib.Nifti1Image(brain.astype(np.uint8), affine)
    brain_img = nib.Nifti1Image(np.where(brain, scaled, 0.0).astype(np.float32), affine)
    return BrainExtraction(mask_img, brain_img, volume_ml, prior_dice, tpl_to_t1w)


def _voxel_mm(img: nib.spatialimages.SpatialImage) -> float:
    return float(np.mean(np.linalg.norm(np.asarray(img.affine)[:3, :3], axis=0)))


def _dice(a: NDArray[np.bool_], b: NDArray[np.bool_]) -> float:
    total = float(a.sum() + b.sum())
    return 2.0 * float((a & b).sum()) / total if total > 0 else 0.0
