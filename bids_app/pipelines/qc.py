"""Quality control of a participant: what was measured, held to thresholds with their reasons.

The thresholds live here, next to the reason for each; the checks themselves are
:class:`bids_app.qc.QcCheck` records that the manifest stores and the reports show.
"""

from __future__ import annotations

import numpy as np

from bids_app.preproc.motion import MotionEstimate
from bids_app.preproc.normalisation import Normalisation
from bids_app.qc import QcCheck, QcVerdict

#: Maximum framewise displacement (mm): warn, fail.
MAX_FD_MM = (2.0, 4.0)
MAX_FD_REASON = (
    "a jump of several mm between frames usually happens within a frame, where motion "
    "correction cannot undo it; at 6 mm resolution a 4 mm shift of the striatum moves a large "
    "part of its signal out of the ROI"
)
#: Mean framewise displacement (mm): warn, fail.
MEAN_FD_MM = (0.5, 1.0)
MEAN_FD_REASON = (
    "sustained motion blurs every frame a little; residual blur biases striatal BPND low"
)
#: Volume scaling of the normalisation's linear part: plausible brain sizes vary by about 20 %.
DETERMINANT_LOW = (0.8, 0.67)
DETERMINANT_HIGH = (1.25, 1.5)
DETERMINANT_REASON = (
    "adult brain volumes differ from the template's by about +-20 %; a larger scaling means "
    "the registration stretched the brain onto the skull or shrank it"
)
#: Dice overlap of the normalised PET signal with the template brain mask: warn, fail.
BRAIN_DICE = (0.75, 0.6)
BRAIN_DICE_REASON = (
    "the normalised PET must cover the template brain; a low overlap means a misplaced or "
    "mis-scaled brain"
)


def motion_checks(session: str, motion: MotionEstimate) -> list[QcCheck]:
    """Maximum and mean framewise displacement of one session."""
    fd = motion.confounds["framewise_displacement"].to_numpy(dtype=np.float64)
    scope = f"ses-{session}"
    return [
        QcCheck(
            "max_fd_mm",
            "maximum framewise displacement",
            scope,
            float(np.max(fd)) if fd.size else float("nan"),
            "mm",
            *MAX_FD_MM,
            "above",
            MAX_FD_REASON,
        ),
        QcCheck(
            "mean_fd_mm",
            "mean framewise displacement",
            scope,
            float(np.mean(fd)) if fd.size else float("nan"),
            "mm",
            *MEAN_FD_MM,
            "above",
            MEAN_FD_REASON,
        ),
    ]


def normalisation_checks(norm: Normalisation) -> list[QcCheck]:
    """Plausibility of the normalisation to the template."""
    det = float(norm.affine_determinant)
    return [
        QcCheck(
            "norm_volume_scaling_low",
            "volume scaling of the normalisation (shrinking)",
            "participant",
            det,
            "",
            *DETERMINANT_LOW,
            "below",
            DETERMINANT_REASON,
        ),
        QcCheck(
            "norm_volume_scaling_high",
            "volume scaling of the normalisation (inflating)",
            "participant",
            det,
            "",
            *DETERMINANT_HIGH,
            "above",
            DETERMINANT_REASON,
        ),
        QcCheck(
            "norm_brain_dice",
            "Dice of the normalised PET with the template brain",
            "participant",
            float(norm.brain_overlap),
            "",
            *BRAIN_DICE,
            "below",
            BRAIN_DICE_REASON,
        ),
    ]


def participant_qc(
    motions: dict[str, tuple[str, MotionEstimate]], norm: Normalisation
) -> QcVerdict:
    """Every check of one participant.

    Parameters
    ----------
    motions : dict
        Role -> (session label, motion estimate).
    norm : Normalisation
        The normalisation to the template.
    """
    checks: list[QcCheck] = []
    for session, motion in motions.values():
        checks += motion_checks(session, motion)
    checks += normalisation_checks(norm)
    return QcVerdict(tuple(checks))


#: Share of the fitted voxels whose SRTM2 fit failed (%): warn, fail.
FIT_FAILED_PCT = (1.0, 5.0)
FIT_FAILED_REASON = (
    "a failed voxel is NaN in the maps and drops out of the group's search volume, which keeps "
    "only voxels every participant has; more than a few percent usually means a noisy, "
    "truncated or mis-registered session"
)


def fit_checks(session: str, n_fitted: int, n_failed: int) -> list[QcCheck]:
    """Share of failed voxelwise fits of one session (NaN when nothing was fitted)."""
    share = 100.0 * n_failed / n_fitted if n_fitted > 0 else float("nan")
    return [
        QcCheck(
            "fit_failed_pct",
            "voxel fits failed",
            f"ses-{session}",
            share,
            "%",
            *FIT_FAILED_PCT,
            "above",
            FIT_FAILED_REASON,
        )
    ]
