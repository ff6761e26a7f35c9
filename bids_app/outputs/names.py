"""Output file names and folders (BIDS-Derivatives), built in one place.

Entity order is fixed: the source entities (``sub``, ``ses``, ``trc``, ``rec``, ``run``) first,
then ``from``, ``to``, ``mode`` (transforms), ``space``, ``res``, ``seg``, ``model``, ``meas``,
``contrast``, ``stat``, ``desc``, then the suffix. Participant outputs live in
``OUTPUT_DIR/sub-<p>/ses-<s>/pet/``; group outputs in ``OUTPUT_DIR/group/``; logs, manifests and
the run summary in ``OUTPUT_DIR/logs/``.

Where BIDS-Derivatives (1.10) has a place for an output, the name follows it (the preprocessed
PET series ``..._space-<T>_res-2_desc-preproc_pet.nii.gz``, ``descriptions.tsv``). The names the
CONTRACT fixes after the PET-derivatives proposal (``model-``/``meas-`` parametric maps,
``contrast-``/``stat-`` group maps, TAC and parameter tables) and the transforms have no place in
BIDS 1.10 yet: :data:`BIDSIGNORE` lists them for the validator, and the pybids configuration
:func:`pybids_config` declares their entities so that ``BIDSLayout`` indexes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

SOURCE_ENTITIES = ("sub", "ses", "trc", "rec", "run")
DERIVED_ENTITIES = (
    "from",
    "to",
    "mode",
    "space",
    "res",
    "seg",
    "model",
    "meas",
    "contrast",
    "stat",
    "desc",
)

#: Kinetic model of the parametric maps and ROI tables.
MODEL = "SRTM2"
#: Parametric maps written per session (``meas-<name>``).
MAP_MEASURES = ("BPND", "R1", "k2a")
#: Measures the group level analyses voxelwise.
GROUP_MEASURES = ("BPND", "R1")
#: Role of a session of a participant.
Role = Literal["baseline", "challenge"]
#: Roles of the two sessions of a participant.
ROLES: tuple[Role, Role] = ("baseline", "challenge")

GROUP_DIR = "group"
LOGS_DIR = "logs"
SUMMARY_NAME = "summary.tsv"
MANIFEST_SUFFIX = "_outputs.json"
PYBIDS_CONFIG = "pybids_config.json"
#: The dataset-level files of the derivatives folder (written before any participant output).
DATASET_FILES = (
    "dataset_description.json",
    ".bidsignore",
    "descriptions.tsv",
    "descriptions.json",
    "README.md",
)

#: What BIDS 1.10 has no place for, as ``.bidsignore`` patterns (gitignore syntax) with the
#: reason. Everything else the app writes is BIDS-Derivatives valid.
BIDSIGNORE: dict[str, str] = {
    # no trailing slash: the validator also tests the folder itself against the patterns
    f"/{GROUP_DIR}": "group statistic maps and tables (BIDS has no group-level statistics yet)",
    f"/{LOGS_DIR}": "run logs, participant manifests and the run summary",
    "/sub-*.html": "participant reports",
    "*_mimap.*": "parametric maps (model-/meas- entities of the PET-derivatives proposal)",
    "*_tacs.*": "regional time-activity curves (PET-derivatives proposal)",
    "*_kinpar.*": "regional kinetic parameters (PET-derivatives proposal)",
    "*_desc-confounds_timeseries.*": "motion confounds (BIDS has timeseries only for func)",
    "*_desc-fitstatus_mask.*": "voxel fit status (BIDS has masks only for anat, func and dwi)",
    "*_xfm.*": "spatial transforms (BIDS has no transform files yet)",
}

#: Every ``desc-`` label the app writes, with its meaning (``descriptions.tsv``).
DESCRIPTIONS: dict[str, str] = {
    "preproc": "motion-corrected and normalised to the template, every frame interpolated once "
    "(PET series); ROI means of those frames (TAC tables)",
    "confounds": "per-frame rigid motion parameters and framewise displacement",
    "fitstatus": "SRTM2 voxel fit status: 0 outside the fit mask, 1 valid, 2 valid at the k2a "
    "range bound, 3 failed (NaN in the maps)",
    "hmc": "head-motion correction: one rigid transform per frame, frame -> motion reference",
    "coreg": "rigid co-registration of the challenge session's motion reference to the "
    "baseline session's",
    **{
        f"norm{k}": f"part {k} of the normalisation to the template, in antsApplyTransforms "
        "order (the sidecar's ApplyOrder)"
        for k in range(1, 4)
    },
    "decrease": "one-sided test or clusters for challenge < baseline",
    "increase": "one-sided test or clusters for challenge > baseline",
    "decreaseclusters": "clusters of challenge < baseline (values are cluster_id)",
    "increaseclusters": "clusters of challenge > baseline (values are cluster_id)",
    "meandiff": "mean of the paired differences, challenge - baseline (smoothed maps)",
}

#: Group-level tables and documents (file name -> what it holds).
GROUP_FILES: dict[str, str] = {
    "clusters": "clusters.tsv",
    "cluster_peaks": "cluster_peaks.tsv",
    "roi_stats": "roi_stats.tsv",
    "participant_measures": "participant_measures.tsv",
    "net_change_stats": "net_change_stats.tsv",
    "session_comparisons": "session_comparisons.tsv",
    "behavior_effects": "behavior_effects.tsv",
    "behavior_descriptives": "behavior_descriptives.tsv",
    "aversion_loadings": "aversion_loadings.tsv",
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


#: Extensions that have a JSON sidecar (longest first).
SIDECAR_EXTENSIONS = (".nii.gz", ".nii", ".tsv", ".txt", ".mat", ".h5")


def sidecar_name(name: str) -> str:
    """The JSON sidecar of a data file name (``.tsv``, ``.nii[.gz]``, transform files)."""
    for ext in SIDECAR_EXTENSIONS:
        if name.endswith(ext):
            return name[: -len(ext)] + ".json"
    msg = f"{name!r} has no sidecar (expected one of {', '.join(SIDECAR_EXTENSIONS)})"
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

    def resolution(self) -> dict[str, str]:
        """The ``Resolution`` sidecar field BIDS requires with a ``res-`` entity."""
        return {
            str(self.resolution_mm): f"{self.resolution_mm} mm isotropic voxels, the grid of "
            f"the {self.name} template at {self.resolution_mm} mm"
        }


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
        # a BIDS mask takes no model- entity; the sidecar names the model
        "fitstatus": derivative_name(
            source, "mask", ".nii.gz", desc="fitstatus", **space.entities()
        ),
        "tacs": derivative_name(source, "tacs", ".tsv", seg=atlas_name, desc="preproc"),
        "kinpar": derivative_name(source, "kinpar", ".tsv", model=MODEL),
    }
    return _with_sidecars(participant_dir(Path(), subject, session), names)


def _with_sidecars(folder: Path, names: Mapping[str, str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for kind, name in names.items():
        out[kind] = folder / name
        out[f"{kind}_json"] = folder / sidecar_name(name)
    return out


#: The label of a session's motion reference space in ``from-``/``to-`` entities.
PET_REFERENCE = "petref"
#: Normalisation chains have at most 3 files (T1w warp, T1w affine, PET -> T1w rigid).
MAX_NORMALISATION_FILES = 3


def preproc_outputs(
    subject: str,
    session: str,
    source_entities: Mapping[str, str],
    space: Space,
    role: str,
    normalisation_extensions: Sequence[str] = (),
) -> dict[str, Path]:
    """The optional outputs of ``--write-preproc`` for one session, relative to OUTPUT_DIR.

    Parameters
    ----------
    subject, session : str
        Labels without prefixes.
    source_entities : mapping
        The other entities of the source PET file (``trc``, ``rec``, ``run``).
    space : Space
        Template space of the resampled series.
    role : {"baseline", "challenge"}
        The baseline session holds the normalisation transforms; the challenge session the
        co-registration to the baseline.
    normalisation_extensions : sequence of str
        Extensions of the normalisation transform files in ANTs application order (``.mat``
        for an affine, ``.nii.gz`` for a warp field); used for the baseline only.

    Returns
    -------
    dict of str to Path
        ``preproc`` (the 4-D series on the template grid), ``hmc`` (per-frame motion, ITK
        text), ``coreg`` (challenge only) or ``norm1``, ``norm2``, ... (baseline only), and
        their ``<kind>_json`` sidecars.

    Raises
    ------
    ValueError
        For more than :data:`MAX_NORMALISATION_FILES` normalisation files.
    """
    source = {"sub": subject, "ses": session, **source_entities}
    names = {
        "preproc": derivative_name(source, "pet", ".nii.gz", desc="preproc", **space.entities()),
        "hmc": derivative_name(
            source, "xfm", ".txt", to=PET_REFERENCE, mode="image", desc="hmc", **{"from": "orig"}
        ),
    }
    if role == "challenge":
        names["coreg"] = derivative_name(
            source,
            "xfm",
            ".txt",
            to="baseline",
            mode="image",
            desc="coreg",
            **{"from": PET_REFERENCE},
        )
    else:
        if len(normalisation_extensions) > MAX_NORMALISATION_FILES:
            msg = (
                f"{len(normalisation_extensions)} normalisation transform files; at most "
                f"{MAX_NORMALISATION_FILES} are named (desc-norm1 ...)"
            )
            raise ValueError(msg)
        for k, ext in enumerate(normalisation_extensions, start=1):
            names[f"norm{k}"] = derivative_name(
                source,
                "xfm",
                ext,
                to=space.name,
                mode="image",
                desc=f"norm{k}",
                **{"from": PET_REFERENCE},
            )
    return _with_sidecars(participant_dir(Path(), subject, session), names)


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


def pybids_config() -> Path:
    """The pybids configuration of the entities the outputs use (package data).

    Index an output folder with ``BIDSLayout(OUTPUT_DIR, validate=False,
    config=["bids", "derivatives", pybids_config()])``: it adds ``meas``, ``contrast`` and
    ``stat`` (and ``model``, ``res``, ``seg``, ``desc``, ``from``/``to``/``mode``) to pybids'
    own entities, so that ``get(meas="BPND")`` works and every map gets its own sidecar.
    """
    return Path(__file__).with_name(PYBIDS_CONFIG)
