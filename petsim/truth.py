"""Ground truth: generating values and what an ideal pipeline would measure.

Partial volume (6 mm FWHM) and the blood volume make the BPnd an image-based fit reads far
below the generating value. Tests on the synthetic study therefore compare the analysis with
the **expected measured** values computed here, with the simulator's own fits
(:mod:`petsim.srtm`) on the noise-free data an ideal pipeline would see:

* the participant's blurred tissue fractions (individual head space) are sampled on the native
  scanner grid at the session pose (trilinear, as rendered; with a limited axial field of view
  only what the scanner covers exists), then
* brought back to every MNI truth voxel ``x`` with the **true** mapping in one trilinear
  interpolation: ``x`` -> head ``phi(x)`` (:meth:`petsim.warp.IndividualWarp.to_head`) ->
  scanner ``P phi(x)`` -> native voxel (:func:`ideal_fractions`). Truth voxels that map outside
  the native grid are not covered and left out (their coverage is reported).

The scanner's voxel size and this one unavoidable interpolation blur the striatum further
(about 15-20 % of its signal at 2.5 x 2.5 x 3 mm). Then, per session:

1. ``k2'``: SRTM fit of the striatum ROI TAC (cerebellum reference);
2. ROI BPnd/R1: SRTM2 (that ``k2'``) of each ROI's mean TAC (``method="roi_tac"``) and the ROI
   mean of voxelwise SRTM2 (``method="voxel_mean"``);
3. net DA release: mean over striatal voxels of the voxelwise ``(BP_sal - BP_nal) / BP_sal``;
   net rCBF change likewise with R1.

Frames are weighted by their duration and the model is compared as frame means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from petsim.anatomy import REFERENCE_ROI, TRUTH_ROIS, Anatomy
from petsim.atlas import Grid
from petsim.errors import InputError, ModelError
from petsim.imaging import HeadModel, resample_to_native
from petsim.motion import SessionMotion
from petsim.protocol import ScanProtocol
from petsim.srtm import fit_srtm, fit_srtm2_voxels
from petsim.timing import FrameTiming

K2PRIME_ROI = "striatum"
"""ROI whose SRTM fit gives the session's ``k2'``."""

COVERAGE_ROIS: tuple[str, ...] = (*TRUTH_ROIS, REFERENCE_ROI)
"""ROIs whose field-of-view coverage is reported."""


@dataclass(frozen=True)
class TruthVoxels:
    """The MNI voxels where expected values are computed.

    Attributes
    ----------
    index : (n_voxels,) int ndarray
        Flat indices (C order) into the MNI grid of the union of :data:`TRUTH_ROIS` and the
        reference region.
    points_mm : (n_voxels, 3) ndarray
        Their MNI coordinates.
    roi_columns : dict of str to (n_voxels,) bool ndarray
        Membership of each voxel in each ROI of :data:`COVERAGE_ROIS`.
    """

    index: NDArray[np.intp]
    points_mm: NDArray[np.float64]
    roi_columns: dict[str, NDArray[np.bool_]]


def voxels_of(masks: dict[str, NDArray[np.bool_]], grid: Grid) -> TruthVoxels:
    """The voxels of the union of ``masks`` (on ``grid``) and each voxel's ROI membership.

    Raises
    ------
    InputError
        A mask does not have the grid's shape.
    """
    union = np.zeros(grid.shape, dtype=bool)
    for name, mask in masks.items():
        if mask.shape != grid.shape:
            msg = f"mask {name!r} has shape {mask.shape}; the grid is {grid.shape}"
            raise InputError(msg)
        union |= mask
    index = np.flatnonzero(union.ravel())
    return TruthVoxels(
        index=index,
        points_mm=grid.centres_mm(index),
        roi_columns={name: mask.ravel()[index] for name, mask in masks.items()},
    )


def truth_voxels(anatomy: Anatomy) -> TruthVoxels:
    """The truth ROIs' voxels (:data:`COVERAGE_ROIS`) on the MNI grid."""
    return voxels_of({roi: anatomy.roi_masks[roi] for roi in COVERAGE_ROIS}, anatomy.grid)


@dataclass(frozen=True)
class IdealFractions:
    """Class fractions an ideal pipeline sees at the truth voxels of one session.

    Attributes
    ----------
    fractions : (n_classes, n_voxels) ndarray
        Blurred class fractions after the native grid and one resampling back (NaN where not
        covered).
    covered : (n_voxels,) bool ndarray
        Whether each truth voxel maps inside the native grid at the session pose.
    coverage : dict of str to float
        Fraction of each ROI's voxels covered at the session pose.
    coverage_min : dict of str to float
        Lowest coverage over the frames (with the intra-scan motion).
    """

    fractions: NDArray[np.float64]
    covered: NDArray[np.bool_]
    coverage: dict[str, float]
    coverage_min: dict[str, float]


def native_coordinates(
    head_points_mm: NDArray[np.float64], pose: NDArray[np.float64], protocol: ScanProtocol
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Native voxel coordinates (3, n) of head points at a pose and whether each is inside."""
    m = np.linalg.inv(protocol.native_affine()) @ pose
    ijk = m[:3, :3] @ head_points_mm.T + m[:3, 3:4]
    upper = np.asarray(protocol.native_shape(), dtype=np.float64)[:, None] - 1.0
    inside = np.all((ijk >= 0.0) & (ijk <= upper), axis=0)
    return ijk, inside


def ideal_fractions(
    voxels: TruthVoxels,
    head_points_mm: NDArray[np.float64],
    head: HeadModel,
    motion: SessionMotion,
    protocol: ScanProtocol,
) -> IdealFractions:
    """Fractions after the native grid and one ideal resampling back to MNI (module docstring).

    Parameters
    ----------
    voxels : TruthVoxels
        The MNI truth voxels.
    head_points_mm : (n_voxels, 3) ndarray
        Where those voxels sit in the participant's head (``phi`` of their MNI coordinates).
    head : HeadModel
        The participant's blurred head.
    motion : SessionMotion
        The session pose (frame 0 for the fractions) and the frames' motion (coverage).
    protocol : ScanProtocol
        Native grid.

    Returns
    -------
    IdealFractions
        Fractions, coverage at the session pose and over the frames.
    """
    ijk, covered = native_coordinates(head_points_mm, motion.pose, protocol)
    n_classes = head.blurred.shape[0]
    fractions = np.full((n_classes, covered.size), np.nan)
    for c in range(n_classes):
        native = resample_to_native(
            head.volume(head.blurred[c]), head.affine, motion.pose, protocol
        )
        fractions[c, covered] = ndimage.map_coordinates(native, ijk[:, covered], order=1)

    def coverage(inside: NDArray[np.bool_]) -> dict[str, float]:
        return {roi: float(inside[cols].mean()) for roi, cols in voxels.roi_columns.items()}

    per_frame = [
        coverage(native_coordinates(head_points_mm, motion.frame_pose(k), protocol)[1])
        for k in range(motion.frame_motion.shape[0])
    ]
    return IdealFractions(
        fractions=fractions,
        covered=covered,
        coverage=coverage(covered),
        coverage_min={roi: min(f[roi] for f in per_frame) for roi in voxels.roi_columns},
    )


@dataclass(frozen=True)
class SessionExpected:
    """Expected measured values of one session.

    Attributes
    ----------
    k2prime : float
        SRTM ``k2'`` of the striatum ROI TAC, 1/min.
    roi_bp, roi_r1 : dict of str to float
        SRTM2 fits of each ROI's mean TAC (NaN where the ROI is not covered or the fit failed).
    voxel_bp, voxel_r1 : (n_voxels,) ndarray
        Voxelwise SRTM2 over :attr:`TruthVoxels.index` (NaN where not covered or failed).
    coverage, coverage_min : dict of str to float
        Field-of-view coverage of each ROI at the session pose and its minimum over frames.
    """

    k2prime: float
    roi_bp: dict[str, float]
    roi_r1: dict[str, float]
    voxel_bp: NDArray[np.float64]
    voxel_r1: NDArray[np.float64]
    coverage: dict[str, float]
    coverage_min: dict[str, float]


def expected_session(
    voxels: TruthVoxels,
    ideal: IdealFractions,
    tacs: NDArray[np.float64],
    frames: FrameTiming,
    rois: tuple[str, ...] = TRUTH_ROIS,
) -> SessionExpected:
    """Fit the ideal noise-free MNI TACs of one session (see the module docstring).

    Parameters
    ----------
    voxels : TruthVoxels
        Truth voxels and their ROI membership.
    ideal : IdealFractions
        Class fractions at those voxels.
    tacs : (n_classes, n_frames) ndarray
        Class TACs of the session, kBq/mL.
    frames : FrameTiming
        Frame schedule.
    rois : tuple of str
        ROIs (keys of ``voxels.roi_columns``) whose TACs are fitted.

    Returns
    -------
    SessionExpected
        ``k2'``, ROI fits and voxelwise maps.

    Raises
    ------
    ModelError
        The reference region or the striatum is outside the field of view.
    """
    covered = ideal.covered
    voxel_tacs = ideal.fractions.T @ tacs  # (n_voxels, n_frames), NaN rows where not covered

    def roi_tac(roi: str) -> NDArray[np.float64] | None:
        sel = voxels.roi_columns[roi] & covered
        return voxel_tacs[sel].mean(axis=0) if sel.any() else None

    ref = roi_tac(REFERENCE_ROI)
    target = roi_tac(K2PRIME_ROI)
    if ref is None or target is None:
        msg = (
            f"the {REFERENCE_ROI if ref is None else K2PRIME_ROI} ROI is entirely outside the "
            "scanner's field of view; enlarge axial_fov_mm"
        )
        raise ModelError(msg)
    k2prime = fit_srtm(frames, ref, target).k2prime_per_min
    tacs_by_roi = {roi: roi_tac(roi) for roi in rois}
    fitted = [roi for roi, tac in tacs_by_roi.items() if tac is not None]
    roi_bp = dict.fromkeys(rois, float("nan"))
    roi_r1 = dict.fromkeys(rois, float("nan"))
    if fitted:
        stacked = np.stack([tacs_by_roi[roi] for roi in fitted], axis=1)
        fits = fit_srtm2_voxels(frames, ref, stacked, k2prime)
        for i, roi in enumerate(fitted):
            roi_bp[roi] = float(fits.bp_nd[i])
            roi_r1[roi] = float(fits.r1[i])
    voxel_bp = np.full(covered.size, np.nan)
    voxel_r1 = np.full(covered.size, np.nan)
    maps = fit_srtm2_voxels(frames, ref, voxel_tacs[covered].T, k2prime)
    voxel_bp[covered] = maps.bp_nd
    voxel_r1[covered] = maps.r1
    return SessionExpected(
        k2prime=k2prime,
        roi_bp=roi_bp,
        roi_r1=roi_r1,
        voxel_bp=voxel_bp,
        voxel_r1=voxel_r1,
        coverage=ideal.coverage,
        coverage_min=ideal.coverage_min,
    )


def relative_change_mean(
    baseline: NDArray[np.float64], challenge: NDArray[np.float64], *, decrease: bool
) -> float:
    """Mean over voxels of the relative change (NaN and non-positive baselines skipped).

    ``decrease=True`` gives ``(base - chal) / base`` (DA release), otherwise
    ``(chal - base) / base`` (rCBF change).
    """
    ok = np.isfinite(baseline) & np.isfinite(challenge) & (baseline > 0)
    if not np.any(ok):
        return float("nan")
    diff = baseline[ok] - challenge[ok] if decrease else challenge[ok] - baseline[ok]
    return float(np.mean(diff / baseline[ok]))


def generating_roi_value(anatomy: Anatomy, class_values: dict[str, float], roi: str) -> float:
    """Tissue-weighted mean of a generating per-class value over an ROI (unblurred, MNI).

    Parameters
    ----------
    anatomy : Anatomy
        Tissue fractions.
    class_values : dict of str to float
        Value per tissue class (e.g. BPnd or R1).
    roi : str
        ROI name.

    Returns
    -------
    float
        ``sum_x sum_c f_c(x) v_c / sum_x sum_c f_c(x)`` over the ROI voxels.
    """
    mask = anatomy.roi_masks[roi]
    frac = anatomy.fractions[:, mask].astype(np.float64).sum(axis=1)
    values = np.array([class_values.get(c, 0.0) for c in anatomy.classes])
    total = frac.sum()
    return float(frac @ values / total) if total > 0 else float("nan")
