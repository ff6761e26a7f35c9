"""Normalisation of a participant's PET to the MNI template: PET-only, or through the T1w.

Both paths return a :class:`Normalisation`: ANTs transform files that map **template-grid points
to baseline PET reference-space points** (the pull-back :func:`~bids_app.preproc.registration.
resample_to_template` composes with the motion and session transforms, so each frame is
interpolated once), the linear part, and the numbers quality control judges.

PET-only
    An early (perfusion-like) PET mean is registered to a PET-contrast template
    (:func:`bids_app.roi.pet_template.load_pet_template`): rigid -> affine (-> SyN), Mattes MI.
With a T1w (a whole-head MPRAGE is expected: skull, scalp, neck)
    1. the brain is extracted (:func:`bids_app.preproc.brain.extract_brain`, template guided);
    2. T1w brain -> template brain: affine (started from the extraction's prior) -> SyN,
       Mattes MI, both images skull-stripped, on 2 mm grids;
    3. PET -> T1w: rigid, Mattes MI, against the skull-stripped T1w inside the brain mask
       dilated by the PET's blur;
    4. the chain is template -> T1w (warp, affine) -> PET (rigid).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast

import nibabel as nib
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bids_app.errors import InputError, RegistrationError
from bids_app.preproc._ants import (
    OUTSIDE,
    RETRY_INITIALISATIONS,
    Stage,
    as_3d,
    import_ants,
    inverse_warp_file,
    nifti_to_ants,
    outside_to_nan,
    read_affine,
    run_registration,
    write_affine,
)
from bids_app.preproc.brain import extract_brain

logger = logging.getLogger(__name__)

#: Plausible range of the determinant of the template -> PET affine (volume ratio); outside it
#: the normalisation raises (QC judges narrower ranges, see :mod:`bids_app.pipelines.qc`).
DETERMINANT_RANGE = (0.5, 2.0)
#: Minimum Dice overlap of the normalised PET signal with the template brain mask.
MIN_BRAIN_OVERLAP = 0.6
#: Dilation (mm) of the template brain mask that restricts the PET-only metric (no PET
#: template given).
MASK_MARGIN_PET_MM = 8.0
#: Dilation (mm) of the T1w brain mask inside which the flip test scores PET and mirror (PET blur).
PET_TO_T1W_MARGIN_MM = 8.0


@dataclass(frozen=True)
class Normalisation:
    """Mapping from the template grid to the baseline PET reference space.

    Attributes
    ----------
    transforms : tuple of Path
        ANTs transform files, in ``ants.apply_transforms`` order with ``fixed`` = template:
        they map template points to PET reference-space points.
    affine : (4, 4) ndarray
        The linear part (template -> PET, RAS mm): the affine stage, composed with the
        T1w -> PET rigid when a T1w was used.
    affine_determinant : float
        ``det`` of the linear part: PET volume per template volume.
    correlation : float
        Pearson correlation, inside the template brain, of the normalised image the
        registration was driven by (PET mean, or T1w brain) with its target.
    brain_overlap : float
        Dice overlap of the normalised PET signal (smoothed mean > 25 % of its 99th percentile)
        with the template brain mask (contrast-independent).
    method : {"pet", "t1w"}
        PET-only normalisation or via the participant's T1w.
    normalised_mean : nibabel.Nifti1Image
        The PET mean on the template grid (NaN outside the PET field of view), for reports.
    metrics : dict of str to float
        Further QC numbers: ``jacobian_min``, ``jacobian_max``, ``jacobian_mean`` (of the
        template -> PET mapping inside the brain); with a T1w also ``t1w_brain_volume_ml``,
        ``t1w_prior_dice``, ``t1w_template_dice``, ``t1w_template_correlation``.
    t1w_mni : nibabel.Nifti1Image or None
        The skull-stripped T1w on the template grid (T1w path), for reports.
    """

    transforms: tuple[Path, ...]
    affine: NDArray[np.float64]
    affine_determinant: float
    correlation: float
    brain_overlap: float
    method: Literal["pet", "t1w"]
    normalised_mean: nib.Nifti1Image
    metrics: dict[str, float] = field(default_factory=dict)
    t1w_mni: nib.Nifti1Image | None = None


# --------------------------------------------------------------------------- helpers
def template_brain_mask(template: nib.spatialimages.SpatialImage) -> NDArray[np.bool_]:
    """Brain mask of a (skull-stripped) template: voxels above 10 % of its maximum, holes filled.

    Returns
    -------
    (nx, ny, nz) ndarray of bool
        Mask on the template grid.
    """
    data = np.nan_to_num(np.asarray(template.dataobj, dtype=np.float64))
    mask = data > 0.1 * float(data.max())
    return np.asarray(ndimage.binary_fill_holes(mask), dtype=bool)


def _dilate_mm(mask: NDArray[np.bool_], margin_mm: float, voxel_mm: float) -> NDArray[np.bool_]:
    return np.asarray(
        ndimage.binary_dilation(mask, iterations=max(1, round(margin_mm / voxel_mm))), dtype=bool
    )


def _voxel_mm(img: nib.spatialimages.SpatialImage) -> float:
    return float(np.mean(np.linalg.norm(np.asarray(img.affine)[:3, :3], axis=0)))


def _correlation(
    a: NDArray[np.floating], b: NDArray[np.floating], mask: NDArray[np.bool_]
) -> float:
    valid = mask & np.isfinite(a) & np.isfinite(b)
    if valid.sum() < 100:
        return float("nan")
    x = np.asarray(a[valid], dtype=np.float64)
    y = np.asarray(b[valid], dtype=np.float64)
    if x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def _brain_dice(normalised: NDArray[np.float32], brain: NDArray[np.bool_]) -> float:
    """Dice of the smoothed normalised signal (> 25 % of its 99th percentile) with ``brain``."""
    smooth = ndimage.gaussian_filter(np.nan_to_num(normalised).astype(np.float64), 1.5)
    positive = smooth[smooth > 0]
    if positive.size == 0:
        return 0.0
    signal = np.asarray(
        ndimage.binary_fill_holes(smooth > 0.25 * np.percentile(positive, 99.0)), dtype=bool
    )
    return 2.0 * float((signal & brain).sum()) / float(signal.sum() + brain.sum())


def jacobian_stats(transforms: tuple[Path, ...], brain: NDArray[np.bool_]) -> dict[str, float]:
    """Jacobian determinant of the template -> subject mapping inside the brain.

    The affine part contributes ``det(A)`` everywhere; a SyN warp multiplies it by
    ``det(I + grad u)`` of its displacement field ``u`` (central differences, mm/mm).
    """
    det_linear = 1.0
    for path in transforms:
        if path.suffix == ".mat":
            det_linear *= float(np.linalg.det(read_affine(path)[:3, :3]))
    local = np.ones(brain.shape, dtype=np.float64)
    warps = [t for t in transforms if t.name.endswith("Warp.nii.gz")]
    for warp_path in warps:
        field_img = cast(nib.Nifti1Image, nib.load(warp_path))
        disp = np.asarray(field_img.dataobj, dtype=np.float64).reshape(*field_img.shape[:3], 3)
        if field_img.shape[:3] != brain.shape:
            continue
        # ITK stores LPS displacements; the determinant is unchanged by the fixed axis flip of
        # both the displacement and the coordinates
        spacing = np.linalg.norm(np.asarray(field_img.affine)[:3, :3], axis=0)
        grad = np.empty((*brain.shape, 3, 3))
        for i in range(3):
            for j in range(3):
                grad[..., i, j] = np.gradient(disp[..., i], spacing[j], axis=j)
        jac = grad + np.eye(3)
        local *= np.linalg.det(jac)
    values = local[brain] * det_linear
    return {
        "jacobian_min": float(np.min(values)),
        "jacobian_max": float(np.max(values)),
        "jacobian_mean": float(np.mean(values)),
    }


def affine_disagreement_mm(
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    template: nib.spatialimages.SpatialImage,
    brain: NDArray[np.bool_],
) -> float:
    """RMS distance (mm) between where two affines send the template's brain voxels."""
    ijk = np.argwhere(brain)[::7].astype(np.float64)
    points = np.c_[ijk, np.ones(len(ijk))] @ np.asarray(template.affine).T
    diff = points @ (a - b).T
    return float(np.sqrt(np.mean(np.sum(diff[:, :3] ** 2, axis=1))))


def hot_region_dice(
    image: NDArray[np.floating],
    region: NDArray[np.bool_],
    search_mm: float = 10.0,
    voxel_mm: float = 2.0,
) -> float:
    """Dice of a high-binding ROI (e.g. the striatum) with as many of the hottest voxels.

    The hottest voxels are taken inside ``region`` dilated by ``search_mm`` (and the field of
    view, where ``image`` is finite), so the measure asks whether the high-binding region sits
    where the atlas puts it. NaN when fewer than 10 ROI voxels are in the field of view.
    """
    values = np.asarray(image, dtype=np.float64)
    search = ndimage.binary_dilation(region, iterations=max(1, round(search_mm / voxel_mm)))
    search &= np.isfinite(values)
    target = region & search
    n = int(target.sum())
    if n < 10:
        return float("nan")
    threshold = np.sort(values[search])[-n]
    hot = search & (np.where(search, values, -np.inf) >= threshold)
    return 2.0 * float((hot & target).sum()) / float(hot.sum() + target.sum())


# --------------------------------------------------------------------------- registrations
def _linear_stages(
    levels: tuple[tuple[int, ...], tuple[int, ...], tuple[float, ...]], *, rigid: bool = True
) -> list[Stage]:
    stages = [Stage("Affine[0.1]", "Mattes", 32, "Regular", 0.25, *levels)]
    if rigid:
        stages.insert(0, Stage("Rigid[0.1]", "Mattes", 32, "Regular", 0.25, *levels))
    return stages


SYN_STAGE = Stage("SyN[0.1,3,0]", "Mattes", 32, "Regular", 0.5, (50, 20, 0), (4, 2, 1), (2, 1, 0))
"""The deformable stage (the last level is skipped: 2 mm is the template's own resolution)."""


def _scaling_problem(det: float) -> str | None:
    """Why a volume scaling (affine determinant) to the template is implausible, or None."""
    low, high = DETERMINANT_RANGE
    if not low <= det <= high:
        return f"the affine scales the volume by {det:.2f} (expected {low}-{high})"
    return None


def _register_to_template(
    moving: Any,
    target: Any,
    fixed_mask: Any | None,
    prefix: Path,
    *,
    deformable: bool,
    initial: Literal["mass"] | Path = "mass",
    keep_inverse: bool = False,
) -> tuple[Path, ...]:
    """Register ``moving`` to ``target``; return the transforms, target -> moving order.

    With ``keep_inverse`` (deformable only) the inverse warp stays on disk as
    ``<prefix>1InverseWarp.nii.gz`` (:func:`~bids_app.preproc._ants.inverse_warp_file`).
    """
    levels = ((1000, 500, 250), (8, 4, 2), (3.0, 2.0, 1.0))
    stages = _linear_stages(levels, rigid=not isinstance(initial, Path))
    if deformable:
        stages.append(SYN_STAGE)
    # from the centre of mass, then from the image centres when that fails or is implausible
    # (a limited field of view puts the PET's centre of mass far from the brain's)
    files = run_registration(
        target,
        moving,
        stages,
        prefix,
        initial=RETRY_INITIALISATIONS if initial == "mass" else initial,
        fixed_mask=fixed_mask,
        plausible=lambda f: _scaling_problem(float(np.linalg.det(read_affine(f.affine)[:3, :3]))),
    )
    if files.inverse_warp is not None and not keep_inverse:
        files.inverse_warp.unlink(missing_ok=True)
    if not deformable:
        return (files.affine,)
    if files.warp is None:
        msg = f"normalisation wrote no warp field (expected {prefix}1Warp.nii.gz)"
        raise RegistrationError(msg)
    return (files.warp, files.affine)


def _pet_only(
    pet: Any,
    tpl3: nib.Nifti1Image,
    brain: NDArray[np.bool_],
    pet_template: nib.spatialimages.SpatialImage | None,
    work: Path,
    deformable: bool,
) -> tuple[tuple[Path, ...], NDArray[np.float64], NDArray[np.float64]]:
    """PET mean -> PET template (or T1 template inside the dilated brain)."""
    if pet_template is not None:
        target_img = as_3d(pet_template, "pet_template")
        target, target_mask = nifti_to_ants(target_img), None
        reference = np.asarray(target_img.dataobj, dtype=np.float64)
    else:
        dilated = _dilate_mm(brain, MASK_MARGIN_PET_MM, _voxel_mm(tpl3))
        target = nifti_to_ants(tpl3)
        target_mask = nifti_to_ants(tpl3, dilated.astype(np.float32))
        reference = np.asarray(tpl3.dataobj, dtype=np.float64)
    transforms = _register_to_template(
        pet, target, target_mask, work / "norm_pet_", deformable=deformable
    )
    return transforms, read_affine(transforms[-1]), reference


@dataclass(frozen=True)
class _T1wResult:
    transforms: tuple[Path, ...]
    linear: NDArray[np.float64]
    metrics: dict[str, float]
    t1w_mni: nib.Nifti1Image
    correlation: float


def nearest_rigid(matrix: NDArray[np.float64], centre: NDArray[np.float64]) -> NDArray[np.float64]:
    """The rigid transform closest to an affine ``matrix`` that agrees with it at ``centre``.

    The rotation is the orthogonal polar factor of the linear part (scaling and shear dropped);
    the translation keeps ``matrix @ centre`` where it is.
    """
    u, _, vt = np.linalg.svd(matrix[:3, :3])
    rotation = u @ vt
    if np.linalg.det(rotation) < 0:
        u[:, -1] *= -1.0
        rotation = u @ vt
    out = np.eye(4)
    out[:3, :3] = rotation
    out[:3, 3] = (matrix @ np.append(centre, 1.0))[:3] - rotation @ centre
    return out


def _mutual_information(
    ants: Any, fixed: Any, moving: Any, transform: Path, mask: NDArray[np.bool_]
) -> float:
    """Mattes mutual information (ANTs sign: more negative is better) inside ``mask``."""
    warped = ants.apply_transforms(fixed, moving, [str(transform)], interpolator="linear")
    a = np.where(mask, fixed.numpy(), 0.0).astype(np.float32)
    b = np.where(mask, warped.numpy(), 0.0).astype(np.float32)
    return float(ants.image_mutual_information(ants.from_numpy(a), ants.from_numpy(b)))


def _mirror_test(
    ants: Any,
    t1_brain: Any,
    pet: Any,
    pet3: nib.spatialimages.SpatialImage,
    pet_affine: NDArray[np.float64],
    brain_centre_tpl_mm: NDArray[np.float64],
    rigid_file: Path,
    fixed_mask: Any,
    mask: NDArray[np.bool_],
    stage: Stage,
    work: Path,
) -> float:
    """Relative MI gain of the PET over its left-right mirror image as the T1w's match.

    The PET is mirrored about the head's midsagittal plane (the template's x = 0 carried into
    PET space by the rigid part of the PET-only affine) by changing its affine only, so its
    voxel values are not interpolated, and registered to the T1w (rigid, started where the
    PET -> T1w registration ended). Both fits are then scored the same way: Mattes MI inside
    the same T1w mask. Returns ``(MI_mirror - MI_PET) / |MI_PET|`` with ANTs' sign (more
    negative MI is better): positive when the PET as acquired matches the T1w better, negative
    when its mirror image does (a T1w flipped left-right relative to the PET).
    """
    rigid = nearest_rigid(pet_affine, brain_centre_tpl_mm)
    flip_x = np.diag([-1.0, 1.0, 1.0, 1.0])
    reflection = rigid @ flip_x @ np.linalg.inv(rigid)  # PET space, about the midline
    data = np.asarray(pet3.dataobj, dtype=np.float32)
    mirrored = nifti_to_ants(nib.Nifti1Image(data, reflection @ pet3.affine))
    files = run_registration(
        t1_brain,
        mirrored,
        [stage],
        work / "norm_t1w2pet_mirror_",
        initial=rigid_file,
        fixed_mask=fixed_mask,
    )
    original = _mutual_information(ants, t1_brain, pet, rigid_file, mask)
    mirror = _mutual_information(ants, t1_brain, mirrored, files.affine, mask)
    files.affine.unlink(missing_ok=True)
    return (mirror - original) / abs(original) if original != 0 else float("nan")


def _via_t1w(
    pet: Any,
    pet3: nib.spatialimages.SpatialImage,
    t1w: nib.spatialimages.SpatialImage,
    tpl3: nib.Nifti1Image,
    brain: NDArray[np.bool_],
    pet_affine: NDArray[np.float64],
    pet_template: nib.spatialimages.SpatialImage | None,
    work: Path,
    n_threads: int,
) -> _T1wResult:
    """PET -> T1w (rigid) and skull-stripped T1w -> template (affine + SyN).

    ``pet_affine`` is the PET-only affine (template -> PET points). The PET -> T1w rigid starts
    from the rigid part of ``pet_affine @ inv(template -> T1w affine)``: a PET with a limited
    axial field of view has its centre of mass far from the brain's, and a centre-of-mass start
    left the striatum 12 mm too high in a measured case.
    """
    ants = import_ants(n_threads)
    extraction = extract_brain(as_3d(t1w, "t1w"), tpl3, brain, work, n_threads)
    t1_brain = nifti_to_ants(extraction.brain)
    tpl_data = np.asarray(tpl3.dataobj, dtype=np.float32)
    fixed = nifti_to_ants(tpl3, np.where(brain, tpl_data, 0.0))
    prior = write_affine(extraction.prior_template_to_t1w, work / "norm_t1w_prior.mat")
    to_t1w = _register_to_template(
        t1_brain,
        fixed,
        None,
        work / "norm_t1w_",
        deformable=True,
        initial=prior,
        keep_inverse=pet_template is not None,
    )
    prior.unlink(missing_ok=True)
    # PET -> T1w rigid against the PET template carried into T1w space (the contrast of the
    # PET mean, with the participant's anatomy) or, without a PET template, the stripped T1w.
    # Over the whole T1w grid: restricted to the brain mask dilated by 8 mm, the fit ended
    # 3-14 mm from the truth on realistic heads (the PET's brain edge is its strongest feature
    # and sat on the mask's border); unmasked it ends within 1-2 mm (docs/normalisation.md).
    mask = np.asarray(extraction.mask.dataobj) > 0
    t1_mask = _dilate_mm(mask, PET_TO_T1W_MARGIN_MM, _voxel_mm(extraction.mask))
    centre = (extraction.mask.affine @ np.append(np.argwhere(mask).mean(axis=0), 1.0))[:3]
    start = nearest_rigid(pet_affine @ np.linalg.inv(read_affine(to_t1w[-1])), centre)
    init = write_affine(start, work / "norm_t1w2pet_init.mat")
    # 10 % of the grid's voxels: as accurate as 50 % on realistic heads, 7x faster (unmasked)
    rigid = Stage(
        "Rigid[0.1]", "Mattes", 32, "Regular", 0.1, (1000, 500, 250), (4, 2, 1), (2.0, 1.0, 0.0)
    )
    mirror_rigid = replace(rigid, sampling_rate=0.5)  # inside the mask, as calibrated
    fixed_mask = nifti_to_ants(extraction.mask, t1_mask.astype(np.float32))
    pet_target = t1_brain
    if pet_template is not None:
        inverse = inverse_warp_file(work / "norm_t1w_")
        pet_target = ants.apply_transforms(
            t1_brain,
            nifti_to_ants(as_3d(pet_template, "pet_template")),
            [str(to_t1w[-1]), str(inverse)],
            whichtoinvert=[True, False],
            interpolator="linear",
        )
        inverse.unlink(missing_ok=True)
    pet_files = run_registration(pet_target, pet, [rigid], work / "norm_t1w2pet_", initial=init)
    init.unlink(missing_ok=True)
    tpl_centre = (tpl3.affine @ np.append(np.argwhere(brain).mean(axis=0), 1.0))[:3]
    mirror_gain = _mirror_test(
        ants,
        t1_brain,
        pet,
        pet3,
        pet_affine,
        tpl_centre,
        pet_files.affine,
        fixed_mask,
        t1_mask,
        mirror_rigid,
        work,
    )
    transforms = (*to_t1w, pet_files.affine)
    linear = read_affine(pet_files.affine) @ read_affine(to_t1w[-1])
    warped_t1 = ants.apply_transforms(
        nifti_to_ants(tpl3), t1_brain, [str(t) for t in to_t1w], interpolator="linear"
    )
    t1_mni = np.asarray(warped_t1.numpy(), dtype=np.float32)
    warped_mask = ants.apply_transforms(
        nifti_to_ants(tpl3),
        nifti_to_ants(extraction.mask, mask.astype(np.float32)),
        [str(t) for t in to_t1w],
        interpolator="linear",
    )
    mask_mni = np.asarray(warped_mask.numpy()) > 0.5
    t1w_dice = 2.0 * float((mask_mni & brain).sum()) / float(mask_mni.sum() + brain.sum())
    correlation = _correlation(t1_mni, tpl_data, brain)
    metrics = {
        "t1w_brain_volume_ml": extraction.volume_ml,
        "t1w_prior_dice": extraction.prior_dice,
        "t1w_template_dice": t1w_dice,
        "t1w_template_correlation": correlation,
        "t1w_mirror_mi_gain": mirror_gain,
    }
    return _T1wResult(
        transforms, linear, metrics, nib.Nifti1Image(t1_mni, tpl3.affine), correlation
    )


def normalise_to_template(
    pet_mean: nib.spatialimages.SpatialImage,
    template: nib.spatialimages.SpatialImage,
    work_dir: Path,
    *,
    t1w: nib.spatialimages.SpatialImage | None = None,
    pet_template: nib.spatialimages.SpatialImage | None = None,
    pet_deformable: bool = False,
    template_mask: NDArray[np.bool_] | None = None,
    binding_mean: nib.spatialimages.SpatialImage | None = None,
    binding_region: NDArray[np.bool_] | None = None,
    check: bool = True,
    n_threads: int = 1,
) -> Normalisation:
    """Normalise a PET mean image (baseline reference space) to the template.

    Parameters
    ----------
    pet_mean : nibabel image
        3-D PET mean in the baseline reference space: an early (perfusion-like) mean for the
        PET-only path, a whole-scan mean for the T1w path.
    template : nibabel image
        3-D skull-stripped template (nilearn's MNI152 2009a at 2 mm); its grid is the output grid.
    work_dir : Path
        Folder that keeps the transform files (``norm_*``); they must live as long as the
        result is used for resampling.
    t1w : nibabel image, optional
        The participant's T1w (any space; whole head expected, a skull-stripped one works too).
    pet_template : nibabel image, optional
        A template with PET contrast on the template grid. PET-only path: registration to it
        over the whole image; without it the PET registers to the T1 template inside the brain
        mask dilated by 8 mm, which settles on brains scaled by 10-20 % (measured). T1w path:
        carried into T1w space by the inverse T1w warp, it is the target of the PET -> T1w
        rigid; without it the stripped T1w is.
    pet_deformable : bool
        Add a SyN stage to the PET-only path (default: rigid -> affine).
    template_mask : (nx, ny, nz) ndarray of bool, optional
        Brain mask on the template grid (default :func:`template_brain_mask`).
    binding_mean : nibabel image, optional
        A mean dominated by specific binding (whole scan or late frames) in the baseline
        reference space, and
    binding_region : (nx, ny, nz) ndarray of bool, optional
        the ROI where the tracer binds most (the striatum for D2/3 tracers) on the template
        grid. With a T1w, both give ``metrics["binding_dice_t1w"]`` and
        ``metrics["binding_dice_pet_only"]`` (:func:`hot_region_dice` of the mean normalised
        through each mapping): the T1w path should place the PET's own high-binding region at
        least as well as the PET-only affine does, and falls clearly below it with a T1w of
        another head.
    check : bool
        Raise :class:`RegistrationError` on an implausible result (default True).
    n_threads : int
        ITK threads.

    Returns
    -------
    Normalisation
        Transform files, linear part, QC numbers and the normalised mean.

    Raises
    ------
    RegistrationError
        ``affine_determinant`` outside ``DETERMINANT_RANGE`` or ``brain_overlap`` below
        ``MIN_BRAIN_OVERLAP`` (when ``check``), a failed brain extraction, or an ANTs failure.
    """
    ants = import_ants(n_threads)
    pet3 = as_3d(pet_mean, "pet_mean")
    tpl3 = as_3d(template, "template")
    brain = template_brain_mask(tpl3) if template_mask is None else np.asarray(template_mask, bool)
    if brain.shape != tpl3.shape:
        msg = f"template_mask shape {brain.shape} differs from the template's {tpl3.shape}"
        raise InputError(msg)
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    pet = nifti_to_ants(pet3)
    metrics: dict[str, float] = {}
    t1w_mni = None
    reference: NDArray[np.float64] | None
    transforms, linear, reference = _pet_only(
        pet, tpl3, brain, pet_template, work, pet_deformable and t1w is None
    )
    method: Literal["pet", "t1w"] = "pet"
    if t1w is not None:
        pet_affine, pet_only = linear, transforms[-1]
        via = _via_t1w(pet, pet3, t1w, tpl3, brain, pet_affine, pet_template, work, n_threads)
        transforms, linear, metrics, t1w_mni = via.transforms, via.linear, via.metrics, via.t1w_mni
        metrics["pet_only_agreement_mm"] = affine_disagreement_mm(linear, pet_affine, tpl3, brain)
        if binding_mean is not None and binding_region is not None:
            binding = nifti_to_ants(as_3d(binding_mean, "binding_mean"))
            for key, chain in (
                ("binding_dice_t1w", transforms),
                ("binding_dice_pet_only", (pet_only,)),
            ):
                warped_binding = ants.apply_transforms(
                    nifti_to_ants(tpl3),
                    binding,
                    [str(t) for t in chain],
                    interpolator="linear",
                    defaultvalue=OUTSIDE,
                )
                metrics[key] = hot_region_dice(
                    outside_to_nan(warped_binding.numpy()),
                    binding_region,
                    voxel_mm=_voxel_mm(tpl3),
                )
        reference = None
        method = "t1w"
    warped = ants.apply_transforms(
        nifti_to_ants(tpl3),
        pet,
        [str(t) for t in transforms],
        interpolator="linear",
        defaultvalue=OUTSIDE,
    )
    normalised = outside_to_nan(warped.numpy())
    if reference is not None:
        correlation = _correlation(normalised, reference, brain)
    else:
        correlation = metrics["t1w_template_correlation"]
    overlap = _brain_dice(normalised, brain)
    metrics.update(jacobian_stats(transforms, brain))
    det = float(np.linalg.det(linear[:3, :3]))
    result = Normalisation(
        transforms=transforms,
        affine=linear,
        affine_determinant=det,
        correlation=correlation,
        brain_overlap=overlap,
        method=method,
        normalised_mean=nib.Nifti1Image(normalised, tpl3.affine),
        metrics=metrics,
        t1w_mni=t1w_mni,
    )
    logger.info(
        "normalisation (%s): det %.3f, brain overlap %.3f, correlation %.3f, %s",
        method,
        det,
        overlap,
        correlation,
        ", ".join(f"{k} {v:.3g}" for k, v in metrics.items()),
    )
    if check:
        check_normalisation(result)
    return result


def check_normalisation(result: Normalisation) -> None:
    """Raise :class:`RegistrationError` when a normalisation is implausible.

    Criteria: ``DETERMINANT_RANGE[0] <= affine_determinant <= DETERMINANT_RANGE[1]`` and
    ``brain_overlap >= MIN_BRAIN_OVERLAP``. Narrower, calibrated thresholds are QC's job
    (:mod:`bids_app.pipelines.qc`); these only stop results that cannot be used at all.
    """
    scaling = _scaling_problem(result.affine_determinant)
    if scaling is not None:
        msg = (
            f"normalisation to the template is implausible: {scaling}. Check the PET image "
            "orientation and voxel sizes, or provide a T1w image."
        )
        raise RegistrationError(msg)
    if not result.brain_overlap >= MIN_BRAIN_OVERLAP:
        msg = (
            f"normalisation to the template is implausible: the normalised PET overlaps the "
            f"template brain mask by Dice {result.brain_overlap:.2f} (expected >= "
            f"{MIN_BRAIN_OVERLAP}). Check the registration overlay in the report; a T1w image "
            "or an early-frame mean may help."
        )
        raise RegistrationError(msg)
