"""BIDS input/output: dataset discovery and validation, PET metadata, the BIDS validator.

:mod:`bids_app.bidsio.layout` is the only module of the app that uses pybids.
"""

from __future__ import annotations

from bids_app.bidsio.imagedata import load_pet_data
from bids_app.bidsio.layout import (
    ParticipantInput,
    PetScan,
    Study,
    build_layout,
    check_output_dir,
    discover_study,
)
from bids_app.bidsio.metadata import REQUIRED_PET_FIELDS, frame_timing_from_metadata
from bids_app.bidsio.validator import ValidatorResult, run_bids_validator

__all__ = [
    "REQUIRED_PET_FIELDS",
    "ParticipantInput",
    "PetScan",
    "Study",
    "ValidatorResult",
    "build_layout",
    "check_output_dir",
    "discover_study",
    "frame_timing_from_metadata",
    "load_pet_data",
    "run_bids_validator",
]
