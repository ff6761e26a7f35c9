"""Template, ROI atlas and time-activity-curve extraction on the MNI template grid."""

from __future__ import annotations

from bids_app.roi.atlas import (
    ATLAS_NAME,
    REFERENCE_ROI,
    RoiAtlas,
    build_roi_atlas,
    load_custom_atlas,
)
from bids_app.roi.extract import extract_tacs, roi_means
from bids_app.roi.template import (
    TEMPLATE_NAME,
    load_brain_mask,
    load_template,
    load_tissue_mask,
    load_tissue_probability,
)

__all__ = [
    "ATLAS_NAME",
    "REFERENCE_ROI",
    "TEMPLATE_NAME",
    "RoiAtlas",
    "build_roi_atlas",
    "extract_tacs",
    "load_brain_mask",
    "load_custom_atlas",
    "load_template",
    "load_tissue_mask",
    "load_tissue_probability",
    "roi_means",
]
