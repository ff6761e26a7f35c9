"""JSON sidecars of every output, built from plain values.

Each function returns the dictionary written next to one output; the pipelines pass the values
(no result objects), so the schema of every sidecar is readable in one place.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bids_app.outputs.io import write_json, write_text, write_tsv
from bids_app.outputs.names import (
    BIDSIGNORE,
    DATASET_FILES,
    DESCRIPTIONS,
    GROUP_FILES,
    MODEL,
    Space,
)

CODE_URL = "https://github.com/bids-app/bids_app"

MAP_UNITS = {"BPND": "unitless", "R1": "unitless", "k2a": "1/min"}
#: Fit-status values of the voxel maps' ``desc-fitstatus`` mask.
FIT_STATUS_OUTSIDE_MASK = 0
FIT_STATUS_VALID = 1
FIT_STATUS_AT_BOUND = 2
FIT_STATUS_FAILED = 3
FIT_STATUS_NO_DATA = 4
FIT_STATUS_CODES = {
    FIT_STATUS_OUTSIDE_MASK: "outside the fit mask",
    FIT_STATUS_VALID: "fit valid",
    FIT_STATUS_AT_BOUND: "best basis at the k2a range bound (valid but flagged)",
    FIT_STATUS_FAILED: "fit failed (NaN in the maps)",
    FIT_STATUS_NO_DATA: "outside the PET field of view in at least one frame (not fitted, NaN)",
}
#: The statuses of voxels that were fitted.
FIT_STATUS_FITTED = (FIT_STATUS_VALID, FIT_STATUS_AT_BOUND, FIT_STATUS_FAILED)
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
_MOTION_FLAGS = {
    "usable": "True when the frame was registered to the motion reference itself; False when "
    "it had too few counts and took the transform of the nearest reliable frame",
    "source_frame": "0-based index of the frame whose transform this frame uses",
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
        "Resolution": space.resolution(),
        "Smoothing": "none (smoothing belongs to the group level)",
        "MissingValues": "NaN outside the fit mask and where the fit failed",
        "Sources": [f"bids:raw:{fit.source}"],
        "SoftwareVersion": version,
        "RandomSeed": seed,
        "Threads": threads,
    }


def fit_status_sidecar(space: Space, source: str) -> dict[str, object]:
    """Sidecar of the voxel fit-status mask (a label image, values in ``Levels``)."""
    return {
        "Description": f"{MODEL} voxel fit status",
        "ModelName": MODEL,
        "Type": "ROI",
        "Levels": FIT_STATUS_CODES,
        "SpatialReference": space.name,
        "Resolution": space.resolution(),
        "Sources": [f"bids:raw:{source}"],
    }


def confounds_sidecar(
    columns: Sequence[str],
    centre_mm: Iterable[float],
    reference_frames: Sequence[int],
    source: str,
) -> dict[str, object]:
    """Sidecar of the motion confounds table (every column described).

    Raises
    ------
    ValueError
        For a column this module cannot describe (a new confound needs its description here).
    """
    payload: dict[str, object] = {}
    for col in columns:
        if col in _MOTION_COLUMNS:
            payload[col] = {
                "Description": _MOTION_COLUMNS[col][0],
                "Units": _MOTION_COLUMNS[col][1],
            }
        elif col in _MOTION_FLAGS:
            payload[col] = {"Description": _MOTION_FLAGS[col]}
        else:
            msg = f"confounds column {col!r} has no description in bids_app.outputs.sidecars"
            raise ValueError(msg)
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
    """Sidecar of the ROI TAC table; ``regions`` maps ROI -> (description, voxel count).

    Every column is described: the frame bounds and one column per ROI (mean activity over
    the ROI's voxels in each motion-corrected, normalised frame, in the PET data's units).
    """
    payload: dict[str, object] = {
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
    for name, (description, n_voxels) in regions.items():
        role = " (reference region)" if name == reference_region else ""
        payload[name] = {
            "Description": f"Mean activity over the {name} ROI{role}, {int(n_voxels)} voxels"
            + (f": {description}" if description else ""),
            "Units": units,
        }
    return payload


def kinpar_sidecar(fit: FitDescription) -> dict[str, object]:
    """Sidecar of the ROI parameter table."""
    return {
        "ModelName": MODEL,
        "Method": "bounded non-linear least squares on ROI TACs, k2' fixed",
        "ReferenceRegion": fit.reference_region,
        "k2primeMethod": fit.k2prime_method,
        "FitWeights": fit.weights,
        "roi": {"Description": f"Region of interest of the {fit.atlas} atlas (see the TACs)"},
        "BPND": {"Description": "Non-displaceable binding potential", "Units": "unitless"},
        "R1": {"Description": "Relative delivery K1/K1'", "Units": "unitless"},
        "k2a": {"Description": "Apparent efflux rate k2/(1+BPND)", "Units": "1/min"},
        "k2prime": {"Description": "Reference-region efflux rate (fixed)", "Units": "1/min"},
        "coverage": {
            "Description": "Share of the ROI's voxels inside the PET field of view in every "
            "frame; the ROI TAC averages those voxels only, and below 0.8 the parameters are n/a",
            "Units": "fraction",
        },
        "note": {"Description": "Why the parameters are n/a (empty when they are reported)"},
    }


#: Units and meaning of each group map kind (``GROUP_MAPS`` in :mod:`~bids_app.outputs.names`).
_GROUP_MAP_VALUES = {
    "t": (
        "unitless",
        "paired t statistic, challenge - baseline (negative: lower under the challenge)",
    ),
    "p_decrease": ("unitless", "uncorrected one-sided p of challenge < baseline"),
    "p_increase": ("unitless", "uncorrected one-sided p of challenge > baseline"),
    "clusters_decrease": ("unitless", "cluster_id of clusters.tsv (0 = no cluster)"),
    "clusters_increase": ("unitless", "cluster_id of clusters.tsv (0 = no cluster)"),
    "meandiff": (None, "mean paired difference, challenge - baseline, smoothed maps"),
}


def group_map_sidecar(
    measure: str, kind: str, statistics: Mapping[str, Any], space: Space, contrast: str = ""
) -> dict[str, object]:
    """Sidecar of a group statistic map; ``statistics`` holds df, thresholds, FWHM, resels.

    Parameters
    ----------
    measure : str
        ``BPND`` or ``R1``.
    kind : str
        A key of :data:`bids_app.outputs.names.GROUP_MAPS`.
    statistics : mapping
        Inference settings and results shared by the maps of the measure.
    space : Space
        Template space of the maps.
    contrast : str
        The ``contrast-`` label (e.g. ``nalMinussal``).
    """
    units, description = _GROUP_MAP_VALUES[kind]
    return {
        "Measure": measure,
        "Contrast": "challenge - baseline (paired)",
        "ContrastLabel": contrast,
        "Map": kind,
        "Description": description,
        "Units": MAP_UNITS.get(measure, "unitless") if units is None else units,
        **dict(statistics),
        "SpatialReference": space.name,
        "Resolution": space.resolution(),
    }


#: Column descriptions of the group tables the group level writes without a schema of their
#: own (``clusters.tsv`` and ``cluster_peaks.tsv`` are described in
#: :mod:`bids_app.pipelines.group_tables`). Relative changes are fractions (0.10 = 10 %).
GROUP_TABLE_COLUMNS: dict[str, dict[str, dict[str, str]]] = {
    "roi_stats": {
        "measure": {"Description": "BPND or R1"},
        "roi": {
            "Description": "Region of interest; dorsal_vs_ventral (AAL3) and "
            "dorsal_vs_ventral_mawlawi are the paired tests of the dorsal and ventral "
            "striatum's relative BPND changes"
        },
        "n": {"Description": "Participants with a finite value in both sessions"},
        "baseline_mean": {"Description": "Mean over participants, baseline session"},
        "baseline_sd": {"Description": "SD over participants (ddof 1), baseline session"},
        "challenge_mean": {"Description": "Mean over participants, challenge session"},
        "challenge_sd": {"Description": "SD over participants (ddof 1), challenge session"},
        "mean_change_pct": {
            "Description": "100 (challenge_mean - baseline_mean) / baseline_mean",
            "Units": "%",
        },
        "t": {"Description": "Paired t, challenge - baseline (negative: lower under challenge)"},
        "df": {"Description": "Degrees of freedom of t (n - 1)"},
        "p": {"Description": "Two-sided p of t, uncorrected"},
        "cohen_d": {"Description": "Cohen's d_z of the paired differences (sign of t)"},
        "p_corrected": {"Description": "p after the correction named in 'correction'"},
        "correction": {
            "Description": "Correction family and method (none: a-priori ROI, uncorrected; "
            "bonferroni_n<k>: Bonferroni over k ROIs)"
        },
        "status": {"Description": "ok, or why the test is undefined (too few pairs, ...)"},
        "definition": {
            "Description": "Striatal definition of the row: AAL3 (dorsal_striatum = caudate + "
            "putamen, ventral_striatum = accumbens, their dorsal_vs_ventral test) or "
            "Mawlawi2001 (Mawlawi et al. 2001 / Martinez et al. 2003 subdivisions vst_mawlawi, "
            "dst_mawlawi, pre_dca, post_ca, pre_dpu, post_pu and dorsal_vs_ventral_mawlawi; "
            "docs/atlas.md); n/a for other ROIs"
        },
    },
    "net_change_stats": {
        "measure": {
            "Description": "Column of participant_measures.tsv tested against 0 "
            "(definitions in group_parameters.json: net_change_estimators)"
        },
        "n": {"Description": "Participants with a finite value"},
        "mean": {"Description": "Mean over participants (fraction; 0.10 = 10 %)"},
        "sd": {"Description": "SD over participants (ddof 1), fraction"},
        "t": {"Description": "One-sample t against 0"},
        "df": {"Description": "Degrees of freedom of t (n - 1)"},
        "p": {"Description": "Two-sided p of t"},
        "cohen_d": {"Description": "Cohen's d (mean / sd)"},
        "estimator": {
            "Description": "symmetric: mean symmetric voxel change; roi_mean: change of the "
            "striatal mean (group_parameters.json: net_change_estimators)"
        },
    },
    "participant_measures": {
        "participant_id": {"Description": "Participant"},
        "net_da_release": {
            "Description": "Mean over the striatum of (BPND_baseline - BPND_challenge) / "
            "BPND_baseline, symmetric estimator (positive: dopamine release); fraction"
        },
        "net_da_release_roi": {
            "Description": "(mean BPND_baseline - mean BPND_challenge) / mean BPND_baseline "
            "over the striatum; fraction"
        },
        "net_rcbf_change": {
            "Description": "Mean over the striatum of (R1_challenge - R1_baseline) / "
            "R1_baseline, symmetric estimator (positive: higher flow); fraction"
        },
        "net_rcbf_change_roi": {
            "Description": "(mean R1_challenge - mean R1_baseline) / mean R1_baseline over the "
            "striatum; fraction"
        },
        "dorsal_da_release": {
            "Description": "(BPND_baseline - BPND_challenge) / BPND_baseline of the dorsal "
            "striatum's ROI BPND; fraction"
        },
        "ventral_da_release": {
            "Description": "(BPND_baseline - BPND_challenge) / BPND_baseline of the ventral "
            "striatum's ROI BPND; fraction"
        },
        "pituitary_r1_change": {
            "Description": "(R1_challenge - R1_baseline) / R1_baseline of the pituitary ROI; "
            "fraction"
        },
        "carotid_r1_change": {
            "Description": "(R1_challenge - R1_baseline) / R1_baseline of the carotid ROI; "
            "fraction"
        },
        "k2prime_baseline": {
            "Description": "k2' of the baseline session (reference-region efflux rate, "
            "kinpar.tsv column k2prime)",
            "Units": "1/min",
        },
        "k2prime_challenge": {
            "Description": "k2' of the challenge session (kinpar.tsv column k2prime)",
            "Units": "1/min",
        },
        "injected_radioactivity_baseline": {
            "Description": "InjectedRadioactivity of the baseline PET sidecar (n/a if absent)",
            "Units": "MBq",
        },
        "injected_radioactivity_challenge": {
            "Description": "InjectedRadioactivity of the challenge PET sidecar (n/a if absent)",
            "Units": "MBq",
        },
        "injected_mass_baseline": {
            "Description": "InjectedMass of the baseline PET sidecar (n/a if absent)",
            "Units": "ug",
        },
        "injected_mass_challenge": {
            "Description": "InjectedMass of the challenge PET sidecar (n/a if absent)",
            "Units": "ug",
        },
        "molar_activity_baseline": {
            "Description": "MolarActivity of the baseline PET sidecar (n/a if absent)",
            "Units": "GBq/umol",
        },
        "molar_activity_challenge": {
            "Description": "MolarActivity of the challenge PET sidecar (n/a if absent)",
            "Units": "GBq/umol",
        },
        "aversion_index": {
            "Description": "PC1 score of the z-scored challenge-induced changes of the selected "
            "subjective items (higher: more aversive)",
            "Units": "arbitrary",
        },
    },
    "session_comparisons": {
        "quantity": {
            "Description": "Per-session quantity compared (columns <quantity>_baseline and "
            "<quantity>_challenge of participant_measures.tsv): k2prime, "
            "injected_radioactivity, injected_mass, molar_activity"
        },
        "unit": {"Description": "Unit of the quantity's values and means"},
        "n": {"Description": "Participants with a finite value in both sessions"},
        "baseline_mean": {"Description": "Mean over participants, baseline session"},
        "baseline_sd": {"Description": "SD over participants (ddof 1), baseline session"},
        "challenge_mean": {"Description": "Mean over participants, challenge session"},
        "challenge_sd": {"Description": "SD over participants (ddof 1), challenge session"},
        "mean_change_pct": {
            "Description": "100 (challenge_mean - baseline_mean) / baseline_mean",
            "Units": "%",
        },
        "t": {"Description": "Paired t (scipy.stats.ttest_rel), challenge - baseline"},
        "df": {"Description": "Degrees of freedom of t (n - 1)"},
        "p": {"Description": "Two-sided p of t"},
        "status": {"Description": "ok, or why the test is undefined (too few pairs, ...)"},
        "note": {"Description": "How many participants lacked a value (n/a: none)"},
    },
    "behavior_effects": {
        "measure": {"Description": "Phenotype measure (column of phenotype/*.tsv)"},
        "time_min": {
            "Description": "Post-injection time point of a subjective item (n/a: window mean)",
            "Units": "min",
        },
        "t": {"Description": "Paired t, challenge - baseline"},
        "df": {"Description": "Degrees of freedom of t"},
        "p": {"Description": "Two-sided p of t, uncorrected"},
        "p_fdr": {"Description": "Benjamini-Hochberg FDR-adjusted p over every test here"},
        "selected": {"Description": "True when the item/time entered the aversion index"},
        "kind": {"Description": "subjective, hormone or cardiovascular"},
        "window": {"Description": "How the session value was formed"},
        "n": {"Description": "Participants in the test"},
        "mean_difference": {
            "Description": "Mean paired difference, challenge - baseline, in the measure's "
            "units (rating points for subjective items)"
        },
        "cohen_d": {"Description": "Cohen's d_z of the paired differences (sign of t)"},
        "status": {"Description": "ok, or why the test is undefined"},
    },
    "correlations": {
        "x": {"Description": "Column of participant_measures.tsv on the x axis"},
        "y": {"Description": "Column of participant_measures.tsv on the y axis"},
        "n": {"Description": "Participants with both values"},
        "r": {"Description": "Pearson correlation"},
        "df": {"Description": "Degrees of freedom (n - 2)"},
        "p": {"Description": "Two-sided p of r"},
        "spearman_rho": {"Description": "Spearman rank correlation"},
        "spearman_p": {"Description": "Two-sided p of rho"},
        "r_loo_min": {
            "Description": "Smallest Pearson r when each participant is left out in turn "
            "(n/a: fewer than 4 participants)"
        },
        "r_loo_max": {
            "Description": "Largest Pearson r when each participant is left out in turn "
            "(n/a: fewer than 4 participants)"
        },
    },
    "behavior_descriptives": {
        "measure": {"Description": "Phenotype measure (column of phenotype/*.tsv)"},
        "kind": {"Description": "subjective, hormone or cardiovascular"},
        "condition": {"Description": "baseline or challenge session"},
        "session_id": {"Description": "Session label (without ses-)"},
        "time_min": {"Description": "Time from the drug injection", "Units": "min"},
        "n": {"Description": "Participants with a value at this session and time"},
        "mean": {"Description": "Mean over participants, in the measure's units"},
        "sd": {"Description": "SD over participants (ddof 1; n/a when n < 2)"},
    },
    "aversion_loadings": {
        "column": {"Description": "Challenge-induced change entering the aversion index"},
        "measure": {"Description": "Subjective item (column of phenotype/subjective.tsv)"},
        "time_min": {"Description": "Post-injection time point of the change", "Units": "min"},
        "aversive_sign": {
            "Description": "+1 when an increase of the item is aversive, -1 when a decrease "
            "is; orients PC1 so that higher scores mean more aversion"
        },
        "loading": {
            "Description": "Unit-norm PC1 loading of the z-scored change (after orientation)"
        },
        "explained_variance_ratio": {
            "Description": "Fraction of the variance of the z-scored changes carried by PC1 "
            "(same on every row)"
        },
        "n": {"Description": "Participants with every selected change"},
        "status": {
            "Description": "ok, single_item, too_few_participants or orientation_undetermined"
        },
    },
}


def group_table_sidecar(
    kind: str, columns: Sequence[str], units: Mapping[str, str] | None = None
) -> dict[str, object]:
    """Sidecar describing every column of a group table.

    Parameters
    ----------
    kind : str
        A key of :data:`GROUP_TABLE_COLUMNS` (the table's ``GROUP_FILES`` key).
    columns : sequence of str
        The table's columns.
    units : mapping of str to str, optional
        Units of the phenotype measures (from their ``phenotype/*.json`` sidecars), for the
        ``<measure>_change`` columns of ``participant_measures.tsv``.

    Raises
    ------
    ValueError
        For a column that cannot be described (add it to :data:`GROUP_TABLE_COLUMNS`).
    """
    known = GROUP_TABLE_COLUMNS[kind]
    payload: dict[str, object] = {}
    for col in columns:
        if col in known:
            payload[col] = known[col]
        elif kind == "participant_measures" and col.endswith("_change"):
            measure = col.removesuffix("_change")
            entry = {
                "Description": f"Challenge-induced change of {measure}: challenge minus "
                "baseline window mean (behavior_effects.tsv: window), in the measure's units"
            }
            unit = (units or {}).get(measure)
            if unit:
                entry["Units"] = unit
            payload[col] = entry
        else:
            msg = f"{GROUP_FILES[kind]} column {col!r} has no description in sidecars.py"
            raise ValueError(msg)
    return payload


def transform_sidecar(
    description: str, from_space: str, to_space: str, apply_order: Sequence[str] = ()
) -> dict[str, object]:
    """Sidecar of a spatial transform file (ITK/ANTs convention).

    Parameters
    ----------
    description : str
        What the transform does.
    from_space, to_space : str
        The image it resamples and the space it resamples it into.
    apply_order : sequence of str
        For a chain of files: every file of the chain in ``antsApplyTransforms -t`` order.
    """
    payload: dict[str, object] = {
        "Description": description,
        "FromSpace": from_space,
        "ToSpace": to_space,
        "Convention": "ITK/ANTs: the transform maps points of ToSpace to points of FromSpace "
        "(the pull-back that resamples the FromSpace image onto the ToSpace grid); RAS "
        "coordinates are converted to ITK's LPS",
        "Software": "ANTs (antspyx)",
    }
    if apply_order:
        payload["ApplyOrder"] = list(apply_order)
    return payload


def preproc_sidecar(
    source_metadata: Mapping[str, Any], space: Space, source: str, description: str
) -> dict[str, object]:
    """Sidecar of the preprocessed PET series: the source's metadata plus what was done."""
    payload = dict(source_metadata)
    payload.update(
        {
            "Description": description,
            "SpatialReference": space.name,
            "Resolution": space.resolution(),
            "Sources": [f"bids:raw:{source}"],
            "SkullStripped": False,
            "MissingValues": "NaN outside a frame's field of view",
        }
    )
    return payload


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
    """Write (or refresh) the files that make OUTPUT_DIR a BIDS-Derivatives dataset.

    ``dataset_description.json``, ``.bidsignore`` (the outputs BIDS has no place for yet,
    :data:`bids_app.outputs.names.BIDSIGNORE`), ``descriptions.tsv`` (+ ``.json``; every
    ``desc-`` label) and a short ``README.md`` when the folder has no README.

    Returns
    -------
    Path
        The ``dataset_description.json``.
    """
    description, bidsignore, descriptions_tsv, descriptions_json, readme = DATASET_FILES
    path = output_dir / description
    write_json(path, dataset_description(version, container_info()))
    lines = ["# Outputs BIDS 1.10 has no place for yet (bids_app writes this file)"]
    for pattern, reason in BIDSIGNORE.items():
        lines += [f"# {reason}", pattern]
    write_text(output_dir / bidsignore, "\n".join(lines) + "\n")
    table = pd.DataFrame(
        {
            "desc_id": [f"desc-{label}" for label in DESCRIPTIONS],
            "description": list(DESCRIPTIONS.values()),
        }
    )
    write_tsv(output_dir / descriptions_tsv, table)
    write_json(
        output_dir / descriptions_json,
        {
            "Description": "Every desc- label of this dataset's file names and its meaning",
            "desc_id": {"Description": "A desc-<label> entity of the file names"},
            "description": {"Description": "What the label means"},
        },
    )
    if not any(output_dir.glob("README*")):
        write_text(output_dir / readme, _README)
    return path


_README = """# bids_app derivatives

Reference-tissue PET derivatives of a baseline vs challenge study, written by bids_app
(see dataset_description.json: GeneratedBy).

- `sub-<p>.html`: the participant reports (quality control, registration, TACs, maps).
- `sub-<p>/ses-<s>/pet/`: motion confounds, SRTM2 parametric maps (`meas-BPND`, `meas-R1`,
  `meas-k2a`), the voxel fit status, regional TACs and kinetic parameters; with
  `--write-preproc` also the preprocessed PET series and the transforms.
- `group/`: voxelwise and ROI statistics and `group.html`.
- `logs/`: run logs, participant manifests and `summary.tsv`.

Files BIDS has no place for yet are listed in `.bidsignore`; index the outputs with pybids
using the configuration shipped with bids_app (`bids_app.outputs.names.pybids_config()`).
"""
