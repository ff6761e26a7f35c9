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

from bids_app.bidsio.derivatives import write_json, write_nifti, write_tsv
from bids_app.bidsio.layout import check_output_dir
from bids_app.bidsio.phenotype import BehaviorConfig, load_behavior_config, read_phenotype
from bids_app.config import Config
from bids_app.errors import EXIT_OK, InputError
from bids_app.group.collect import (
    MEASURES,
    ParticipantDerivatives,
    collect_participants,
    load_maps,
    roi_table,
)
from bids_app.log import setup_logging, step
from bids_app.pipelines.common import load_atlas, now_iso, provenance, publish
from bids_app.report.data import ClusterMapReport, GroupReport
from bids_app.report.render import render_group, write_html
from bids_app.roi.atlas import RoiAtlas
from bids_app.roi.template import TEMPLATE_NAME, load_template
from bids_app.stats.behavior import (
    BehaviorAnalysis,
    BehaviorDesign,
    analyze_behavior,
    correlations,
)
from bids_app.stats.inference import PairedInference, paired_cluster_inference
from bids_app.stats.roi import (
    net_da_release,
    net_rcbf_change,
    one_sample_test,
    roi_participant_measures,
    roi_statistics,
)

LOGGER = logging.getLogger(__name__)

MIN_PARTICIPANTS = 3
CLUSTER_COLUMNS = [
    "measure",
    "direction",
    "cluster_id",
    "size_voxels",
    "size_mm3",
    "peak_x",
    "peak_y",
    "peak_z",
    "peak_t",
    "p_fwe_rft",
    "p_fwe_perm",
    "label",
    "p_unc_rft",
    "peak_p_fwe_rft",
]
NET_COLUMNS = ["measure", "n", "mean", "sd", "t", "df", "p", "cohen_d"]
ALPHA = 0.05
CONNECTIVITY = 18  # SPM's cluster neighbourhood


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
    setup_logging(config.verbosity, config.output_dir / "logs" / f"group-{run_id}.log")
    started = now_iso()
    participants, excluded = collect_participants(config.output_dir, config.participant_label)
    if len(participants) < MIN_PARTICIPANTS:
        msg = (
            f"the group level needs at least {MIN_PARTICIPANTS} participants with complete "
            f"participant-level outputs in {config.output_dir}; found {len(participants)}"
            + (
                f" (left out: {', '.join(f'sub-{s}: {r}' for s, r in excluded)})"
                if excluded
                else ""
            )
            + f". Run `bids_app {config.bids_dir} {config.output_dir} participant` first."
        )
        raise InputError(msg)
    behavior_config = load_behavior_config(config.behavior_config)
    # phenotype problems surface before the minutes of voxelwise inference
    behavior, aversion_ev, warnings = _behavior(config, participants, behavior_config)
    if config.dry_run:
        LOGGER.info(
            "Dry run: %d participant(s) would enter the group analysis: %s",
            len(participants),
            ", ".join(f"sub-{p.subject}" for p in participants),
        )
        return EXIT_OK
    template_img = load_template(2)
    atlas = load_atlas(config, template_img)
    LOGGER.info("Group analysis of %d participants", len(participants))

    measures = [_voxelwise(participants, measure, atlas, config) for measure in MEASURES]
    staging = config.work_dir / "group" / "staging"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    written: list[Path] = []
    contrast = _contrast_label(participants)
    for result in measures:
        written += _write_maps(staging, result, contrast, template_img)
    clusters = pd.concat([_cluster_rows(r, atlas) for r in measures], ignore_index=True)
    written.append(_tsv(staging, "clusters.tsv", clusters))

    rois = roi_table(participants)
    roi_stats = roi_statistics(rois)
    written.append(_tsv(staging, "roi_stats.tsv", roi_stats))

    measures_table, net_stats = _participant_measures(participants, measures, atlas, rois)
    if behavior is not None:
        written.append(_tsv(staging, "behavior_effects.tsv", behavior.effects.table))
        measures_table = measures_table.join(_sub_index(behavior.participant_measures))
    corr = correlations(measures_table, behavior_config.correlation_pairs)
    written.append(_tsv(staging, "correlations.tsv", corr))
    written.append(_tsv(staging, "participant_measures.tsv", measures_table.reset_index()))
    written.append(_tsv(staging, "net_change_stats.tsv", net_stats))

    parameters = _parameters(config, measures, atlas)
    write_json(staging / "group_parameters.json", parameters)
    written.append(Path("group_parameters.json"))
    report = GroupReport(
        participants=[p.subject for p in participants],
        excluded=list(excluded),
        parameters=parameters,
        template=np.asarray(template_img.dataobj, dtype=np.float64),
        affine=template_img.affine,
        cluster_maps=[_cluster_map(r, d) for r in measures for d in ("decrease", "increase")],
        clusters=clusters,
        roi_values=rois,
        roi_stats=roi_stats,
        participant_measures=measures_table.reset_index(),
        behavior_effects=None if behavior is None else behavior.effects.table,
        correlations=corr,
        aversion_explained_variance=aversion_ev,
        warnings=warnings,
        provenance=provenance(config, started),
    )
    write_html(render_group(report), staging / "group.html")
    written.append(Path("group.html"))
    publish(staging, config.output_dir / "group", written)
    LOGGER.info("Group report: %s", config.output_dir / "group" / "group.html")
    return EXIT_OK


def _voxelwise(
    participants: list[ParticipantDerivatives], measure: str, atlas: RoiAtlas, config: Config
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
            cluster_forming_p=config.cluster_forming_p,
            variance_regularisation=config.variance_regularisation,
            n_permutations=config.n_permutations,
            connectivity=CONNECTIVITY,
            seed=config.seed,
            smoothing_fwhm_mm=config.smoothing_fwhm_mm,
        )
    for direction in ("decrease", "increase"):
        found = inference.direction(direction).clusters
        significant = sum(c.p_fwe_rft < ALPHA for c in found)
        LOGGER.info(
            "%s %s: %d cluster(s) above t=%.2f, %d with RFT pFWE < %.2f",
            measure,
            direction,
            len(found),
            inference.cluster_forming_t,
            significant,
            ALPHA,
        )
    return MeasureResult(measure, inference, baseline, challenge)


def _contrast_label(participants: list[ParticipantDerivatives]) -> str:
    baselines = {p.sessions["baseline"] for p in participants}
    challenges = {p.sessions["challenge"] for p in participants}
    if len(baselines) == 1 and len(challenges) == 1:
        return f"{challenges.pop()}Minus{baselines.pop()}"
    return "challengeMinusbaseline"


def _map_name(measure: str, contrast: str, tail: str) -> str:
    return f"space-{TEMPLATE_NAME}_res-2_meas-{measure}_contrast-{contrast}_{tail}"


def _write_maps(
    staging: Path, result: MeasureResult, contrast: str, template_img: nib.Nifti1Image
) -> list[Path]:
    inf = result.inference
    affine = template_img.affine
    volumes: dict[str, tuple[NDArray[np.generic], type]] = {
        "stat-t_statmap": (inf.t_map, np.float32),
        "desc-decrease_stat-p_statmap": (inf.p_map_decrease, np.float32),
        "desc-increase_stat-p_statmap": (inf.p_map_increase, np.float32),
        "desc-decreaseclusters_mask": (inf.decrease.labels, np.int16),
        "desc-increaseclusters_mask": (inf.increase.labels, np.int16),
        "desc-meandiff_statmap": (inf.mean_difference, np.float32),
    }
    written = []
    for tail, (volume, dtype) in volumes.items():
        name = _map_name(result.measure, contrast, tail) + ".nii.gz"
        img = nib.Nifti1Image(np.asarray(volume).astype(dtype), affine)
        img.header.set_data_dtype(dtype)
        write_nifti(staging / name, img)
        write_json(staging / name.replace(".nii.gz", ".json"), _map_sidecar(result, tail))
        written += [Path(name), Path(name.replace(".nii.gz", ".json"))]
    return written


def _map_sidecar(result: MeasureResult, tail: str) -> dict[str, object]:
    inf = result.inference
    return {
        "Measure": result.measure,
        "Contrast": "challenge - baseline (paired)",
        "Map": tail,
        "DegreesOfFreedom": inf.df,
        "ClusterFormingP": inf.cluster_forming_p,
        "ClusterFormingT": inf.cluster_forming_t,
        "EstimatedFWHMmm": inf.fwhm_mm,
        "Resels": list(inf.resels),
        "VarianceRegularisation": inf.variance_regularisation,
        "SpatialReference": TEMPLATE_NAME,
        "Connectivity": CONNECTIVITY,
    }


def _cluster_rows(result: MeasureResult, atlas: RoiAtlas) -> pd.DataFrame:
    inf = result.inference
    voxel_mm3 = atlas.voxel_volume_ml * 1000.0
    rows = []
    for direction in ("decrease", "increase"):
        for c in inf.direction(direction).clusters:
            xyz = nib.affines.apply_affine(atlas.affine, np.asarray(c.peak_index, dtype=float))
            rows.append(
                {
                    "measure": result.measure,
                    "direction": direction,
                    "cluster_id": c.cluster_id,
                    "size_voxels": c.size_voxels,
                    "size_mm3": round(c.size_voxels * voxel_mm3, 3),
                    "peak_x": float(xyz[0]),
                    "peak_y": float(xyz[1]),
                    "peak_z": float(xyz[2]),
                    "peak_t": c.peak_t,
                    "p_fwe_rft": c.p_fwe_rft,
                    "p_fwe_perm": c.p_fwe_perm,
                    "label": atlas.label_at(xyz),
                    "p_unc_rft": c.p_unc_rft,
                    "peak_p_fwe_rft": c.peak_p_fwe_rft,
                }
            )
    return pd.DataFrame(rows, columns=CLUSTER_COLUMNS)


def _participant_measures(
    participants: list[ParticipantDerivatives],
    measures: list[MeasureResult],
    atlas: RoiAtlas,
    rois: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-participant net changes (voxelwise over the striatum) and their one-sample tests."""
    by_measure = {r.measure: r for r in measures}
    striatum = atlas.masks["striatum"]
    index = pd.Index([f"sub-{p.subject}" for p in participants], name="participant_id")
    bp, r1 = by_measure["BPND"], by_measure["R1"]
    table = pd.DataFrame(index=index)
    table["net_da_release"] = [
        net_da_release(bp.baseline[i], bp.challenge[i], striatum).value
        for i in range(len(participants))
    ]
    table["net_rcbf_change"] = [
        net_rcbf_change(r1.baseline[i], r1.challenge[i], striatum).value
        for i in range(len(participants))
    ]
    table = table.join(roi_participant_measures(rois))
    rows = []
    for column, measure in (("net_da_release", "BPND"), ("net_rcbf_change", "R1")):
        res = one_sample_test(table[column].to_numpy(dtype=float))
        rows.append(
            {
                "measure": column,
                "n": res.n,
                "mean": res.mean,
                "sd": res.sd,
                "t": res.t,
                "df": res.df,
                "p": res.p,
                "cohen_d": res.cohen_d,
            }
        )
        LOGGER.info(
            "%s (%s): mean %.3f, t(%s)=%.2f, p=%.3g",
            column,
            measure,
            res.mean,
            res.df,
            res.t,
            res.p,
        )
    return table, pd.DataFrame(rows, columns=NET_COLUMNS)


def _behavior(
    config: Config, participants: list[ParticipantDerivatives], behavior_config: BehaviorConfig
) -> tuple[BehaviorAnalysis | None, float | None, list[str]]:
    labels = [p.subject for p in participants]
    sessions = sorted({s for p in participants for s in p.sessions.values()})
    subjective = read_phenotype(config.bids_dir, "subjective", labels, sessions)
    physiology = read_phenotype(config.bids_dir, "physiology", labels, sessions)
    if subjective is None and physiology is None:
        notice = (
            "No phenotype/subjective.tsv or phenotype/physiology.tsv: the behavioural and "
            "physiological analyses were skipped."
        )
        LOGGER.info(notice)
        return None, None, [notice]
    baseline = participants[0].sessions["baseline"]
    challenge = participants[0].sessions["challenge"]
    design = BehaviorDesign(**behavior_config.design_kwargs(subjective, physiology))
    analysis = analyze_behavior(
        subjective, physiology, design, baseline_session=baseline, challenge_session=challenge
    )
    warnings = []
    ev = None
    if analysis.aversion is not None:
        if analysis.aversion.notice:
            warnings.append(analysis.aversion.notice)
        ev = float(analysis.aversion.explained_variance_ratio)
        if not np.isfinite(ev):
            ev = None
    return analysis, ev, warnings


def _sub_index(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out.index = pd.Index(
        [i if str(i).startswith("sub-") else f"sub-{i}" for i in out.index], name="participant_id"
    )
    return out


def _cluster_map(result: MeasureResult, direction: str) -> ClusterMapReport:
    inf = result.inference
    res = inf.direction(direction)  # type: ignore[arg-type]
    keep = [c.cluster_id for c in res.clusters if c.p_fwe_rft < ALPHA]
    labels = np.where(np.isin(res.labels, keep), res.labels, 0).astype(np.int32)
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
        "template": TEMPLATE_NAME,
    }


def _tsv(staging: Path, name: str, table: pd.DataFrame) -> Path:
    write_tsv(staging / name, table)
    return Path(name)
