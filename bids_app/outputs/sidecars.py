"""JSON sidecars of every output, built from plain values.

Each function returns the dictionary written next to one output; the pipelines pass the values
(no result objects), so the schema of every sidecar is readable in one place.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bids_app.outputs.io import write_json
from bids_app.outputs.names import MODEL, Space

CODE_URL = "https://github.com/bids-app/bids_app"

MAP_UNITS = {"BPND": "unitless", "R1": "unitless", "k2a": "1/min"}
FIT_STATUS_CODES = {
    0: "outside the fit mask",
    1: "fit valid",
    2: "best basis at the k2a range bound (valid but flagged)",
    3: "fit failed (NaN in the maps)",
}
_MOTION_COLUMNS = {
    "trans_x": ("Translation along x (left-right)", "mm"),
    "trans_y": ("Translation along y (posterior-anterior)", "mm"),
    "trans_z": ("Translation along z (inferior-superior)", "mm"),
    "rot_x": ("Rotation about x", "rad"),
    "rot_y": ("Rotation about y", "rad"),
    "rot_z": ("Rotation about z", "rad"),
    "framewise_displacement": (
        "Framewise displacement (Power et al. 2012; rotations on a 50 mm sphere)",
        "mm",
    ),
}


@dataclass(frozen=True)
class FitDescription:
    """How one session's parametric maps and ROI values were obtained.

    Attributes
    ----------
    source : str
        The raw PET file relative to the BIDS root (``sub-01/ses-sal/pet/...``).
    reference_region : str
        Reference ROI name.
    atlas : str
        Atlas of the ROIs.
    k2prime_per_min : float
        The fixed k2', 1/min.
    k2prime_method : str
        How k2' was obtained.
    k2prime_session_estimate_per_min : float
        The session's own k2' estimate, 1/min (differs from the fixed value when pooled).
    n_basis : int
        Number of basis functions.
    k2a_range_per_min : (float, float)
        Range of the basis rates, 1/min.
    weights : str
        Frame weighting scheme.
    """

    source: str
    reference_region: str
    atlas: str
    k2prime_per_min: float
    k2prime_method: str
    k2prime_session_estimate_per_min: float
    n_basis: int
    k2a_range_per_min: tuple[float, float]
    weights: str


def _basis_settings(fit: FitDescription) -> dict[str, object]:
    lo, hi = fit.k2a_range_per_min
    return {
        "Method": "basis functions (Gunn et al. 1997; SRTM2 form of Wu & Carson 2002)",
        "NumberOfBasisFunctions": fit.n_basis,
        "k2aRange": [lo, hi],
        "k2aRangeUnits": "1/min",
        "Spacing": "logarithmic",
    }


def map_sidecar(
    measure: str, fit: FitDescription, space: Space, version: str, seed: int, threads: int
) -> dict[str, object]:
    """Sidecar of a parametric map (``meas-<measure>_mimap``)."""
    return {
        "ModelName": MODEL,
        "Measure": measure,
        "Units": MAP_UNITS[measure],
        "ReferenceRegion": fit.reference_region,
        "Atlas": fit.atlas,
        "k2prime": fit.k2prime_per_min,
        "k2primeUnits": "1/min",
        "k2primeMethod": fit.k2prime_method,
        "k2primeSessionEstimate": fit.k2prime_session_estimate_per_min,
        "BasisFunctions": _basis_settings(fit),
        "FitWeights": fit.weights,
        "ModelSampling": "model averaged over each frame on a fine time grid",
        "SpatialReference": space.name,
        "Resolution": f"{space.resolution_mm} mm isotropic",
        "Smoothing": "none (smoothing belongs to the group level)",
        "MissingValues": "NaN outside the fit mask and where the fit failed",
        "Sources": [f"bids:raw:{fit.source}"],
        "SoftwareVersion": version,
        "RandomSeed": seed,
        "Threads": threads,
    }


def fit_status_sidecar() -> dict[str, object]:
    """Sidecar of the voxel fit-status mask."""
    return {"Description": f"{MODEL} voxel fit status", "Levels": FIT_STATUS_CODES}


def confounds_sidecar(
    columns: Sequence[str],
    centre_mm: Sequence[float],
    reference_frames: Sequence[int],
    source: str,
) -> dict[str, object]:
    """Sidecar of the motion confounds table."""
    payload: dict[str, object] = {
        col: {"Description": _MOTION_COLUMNS[col][0], "Units": _MOTION_COLUMNS[col][1]}
        for col in columns
        if col in _MOTION_COLUMNS
    }
    payload["RotationCentre"] = {
        "Description": "Centre of the rotations (the motion reference's centre of mass); "
        "each frame's transform maps reference-space points x to frame-space points "
        "R (x - c) + c + t, with R = Rz Ry Rx",
        "Value": [float(v) for v in centre_mm],
        "Units": "mm",
    }
    payload["ReferenceFrames"] = [int(i) for i in reference_frames]
    payload["Sources"] = [f"bids:raw:{source}"]
    return payload


def tacs_sidecar(
    units: str,
    reference_region: str,
    atlas: str,
    regions: Mapping[str, tuple[str, int]],
    space: Space,
    source: str,
) -> dict[str, object]:
    """Sidecar of the ROI TAC table; ``regions`` maps ROI -> (description, voxel count)."""
    return {
        "Units": units,
        "frame_start": {"Description": "Frame start relative to TimeZero", "Units": "s"},
        "frame_end": {"Description": "Frame end relative to TimeZero", "Units": "s"},
        "ReferenceRegion": reference_region,
        "Atlas": atlas,
        "Regions": {
            name: {"Description": description, "NumberOfVoxels": int(n_voxels)}
            for name, (description, n_voxels) in regions.items()
        },
        "SpatialReference": space.name,
        "Sources": [f"bids:raw:{source}"],
    }


def kinpar_sidecar(fit: FitDescription) -> dict[str, object]:
    """Sidecar of the ROI parameter table."""
    return {
        "ModelName": MODEL,
        "Method": "bounded non-linear least squares on ROI TACs, k2' fixed",
        "ReferenceRegion": fit.reference_region,
        "k2primeMethod": fit.k2prime_method,
        "FitWeights": fit.weights,
        "BPND": {"Description": "Non-displaceable binding potential", "Units": "unitless"},
        "R1": {"Description": "Relative delivery K1/K1'", "Units": "unitless"},
        "k2a": {"Description": "Apparent efflux rate k2/(1+BPND)", "Units": "1/min"},
        "k2prime": {"Description": "Reference-region efflux rate (fixed)", "Units": "1/min"},
    }


def group_map_sidecar(
    measure: str, kind: str, statistics: Mapping[str, Any], space: Space
) -> dict[str, object]:
    """Sidecar of a group statistic map; ``statistics`` holds df, thresholds, FWHM, resels."""
    return {
        "Measure": measure,
        "Contrast": "challenge - baseline (paired)",
        "Map": kind,
        **dict(statistics),
        "SpatialReference": space.name,
    }


def dataset_description(
    version: str, container: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The ``dataset_description.json`` content of the derivatives folder."""
    generated_by: dict[str, Any] = {
        "Name": "bids_app",
        "Version": version,
        "CodeURL": CODE_URL,
        "Description": "SRTM2 reference-tissue modelling and paired group statistics",
    }
    if container:
        generated_by["Container"] = dict(container)
    return {
        "Name": "bids_app derivatives",
        "BIDSVersion": "1.10.0",
        "DatasetType": "derivative",
        "GeneratedBy": [generated_by],
    }


def container_info() -> dict[str, str] | None:
    """Describe the container this process runs in, from variables the image sets."""
    tag = os.environ.get("BIDS_APP_CONTAINER_TAG")
    if not tag:
        return None
    return {"Type": os.environ.get("BIDS_APP_CONTAINER_TYPE", "docker"), "Tag": tag}


def write_dataset_description(output_dir: Path, version: str) -> Path:
    """Write (or refresh) ``OUTPUT_DIR/dataset_description.json``."""
    path = output_dir / "dataset_description.json"
    write_json(path, dataset_description(version, container_info()))
    return path
