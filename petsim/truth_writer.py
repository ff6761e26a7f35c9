"""Write the ground truth of a synthetic study into ``out_dir/truth`` (beside the dataset).

Files (all TSVs have a JSON sidecar or are described in ``truth.json``):

* ``participants_truth.tsv``: generating values (``gen_*``) and expected measured values
  (``exp_*``, see :mod:`petsim.truth`) per participant;
* ``expected_roi_measures.tsv``: long table of expected BPND/R1 per participant, session, ROI
  and method (``roi_tac`` or ``voxel_mean``);
* ``fov_coverage.tsv``: per participant, session and ROI (reference included) the fraction of
  the ROI's MNI voxels inside the scanner's field of view at the session pose, and its minimum
  over the frames (1 without a limited ``axial_fov_mm``);
* ``motion_truth.tsv``: per frame the motion ``D_k`` (4 x 4, ``m00`` ... ``m33``) and its six
  parameters, plus framewise displacement (see :mod:`petsim.motion`);
* ``session_poses.tsv``: the head (mm) -> scanner (mm) pose of every image;
* ``individual_anatomy.tsv`` and ``warps/``: each participant's head <-> template maps
  (:mod:`petsim.warp`): scaling, field parameters, Jacobian range, and the displacement field
  ``v`` on its control grid (``sub-XX_desc-displacement_warp.nii.gz``, 4-D, mm; only for
  ``anatomy="individual"``);
* ``sessions_truth.tsv``: injected activity, plasma-input parameters and expected k2';
* ``class_tacs.tsv``: noise-free frame-mean TAC of every tissue class and of the plasma;
* ``maps/``: generating BPND and R1 maps on the MNI grid (float32; NaN without tissue);
* ``truth.json``: settings, seeds, effects, protocol, tissue table and conventions.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from petsim import bids_writer as bw
from petsim.anatomy import Anatomy
from petsim.atlas import ROI_SOURCES
from petsim.design import (
    SESSIONS,
    TISSUES,
    ParticipantDesign,
    StudyEffects,
)
from petsim.kinetics_sim import fine_time_grid, frame_means
from petsim.motion import PARAM_NAMES, framewise_displacement, rigid_params
from petsim.protocol import ScanProtocol
from petsim.srtm import N_K2A_GRID
from petsim.truth import (
    COVERAGE_ROIS,
    TRUTH_ROIS,
    generating_roi_value,
    relative_change_mean,
    truth_voxels,
)

if TYPE_CHECKING:
    from petsim.study import ParticipantResult, SessionResult

MAP_SPACE = "MNI152NLin2009aSym"
GEN_BP_ROIS: tuple[str, ...] = ("dorsal_striatum", "ventral_striatum", "striatum")
GEN_R1_ROIS: tuple[str, ...] = (
    "dorsal_striatum",
    "ventral_striatum",
    "striatum",
    "putamen",
    "pituitary",
    "carotid",
    "habenula",
)
EXP_R1_ROIS: tuple[str, ...] = (*GEN_R1_ROIS, "habenula_control")
R1_EFFECT_CLASSES: tuple[str, ...] = ("putamen", "insula", "habenula", "pituitary", "carotid")
MATRIX_COLUMNS: tuple[str, ...] = tuple(f"m{i}{j}" for i in range(4) for j in range(4))

ANATOMY_CONVENTION = (
    "Head space: the participant's own head, mm. The participant is the template deformed by "
    "psi(y) = c + (y - c) / s + v(y), mapping head mm y to MNI mm (c = head_centre_mm, "
    "s = (scale_x, scale_y, scale_z) in individual_anatomy.tsv, v the displacement field in "
    "warps/: cubic B-spline interpolant (scipy.ndimage.map_coordinates order 3, "
    "mode 'nearest') of the 4-D samples, whose affine maps control-grid voxels to head mm). "
    "MNI -> head is the numerical inverse of psi (petsim.warp.IndividualWarp.to_head). For "
    "anatomy='template' the head space is the MNI space (psi = identity)."
)

MOTION_CONVENTION = (
    "D_k (m00..m33, row-major) maps the scanner-space position (mm) of a head point at frame 0 "
    "to its position at frame k: x_k = D_k @ x_0; D_0 = identity. The head pose at frame k "
    "is D_k @ P with P the session pose (head mm -> scanner mm, session_poses.tsv). "
    "To resample frame k onto frame 0, sample frame k at D_k @ x. Parameters: trans_x/y/z in "
    "mm and rot_x/y/z in rad with R = Rz @ Ry @ Rx, both about the scanner origin."
)


def _class_values(design: ParticipantDesign, session: str, what: str) -> dict[str, float]:
    """Per-class generating BPND or R1 (K1 / K1' of the cerebellum) of one session."""
    params = design.sessions[session]
    if what == "BPND":
        return {c: p.bp_nd for c, p in params.items()}
    k1_ref = params["cerebellum"].k1
    return {c: p.k1 / k1_ref for c, p in params.items()}


def _participant_row(
    anatomy: Anatomy,
    design: ParticipantDesign,
    results: dict[str, SessionResult],
    columns: dict[str, np.ndarray],
) -> dict[str, float | str]:
    """One row of participants_truth.tsv."""
    row: dict[str, float | str] = {
        "participant_id": design.participant_id,
        "severity": design.severity,
        "gen_da_release_dorsal": design.da_release_dorsal,
        "gen_da_release_ventral": design.da_release_ventral,
    }
    for c in R1_EFFECT_CLASSES:
        row[f"gen_r1_change_{c}"] = design.r1_change.get(c, 0.0)
    for ses in SESSIONS:
        bp = _class_values(design, ses, "BPND")
        r1 = _class_values(design, ses, "R1")
        for roi in GEN_BP_ROIS:
            row[f"gen_BPND_{roi}_{ses}"] = generating_roi_value(anatomy, bp, roi)
        for roi in GEN_R1_ROIS:
            row[f"gen_R1_{roi}_{ses}"] = generating_roi_value(anatomy, r1, roi)
    for ses in SESSIONS:
        exp = results[ses].expected
        row[f"exp_k2prime_{ses}"] = exp.k2prime
        for roi in GEN_BP_ROIS:
            row[f"exp_BPND_{roi}_{ses}"] = exp.roi_bp[roi]
        for roi in EXP_R1_ROIS:
            row[f"exp_R1_{roi}_{ses}"] = exp.roi_r1[roi]
    base, chal = results[SESSIONS[0]].expected, results[SESSIONS[1]].expected
    for name, roi in (
        ("net", "striatum"),
        ("dorsal", "dorsal_striatum"),
        ("ventral", "ventral_striatum"),
    ):
        sel = columns[roi]
        row[f"exp_{name}_da_release"] = relative_change_mean(
            base.voxel_bp[sel], chal.voxel_bp[sel], decrease=True
        )
    row["exp_net_rcbf_change"] = relative_change_mean(
        base.voxel_r1[columns["striatum"]], chal.voxel_r1[columns["striatum"]], decrease=False
    )
    for roi in ("putamen", "pituitary", "carotid", "habenula", "habenula_control"):
        row[f"exp_{roi}_r1_change"] = chal.roi_r1[roi] / base.roi_r1[roi] - 1.0
    return row


def _participants_truth_sidecar(columns: list[str]) -> dict[str, object]:
    """Describe every column of participants_truth.tsv."""
    side: dict[str, object] = {}
    for col in columns:
        if col == "participant_id":
            text = "Participant label."
        elif col == "severity":
            text = "Withdrawal severity: generating dorsal DA release / its population mean."
        elif col.startswith("gen_da_release"):
            text = "Generating relative BPnd decrease in the challenge session (fraction)."
        elif col.startswith("gen_r1_change"):
            text = "Generating relative K1 increase of the tissue class in the challenge."
        elif col.startswith("gen_"):
            text = (
                "Generating value: tissue-fraction-weighted mean over the ROI, unblurred "
                "(R1 = K1 / K1' of the cerebellar grey matter)."
            )
        elif col.startswith("exp_k2prime"):
            text = "k2' (1/min): SRTM fit of the ideal-pipeline striatum TAC (petsim.srtm)."
        elif col.endswith(("_da_release", "_rcbf_change")):
            text = (
                "Expected measured relative change: mean over the ROI's voxels of voxelwise "
                "SRTM2 of the ideal-pipeline noise-free MNI data (fraction)."
            )
        elif col.endswith("_r1_change"):
            text = "Expected measured relative R1 change of the ROI-TAC SRTM2 fits (fraction)."
        else:
            text = "Expected measured value: SRTM2 fit of the ideal-pipeline ROI TAC."
        side[col] = {"Description": text}
    return side


def _roi_measures(results: list[SessionResult], columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """Long table of expected ROI values by method."""
    rows = []
    for res in results:
        exp = res.expected
        for roi in TRUTH_ROIS:
            values = exp.voxel_bp[columns[roi]], exp.voxel_r1[columns[roi]]
            voxel_mean = [
                float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for v in values
            ]
            for method, bp, r1 in (
                ("roi_tac", exp.roi_bp[roi], exp.roi_r1[roi]),
                ("voxel_mean", *voxel_mean),
            ):
                rows.append([res.participant_id, f"ses-{res.session}", roi, method, bp, r1])
    return pd.DataFrame(
        rows, columns=["participant_id", "session_id", "roi", "method", "BPND", "R1"]
    )


def _coverage_table(results: list[SessionResult]) -> pd.DataFrame:
    """Field-of-view coverage of every ROI per session."""
    rows = [
        [
            res.participant_id,
            f"ses-{res.session}",
            roi,
            res.expected.coverage[roi],
            res.expected.coverage_min[roi],
        ]
        for res in results
        for roi in COVERAGE_ROIS
    ]
    return pd.DataFrame(
        rows, columns=["participant_id", "session_id", "roi", "coverage", "coverage_min_frames"]
    )


def _motion_table(results: list[SessionResult], protocol: ScanProtocol) -> pd.DataFrame:
    """Per-frame motion truth."""
    frames = protocol.frames()
    parts = []
    for res in results:
        params = res.motion.frame_params()
        table = pd.DataFrame(params, columns=list(PARAM_NAMES))
        table.insert(0, "frame_start_s", frames.start_s)
        table.insert(0, "frame", np.arange(frames.n_frames))
        table.insert(0, "session_id", f"ses-{res.session}")
        table.insert(0, "participant_id", res.participant_id)
        table["framewise_displacement"] = framewise_displacement(params)
        matrices = res.motion.frame_motion.reshape(frames.n_frames, 16)
        for i, col in enumerate(MATRIX_COLUMNS):
            table[col] = matrices[:, i]
        parts.append(table)
    return pd.concat(parts, ignore_index=True)


def _poses_table(participants: list[ParticipantResult]) -> pd.DataFrame:
    """Head -> scanner pose of every written image."""
    rows = []
    for part in participants:
        images = [(f"pet_ses-{res.session}", res.motion.pose) for res in part.sessions]
        if part.t1w_pose is not None:
            images.append(("T1w", part.t1w_pose))
        for image, pose in images:
            rows.append(
                [part.participant_id, image, *rigid_params(pose).tolist(), *pose.ravel().tolist()]
            )
    return pd.DataFrame(rows, columns=["participant_id", "image", *PARAM_NAMES, *MATRIX_COLUMNS])


def _anatomy_table(participants: list[ParticipantResult]) -> pd.DataFrame:
    """Scaling and displacement-field parameters of every participant."""
    rows = []
    for part in participants:
        w = part.warp
        rows.append(
            {
                "participant_id": part.participant_id,
                "scale_x": w.scale[0],
                "scale_y": w.scale[1],
                "scale_z": w.scale[2],
                "displacement_sd_mm": w.sd_mm,
                "smoothness_mm": w.smoothness_mm,
                "field_draws": w.n_draws,
                "jacobian_min": w.jacobian_range[0],
                "jacobian_max": w.jacobian_range[1],
                "warp_file": (
                    "n/a"
                    if w.displacement_mm is None
                    else f"warps/{_warp_name(part.participant_id)}"
                ),
            }
        )
    return pd.DataFrame(rows)


def _warp_name(participant_id: str) -> str:
    return f"{participant_id}_desc-displacement_warp.nii.gz"


def _write_warps(warps_dir: Path, participants: list[ParticipantResult]) -> None:
    """The displacement field ``v`` of every individual participant (4-D, mm, float32)."""
    for part in participants:
        field = part.warp.displacement_mm
        if field is None:
            continue
        data = np.moveaxis(field, 0, -1).astype(np.float32)
        bw.write_nifti(warps_dir / _warp_name(part.participant_id), data, part.warp.grid.affine)


def _sessions_table(
    designs: list[ParticipantDesign], results: list[SessionResult]
) -> pd.DataFrame:
    """Injected activity, plasma input and expected k2' per session."""
    by_id = {d.participant_id: d for d in designs}
    rows = []
    for res in results:
        design = by_id[res.participant_id]
        ref = design.sessions[res.session]["cerebellum"]
        rows.append(
            {
                "participant_id": res.participant_id,
                "session_id": f"ses-{res.session}",
                "injected_mbq": design.injected_mbq[res.session],
                **{f"plasma_{k}": v for k, v in asdict(res.plasma).items()},
                "gen_k1_reference": ref.k1,
                "gen_k2prime": ref.k2,
                "gen_v_nd": ref.v_nd,
                "exp_k2prime": res.expected.k2prime,
            }
        )
    return pd.DataFrame(rows)


def _class_tacs_table(
    results: list[SessionResult], anatomy: Anatomy, protocol: ScanProtocol
) -> pd.DataFrame:
    """Noise-free frame-mean TACs per class (kBq/mL)."""
    frames = protocol.frames()
    t = fine_time_grid(float(frames.end_min[-1]), protocol.fine_dt_min)
    parts = []
    for res in results:
        table = pd.DataFrame(res.tacs.T, columns=list(anatomy.classes))
        plasma = frame_means(t, res.plasma(t), frames, protocol.decay_constant_per_min)
        table.insert(0, "plasma", plasma)
        table.insert(0, "frame_end_s", frames.end_s)
        table.insert(0, "frame_start_s", frames.start_s)
        table.insert(0, "session_id", f"ses-{res.session}")
        table.insert(0, "participant_id", res.participant_id)
        parts.append(table)
    return pd.concat(parts, ignore_index=True)


def _write_maps(maps_dir: Path, anatomy: Anatomy, designs: list[ParticipantDesign]) -> None:
    """Generating BPND and R1 maps (tissue-fraction-weighted) on the MNI grid."""
    fractions = anatomy.fractions.astype(np.float64)
    total = fractions.sum(axis=0)
    has_tissue = total > 1e-3
    for design in designs:
        for ses in SESSIONS:
            for what in ("BPND", "R1"):
                values = _class_values(design, ses, what)
                vec = np.array([values[c] for c in anatomy.classes])
                weighted = np.tensordot(vec, fractions, axes=1)
                data = np.full(anatomy.shape, np.nan, dtype=np.float32)
                data[has_tissue] = (weighted[has_tissue] / total[has_tissue]).astype(np.float32)
                name = (
                    f"{design.participant_id}_ses-{ses}_space-{MAP_SPACE}_res-2_"
                    f"desc-generating_{what}.nii.gz"
                )
                bw.write_nifti(maps_dir / name, data, anatomy.affine)


def write_truth(
    truth_dir: Path,
    *,
    anatomy: Anatomy,
    designs: list[ParticipantDesign],
    results: list[ParticipantResult],
    effects: StudyEffects,
    protocol: ScanProtocol,
    settings: dict[str, object],
) -> None:
    """Write every ground-truth file (see the module docstring).

    Parameters
    ----------
    truth_dir : Path
        Destination folder (created).
    anatomy : Anatomy
        The template anatomy (MNI grid, truth ROIs).
    designs : list of ParticipantDesign
        Generating values.
    results : list of ParticipantResult
        Per-participant outputs of the rendering jobs.
    effects : StudyEffects
        Effects simulated.
    protocol : ScanProtocol
        Acquisition protocol.
    settings : dict
        Seed, counts and options for ``truth.json``.
    """
    columns = truth_voxels(anatomy).roi_columns
    sessions = [res for part in results for res in part.sessions]
    by_key = {(r.participant_id, r.session): r for r in sessions}
    rows = [
        _participant_row(anatomy, d, {s: by_key[(d.participant_id, s)] for s in SESSIONS}, columns)
        for d in designs
    ]
    table = pd.DataFrame(rows)
    bw.write_tsv(truth_dir / "participants_truth.tsv", table)
    bw.write_json(
        truth_dir / "participants_truth.json", _participants_truth_sidecar(list(table.columns))
    )
    bw.write_tsv(truth_dir / "expected_roi_measures.tsv", _roi_measures(sessions, columns))
    bw.write_tsv(truth_dir / "fov_coverage.tsv", _coverage_table(sessions))
    bw.write_tsv(truth_dir / "motion_truth.tsv", _motion_table(sessions, protocol))
    bw.write_tsv(truth_dir / "session_poses.tsv", _poses_table(results))
    bw.write_tsv(truth_dir / "individual_anatomy.tsv", _anatomy_table(results))
    _write_warps(truth_dir / "warps", results)
    bw.write_tsv(truth_dir / "sessions_truth.tsv", _sessions_table(designs, sessions))
    bw.write_tsv(truth_dir / "class_tacs.tsv", _class_tacs_table(sessions, anatomy, protocol))
    _write_maps(truth_dir / "maps", anatomy, designs)
    protocol_dict = asdict(protocol)
    protocol_dict["frame_start_s"] = protocol.frames().start_s.tolist()
    protocol_dict["native_shape"] = list(protocol.native_shape())
    protocol_dict["native_affine"] = protocol.native_affine().tolist()
    bw.write_json(
        truth_dir / "truth.json",
        {
            "settings": settings,
            "effects": effects.to_dict(),
            "protocol": protocol_dict,
            "tissue_classes": list(anatomy.classes),
            "tissues": {k: asdict(v) for k, v in TISSUES.items()},
            "head_centre_mm": anatomy.head_centre_mm.tolist(),
            "roi_sources": ROI_SOURCES,
            "expected_method": (
                "petsim.srtm (the simulator's own fits): SRTM of the striatum ROI TAC -> k2', "
                "then SRTM2 of each ROI TAC and voxelwise (profiled least squares, "
                f"{N_K2A_GRID}-value k2a grid refined by golden-section search); frame-duration "
                "weights, frame-mean model. Data: the participant's blurred "
                f"({protocol.fwhm_mm:g} mm) noise-free head sampled on the native scanner grid "
                "at the session pose and brought back to each MNI truth voxel with the true "
                "mapping (warp + pose) in one trilinear interpolation; voxels outside the "
                "field of view are left out (fov_coverage.tsv). Reference: cerebellum."
            ),
            "anatomy_convention": ANATOMY_CONVENTION,
            "motion_convention": MOTION_CONVENTION,
            "pose_convention": (
                "session_poses.tsv: P maps head mm to scanner mm; parameters are the "
                "rotation (R = Rz @ Ry @ Rx) and translation of P about the scanner origin. "
                "The native PET grid's affine (voxel -> scanner mm) is protocol.native_affine."
            ),
        },
    )
