"""Group level: voxelwise paired statistics, ROI statistics, behaviour, correlations, report.

Reads only what the participant level wrote (OUTPUT_DIR) plus the BIDS ``phenotype/`` tables,
computes everything in memory, stages the files in ``--work-dir`` and moves them into
``OUTPUT_DIR/group/`` with atomic renames.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from bids_app.bidsio.layout import check_output_dir
from bids_app.bidsio.phenotype import (
    WIDE_COLUMN,
    BehaviorConfig,
    dataset_participants,
    load_behavior_config,
    read_phenotype,
)
from bids_app.config import Config, QcPolicy, settings_differences
from bids_app.errors import EXIT_OK, InputError
from bids_app.log import setup_logging, step
from bids_app.outputs.io import write_json, write_nifti, write_text, write_tsv
from bids_app.outputs.manifest import (
    Exclusion,
    Manifest,
    ParticipantDerivatives,
    collect_participants,
    existing_manifest,
    load_maps,
    roi_table,
)
from bids_app.outputs.names import (
    GROUP_FILES,
    GROUP_MEASURES,
    ROLES,
    Space,
    group_dir,
    group_map_name,
    logs_dir,
    report_name,
    sidecar_name,
)
from bids_app.outputs.publish import publish
from bids_app.outputs.sidecars import (
    group_map_sidecar,
    group_table_sidecar,
)
from bids_app.pipelines.common import (
    RESOLUTION_MM,
    load_atlas,
    now_iso,
    provenance,
    template_image,
)
from bids_app.pipelines.group_tables import (
    ALPHA,
    NET_MEASURES,
    SEARCH_VOLUME_DEFINITION,
    ClusterMasks,
    cluster_mask_volume,
    cluster_tables,
    net_change_tables,
    read_explicit_mask,
    write_cluster_tables,
)
from bids_app.pipelines.session_checks import session_comparisons, session_values
from bids_app.qc import QcVerdict
from bids_app.report.data import ClusterMapReport, GroupReport
from bids_app.report.render import render_group
from bids_app.roi.atlas import RoiAtlas
from bids_app.roi.template import TEMPLATE_NAME, load_template
from bids_app.stats.behavior import (
    BehaviorAnalysis,
    BehaviorDesign,
    analyze_behavior,
    correlations,
)
from bids_app.stats.clusters import (
    SPM_MAXIMA_PER_CLUSTER,
    SPM_MIN_MAXIMA_DISTANCE_MM,
    Connectivity,
)
from bids_app.stats.inference import Direction, PairedInference, paired_cluster_inference
from bids_app.stats.roi import describe_net_change, roi_statistics

LOGGER = logging.getLogger(__name__)

CONNECTIVITY: Connectivity = 18  # SPM's cluster neighbourhood
#: The cluster maps of the report, in their order: decreases first.
_MAP_DIRECTIONS: tuple[Direction, ...] = ("decrease", "increase")


@dataclass(frozen=True)
class MeasureResult:
    """Voxelwise inference of one measure."""

    measure: str
    inference: PairedInference
    baseline: NDArray[np.float32]
    challenge: NDArray[np.float32]


def run_group_level(config: Config) -> int:
    """Run the group level.

    Returns
    -------
    int
        0 on success (data problems raise :class:`~bids_app.errors.BidsAppError`).
    """
    check_output_dir(config.bids_dir, config.output_dir)
    run_id = time.strftime("%Y%m%d-%H%M%S")
    setup_logging(config.verbosity, logs_dir(config.output_dir) / f"group-{run_id}.log")
    started = now_iso()
    dataset = dataset_participants(config.bids_dir)
    participants, excluded = collect_participants(
        config.output_dir, config.participant_label, expected=dataset
    )
    participants, qc_excluded, warnings = apply_qc_policy(participants, config.qc_fail)
    excluded = sorted([*excluded, *qc_excluded], key=lambda e: e.subject)
    if len(participants) < config.min_participants:
        raise InputError(_too_few_message(config, participants, excluded))
    if excluded:
        note = (
            f"{len(excluded)} participant(s) left out of the group analysis: "
            + ", ".join(f"sub-{e.subject} ({e.status})" for e in excluded)
            + "; the reasons are under 'Excluded participants'."
        )
        LOGGER.warning("%s (also in group_parameters.json)", note)
        warnings.insert(0, note)
    mixed = settings_differences(
        {p.subject: p.manifest.options for p in participants},
        {p.subject: p.manifest.version for p in participants},
    )
    for line in mixed:
        LOGGER.warning(line)
    warnings += mixed
    behavior_config = load_behavior_config(config.behavior_config)
    # phenotype problems surface before the minutes of voxelwise inference
    behavior, aversion_ev, notes, units, phenotype = _behavior(
        config, participants, behavior_config, excluded, dataset
    )
    warnings += notes
    if config.dry_run:
        LOGGER.info(
            "Dry run: %d participant(s) would enter the group analysis: %s",
            len(participants),
            ", ".join(f"sub-{p.subject}" for p in participants),
        )
        return EXIT_OK
    template_img = load_template(RESOLUTION_MM)
    space = Space(TEMPLATE_NAME, RESOLUTION_MM)
    atlas = load_atlas(config, template_img)
    explicit_mask = read_explicit_mask(config.explicit_mask, atlas)
    LOGGER.info("Group analysis of %d participants", len(participants))

    measures = [
        _voxelwise(participants, measure, atlas, config, explicit_mask)
        for measure in GROUP_MEASURES
    ]
    staging = config.work_dir / "group" / "staging"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    written: list[Path] = []
    contrast = _contrast_label(participants)
    for result in measures:
        written += _write_maps(
            staging, result, contrast, space, template_img, config.cluster_masks
        )
    clusters, peaks = cluster_tables({r.measure: r.inference for r in measures}, atlas)
    written += write_cluster_tables(staging, clusters, peaks)

    rois = roi_table(participants)
    roi_stats = roi_statistics(rois)
    written += _tsv(staging, "roi_stats", roi_stats)

    measures_table, net_stats = net_change_tables(
        [p.subject for p in participants],
        {r.measure: (r.baseline, r.challenge) for r in measures},
        atlas.masks["striatum"],
        rois,
    )
    per_session, session_notes = session_values(participants, config.bids_dir)
    measures_table = measures_table.join(per_session)
    comparisons = session_comparisons(per_session)
    written += _tsv(staging, "session_comparisons", comparisons)
    if behavior is not None:
        written += _tsv(staging, "behavior_effects", behavior.effects.table)
        written += _tsv(staging, "behavior_descriptives", behavior.descriptives)
        if len(behavior.loadings):
            written += _tsv(staging, "aversion_loadings", behavior.loadings)
        measures_table = measures_table.join(_sub_index(behavior.participant_measures))
    corr = correlations(measures_table, behavior_config.correlation_pairs)
    written += _tsv(staging, "correlations", corr)
    written += _tsv(staging, "participant_measures", measures_table.reset_index(), units)
    written += _tsv(staging, "net_change_stats", net_stats)

    parameters = _parameters(config, measures, atlas)
    parameters["participants_included"] = [f"sub-{p.subject}" for p in participants]
    parameters["excluded_participants"] = [e.to_json() for e in excluded]
    parameters["qc_fail"] = config.qc_fail
    parameters["min_participants"] = config.min_participants
    if behavior is not None:
        parameters["behavior_challenge_effect"] = behavior_config.challenge_effect
    write_json(staging / GROUP_FILES["parameters"], parameters)
    written.append(Path(GROUP_FILES["parameters"]))
    qc_checks, participant_status = _participant_qc(config.output_dir, participants, excluded)
    report = GroupReport(
        participants=[p.subject for p in participants],
        excluded=[(e.subject, e.status, e.reason) for e in excluded],
        parameters=parameters,
        template=np.asarray(template_img.dataobj, dtype=np.float64),
        affine=template_img.affine,
        cluster_maps=[_cluster_map(r, d) for r in measures for d in _MAP_DIRECTIONS],
        clusters=clusters,
        roi_values=rois,
        roi_stats=roi_stats,
        participant_measures=measures_table.reset_index(),
        behavior_effects=None if behavior is None else behavior.effects.table,
        behavior_descriptives=None if behavior is None else behavior.descriptives,
        aversion_loadings=None if behavior is None else behavior.loadings,
        correlations=corr,
        aversion_explained_variance=aversion_ev,
        warnings=warnings,
        provenance=provenance(config, started),
        qc_checks=qc_checks,
        participant_status=participant_status,
        cluster_peaks=peaks,
        net_change_stats=net_stats,
        session_comparisons=comparisons,
        session_notes=session_notes,
        behavior_data=_behaviour_data(phenotype, participants),
    )
    write_text(staging / GROUP_FILES["report"], render_group(report))
    written.append(Path(GROUP_FILES["report"]))
    publish(staging, group_dir(config.output_dir), written)
    LOGGER.info("Group report: %s", group_dir(config.output_dir) / GROUP_FILES["report"])
    return EXIT_OK


def _voxelwise(
    participants: list[ParticipantDerivatives],
    measure: str,
    atlas: RoiAtlas,
    config: Config,
    explicit_mask: NDArray[np.bool_] | None,
) -> MeasureResult:
    baseline, challenge, ref = load_maps(participants, measure)
    if baseline.shape[1:] != atlas.shape:
        msg = (
            f"the {measure} maps have shape {baseline.shape[1:]} but the atlas grid is "
            f"{atlas.shape}; re-run the participant level with this version of bids_app"
        )
        raise InputError(msg)
    voxel_size = np.asarray(ref.header.get_zooms()[:3], dtype=np.float64)
    with step(LOGGER, f"{measure}: smoothing, paired t-test, RFT and permutation inference"):
        inference = paired_cluster_inference(
            baseline,
            challenge,
            voxel_size,
            explicit_mask=explicit_mask,
            cluster_forming_p=config.cluster_forming_p,
            variance_regularisation=config.variance_regularisation,
            n_permutations=config.n_permutations,
            connectivity=CONNECTIVITY,
            seed=config.seed,
            smoothing_fwhm_mm=config.smoothing_fwhm_mm,
        )
    n_search = int(inference.mask.sum())
    LOGGER.info(
        "%s search volume: %d voxels, %.1f mL (finite in every participant's maps%s)",
        measure,
        n_search,
        n_search * atlas.voxel_volume_ml,
        "" if explicit_mask is None else ", within the explicit mask",
    )
    for direction in ("decrease", "increase"):
        res = inference.direction(direction)
        LOGGER.info(
            "%s %s: %d cluster(s) above t=%.2f, %d with RFT pFWE < %.2f",
            measure,
            direction,
            len(res.clusters),
            inference.cluster_forming_t,
            len(res.significant(ALPHA)),
            ALPHA,
        )
    return MeasureResult(measure, inference, baseline, challenge)


def _contrast_label(participants: list[ParticipantDerivatives]) -> str:
    baselines = {p.sessions["baseline"] for p in participants}
    challenges = {p.sessions["challenge"] for p in participants}
    if len(baselines) == 1 and len(challenges) == 1:
        return f"{challenges.pop()}Minus{baselines.pop()}"
    return "challengeMinusbaseline"


def _write_maps(
    staging: Path,
    result: MeasureResult,
    contrast: str,
    space: Space,
    template_img: nib.Nifti1Image,
    cluster_masks: ClusterMasks,
) -> list[Path]:
    inf = result.inference
    affine = template_img.affine
    volumes: dict[str, tuple[NDArray[np.generic], type]] = {
        "t": (inf.t_map, np.float32),
        "p_decrease": (inf.p_map_decrease, np.float32),
        "p_increase": (inf.p_map_increase, np.float32),
        "clusters_decrease": (cluster_mask_volume(inf, "decrease", cluster_masks), np.int16),
        "clusters_increase": (cluster_mask_volume(inf, "increase", cluster_masks), np.int16),
        "meandiff": (inf.mean_difference, np.float32),
    }
    statistics = {
        "DegreesOfFreedom": inf.df,
        "ClusterFormingP": inf.cluster_forming_p,
        "ClusterFormingT": inf.cluster_forming_t,
        "EstimatedFWHMmm": inf.fwhm_mm,
        "Resels": list(inf.resels),
        "VarianceRegularisation": inf.variance_regularisation,
        "Connectivity": CONNECTIVITY,
        "SearchVolumeVoxels": int(inf.mask.sum()),
        "ExplicitMask": inf.explicit_mask_used,
    }
    written = []
    for kind, (volume, dtype) in volumes.items():
        name = group_map_name(kind, result.measure, contrast, space)
        write_nifti(staging / name, template_image(volume, affine, dtype))
        sidecar = group_map_sidecar(result.measure, kind, statistics, space, contrast)
        if kind.startswith("clusters_"):
            sidecar["ClustersIncluded"] = (
                f"clusters with RFT cluster-level p(FWE) < {ALPHA}; values are cluster_id"
                if cluster_masks == "significant"
                else "every cluster above the cluster-forming threshold; values are cluster_id"
            )
        write_json(staging / sidecar_name(name), sidecar)
        written += [Path(name), Path(sidecar_name(name))]
    return written


def _too_few_message(
    config: Config, participants: list[ParticipantDerivatives], excluded: list[Exclusion]
) -> str:
    """Why the group level cannot run, who was left out, and what to do about it."""
    found = len(participants)
    msg = (
        f"the group level needs at least {config.min_participants} participants with "
        f"complete, usable participant-level outputs in {config.output_dir}; found {found}"
        + (f" ({', '.join(f'sub-{p.subject}' for p in participants)})" if found else "")
        + "."
    )
    command = f"bids_app {config.bids_dir} {config.output_dir} participant"
    if not found and all(e.status == "not processed" for e in excluded):
        return f"{msg} Run `{command}` first."
    labels = " ".join(e.subject for e in excluded if e.status != "qc fail")
    advice = (
        [f"fix their inputs and run `{command} --participant-label {labels}`"] if labels else []
    )
    if any(e.status == "qc fail" for e in excluded):
        advice.append("pass --qc-fail warn to keep participants whose QC failed")
    advice.append("lower --min-participants (2 at least)")
    return (
        f"{msg} Left out: {'; '.join(e.describe() for e in excluded)}. To go on, "
        + ", or ".join(advice)
        + "."
    )


def apply_qc_policy(
    participants: list[ParticipantDerivatives], policy: QcPolicy
) -> tuple[list[ParticipantDerivatives], list[Exclusion], list[str]]:
    """Apply ``--qc-fail`` to participants whose quality control failed.

    Parameters
    ----------
    participants : list of ParticipantDerivatives
        Participants with complete outputs (their manifests hold the QC verdict).
    policy : {"exclude", "warn", "error"}
        ``exclude`` leaves them out, ``warn`` keeps them with a warning, ``error`` stops.

    Returns
    -------
    kept : list of ParticipantDerivatives
        The participants that enter the analysis.
    excluded : list of Exclusion
        QC-failed participants left out (``exclude``), with the failed checks as reason.
    warnings : list of str
        One warning per QC-failed participant kept (``warn``), for the log and the report.

    Raises
    ------
    InputError
        With ``error``, naming every QC-failed participant and its failed checks.
    """
    failed = {
        p.subject: QcVerdict.from_json(p.manifest.qc)
        for p in participants
        if QcVerdict.from_json(p.manifest.qc).status == "fail"
    }
    if not failed:
        return participants, [], []
    reasons = {s: "; ".join(c.describe() for c in v.flagged("fail")) for s, v in failed.items()}
    if policy == "error":
        listed = "; ".join(f"sub-{s}: {r}" for s, r in reasons.items())
        msg = (
            f"quality control failed for {len(failed)} participant(s) ({listed}) and "
            "--qc-fail error stops the group level. Look at their participant reports; pass "
            "--qc-fail exclude to leave them out or --qc-fail warn to keep them."
        )
        raise InputError(msg)
    if policy == "warn":
        warnings = [
            f"sub-{s} is included although its quality control failed (--qc-fail warn): {r}"
            for s, r in reasons.items()
        ]
        for warning in warnings:
            LOGGER.warning(warning)
        return participants, [], warnings
    excluded = [
        Exclusion(s, "qc fail", f"quality control failed: {r} (--qc-fail exclude)")
        for s, r in reasons.items()
    ]
    return [p for p in participants if p.subject not in failed], excluded, []


def _behavior(
    config: Config,
    participants: list[ParticipantDerivatives],
    behavior_config: BehaviorConfig,
    excluded: list[Exclusion],
    dataset: list[str],
) -> tuple[
    BehaviorAnalysis | None,
    float | None,
    list[str],
    dict[str, str],
    dict[str, pd.DataFrame | None],
]:
    """Behavioural analysis of the included participants (+ notes, units, tables for the report).

    The phenotype rows of participants that are known (in the dataset or the outputs) but not
    analysed are ignored: excluded participants with a note naming them, participants not
    selected with ``--participant-label`` silently (logged). Any other label is an error.
    """
    labels = [p.subject for p in participants]
    sessions = sorted({s for p in participants for s in p.sessions.values()})
    ignored = {e.subject: f"{e.status}; left out of the group analysis" for e in excluded}
    if config.participant_label:
        for label in dataset:
            if label not in config.participant_label:
                ignored.setdefault(label, "not selected with --participant-label")
    tables = {
        name: read_phenotype(config.bids_dir, name, labels, sessions, ignored)
        for name in ("subjective", "physiology")
    }
    subjective, physiology = tables["subjective"], tables["physiology"]
    if subjective is None and physiology is None:
        notice = (
            "No phenotype/subjective.tsv or phenotype/physiology.tsv: the behavioural and "
            "physiological analyses were skipped."
        )
        LOGGER.info(notice)
        return None, None, [notice], {}, tables
    notes = []
    excluded_labels = {e.subject for e in excluded}
    for name, table in tables.items():
        dropped = [] if table is None else table.attrs["ignored_participants"]
        left_out = [label for label in dropped if label in excluded_labels]
        if left_out:
            notes.append(
                f"phenotype/{name}.tsv: the rows of {len(left_out)} excluded participant(s) "
                f"({', '.join(f'sub-{s}' for s in left_out)}) were ignored."
            )
    baseline = participants[0].sessions["baseline"]
    challenge = participants[0].sessions["challenge"]
    design = BehaviorDesign(**behavior_config.design_kwargs(subjective, physiology))
    analysis = analyze_behavior(
        subjective, physiology, design, baseline_session=baseline, challenge_session=challenge
    )
    ev = None
    if analysis.aversion is not None:
        if analysis.aversion.notice:
            notes.append(analysis.aversion.notice)
        ev = float(analysis.aversion.explained_variance_ratio)
        if not np.isfinite(ev):
            ev = None
    return analysis, ev, notes, _phenotype_units(subjective, physiology), tables


def _phenotype_units(*tables: pd.DataFrame | None) -> dict[str, str]:
    """Measure -> ``Units`` from the phenotype tables' JSON sidecars (when they give one)."""
    units: dict[str, str] = {}
    for table in tables:
        sidecar = {} if table is None else table.attrs.get("sidecar") or {}
        for column, entry in sidecar.items():
            if isinstance(entry, dict) and isinstance(entry.get("Units"), str):
                wide = WIDE_COLUMN.fullmatch(str(column))  # sick_t10 -> sick (wide form)
                measure = str(column) if wide is None else wide["measure"]
                units.setdefault(measure, entry["Units"])
    return units


def _sub_index(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out.index = pd.Index(
        [i if str(i).startswith("sub-") else f"sub-{i}" for i in out.index], name="participant_id"
    )
    return out


def _cluster_map(result: MeasureResult, direction: Direction) -> ClusterMapReport:
    inf = result.inference
    res = inf.direction(direction)
    labels = res.label_volume([c.cluster_id for c in res.significant(ALPHA)])
    sign = -1.0 if direction == "decrease" else 1.0
    one_sided = np.where(sign * inf.t_map > 0, inf.t_map, np.nan)
    return ClusterMapReport(
        measure=result.measure,
        direction=direction,
        t_map=one_sided,
        cluster_labels=labels,
        threshold_t=inf.cluster_forming_t,
    )


def _parameters(
    config: Config, measures: list[MeasureResult], atlas: RoiAtlas
) -> dict[str, object]:
    first = measures[0].inference
    voxel_mm3 = atlas.voxel_volume_ml * 1000.0
    return {
        "smoothing_fwhm_mm": config.smoothing_fwhm_mm,
        "cluster_forming_p": config.cluster_forming_p,
        "cluster_forming_t": first.cluster_forming_t,
        "df": first.df,
        "n_participants": first.n_subjects,
        "alpha": ALPHA,
        "connectivity": CONNECTIVITY,
        "variance_regularisation": config.variance_regularisation,
        "n_permutations": first.n_permutations,
        "permutation_exact": first.permutation_exact,
        "fwhm_mm": {r.measure: [float(v) for v in r.inference.fwhm_mm] for r in measures},
        "resels": {r.measure: [float(v) for v in r.inference.resels] for r in measures},
        "search_volume_mm3": {
            r.measure: float(r.inference.mask.sum()) * voxel_mm3 for r in measures
        },
        "search_volume": {
            r.measure: {
                "voxels": int(r.inference.mask.sum()),
                "ml": float(r.inference.mask.sum()) * atlas.voxel_volume_ml,
                "definition": SEARCH_VOLUME_DEFINITION
                + ("; within the explicit mask" if r.inference.explicit_mask_used else ""),
            }
            for r in measures
        },
        "explicit_mask": None if config.explicit_mask is None else str(config.explicit_mask),
        "cluster_masks": config.cluster_masks,
        "maxima_per_cluster": SPM_MAXIMA_PER_CLUSTER,
        "min_maxima_distance_mm": SPM_MIN_MAXIMA_DISTANCE_MM,
        "net_change_estimators": {
            column: {
                "method": method,
                "definition": describe_net_change(
                    method, "decrease" if measure == "BPND" else "increase", measure
                ),
            }
            for column, measure, _, method in NET_MEASURES
        },
        "template": TEMPLATE_NAME,
    }


# --------------------------------------------------------------------------- report contents
def _participant_qc(
    output_dir: Path,
    participants: list[ParticipantDerivatives],
    excluded: list[Exclusion],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The group report's QC table: every participant's checks, k2' and fit failures.

    Returns
    -------
    checks : DataFrame
        Long table (``GroupReport.qc_checks``): the manifest's QC checks (motion,
        registration, fit failures, ...), plus each session's k2' (``status`` ``info``: no
        thresholds).
    status : DataFrame
        One row per participant found (``GroupReport.participant_status``), with the relative
        link from ``group/group.html`` to its report when the report exists.
    """
    rows: list[dict[str, object]] = []
    status_rows: list[dict[str, object]] = []
    manifests = {p.subject: p.manifest for p in participants}
    for exclusion in excluded:
        previous = existing_manifest(output_dir, exclusion.subject)
        if previous is not None:
            manifests[exclusion.subject] = previous
    reasons = {e.subject: f"{e.status}: {e.reason}" for e in excluded}
    for subject in sorted({*manifests, *reasons}):
        manifest = manifests.get(subject)
        verdict = QcVerdict.from_json(manifest.qc) if manifest is not None else None
        pid = f"sub-{subject}"
        for check in verdict.checks if verdict is not None else ():
            rows.append({"participant_id": pid, **check.to_json()})
        if manifest is not None:
            rows += _session_info_rows(output_dir, pid, manifest)
        report = output_dir / report_name(subject)
        status_rows.append(
            {
                "participant_id": pid,
                "included": subject not in reasons,
                "reason": reasons.get(subject, ""),
                "qc": verdict.status if verdict is not None and verdict.checks else "n/a",
                "report": f"../{report_name(subject).as_posix()}" if report.is_file() else "",
            }
        )
    columns = ["participant_id", "key", "label", "scope", "value", "unit", "warn", "fail"]
    checks = pd.DataFrame(rows, columns=[*columns, "bad", "status"])
    checks["value"] = pd.to_numeric(checks["value"], errors="coerce")
    return checks, pd.DataFrame(status_rows)


def _session_info_rows(output_dir: Path, pid: str, manifest: Manifest) -> list[dict[str, object]]:
    """k2' of each session, from its ``kinpar.tsv``."""
    rows: list[dict[str, object]] = []
    for role in ROLES:
        files = manifest.sessions.get(role, {})
        scope = f"ses-{files.get('session', role)}"
        info = {"participant_id": pid, "scope": scope, "warn": None, "fail": None}
        kinpar = output_dir / files.get("kinpar", "")
        if files.get("kinpar") and kinpar.is_file():
            k2 = pd.read_csv(kinpar, sep="\t", na_values=["n/a"])["k2prime"].dropna()
            rows.append(
                {
                    **info,
                    "key": "k2prime",
                    "label": "k2'",
                    "value": float(k2.iloc[0]) if len(k2) else float("nan"),
                    "unit": "1/min",
                    "bad": "above",
                    "status": "info",
                }
            )
    return rows


def _behaviour_data(
    tables: dict[str, pd.DataFrame | None], participants: list[ParticipantDerivatives]
) -> pd.DataFrame | None:
    """Long phenotype table for the report's time courses (``GroupReport.behavior_data``).

    ``tables`` are the phenotype tables read for the analysis (excluded participants' rows
    already dropped).
    """
    roles = {label: role for p in participants for role, label in p.sessions.items()}
    frames = []
    for kind, table in tables.items():
        if table is None:
            continue
        measures = [
            c for c in table.columns if c not in ("participant_id", "session_id", "time_min")
        ]
        long = table.melt(
            id_vars=["participant_id", "session_id", "time_min"],
            value_vars=measures,
            var_name="measure",
            value_name="value",
        )
        long["role"] = long["session_id"].map(roles)
        long["kind"] = kind
        frames.append(long.dropna(subset=["role", "value"]))
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True)


def _tsv(
    staging: Path, kind: str, table: pd.DataFrame, units: dict[str, str] | None = None
) -> list[Path]:
    """Write a group table and its sidecar describing every column."""
    name = GROUP_FILES[kind]
    write_tsv(staging / name, table)
    write_json(staging / sidecar_name(name), group_table_sidecar(kind, list(table.columns), units))
    return [Path(name), Path(sidecar_name(name))]
