"""Reference-tissue kinetic models (pure numpy/scipy, no I/O).

Public API (frame times in seconds from the injection, rate constants per minute):

* :func:`fit_srtm`, :func:`fit_srtm2` -- SRTM / SRTM2, NLS for a TAC, basis functions for voxels;
* :func:`srtm2_k2a_range` -- the default SRTM2 basis range for a k2';
* :func:`estimate_k2prime` -- k2' from a ROI fit or the median of voxelwise SRTM;
* :func:`estimate_participant_k2prime` -- one k2' per participant from all sessions (mean of the
  per-session estimates, or :func:`fit_srtm_shared_k2prime`, a joint fit with a shared k2');
* :func:`fit_mrtm2` -- MRTM2 linear cross-check;
* :func:`srtm_model`, :func:`srtm2_model` -- forward models;
* :func:`frame_weights` -- frame weighting schemes;
* :class:`FrameTiming` -- the frame schedule in minutes.
"""

from __future__ import annotations

from bids_app.kinetics.basis import srtm2_k2a_range
from bids_app.kinetics.k2prime import (
    K2PrimeEstimate,
    ParticipantK2Prime,
    SessionTACs,
    SharedK2PrimeFit,
    estimate_k2prime,
    estimate_participant_k2prime,
    fit_srtm_shared_k2prime,
)
from bids_app.kinetics.model import ReferenceTissueFit, srtm2_model, srtm_model
from bids_app.kinetics.mrtm2 import fit_mrtm2
from bids_app.kinetics.srtm import fit_srtm, fit_srtm2
from bids_app.kinetics.weights import frame_weights
from bids_app.timing import FrameTiming

__all__ = [
    "FrameTiming",
    "K2PrimeEstimate",
    "ParticipantK2Prime",
    "ReferenceTissueFit",
    "SessionTACs",
    "SharedK2PrimeFit",
    "estimate_k2prime",
    "estimate_participant_k2prime",
    "fit_mrtm2",
    "fit_srtm",
    "fit_srtm2",
    "fit_srtm_shared_k2prime",
    "frame_weights",
    "srtm2_k2a_range",
    "srtm2_model",
    "srtm_model",
]
