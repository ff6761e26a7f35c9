"""Ground truth: generating values and what an ideal pipeline would measure.

Partial volume (6 mm FWHM) and the blood volume make the BPnd an image-based fit reads far
below the generating value (DOMAIN_NOTES). Tests on the synthetic study therefore compare the
app with the **expected measured** values computed here: the app's own SRTM/SRTM2
(:mod:`bids_app.kinetics`) applied to the noise-free TACs an ideal pipeline would see on the
MNI grid. Those are blurred to the scanner resolution, sampled on the native scanner grid
(trilinear, as rendered) and brought back to the MNI grid with the true pose in one trilinear
interpolation (:func:`scanner_round_trip`): the voxel size of the scanner and one unavoidable
interpolation blur the striatum further (about 15-20 % of its signal at 2.5 x 2.5 x 3 mm).
Then:

1. ``k2'``: SRTM fit of the striatum ROI TAC (cerebellum reference) per session;
2. ROI BPnd/R1: SRTM2 (that ``k2'``) on each ROI's mean TAC (``method="roi_tac"``), and the
   ROI mean of voxelwise SRTM2 maps (``method="voxel_mean"``);
3. expected net DA release: mean over striatal voxels of the voxelwise
   ``(BP_sal - BP_nal) / BP_sal``; net rCBF change likewise with R1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bids_app.simulation.anatomy import Anatomy
from bids_app.timing import FrameTiming

TRUTH_ROIS: tuple[str, ...] = (
    "dorsal_striatum",
    "ventral_striatum",
    "striatum",
    "caudate",
    "putamen",
    "pituitary",
    "carotid",
    "habenula",
    "habenula_control",
)
"""ROIs (atlas mask names) the expected measured values are reported for."""

REFERENCE_ROI = "cerebellum"
K2PRIME_ROI = "striatum"


@dataclass(frozen=True)
class TruthVoxels:
    """The MNI voxels where expected values are computed.

    Attributes
    ----------
    index : (n_voxels,) int ndarray
        Flat indices (C order) into the MNI grid of the union of :data:`TRUTH_ROIS`.
    roi_columns : dict of str to (n_voxels,) bool ndarray
        Membership of each of those voxels in each ROI.
    ref_index : (n_ref,) int ndarray
        Flat indices (C order) of the reference ROI.
    ref_weights : (n_classes,) ndarray
        Mean blurred class fractions over the reference ROI.
    roi_weights : dict of str to (n_classes,) ndarray
        Mean blurred class fractions over each ROI.
    blurred : (n_classes, n_voxels) float32 ndarray
        Blurred class fractions of the truth voxels.
    """

    index: NDArray[np.intp]
    roi_columns: dict[str, NDArray[np.bool_]]
    ref_index: NDArray[np.intp]
    ref_weights: NDArray[np.float64]
    roi_weights: dict[str, NDArray[np.float64]]
    blurred: NDArray[np.float32]


def truth_voxels(anatomy: Anatomy) -> TruthVoxels:
    """Collect the blurred fractions needed for the expected measured values."""
    masks = anatomy.roi_masks
    union = np.zeros(anatomy.shape, dtype=bool)
    for roi in TRUTH_ROIS:
        union |= masks[roi]
    index = np.flatnonzero(union.ravel())
    flat = anatomy.blurred.reshape(anatomy.blurred.shape[0], -1)

    def weights(mask: NDArray[np.bool_]) -> NDArray[np.float64]:
        return flat[:, np.flatnonzero(mask.ravel())].astype(np.float64).mean(axis=1)

    return TruthVoxels(
        index=index,
        roi_columns={roi: masks[roi].ravel()[index] for roi in TRUTH_ROIS},
        ref_index=np.flatnonzero(masks[REFERENCE_ROI].ravel()),
        ref_weights=weights(masks[REFERENCE_ROI]),
        roi_weights={roi: weights(masks[roi]) for roi in TRUTH_ROIS},
        blurred=np.ascontiguousarray(flat[:, index]),
    )


def scanner_round_trip(
    voxels: TruthVoxels,
    class_volumes: Callable[[int], NDArray[np.float32]],
    n_classes: int,
    mni_affine: NDArray[np.float64],
    mni_shape: tuple[int, int, int],
    pose: NDArray[np.float64],
    native_affine: NDArray[np.float64],
    native_shape: tuple[int, int, int],
) -> TruthVoxels:
    """Class fractions after the scanner grid and one ideal resampling back to MNI.

    Parameters
    ----------
    voxels : TruthVoxels
        The truth voxels (their ``blurred`` fractions are replaced).
    class_volumes : callable
        ``class_volumes(c)`` -> blurred fraction volume of class ``c`` on the MNI grid.
    n_classes : int
        Number of tissue classes.
    mni_affine, mni_shape : ndarray, tuple
        MNI grid.
    pose : (4, 4) ndarray
        Head (MNI mm) -> scanner (mm) pose of the session.
    native_affine, native_shape : ndarray, tuple
        Native scanner grid.

    Returns
    -------
    TruthVoxels
        Same voxels, with round-tripped fractions and ROI/reference weights.
    """
    to_native = np.linalg.inv(mni_affine) @ np.linalg.inv(pose) @ native_affine
    needed = np.concatenate([voxels.index, voxels.ref_index])
    ijk = np.stack(np.unravel_index(needed, mni_shape)).astype(np.float64)
    back = np.linalg.inv(native_affine) @ pose @ mni_affine
    native_coords = back[:3, :3] @ ijk + back[:3, 3:4]
    fractions = np.empty((n_classes, needed.size), dtype=np.float32)
    for c in range(n_classes):
        native = ndimage.affine_transform(
            class_volumes(c),
            to_native[:3, :3],
            offset=to_native[:3, 3],
            output_shape=native_shape,
            order=1,
        )
        fractions[c] = ndimage.map_coordinates(native, native_coords, order=1, cval=0.0)
    n_truth = voxels.index.size
    blurred = np.ascontiguousarray(fractions[:, :n_truth])
    ref = fractions[:, n_truth:].astype(np.float64).mean(axis=1)
    roi_weights = {
        roi: blurred[:, cols].astype(np.float64).mean(axis=1)
        for roi, cols in voxels.roi_columns.items()
    }
    return TruthVoxels(
        index=voxels.index,
        roi_columns=voxels.roi_columns,
        ref_index=voxels.ref_index,
        ref_weights=ref,
        roi_weights=roi_weights,
        blurred=blurred,
    )


@dataclass(frozen=True)
class SessionExpected:
    """Expected measured values of one session.

    Attributes
    ----------
    k2prime : float
        SRTM k2' of the striatum ROI TAC, 1/min.
    roi_bp, roi_r1 : dict of str to float
        SRTM2 fits of each ROI's mean TAC.
    voxel_bp, voxel_r1 : (n_voxels,) ndarray
        Voxelwise SRTM2 over :attr:`TruthVoxels.index` (NaN where the fit failed).
    """

    k2prime: float
    roi_bp: dict[str, float]
    roi_r1: dict[str, float]
    voxel_bp: NDArray[np.float64]
    voxel_r1: NDArray[np.float64]


def _kinetics() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Import the app's ``fit_srtm`` and ``fit_srtm2`` lazily (contract API of kinetics)."""
    try:
        from bids_app.kinetics import fit_srtm, fit_srtm2
    except ImportError:  # package __init__ not exporting yet: use the module directly
        from bids_app.kinetics.srtm import fit_srtm, fit_srtm2
    return fit_srtm, fit_srtm2


def expected_session(
    voxels: TruthVoxels, tacs: NDArray[np.float64], frames: FrameTiming
) -> SessionExpected:
    """Fit the blurred, noise-free MNI TACs of one session like an ideal pipeline.

    Parameters
    ----------
    voxels : TruthVoxels
        Truth voxels and ROI weights.
    tacs : (n_classes, n_frames) ndarray
        Class TACs of the session, kBq/mL.
    frames : FrameTiming
        Frame schedule.

    Returns
    -------
    SessionExpected
        k2', ROI fits and voxelwise maps.
    """
    fit_srtm, fit_srtm2 = _kinetics()
    start_s, end_s = frames.start_s, frames.end_s
    ref = voxels.ref_weights @ tacs
    roi_tac = {roi: w @ tacs for roi, w in voxels.roi_weights.items()}
    k2prime = float(fit_srtm(start_s, end_s, ref, roi_tac[K2PRIME_ROI]).k2prime)
    roi_bp: dict[str, float] = {}
    roi_r1: dict[str, float] = {}
    for roi, tac in roi_tac.items():
        fit = fit_srtm2(start_s, end_s, ref, tac, k2prime)
        ok = bool(fit.status) if hasattr(fit, "status") else True
        roi_bp[roi] = float(fit.bp_nd) if ok else float("nan")
        roi_r1[roi] = float(fit.r1) if ok else float("nan")
    voxel_tacs = (voxels.blurred.T.astype(np.float64) @ tacs).T
    vfit = fit_srtm2(start_s, end_s, ref, voxel_tacs, k2prime)
    bp = np.asarray(vfit.bp_nd, dtype=np.float64)
    r1 = np.asarray(vfit.r1, dtype=np.float64)
    status = np.asarray(getattr(vfit, "status", np.ones(bp.shape, dtype=bool)), dtype=bool)
    return SessionExpected(
        k2prime=k2prime,
        roi_bp=roi_bp,
        roi_r1=roi_r1,
        voxel_bp=np.where(status, bp, np.nan),
        voxel_r1=np.where(status, r1, np.nan),
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
    """Tissue-weighted mean of a generating per-class value over an ROI (unblurred).

    Parameters
    ----------
    anatomy : Anatomy
        Tissue fractions.
    class_values : dict of str to float
        Value per tissue class (e.g. BPnd or R1).
    roi : str
        Atlas mask name.

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
