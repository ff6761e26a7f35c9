"""Pre-processing of dynamic PET: motion correction, co-registration, normalisation, resampling.

ANTsPy is imported lazily inside the functions; call :func:`configure_ants_threads` at process
start to choose the ITK thread count (1 thread gives bitwise-reproducible registrations).
"""

from __future__ import annotations

from bids_app.preproc._ants import (
    ANTS_RANDOM_SEED,
    ITK_THREADS_ENV,
    RETRY_INITIALISATIONS,
    AntsRegistrationError,
    configure_ants_threads,
)
from bids_app.preproc.motion import MotionEstimate, estimate_motion
from bids_app.preproc.normalisation import Normalisation, normalise_to_template
from bids_app.preproc.registration import (
    coregister_sessions,
    motion_corrected_mean,
    resample_to_template,
    warp_image_to_template,
)

__all__ = [
    "ANTS_RANDOM_SEED",
    "ITK_THREADS_ENV",
    "RETRY_INITIALISATIONS",
    "AntsRegistrationError",
    "MotionEstimate",
    "Normalisation",
    "configure_ants_threads",
    "coregister_sessions",
    "estimate_motion",
    "motion_corrected_mean",
    "normalise_to_template",
    "resample_to_template",
    "warp_image_to_template",
]
