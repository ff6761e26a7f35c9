"""Quality control of a participant: what was measured, held to thresholds with their reasons.

Every check is a :class:`bids_app.qc.QcCheck` (value, warn/fail thresholds, reason) that the
manifest stores, ``logs/summary.tsv`` summarises and the reports show. The thresholds live here,
each next to its reason; they were set from the distributions of these measures on realistic
simulated participants (``petsim``: individual anatomy, whole-head T1w, 108 mm axial field of
view) that were processed correctly, and on deliberately broken cases (a left-right flipped
T1w, another participant's T1w, a mis-scaled PET header): see ``benchmarks/bench_qc.py`` and
``docs/qc.md`` for the measured values.

Checks
------
motion (per session)
    maximum and mean framewise displacement.
field of view and fits (per session)
    share of the reference region inside the field of view in every frame; share of fitted
    voxels whose SRTM2 fit failed.
co-registration
    correlation of the challenge session's normalised mean with the baseline's inside the brain
    (both sessions' whole-scan means share their anatomy; a failed co-registration lowers it).
normalisation (participant)
    volume scaling of the affine part; Jacobian determinant range of the whole mapping; Dice of
    the normalised PET signal with the template brain inside the PET's field of view; striatal
    overlap (the high-binding region of the baseline mean against the atlas striatum) and the
    reference region's uptake relative to the brain; with a T1w also the brain-extraction
    volume and agreement with the template prior, the T1w brain's Dice with the template after
    normalisation, the distance between the PET-only and the T1w-derived mappings, a
    left-right flip test (the PET against its own mirror image on the T1w) and the striatal
    overlap of the T1w path against the PET-only affine (a T1w of another head). Thresholds
    and the simulations that calibrated them: ``docs/qc.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bids_app.preproc.motion import MotionEstimate
from bids_app.preproc.normalisation import Normalisation, hot_region_dice
from bids_app.qc import Direction, QcCheck, QcVerdict


@dataclass(frozen=True)
class Threshold:
    """Warn/fail levels of one measure, the side that is bad, and why."""

    warn: float | None
    fail: float | None
    bad: Direction
    reason: str

    def check(self, key: str, label: str, scope: str, value: float, unit: str = "") -> QcCheck:
        """A :class:`QcCheck` of ``value`` against these levels."""
        return QcCheck(
            key, label, scope, float(value), unit, self.warn, self.fail, self.bad, self.reason
        )


MAX_FD_MM = Threshold(
    2.0,
    4.0,
    "above",
    "a jump of several mm between frames usually happens within a frame, where motion "
    "correction cannot undo it; at 6 mm resolution a 4 mm shift of the striatum moves a large "
    "part of its signal out of the ROI",
)
MEAN_FD_MM = Threshold(
    0.5,
    1.0,
    "above",
    "sustained motion blurs every frame a little; residual blur biases striatal BPND low",
)
REFERENCE_COVERAGE = Threshold(
    0.95,
    0.8,
    "below",
    "the reference TAC averages the covered part of the cerebellum only; below 95 % its lowest "
    "lobules are cut off by the axial field of view (below 80 % the session is not modelled)",
)
FIT_FAILED_PCT = Threshold(
    1.0,
    5.0,
    "above",
    "a failed voxel is NaN in the maps and drops out of the group's search volume, which keeps "
    "only voxels every participant has; more than a few percent of the fitted voxels usually "
    "means a noisy, truncated or mis-registered session",
)
COREG_CORRELATION = Threshold(
    0.9,
    0.8,
    "below",
    "the two sessions show the same brain, so their normalised whole-scan means correlate "
    "highly inside the brain after a correct co-registration (0.95-0.99 on realistic "
    "simulations; a 4 mm misregistration drops it below 0.9)",
)
DETERMINANT_LOW = Threshold(
    0.8,
    0.67,
    "below",
    "adult brain volumes differ from the template's by about +-20 %; a larger shrinking means a "
    "failed registration or wrong voxel sizes in the header",
)
DETERMINANT_HIGH = Threshold(
    1.25,
    1.5,
    "above",
    "adult brain volumes differ from the template's by about +-20 %; a larger scaling means the "
    "registration stretched the brain onto the skull or wrong voxel sizes in the header",
)
JACOBIAN_MIN = Threshold(
    0.2,
    0.0,
    "below",
    "a Jacobian determinant near or below 0 means the deformation folds space (a torn or "
    "collapsed region)",
)
JACOBIAN_MAX = Threshold(
    4.0,
    8.0,
    "above",
    "a local volume change of more than 4x is not anatomy but a registration that chased noise "
    "or an artefact",
)
BRAIN_DICE = Threshold(
    0.7,
    0.6,
    "below",
    "inside the PET's field of view the normalised PET signal must cover the template brain "
    "(0.78-0.86 on realistic simulations with individual anatomy); a low overlap means a "
    "misplaced or mis-scaled brain",
)
STRIATAL_DICE = Threshold(
    0.6,
    0.45,
    "below",
    "[11C]raclopride's high-binding region is the striatum: the hottest voxels of the baseline "
    "mean must fall on the atlas striatum (0.65-0.8 on realistic simulations); a few mm of "
    "misplacement lowers it and biases striatal BPND",
)
REFERENCE_UPTAKE = Threshold(
    0.8,
    0.6,
    "below",
    "the cerebellar reference region must sit in grey matter: its mean uptake relative to the "
    "brain's median drops when it slides into white matter, CSF or outside the brain",
)
T1W_BRAIN_VOLUME_LOW = Threshold(
    950.0,
    700.0,
    "below",
    "adult brain (incl. cerebellum) volumes are about 1000-1900 mL; a smaller extraction lost "
    "brain tissue",
)
T1W_BRAIN_VOLUME_HIGH = Threshold(
    2100.0,
    2500.0,
    "above",
    "adult brain (incl. cerebellum) volumes are about 1000-1900 mL; a larger extraction kept "
    "scalp, eyes or neck",
)
T1W_PRIOR_DICE = Threshold(
    0.9,
    0.8,
    "below",
    "the intensity-based brain mask must agree with the template brain placed by an affine; a "
    "low agreement means the extraction (or the T1w contrast) failed",
)
T1W_TEMPLATE_DICE = Threshold(
    0.95,
    0.9,
    "below",
    "after SyN the T1w brain mask should match the template brain (Dice 0.98-0.99 measured); "
    "lower means the T1w registration failed",
)
T1W_MIRROR_GAIN = Threshold(
    0.02,
    0.0,
    "below",
    "the PET must match the T1w better than the PET's own left-right mirror image does (by "
    "+3.8 to +8.2 % in mutual information on 14 realistic simulations; -4.7 to -9.1 % with a "
    "flipped T1w); a mirror image that fits as well or better means a T1w flipped left-right "
    "relative to the PET (a header or conversion error)",
)
BINDING_DICE_GAIN = Threshold(
    -0.03,
    None,
    "below",
    "with a correct T1w the normalisation usually places the PET's own high-binding region "
    "(the striatum) on the atlas at least as well as the PET-only affine does (-0.057 to +0.107 "
    "in Dice on 14 realistic simulations, 2 below -0.03); another participant's T1w gave -0.055. "
    "A warning only: check that the T1w belongs to this participant",
)
PET_T1W_AGREEMENT_MM = Threshold(
    6.0,
    10.0,
    "above",
    "the PET-only affine and the T1w-derived mapping should place the brain within a few mm of "
    "each other (0.7-5.4 mm on realistic simulations); a larger distance points to a failed "
    "PET -> T1w registration or a T1w of another head",
)

T1W_IDENTITY_WARNINGS = Threshold(
    None,
    1.5,
    "above",
    "each identity check alone can warn on a correct T1w now and then, but a T1w that belongs "
    "to this participant rarely trips two at once; another participant's T1w (a mix-up) "
    "tripped the flip test and the binding-Dice gain together in a realistic simulation",
)
"""Fail when two or more of the T1w identity checks warn (or fail) together."""

IDENTITY_CHECKS = ("pet_t1w_agreement_mm", "t1w_mirror_gain", "binding_dice_gain")
"""The checks that ask whether the T1w is this participant's, in this orientation."""


def identity_check(checks: list[QcCheck]) -> QcCheck:
    """How many of the :data:`IDENTITY_CHECKS` in ``checks`` warn or fail (measured ones only)."""
    flagged = [
        c
        for c in checks
        if c.key in IDENTITY_CHECKS and c.status != "pass" and np.isfinite(c.value)
    ]
    return T1W_IDENTITY_WARNINGS.check(
        "t1w_identity_warnings",
        "T1w identity checks that warn together (the T1w may be another participant's)",
        "T1w",
        float(len(flagged)),
    )


def motion_checks(session: str, motion: MotionEstimate) -> list[QcCheck]:
    """Maximum and mean framewise displacement of one session."""
    fd = motion.confounds["framewise_displacement"].to_numpy(dtype=np.float64)
    scope = f"ses-{session}"
    return [
        MAX_FD_MM.check(
            "max_fd_mm",
            "maximum framewise displacement",
            scope,
            float(np.max(fd)) if fd.size else float("nan"),
            "mm",
        ),
        MEAN_FD_MM.check(
            "mean_fd_mm",
            "mean framewise displacement",
            scope,
            float(np.mean(fd)) if fd.size else float("nan"),
            "mm",
        ),
    ]


def fit_checks(session: str, n_fitted: int, n_failed: int) -> list[QcCheck]:
    """Share of failed voxelwise fits of one session (NaN when nothing was fitted)."""
    share = 100.0 * n_failed / n_fitted if n_fitted > 0 else float("nan")
    return [
        FIT_FAILED_PCT.check("fit_failed_pct", "voxel fits failed", f"ses-{session}", share, "%")
    ]


def coverage_checks(session: str, reference_coverage: float) -> list[QcCheck]:
    """Share of the reference region in the field of view in every frame."""
    return [
        REFERENCE_COVERAGE.check(
            "reference_coverage",
            "reference region inside the field of view",
            f"ses-{session}",
            reference_coverage,
        )
    ]


def _correlation(
    a: NDArray[np.floating], b: NDArray[np.floating], mask: NDArray[np.bool_]
) -> float:
    valid = mask & np.isfinite(a) & np.isfinite(b)
    if valid.sum() < 100:
        return float("nan")
    x, y = np.asarray(a[valid], np.float64), np.asarray(b[valid], np.float64)
    if x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def fov_brain_dice(mean_mni: NDArray[np.floating], brain: NDArray[np.bool_]) -> float:
    """Dice of the PET signal with the template brain, both restricted to the field of view.

    The signal is the smoothed mean above 25 % of its 99th percentile (holes filled); voxels the
    PET does not cover (NaN) are left out of both masks, so a short axial field of view does not
    lower the overlap.
    """
    mean = np.asarray(mean_mni, dtype=np.float64)
    inside = np.isfinite(mean)
    if inside.sum() < 100:
        return float("nan")
    smooth = ndimage.gaussian_filter(np.where(inside, mean, 0.0), 1.5)
    positive = smooth[inside & (smooth > 0)]
    if positive.size == 0:
        return 0.0
    signal = np.asarray(
        ndimage.binary_fill_holes(smooth > 0.25 * np.percentile(positive, 99.0)), dtype=bool
    )
    a, b = signal & inside, brain & inside
    total = float(a.sum() + b.sum())
    return 2.0 * float((a & b).sum()) / total if total > 0 else float("nan")


def reference_uptake(
    mean_mni: NDArray[np.floating], reference: NDArray[np.bool_], brain: NDArray[np.bool_]
) -> float:
    """Mean of the reference region relative to the brain's median (both in the field of view)."""
    mean = np.asarray(mean_mni, dtype=np.float64)
    ref = reference & np.isfinite(mean)
    inside = brain & np.isfinite(mean)
    if ref.sum() < 10 or inside.sum() < 100:
        return float("nan")
    median = float(np.median(mean[inside]))
    return float(np.mean(mean[ref])) / median if median > 0 else float("nan")


@dataclass(frozen=True)
class SessionQcInputs:
    """What QC reads of one session.

    Attributes
    ----------
    session : str
        Session label.
    motion : MotionEstimate
        Its motion estimate.
    mean_mni : (X, Y, Z) ndarray
        Its frame mean on the template grid (NaN outside the field of view).
    reference_coverage : float
        Share of the reference region covered in every frame.
    n_fitted, n_failed : int
        Voxels fitted and voxels whose fit failed.
    """

    session: str
    motion: MotionEstimate
    mean_mni: NDArray[np.floating]
    reference_coverage: float
    n_fitted: int
    n_failed: int


def normalisation_checks(
    norm: Normalisation,
    baseline_mean: NDArray[np.floating],
    brain: NDArray[np.bool_],
    masks: Mapping[str, NDArray[np.bool_]],
    reference_roi: str,
) -> list[QcCheck]:
    """Plausibility and accuracy checks of the normalisation to the template."""
    scope = "normalisation"
    det = float(norm.affine_determinant)
    checks = [
        DETERMINANT_LOW.check("norm_scaling_low", "volume scaling (shrinking)", scope, det),
        DETERMINANT_HIGH.check("norm_scaling_high", "volume scaling (inflating)", scope, det),
        JACOBIAN_MIN.check(
            "jacobian_min",
            "smallest Jacobian determinant",
            scope,
            norm.metrics.get("jacobian_min", det),
        ),
        JACOBIAN_MAX.check(
            "jacobian_max",
            "largest Jacobian determinant",
            scope,
            norm.metrics.get("jacobian_max", det),
        ),
        BRAIN_DICE.check(
            "brain_dice",
            "Dice of PET signal and template brain (in the field of view)",
            scope,
            fov_brain_dice(baseline_mean, brain),
        ),
    ]
    if "striatum" in masks:
        checks.append(
            STRIATAL_DICE.check(
                "striatal_dice",
                "Dice of the high-binding region and the atlas striatum",
                scope,
                hot_region_dice(baseline_mean, masks["striatum"]),
            )
        )
    if reference_roi in masks:
        checks.append(
            REFERENCE_UPTAKE.check(
                "reference_uptake",
                "reference-region uptake / brain median",
                scope,
                reference_uptake(baseline_mean, masks[reference_roi], brain),
            )
        )
    if norm.method == "t1w":
        metric = norm.metrics.get
        nan = float("nan")
        volume = metric("t1w_brain_volume_ml", nan)
        checks += [
            T1W_BRAIN_VOLUME_LOW.check(
                "t1w_volume_low", "T1w brain volume (extraction too small?)", "T1w", volume, "mL"
            ),
            T1W_BRAIN_VOLUME_HIGH.check(
                "t1w_volume_high", "T1w brain volume (extraction too large?)", "T1w", volume, "mL"
            ),
            T1W_PRIOR_DICE.check(
                "t1w_prior_dice",
                "Dice of the T1w brain mask and the template prior",
                "T1w",
                metric("t1w_prior_dice", nan),
            ),
            T1W_TEMPLATE_DICE.check(
                "t1w_template_dice",
                "Dice of the normalised T1w brain and the template brain",
                "T1w",
                metric("t1w_template_dice", nan),
            ),
            PET_T1W_AGREEMENT_MM.check(
                "pet_t1w_agreement_mm",
                "distance between the PET-only and T1w mappings",
                "T1w",
                metric("pet_only_agreement_mm", nan),
                "mm",
            ),
            T1W_MIRROR_GAIN.check(
                "t1w_mirror_gain",
                "MI gain of the PET over its left-right mirror image on the T1w (flip test)",
                "T1w",
                metric("t1w_mirror_mi_gain", nan),
            ),
            BINDING_DICE_GAIN.check(
                "binding_dice_gain",
                "striatal Dice of the T1w path minus that of the PET-only affine",
                "T1w",
                metric("binding_dice_t1w", nan) - metric("binding_dice_pet_only", nan),
            ),
        ]
        checks.append(identity_check(checks))
    return checks


def participant_qc(
    sessions: Mapping[str, SessionQcInputs],
    norm: Normalisation,
    brain: NDArray[np.bool_],
    masks: Mapping[str, NDArray[np.bool_]],
    reference_roi: str,
) -> QcVerdict:
    """Every check of one participant.

    Parameters
    ----------
    sessions : mapping
        Role (``baseline``/``challenge``) -> what QC reads of the session.
    norm : Normalisation
        The normalisation to the template.
    brain : (X, Y, Z) bool ndarray
        The template's brain mask.
    masks : mapping of str to (X, Y, Z) bool ndarray
        Atlas ROIs (``striatum`` and the reference region are used).
    reference_roi : str
        Name of the reference region.
    """
    checks: list[QcCheck] = []
    for item in sessions.values():
        checks += motion_checks(item.session, item.motion)
        checks += coverage_checks(item.session, item.reference_coverage)
        checks += fit_checks(item.session, item.n_fitted, item.n_failed)
    if "baseline" in sessions and "challenge" in sessions:
        checks.append(
            COREG_CORRELATION.check(
                "coreg_correlation",
                "correlation of the two sessions' normalised means (brain)",
                "co-registration",
                _correlation(sessions["challenge"].mean_mni, sessions["baseline"].mean_mni, brain),
            )
        )
    baseline = sessions.get("baseline") or next(iter(sessions.values()))
    checks += normalisation_checks(norm, baseline.mean_mni, brain, masks, reference_roi)
    return QcVerdict(tuple(checks))
