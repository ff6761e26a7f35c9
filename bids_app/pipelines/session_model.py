"""Kinetic modelling of one session on the template grid: TACs, k2', voxelwise and ROI SRTM2.

Three steps, each a participant stage (see :mod:`bids_app.pipelines.participant_run`):
:func:`session_tacs` (ROI TACs, field-of-view coverage and plausibility),
:func:`estimate_session_k2prime` (k2' once per session) and :func:`fit_session` (voxelwise
SRTM2 maps, fit status and ROI fits).

Field of view
-------------
Scanners with a short axial field of view (the ECAT 931's 108 mm) miss the vertex and sometimes
the lowest cerebellum, and head motion moves the edge from frame to frame. A template voxel is
**covered** when it has data in every frame (finite, and not zero in all of them: exports fill
the space outside the field of view with NaN or 0). ROI TACs average covered voxels only (the same
voxels in every frame); an ROI with less than :data:`MIN_ROI_COVERAGE` of its voxels covered
gets NaN parameters with the reason in ``kinpar.tsv``, and a reference region below it stops
the session with an error. Uncovered voxels are not fitted (fit status 4), so they are not
counted as failed fits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from bids_app.bidsio.layout import PetScan
from bids_app.errors import InputError
from bids_app.kinetics import estimate_k2prime, fit_srtm2
from bids_app.kinetics.k2prime import SessionTACs as K2PrimeTacs
from bids_app.kinetics.k2prime import estimate_participant_k2prime
from bids_app.outputs.sidecars import (
    FIT_STATUS_AT_BOUND,
    FIT_STATUS_FAILED,
    FIT_STATUS_NO_DATA,
    FIT_STATUS_OUTSIDE_MASK,
    FIT_STATUS_VALID,
)
from bids_app.roi.atlas import RoiAtlas
from bids_app.roi.extract import extract_tacs

LOGGER = logging.getLogger(__name__)

REFERENCE_ROI = "cerebellum"
K2PRIME_ROI = "striatum"
#: Smallest share of an ROI's voxels with data in every frame for its parameters to be reported.
MIN_ROI_COVERAGE = 0.8
MIN_REFERENCE_CV = 0.05
KINPAR_COLUMNS = ["roi", "BPND", "R1", "k2a", "k2prime", "coverage", "note"]


Weights = Literal["duration", "uniform"]
K2PrimeMethod = Literal["roi", "voxel_median"]
K2PrimePooling = Literal["per_session", "mean", "joint"]


@dataclass(frozen=True)
class SessionTacs:
    """ROI TACs of one session and what the report shows about them.

    Attributes
    ----------
    tacs : DataFrame
        ``frame_start``, ``frame_end`` (s from TimeZero) and one column per ROI.
    start_s, end_s : (n_frames,) ndarray
        Frame bounds in seconds from the injection (what the kinetic models take).
    coverage : dict of str to float
        Share of each ROI's voxels with data in every frame (0-1).
    mean_mni : (X, Y, Z) float32 ndarray
        Frame mean on the template grid (NaN outside the field of view).
    covered : (X, Y, Z) bool ndarray
        Template voxels with data in every frame.
    """

    tacs: pd.DataFrame
    start_s: NDArray[np.float64]
    end_s: NDArray[np.float64]
    coverage: dict[str, float]
    mean_mni: NDArray[np.float32]
    covered: NDArray[np.bool_]

    @property
    def reference_coverage(self) -> float:
        """Share of the reference ROI with data in every frame."""
        return self.coverage[REFERENCE_ROI]

    @property
    def reference(self) -> NDArray[np.float64]:
        """The reference-region TAC."""
        return self.tacs[REFERENCE_ROI].to_numpy(dtype=np.float64)


@dataclass(frozen=True)
class SessionK2Prime:
    """k2' of one session.

    Attributes
    ----------
    value_per_min : float
        The k2' fixed in this session's SRTM2 fits, 1/min.
    method : str
        How it was obtained (shown in sidecars and reports).
    session_estimate_per_min : float
        This session's own estimate, 1/min (equal to ``value_per_min`` unless pooled).
    """

    value_per_min: float
    method: str
    session_estimate_per_min: float


@dataclass(frozen=True)
class SessionFit:
    """Voxelwise and ROI SRTM2 results of one session.

    Attributes
    ----------
    maps : dict of str to (X, Y, Z) float32 ndarray
        ``BPND``, ``R1``, ``k2a``; NaN outside the fit mask and where the fit failed.
    fit_status : (X, Y, Z) uint8 ndarray
        0 outside the mask, 1 valid, 2 valid at the k2a bound, 3 failed.
    kinpar : DataFrame
        One row per ROI (:data:`KINPAR_COLUMNS`).
    fitted : dict of str to (n_frames,) ndarray
        Model TAC of each ROI.
    warnings : list of str
        Session-level warnings.
    k2a_range_per_min : (float, float)
        Range of the basis functions' rates the voxelwise fit used, 1/min.
    """

    maps: dict[str, NDArray[np.float32]]
    fit_status: NDArray[np.uint8]
    kinpar: pd.DataFrame
    fitted: dict[str, NDArray[np.float64]]
    warnings: list[str]
    k2a_range_per_min: tuple[float, float]


def where(scan: PetScan) -> str:
    """``sub-<p> ses-<s>`` of a scan (message prefix)."""
    return f"sub-{scan.subject} ses-{scan.session}"


def covered_voxels(data: NDArray[np.floating]) -> NDArray[np.bool_]:
    """Template voxels with data in every frame of a 4-D image.

    A voxel has data when it is finite in every frame and not exactly zero in all of them:
    scanners and converters fill the space outside the axial field of view with NaN or with 0.
    """
    finite = np.all(np.isfinite(data), axis=3)
    return np.asarray(finite & np.any(data != 0, axis=3), dtype=bool)


def roi_coverage(
    masks: dict[str, NDArray[np.bool_]], covered: NDArray[np.bool_]
) -> dict[str, float]:
    """Share (0-1) of each ROI's voxels that are covered in every frame."""
    return {
        roi: float(np.count_nonzero(mask & covered)) / max(int(np.count_nonzero(mask)), 1)
        for roi, mask in masks.items()
    }


def session_tacs(scan: PetScan, data: NDArray[np.float32], atlas: RoiAtlas) -> SessionTacs:
    """ROI TACs of a session resampled to the template grid, with plausibility checks.

    Each ROI's TAC is the mean of its voxels that have data in every frame (see the module
    docstring); an ROI without any such voxel has a NaN TAC.

    Raises
    ------
    InputError
        When less than :data:`MIN_ROI_COVERAGE` of the reference region is in the field of
        view, or its TAC is flat, negative or not finite.
    """
    covered = covered_voxels(data)
    coverage = roi_coverage(atlas.masks, covered)
    ref_coverage = coverage[REFERENCE_ROI]
    if ref_coverage < MIN_ROI_COVERAGE:
        msg = (
            f"{where(scan)}: only {100 * ref_coverage:.0f}% of the cerebellar reference region "
            f"has PET signal (inside the field of view in every frame) after normalisation; "
            f"at least "
            f"{100 * MIN_ROI_COVERAGE:.0f}% is needed for a reference TAC. The axial field of "
            f"view of {scan.path.name} may miss the lower cerebellum (check the bed position), "
            "or the normalisation failed (check the registration views in the report)."
        )
        raise InputError(msg)
    timing = scan.timing
    tacs = extract_tacs(
        data,
        {roi: mask & covered if coverage[roi] > 0 else mask for roi, mask in atlas.masks.items()},
        timing.start_s,
        timing.end_s,
        on_empty="nan",
    )
    ref = tacs[REFERENCE_ROI].to_numpy(dtype=np.float64)
    if not reference_is_usable(ref, timing.duration_min, timing.mid_min):
        msg = (
            f"{where(scan)}: the cerebellar reference TAC of {scan.path.name} is flat, negative "
            "or not finite; a reference-tissue model needs a positive reference curve. Check the "
            "image units and the field of view."
        )
        raise InputError(msg)
    for roi, share in coverage.items():
        if share < MIN_ROI_COVERAGE:
            LOGGER.warning(
                "%s: only %.0f%% of ROI %s is inside the field of view in every frame; its "
                "parameters are NaN",
                where(scan),
                100 * share,
                roi,
            )
    start_s, end_s = times_from_injection(scan)
    return SessionTacs(tacs, start_s, end_s, coverage, frame_mean(data), covered)


def estimate_session_k2prime(
    scan: PetScan,
    tacs: SessionTacs,
    voxels: NDArray[np.float32] | None,
    method: K2PrimeMethod,
    weights: Weights,
) -> SessionK2Prime:
    """k2' of one session: SRTM on the striatal TAC, or the median over voxels.

    Parameters
    ----------
    voxels : (n_frames, n_voxels) ndarray or None
        Voxel TACs of the fit mask (needed for ``method="voxel_median"``).

    Raises
    ------
    InputError
        When no k2' could be estimated.
    """
    if method == "roi":
        estimate = estimate_k2prime(
            tacs.start_s,
            tacs.end_s,
            tacs.reference,
            tacs.tacs[K2PRIME_ROI].to_numpy(),
            method="roi",
            weights=_weights(weights),
        )
        description = f"SRTM fit of the {K2PRIME_ROI} TAC"
    else:
        if voxels is None:
            msg = "voxel_median k2' needs the voxel TACs"
            raise ValueError(msg)
        estimate = estimate_k2prime(
            tacs.start_s,
            tacs.end_s,
            tacs.reference,
            voxels,
            method="voxel_median",
            weights=_weights(weights),
        )
        description = "median k2' of voxelwise SRTM over voxels with BPND > 0"
    value = float(estimate.k2prime)
    if not np.isfinite(value) or value <= 0:
        msg = (
            f"{where(scan)}: k2' could not be estimated ({description} gave {value}); the "
            "striatal and reference TACs may be too noisy or mislabelled."
        )
        raise InputError(msg)
    return SessionK2Prime(value, description, value)


def estimate_participant_k2primes(
    scans: dict[str, PetScan],
    tacs: dict[str, SessionTacs],
    voxels: dict[str, NDArray[np.float32]] | None,
    method: K2PrimeMethod,
    pooling: K2PrimePooling,
    weights: Weights,
) -> dict[str, SessionK2Prime]:
    """k2' of both sessions of a participant: each its own, or one pooled value.

    ``pooling="per_session"`` (the default, chosen by measurement: see
    ``benchmarks/bench_participant_k2prime.py``) keeps each session's estimate; ``"mean"`` fixes
    the mean of the two; ``"joint"`` (``method="roi"`` only) fixes the k2' of one SRTM fit of
    both sessions' striatal TACs with a shared k2'.
    """
    if pooling == "joint":
        if method != "roi":
            msg = "--k2prime-pooling joint needs --k2prime-method roi"
            raise InputError(msg)
        joint = estimate_participant_k2prime(
            [
                K2PrimeTacs(
                    tacs[role].start_s,
                    tacs[role].end_s,
                    tacs[role].reference,
                    tacs[role].tacs[K2PRIME_ROI].to_numpy(dtype=np.float64),
                    weights=_weights(weights),
                    label=where(scans[role]),
                )
                for role in scans
            ],
            "joint",
        )
        if not joint.status:
            msg = (
                f"sub-{next(iter(scans.values())).subject}: no k2' could be estimated from the "
                f"striatal TACs of either session ({joint.note or 'both fits failed'})"
            )
            raise InputError(msg)
        description = f"SRTM fit of both sessions' {K2PRIME_ROI} TACs with one shared k2'"
        if joint.method != "joint":
            description = f"mean of the sessions' {K2PRIME_ROI} SRTM k2' ({joint.note})"
        return {
            role: SessionK2Prime(
                joint.k2prime[i], description, float(joint.per_session[i].k2prime)
            )
            for i, role in enumerate(scans)
        }
    own = {
        role: estimate_session_k2prime(
            scans[role],
            tacs[role],
            None if voxels is None else voxels[role],
            method,
            weights,
        )
        for role in scans
    }
    if pooling == "per_session":
        return own
    mean = float(np.mean([k.value_per_min for k in own.values()]))
    return {
        role: SessionK2Prime(
            mean, f"mean of both sessions' k2' ({k.method})", k.session_estimate_per_min
        )
        for role, k in own.items()
    }


def fit_session(
    scan: PetScan,
    data: NDArray[np.float32],
    tacs: SessionTacs,
    k2prime: SessionK2Prime,
    atlas: RoiAtlas,
    *,
    weights: Weights,
    n_basis: int,
    k2a_range_per_min: tuple[float, float] | None,
) -> SessionFit:
    """Voxelwise SRTM2 over the atlas' analysis mask and SRTM2 on every ROI TAC.

    ``k2a_range_per_min=None`` lets the kinetics choose the range from k2' (upper rate
    ``max(0.6, 8 k2')``), so high-R1 voxels (vessels, pituitary) are not clipped.
    """
    mask = atlas.analysis_mask & tacs.covered
    fit = fit_srtm2(
        tacs.start_s,
        tacs.end_s,
        tacs.reference,
        data[mask].T,
        k2prime.value_per_min,
        weights=_weights(weights),
        n_basis=n_basis,
        k2a_range_per_min=k2a_range_per_min,
        return_fitted=False,
    )
    valid = np.asarray(fit.status, dtype=bool)
    maps: dict[str, NDArray[np.float32]] = {}
    for name, values in (("BPND", fit.bp_nd), ("R1", fit.r1), ("k2a", fit.k2a)):
        volume = np.full(atlas.shape, np.nan, dtype=np.float32)
        volume[mask] = np.where(valid, values, np.nan)
        maps[name] = volume
    status = np.full(atlas.shape, FIT_STATUS_OUTSIDE_MASK, dtype=np.uint8)
    status[atlas.analysis_mask & ~tacs.covered] = FIT_STATUS_NO_DATA
    at_bound = np.asarray(fit.at_bound, dtype=bool)
    status[mask] = np.where(
        valid, np.where(at_bound, FIT_STATUS_AT_BOUND, FIT_STATUS_VALID), FIT_STATUS_FAILED
    )
    n_failed = int(np.count_nonzero(~valid))
    n_no_data = int(np.count_nonzero(status == FIT_STATUS_NO_DATA))
    warnings: list[str] = []
    if n_failed:
        LOGGER.warning("%s: %d of %d voxel fits failed (NaN)", where(scan), n_failed, valid.size)
        warnings.append(f"{n_failed} of {valid.size} voxel fits failed and are NaN")
    if n_no_data:
        LOGGER.info(
            "%s: %d voxel(s) of the analysis mask are outside the field of view in at least one "
            "frame and were not fitted (NaN)",
            where(scan),
            n_no_data,
        )
    kinpar, fitted = roi_fits(tacs, k2prime.value_per_min, weights, atlas)
    used = fit.k2a_range_per_min
    if used is None:  # the kinetics always record the range; keep the type honest
        msg = "fit_srtm2 did not report the k2a range it used"
        raise RuntimeError(msg)
    return SessionFit(maps, status, kinpar, fitted, warnings, (float(used[0]), float(used[1])))


def roi_fits(
    tacs: SessionTacs, k2prime_per_min: float, weights: Weights, atlas: RoiAtlas
) -> tuple[pd.DataFrame, dict[str, NDArray[np.float64]]]:
    """SRTM2 (k2' fixed) on the mean TAC of every ROI but the reference.

    An ROI with less than :data:`MIN_ROI_COVERAGE` of its voxels in the field of view gets NaN
    parameters and the reason in ``note``.
    """
    rows = []
    fitted: dict[str, NDArray[np.float64]] = {}
    for roi in atlas.masks:
        if roi == REFERENCE_ROI:
            continue
        share = tacs.coverage.get(roi, 1.0)
        if share < MIN_ROI_COVERAGE:
            rows.append(
                {
                    "roi": roi,
                    "BPND": np.nan,
                    "R1": np.nan,
                    "k2a": np.nan,
                    "k2prime": k2prime_per_min,
                    "coverage": share,
                    "note": (
                        f"only {100 * share:.0f}% of the ROI is inside the field of view in every "
                        f"frame (needs {100 * MIN_ROI_COVERAGE:.0f}%)"
                    ),
                }
            )
            fitted[roi] = np.full(len(tacs.tacs), np.nan)
            continue
        fit = fit_srtm2(
            tacs.start_s,
            tacs.end_s,
            tacs.reference,
            tacs.tacs[roi].to_numpy(),
            k2prime_per_min,
            weights=_weights(weights),
        )
        ok = bool(np.all(fit.status))
        rows.append(
            {
                "roi": roi,
                "BPND": float(fit.bp_nd) if ok else np.nan,
                "R1": float(fit.r1) if ok else np.nan,
                "k2a": float(fit.k2a) if ok else np.nan,
                "k2prime": k2prime_per_min,
                "coverage": share,
                "note": "" if ok else "the SRTM2 fit of the ROI TAC failed",
            }
        )
        fitted[roi] = np.asarray(fit.fitted, dtype=np.float64)
    return pd.DataFrame(rows, columns=KINPAR_COLUMNS), fitted


def _weights(weights: Weights) -> str | None:
    """The kinetics argument: None (duration-based, its default) or ``"uniform"``."""
    return None if weights == "duration" else "uniform"


def reference_is_usable(
    ref: NDArray[np.float64], duration_min: NDArray[np.float64], mid_min: NDArray[np.float64]
) -> bool:
    """A reference TAC must be finite, positive on the whole and change over time.

    A time-constant curve (duration-weighted coefficient of variation below
    :data:`MIN_REFERENCE_CV`) carries no kinetics: SRTM would return a meaningless k2'.
    """
    if not np.all(np.isfinite(ref)):
        return False
    mean = float(np.average(ref, weights=duration_min))
    if mean <= 0 or np.trapezoid(np.clip(ref, 0, None), mid_min) <= 0:
        return False
    cv = float(np.sqrt(np.average((ref - mean) ** 2, weights=duration_min))) / mean
    return cv >= MIN_REFERENCE_CV


def frame_mean(data: NDArray[np.float32]) -> NDArray[np.float32]:
    """Mean over frames; NaN where no frame has data (outside the field of view)."""
    finite = np.isfinite(data)
    count = finite.sum(axis=3)
    total = np.where(finite, data, 0).sum(axis=3, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan).astype(np.float32)


def times_from_injection(scan: PetScan) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Frame bounds in seconds from the injection (kinetic models start at the injection).

    PET-BIDS frame times are relative to ``TimeZero``; ``InjectionStart`` is the injection time
    on the same clock (usually 0).

    Raises
    ------
    InputError
        When the first frame starts before the injection.
    """
    injection_s = scan.metadata.get("InjectionStart", 0)
    if not isinstance(injection_s, (int, float)) or isinstance(injection_s, bool):
        injection_s = 0.0
    start_s = scan.timing.start_s - float(injection_s)
    end_s = scan.timing.end_s - float(injection_s)
    if start_s[0] < 0:
        msg = (
            f"{where(scan)}: the first frame of {scan.path.name} starts "
            f"{-start_s[0]:g} s before the injection (InjectionStart={injection_s:g} s); "
            "reference-tissue models need frames from the injection on. Check FrameTimesStart "
            "and InjectionStart in the sidecar."
        )
        raise InputError(msg)
    return start_s, end_s
