"""Write the ground truth of a synthetic study into ``out_dir/truth`` (beside the dataset).

Files (all TSVs have a JSON sidecar or are described in ``truth.json``):

* ``participants_truth.tsv``: generating values (``gen_*``) and expected measured values
  (``exp_*``, see :mod:`bids_app.simulation.truth`) per participant;
* ``expected_roi_measures.tsv``: long table of expected BPND/R1 per participant, session, ROI
  and method (``roi_tac`` or ``voxel_mean``);
* ``motion_truth.tsv``: per frame the motion ``D_k`` (4 x 4, ``m00`` ... ``m33``) and its six
  parameters, plus framewise displacement (see :mod:`bids_app.simulation.motion`);
* ``session_poses.tsv``: the head (MNI mm) -> scanner (mm) pose of every image;
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

from bids_app.simulation import bids_writer as bw
from bids_app.simulation.anatomy import Anatomy
from bids_app.simulation.design import (
    SESSIONS,
    TISSUES,
    ParticipantDesign,
    StudyEffects,
)
from bids_app.simulation.motion import PARAM_NAMES, framewise_displacement, rigid_params
from bids_app.simulation.protocol import ScanProtocol
from bids_app.simulation.truth import (
    TRUTH_ROIS,
    generating_roi_value,
    relative_change_mean,
)

if TYPE_CHECKING:
    from bids_app.simulation.study import SessionResult

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

MOTION_CONVENTION = (
    "D_k (m00..m33, row-major) maps the scanner-space position (mm) of a head point at frame 0 "
    "to its position at frame k: x_k = D_k @ x_0; D_0 = identity. The head pose at frame k "
    "is D_k @ P with P the session pose (MNI mm -> scanner mm, session_poses.tsv). "
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
            text = "k2' (1/min) of an SRTM fit of the blurred noise-free striatum TAC."
        elif col.endswith(("_da_release", "_rcbf_change")):
            text = (
                "Expected measured relative change: mean over the ROI's voxels of voxelwise "
                "SRTM2 on the blurred noise-free MNI data (fraction)."
            )
        elif col.endswith("_r1_change"):
            text = "Expected measured relative R1 change of the ROI-TAC SRTM2 fits (fraction)."
        else:
            text = "Expected measured value: SRTM2 fit of the blurred noise-free ROI TAC."
        side[col] = {"Description": text}
    return side


def _roi_measures(results: list[SessionResult], columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """Long table of expected ROI values by method."""
    rows = []
    for res in results:
        exp = res.expected
        for roi in TRUTH_ROIS:
            sel = columns[roi]
            rows.append(
                [
                    res.participant_id,
                    f"ses-{res.session}",
                    roi,
                    "roi_tac",
                    exp.roi_bp[roi],
                    exp.roi_r1[roi],
                ]
            )
            rows.append(
                [
                    res.participant_id,
                    f"ses-{res.session}",
                    roi,
                    "voxel_mean",
                    float(np.nanmean(exp.voxel_bp[sel])),
                    float(np.nanmean(exp.voxel_r1[sel])),
                ]
            )
    return pd.DataFrame(
        rows, columns=["participant_id", "session_id", "roi", "method", "BPND", "R1"]
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


def _poses_table(results: list[SessionResult]) -> pd.DataFrame:
    """Head (MNI) -> scanner pose of every written image."""
    rows = []
    for res in results:
        images = [(f"pet_ses-{res.session}", res.motion.pose)]
        if res.t1w_pose is not None:
            images.append(("T1w", res.t1w_pose))
        for image, pose in images:
            rows.append(
                [res.participant_id, image, *rigid_params(pose).tolist(), *pose.ravel().tolist()]
            )
    return pd.DataFrame(rows, columns=["participant_id", "image", *PARAM_NAMES, *MATRIX_COLUMNS])


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
    from bids_app.simulation.kinetics_sim import fine_time_grid, frame_means

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
    results: list[SessionResult],
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
        The simulated anatomy.
    designs : list of ParticipantDesign
        Generating values.
    results : list of SessionResult
        Per-session outputs of the rendering jobs.
    effects : StudyEffects
        Effects simulated.
    protocol : ScanProtocol
        Acquisition protocol.
    settings : dict
        Seed, counts and flags for ``truth.json``.
    """
    from bids_app.simulation.truth import truth_voxels

    columns = truth_voxels(anatomy).roi_columns
    by_key = {(r.participant_id, r.session): r for r in results}
    rows = [
        _participant_row(anatomy, d, {s: by_key[(d.participant_id, s)] for s in SESSIONS}, columns)
        for d in designs
    ]
    table = pd.DataFrame(rows)
    bw.write_tsv(truth_dir / "participants_truth.tsv", table)
    bw.write_json(
        truth_dir / "participants_truth.json", _participants_truth_sidecar(list(table.columns))
    )
    bw.write_tsv(truth_dir / "expected_roi_measures.tsv", _roi_measures(results, columns))
    bw.write_tsv(truth_dir / "motion_truth.tsv", _motion_table(results, protocol))
    bw.write_tsv(truth_dir / "session_poses.tsv", _poses_table(results))
    bw.write_tsv(truth_dir / "sessions_truth.tsv", _sessions_table(designs, results))
    bw.write_tsv(truth_dir / "class_tacs.tsv", _class_tacs_table(results, anatomy, protocol))
    _write_maps(truth_dir / "maps", anatomy, designs)
    protocol_dict = asdict(protocol)
    protocol_dict["frame_start_s"] = protocol.frames().start_s.tolist()
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
            "expected_method": (
                "bids_app.kinetics fit_srtm (striatum ROI TAC -> k2') then fit_srtm2 on the "
                f"{protocol.fwhm_mm:g} mm-blurred noise-free TACs on the MNI 2 mm grid "
                "(cerebellum reference from the app's atlas); default frame-duration weights."
            ),
            "motion_convention": MOTION_CONVENTION,
            "pose_convention": (
                "session_poses.tsv: P maps MNI (head) mm to scanner mm; parameters are the "
                "rotation (R = Rz @ Ry @ Rx) and translation of P about the scanner origin. "
                "The native PET grid's affine (voxel -> scanner mm) is protocol.native_affine."
            ),
        },
    )
