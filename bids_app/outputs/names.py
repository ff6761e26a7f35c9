"""Output file names and folders (BIDS-Derivatives), built in one place.

Entity order is fixed: the source entities (``sub``, ``ses``, ``trc``, ``rec``, ``run``) first,
then ``space``, ``res``, ``seg``, ``model``, ``meas``, ``contrast``, ``stat``, ``desc``, then the
suffix. Participant outputs live in ``OUTPUT_DIR/sub-<p>/ses-<s>/pet/``; group outputs in
``OUTPUT_DIR/group/``; logs, manifests and the run summary in ``OUTPUT_DIR/logs/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SOURCE_ENTITIES = ("sub", "ses", "trc", "rec", "run")
DERIVED_ENTITIES = ("space", "res", "seg", "model", "meas", "contrast", "stat", "desc")

#: Kinetic model of the parametric maps and ROI tables.
MODEL = "SRTM2"
#: Parametric maps written per session (``meas-<name>``).
MAP_MEASURES = ("BPND", "R1", "k2a")
#: Measures the group level analyses voxelwise.
GROUP_MEASURES = ("BPND", "R1")
#: Roles of the two sessions of a participant.
ROLES = ("baseline", "challenge")

GROUP_DIR = "group"
LOGS_DIR = "logs"
SUMMARY_NAME = "summary.tsv"
MANIFEST_SUFFIX = "_outputs.json"

#: Group-level tables and documents (file name -> what it holds).
GROUP_FILES: dict[str, str] = {
    "clusters": "clusters.tsv",
    "cluster_peaks": "cluster_peaks.tsv",
    "roi_stats": "roi_stats.tsv",
    "participant_measures": "participant_measures.tsv",
    "net_change_stats": "net_change_stats.tsv",
    "behavior_effects": "behavior_effects.tsv",
    "correlations": "correlations.tsv",
    "parameters": "group_parameters.json",
    "report": "group.html",
}

#: Group statistic maps: kind -> (entities beyond space/res/meas/contrast, suffix).
GROUP_MAPS: dict[str, tuple[dict[str, str], str]] = {
    "t": ({"stat": "t"}, "statmap"),
    "p_decrease": ({"stat": "p", "desc": "decrease"}, "statmap"),
    "p_increase": ({"stat": "p", "desc": "increase"}, "statmap"),
    "clusters_decrease": ({"desc": "decreaseclusters"}, "mask"),
    "clusters_increase": ({"desc": "increaseclusters"}, "mask"),
    "meandiff": ({"desc": "meandiff"}, "statmap"),
}


def derivative_name(
    source: Mapping[str, str], suffix: str, extension: str, **entities: str | None
) -> str:
    """Build a BIDS-Derivatives file name.

    Parameters
    ----------
    source : mapping
        Entities of the source file (``sub``, ``ses``, and optionally ``trc``, ``rec``, ``run``).
    suffix : str
        The BIDS suffix, e.g. ``"mimap"``, ``"tacs"``, ``"timeseries"``.
    extension : str
        With the dot, e.g. ``".nii.gz"``.
    **entities
        Derived entities (:data:`DERIVED_ENTITIES`); ``None`` values are left out.

    Returns
    -------
    str
        e.g. ``sub-01_ses-sal_trc-raclopride_space-MNI152NLin2009aSym_res-2_model-SRTM2_``
        ``meas-BPND_mimap.nii.gz``.
    """
    unknown = set(entities) - set(DERIVED_ENTITIES)
    if unknown:
        msg = f"unknown derivative entities {sorted(unknown)}; use one of {DERIVED_ENTITIES}"
        raise ValueError(msg)
    parts = [f"{key}-{source[key]}" for key in SOURCE_ENTITIES if source.get(key)]
    parts += [f"{key}-{entities[key]}" for key in DERIVED_ENTITIES if entities.get(key)]
    return "_".join([*parts, suffix]) + extension


def sidecar_name(name: str) -> str:
    """The JSON sidecar of a ``.tsv``/``.nii.gz``/``.nii`` output name."""
    for ext in (".nii.gz", ".nii", ".tsv"):
        if name.endswith(ext):
            return name[: -len(ext)] + ".json"
    msg = f"{name!r} has no sidecar (expected a .tsv, .nii or .nii.gz name)"
    raise ValueError(msg)


def participant_dir(output_dir: Path, subject: str, session: str | None = None) -> Path:
    """``OUTPUT_DIR/sub-<p>[/ses-<s>/pet]``."""
    base = output_dir / f"sub-{subject}"
    return base / f"ses-{session}" / "pet" if session else base


@dataclass(frozen=True)
class Space:
    """The template space of the maps: ``space-<name>_res-<label>``."""

    name: str
    resolution_mm: int

    def entities(self) -> dict[str, str]:
        """``{"space": ..., "res": ...}``."""
        return {"space": self.name, "res": str(self.resolution_mm)}


def session_outputs(
    subject: str,
    session: str,
    source_entities: Mapping[str, str],
    space: Space,
    atlas_name: str,
) -> dict[str, Path]:
    """Every file of one session, relative to OUTPUT_DIR (sidecars as ``<kind>_json``).

    Parameters
    ----------
    subject, session : str
        Labels without prefixes.
    source_entities : mapping
        The other entities of the source PET file (``trc``, ``rec``, ``run``).
    space : Space
        Template space of the maps.
    atlas_name : str
        ``seg-`` label of the TAC table.

    Returns
    -------
    dict of str to Path
        Kinds ``confounds``, ``BPND``, ``R1``, ``k2a``, ``fitstatus``, ``tacs``, ``kinpar`` and
        their ``<kind>_json`` sidecars.
    """
    source = {"sub": subject, "ses": session, **source_entities}
    names = {
        "confounds": derivative_name(source, "timeseries", ".tsv", desc="confounds"),
        **{
            meas: derivative_name(
                source, "mimap", ".nii.gz", model=MODEL, meas=meas, **space.entities()
            )
            for meas in MAP_MEASURES
        },
        "fitstatus": derivative_name(
            source, "mask", ".nii.gz", model=MODEL, desc="fitstatus", **space.entities()
        ),
        "tacs": derivative_name(source, "tacs", ".tsv", seg=atlas_name, desc="preproc"),
        "kinpar": derivative_name(source, "kinpar", ".tsv", model=MODEL),
    }
    folder = participant_dir(Path(), subject, session)
    out: dict[str, Path] = {}
    for kind, name in names.items():
        out[kind] = folder / name
        out[f"{kind}_json"] = folder / sidecar_name(name)
    return out


def report_name(subject: str) -> Path:
    """The participant report, relative to OUTPUT_DIR."""
    return Path(f"sub-{subject}.html")


def group_map_name(kind: str, measure: str, contrast: str, space: Space) -> str:
    """File name of a group statistic map (see :data:`GROUP_MAPS`)."""
    try:
        extra, suffix = GROUP_MAPS[kind]
    except KeyError:
        msg = f"unknown group map {kind!r}; expected one of {sorted(GROUP_MAPS)}"
        raise ValueError(msg) from None
    return derivative_name(
        {}, suffix, ".nii.gz", meas=measure, contrast=contrast, **space.entities(), **extra
    )


def logs_dir(output_dir: Path) -> Path:
    """``OUTPUT_DIR/logs``."""
    return output_dir / LOGS_DIR


def manifest_path(output_dir: Path, subject: str) -> Path:
    """``OUTPUT_DIR/logs/sub-<label>_outputs.json``."""
    return logs_dir(output_dir) / f"sub-{subject}{MANIFEST_SUFFIX}"


def summary_path(output_dir: Path) -> Path:
    """``OUTPUT_DIR/logs/summary.tsv``."""
    return logs_dir(output_dir) / SUMMARY_NAME


def crash_path(output_dir: Path, subject: str, time_label: str) -> Path:
    """``OUTPUT_DIR/logs/crash-sub-<label>-<time_label>.txt`` (a failed participant's report).

    Parameters
    ----------
    output_dir : Path
        OUTPUT_DIR.
    subject : str
        Participant label without ``sub-``.
    time_label : str
        When it failed, e.g. ``"20240611-101530"`` (local time, as the log file names).
    """
    return logs_dir(output_dir) / f"crash-sub-{subject}-{time_label}.txt"


def group_dir(output_dir: Path) -> Path:
    """``OUTPUT_DIR/group``."""
    return output_dir / GROUP_DIR
