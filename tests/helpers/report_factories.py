"""Synthetic report inputs built on the fly (no files, no downloads)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from bids_app.qc import QcCheck, QcVerdict
from bids_app.report.data import (
    ClusterMapReport,
    GroupReport,
    ParticipantReport,
    Provenance,
    RegistrationCheck,
    SessionReport,
)

SMALL_SHAPE = (20, 24, 18)
BIG_SHAPE = (99, 117, 95)
ROIS = ("cerebellum", "dorsal_striatum", "ventral_striatum")


def grid_affine(shape: tuple[int, int, int]) -> NDArray[np.float64]:
    """An MNI-like affine that centres ``shape`` on the origin (2 mm for big grids, 8 mm small)."""
    step = 2.0 if shape[0] > 50 else 8.0
    affine = np.diag([step, step, step, 1.0])
    affine[:3, 3] = [-(n - 1) * step / 2.0 for n in shape]
    return affine


def world_grid(shape: tuple[int, int, int], affine: NDArray[np.float64]) -> NDArray[np.float64]:
    """MNI coordinates (mm) of every voxel, shape ``(*shape, 3)``."""
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def _blob(xyz: NDArray[np.float64], centre: tuple[float, float, float], radius: float) -> NDArray:
    """Boolean ball of ``radius`` mm around ``centre``."""
    return np.linalg.norm(xyz - np.asarray(centre), axis=-1) <= radius


def synthetic_anatomy(shape: tuple[int, int, int], rng: np.random.Generator) -> dict[str, Any]:
    """Template, masks and a raclopride-like mean PET on an MNI-like grid."""
    affine = grid_affine(shape)
    xyz = world_grid(shape, affine)
    r = np.sqrt((xyz[..., 0] / 70) ** 2 + ((xyz[..., 1] + 15) / 95) ** 2 + (xyz[..., 2] / 70) ** 2)
    brain = r < 1.0
    template = np.where(brain, 60.0 + 40.0 * (r < 0.7), 0.0) + rng.normal(0, 2, shape)
    step = affine[0, 0]
    radius = max(1.5 * step, 8.0)
    dorsal = _blob(xyz, (14, 8, 6), radius) | _blob(xyz, (-14, 8, 6), radius)
    ventral = (_blob(xyz, (10, 12, -8), radius) | _blob(xyz, (-10, 12, -8), radius)) & ~dorsal
    cerebellum = _blob(xyz, (22, -70, -34), 2 * radius) | _blob(xyz, (-22, -70, -34), 2 * radius)
    cerebellum &= brain
    pet = np.where(brain, 1.0, 0.05) + 3.0 * dorsal + 2.0 * ventral + rng.normal(0, 0.05, shape)
    return {
        "affine": affine,
        "template": template,
        "brain": brain,
        "masks": {
            "cerebellum": cerebellum,
            "dorsal_striatum": dorsal,
            "ventral_striatum": ventral,
        },
        "pet": pet,
    }


def _frames(n_frames: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Frame bounds in seconds: short early frames, long late frames (60 min)."""
    durations = np.geomspace(30.0, 600.0, n_frames)
    durations *= 3600.0 / durations.sum()
    end = np.cumsum(durations)
    return end - durations, end


def make_session(
    anatomy: dict[str, Any],
    session: str,
    role: str,
    rng: np.random.Generator,
    n_frames: int = 12,
    bp_scale: float = 1.0,
) -> SessionReport:
    """One synthetic session on ``anatomy``'s grid."""
    start, end = _frames(n_frames)
    t = (start + end) / 120.0
    ref = 10 * t * np.exp(-t / 8.0)
    fitted = {
        "dorsal_striatum": ref * (1 + 2.5 * bp_scale * (1 - np.exp(-t / 10.0))),
        "ventral_striatum": ref * (1 + 2.0 * bp_scale * (1 - np.exp(-t / 10.0))),
    }
    tacs = pd.DataFrame({"frame_start": start, "frame_end": end, "cerebellum": ref})
    for name, fit in fitted.items():
        tacs[name] = fit + rng.normal(0, 0.3, n_frames)
    drift = np.cumsum(rng.normal(0, 0.05, (n_frames, 6)), axis=0)
    confounds = pd.DataFrame(
        drift * [1, 1, 1, 0.01, 0.01, 0.01],
        columns=["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"],
    )
    confounds["framewise_displacement"] = np.abs(rng.normal(0.2, 0.1, n_frames))
    confounds["usable"] = [False, False] + [True] * (n_frames - 2)
    masks = anatomy["masks"]
    brain = anatomy["brain"]
    bp = np.where(brain, 0.2, np.nan)
    bp = np.where(masks["dorsal_striatum"], 2.5 * bp_scale, bp)
    bp = np.where(masks["ventral_striatum"], 2.0 * bp_scale, bp)
    r1 = np.where(brain, 1.0 + rng.normal(0, 0.05, brain.shape), np.nan)
    kinpar = pd.DataFrame(
        {
            "roi": ["dorsal_striatum", "ventral_striatum"],
            "BPND": [2.5 * bp_scale, 2.0 * bp_scale],
            "R1": [1.05, 0.98],
            "k2a": [0.051, 0.062],
            "k2prime": [0.104, 0.104],
        }
    )
    return SessionReport(
        session=session,
        role=role,  # type: ignore[arg-type]
        pet_file=f"sub-01/ses-{session}/pet/sub-01_ses-{session}_trc-raclopride_pet.nii.gz",
        n_frames=n_frames,
        frame_start_s=start,
        frame_end_s=end,
        confounds=confounds,
        template=anatomy["template"],
        affine=anatomy["affine"],
        mean_pet_mni=anatomy["pet"],
        roi_masks=dict(masks),
        tacs=tacs,
        fitted=fitted,
        kinpar=kinpar,
        k2prime=0.104,
        k2prime_method="median of voxelwise SRTM k2' over voxels with BPND > 0",
        bp_map=bp,
        r1_map=r1,
        n_fit_voxels=int(brain.sum()),
        n_failed=3,
        n_at_bound=7,
        registration_quality={"mutual_information": 0.61, "brain_mask_dice": 0.93},
        warnings=[],
        injection={
            "injected radioactivity": (357.0 if role == "baseline" else 362.2, "MBq"),
            "injected mass": (3.1, "ug"),
            "molar activity": (float("nan"), "GBq/umol"),
        },
    )


def provenance() -> Provenance:
    """Fixed provenance (fixed timestamps, so output is deterministic)."""
    return Provenance(
        version="0.1.0",
        command_line="bids_app /data /out participant --participant-label 01",
        config={"nprocs": 2, "smoothing_fwhm_mm": 8.0, "sessions": {"baseline": "sal"}},
        software={"numpy": "2.0", "matplotlib": "3.11"},
        started="2024-01-01T10:00:00",
        finished="2024-01-01T10:30:00",
    )


def motion_check(session: str, max_fd_mm: float) -> QcCheck:
    """A maximum-FD check of one session (warn 2 mm, fail 4 mm)."""
    return QcCheck(
        "max_fd_mm",
        "maximum framewise displacement",
        f"ses-{session}",
        max_fd_mm,
        "mm",
        2.0,
        4.0,
        "above",
        "a jump of several mm within a frame cannot be corrected",
    )


def make_verdict(max_fd_mm: tuple[float, float] = (0.6, 0.8)) -> QcVerdict:
    """Motion checks of both sessions and a normalisation check."""
    dice = QcCheck(
        "norm_brain_dice",
        "Dice of the normalised PET with the template brain",
        "participant",
        0.88,
        "",
        0.75,
        0.6,
        "below",
        "the normalised PET must cover the template brain",
    )
    return QcVerdict((motion_check("sal", max_fd_mm[0]), motion_check("nal", max_fd_mm[1]), dice))


def registration_checks(anatomy: dict[str, Any]) -> list[RegistrationCheck]:
    """Normalisation and co-registration views: shifted (before) and aligned (after) PET."""
    pet = anatomy["pet"]
    return [
        RegistrationCheck(
            name=name,
            before=np.roll(pet, 2, axis=0),
            after=pet,
            target=target,
            affine=anatomy["affine"],
            target_label=label,
            caption=f"{name}: the edges should follow the brain after.",
        )
        for name, target, label in (
            ("Normalisation to MNI152NLin2009aSym (PET-only)", anatomy["template"], "template"),
            ("Challenge -> baseline co-registration", pet, "baseline PET edges"),
        )
    ]


def make_participant(
    shape: tuple[int, int, int] = SMALL_SHAPE,
    participant_id: str = "01",
    n_sessions: int = 2,
    seed: int = 42,
    qc: QcVerdict | None = None,
    **session_changes: Any,
) -> ParticipantReport:
    """A full participant report; ``session_changes`` replace SessionReport fields."""
    rng = np.random.default_rng(seed)
    anatomy = synthetic_anatomy(shape, rng)
    sessions = [
        make_session(anatomy, "sal", "baseline", rng),
        make_session(anatomy, "nal", "challenge", rng, bp_scale=0.9),
    ][:n_sessions]
    if session_changes:
        from dataclasses import replace

        sessions = [replace(s, **session_changes) for s in sessions]
    return ParticipantReport(
        participant_id=participant_id,
        sessions=sessions,
        normalisation="PET-only",
        template_name="MNI152NLin2009aSym",
        atlas_name="synthetic-striatum",
        outputs=["sub-01/ses-sal/pet/sub-01_ses-sal_desc-confounds_timeseries.tsv"],
        warnings=["reference region eroded by 1 voxel"],
        errors=[],
        provenance=provenance(),
        qc=make_verdict() if qc is None else qc,
        registrations=registration_checks(anatomy) if n_sessions == 2 else [],
    )


def make_group(shape: tuple[int, int, int] = SMALL_SHAPE, seed: int = 7) -> GroupReport:
    """A full group report with one significant cluster."""
    rng = np.random.default_rng(seed)
    anatomy = synthetic_anatomy(shape, rng)
    brain = anatomy["brain"]
    t_map = np.where(brain, rng.normal(0, 1, shape), np.nan)
    dorsal = anatomy["masks"]["dorsal_striatum"]
    t_map[dorsal] = -5.0
    labels = dorsal.astype(int)
    participants = [f"{i:02d}" for i in range(1, 11)]
    roi_rows = []
    for p in participants:
        for roi, base in (("dorsal_striatum", 2.5), ("ventral_striatum", 2.1), ("striatum", 2.3)):
            b = base + rng.normal(0, 0.2)
            roi_rows.append(("BPND", p, roi, b, b * (0.9 + rng.normal(0, 0.03))))
        for roi in ("pituitary", "carotid", "habenula", "habenula_control"):
            b = 1.0 + rng.normal(0, 0.1)
            roi_rows.append(("R1", p, roi, b, b * (1.1 + rng.normal(0, 0.05))))
    roi_values = pd.DataFrame(
        roi_rows, columns=["measure", "participant_id", "roi", "baseline", "challenge"]
    )
    clusters = pd.DataFrame(
        {
            "measure": ["BPND", "BPND"],
            "direction": ["decrease", "decrease"],
            "cluster_id": [1, 2],
            "size_voxels": [int(dorsal.sum()), 12],
            "size_mm3": [float(dorsal.sum()) * 512.0, 12 * 512.0],
            "peak_x": [14.0, -40.0],
            "peak_y": [8.0, -60.0],
            "peak_z": [6.0, 20.0],
            "peak_t": [-5.0, -4.4],
            "p_fwe_rft": [0.012, 0.41],
            "p_fwe_perm": [np.nan, np.nan],
            "label": ["Right putamen", "Left angular gyrus"],
            "significant": [True, False],
        }
    )
    peaks = pd.DataFrame(
        {
            "measure": ["BPND", "BPND", "BPND"],
            "direction": ["decrease"] * 3,
            "cluster_id": [1, 1, 2],
            "rank": [1, 2, 1],
            "x_mm": [14.0, 20.0, -40.0],
            "y_mm": [8.0, 4.0, -60.0],
            "z_mm": [6.0, 2.0, 20.0],
            "t": [-5.0, -4.8, -4.4],
            "z_equivalent": [3.6, 3.5, 3.3],
            "p_unc": [0.00021, 0.00034, 0.00061],
            "p_fwe_rft_peak": [0.2, 0.3, 0.6],
            "label": ["Right putamen", "Right putamen", "Left angular gyrus"],
            "cluster_significant": [True, True, False],
        }
    )
    roi_stats = pd.DataFrame(
        {
            "measure": ["BPND", "BPND", "R1"],
            "roi": ["dorsal_striatum", "ventral_striatum", "pituitary"],
            "n": [10, 10, 10],
            "baseline_mean": [2.5, 2.1, 1.0],
            "baseline_sd": [0.2, 0.2, 0.1],
            "challenge_mean": [2.25, 2.0, 1.1],
            "challenge_sd": [0.2, 0.2, 0.1],
            "mean_change_pct": [-10.0, -4.8, 10.0],
            "t": [-4.1, -1.2, 3.0],
            "df": [9, 9, 9],
            "p": [0.0027, 0.03, 0.015],
            "cohen_d": [-1.3, -0.38, 0.95],
            "p_corrected": [0.008, 0.06, 0.045],
            "correction": ["none", "bonferroni_n2", "none"],
        }
    )
    measures = pd.DataFrame(
        {
            "participant_id": participants,
            "net_da_release": rng.normal(0.08, 0.03, 10),
            "net_rcbf_change": rng.normal(0.05, 0.02, 10),
            "aversion_index": rng.normal(0, 1, 10),
        }
    )
    behavior = pd.DataFrame(
        {
            "measure": ["nausea", "anxiety"],
            "time_min": [10, 10],
            "t": [3.2, 1.0],
            "df": [9, 9],
            "p": [0.011, 0.34],
            "p_fdr": [0.022, 0.34],
            "selected": [True, False],
        }
    )
    correlations = pd.DataFrame(
        {
            "x": ["net_da_release"],
            "y": ["aversion_index"],
            "n": [10],
            "r": [-0.71],
            "df": [8],
            "p": [0.021],
        }
    )
    qc_rows = [
        {
            "participant_id": f"sub-{p}",
            **motion_check("sal", 3.1 if p == "02" else 0.5 + 0.05 * i).to_json(),
        }
        for i, p in enumerate(participants)
    ]
    qc_rows += [
        {
            "participant_id": f"sub-{p}",
            "key": "k2prime",
            "label": "k2'",
            "scope": "ses-sal",
            "value": 0.1 + 0.001 * i,
            "unit": "1/min",
            "warn": None,
            "fail": None,
            "bad": "above",
            "status": "info",
        }
        for i, p in enumerate(participants)
    ]
    status = pd.DataFrame(
        {
            "participant_id": [f"sub-{p}" for p in (*participants, "11")],
            "included": [True] * len(participants) + [False],
            "reason": [""] * len(participants) + ["no challenge session"],
            "qc": ["warn" if p == "02" else "pass" for p in participants] + ["n/a"],
            "report": [f"../sub-{p}.html" for p in participants] + [""],
        }
    )
    net_stats = pd.DataFrame(
        {
            "measure": ["net_da_release", "net_rcbf_change"],
            "n": [10, 10],
            "mean": [0.081, 0.049],
            "sd": [0.031, 0.022],
            "t": [8.26, 7.04],
            "df": [9.0, 9.0],
            "p": [1.7e-05, 6.1e-05],
            "cohen_d": [2.61, 2.23],
            "estimator": ["symmetric", "symmetric"],
        }
    )
    behaviour_rows = [
        (f"sub-{p}", role, t, measure, value + (1.5 if role == "challenge" and t > 0 else 0.0))
        for p in participants
        for role in ("baseline", "challenge")
        for t in (-10.0, 10.0, 30.0, 60.0)
        for measure, value in (("nausea", 1.0), ("anxiety", 2.0))
    ]
    behaviour = pd.DataFrame(
        behaviour_rows, columns=["participant_id", "role", "time_min", "measure", "value"]
    )
    behaviour["kind"] = "subjective"
    return GroupReport(
        participants=participants,
        excluded=[("11", "failed", "normalisation: the T1w image is empty")],
        parameters={
            "smoothing_fwhm_mm": 8.0,
            "cluster_forming_p": 0.001,
            "cluster_forming_t": 4.297,
            "df": 9,
            "fwhm_mm": [10.2, 11.0, 9.8],
            "resels": 412.5,
            "n_permutations": 1024,
            "search_volume": {
                "BPND": {"voxels": 236026, "ml": 1888.2, "definition": "SPM's implicit mask"}
            },
            "net_change_estimators": {
                "net_da_release": {
                    "method": "symmetric",
                    "definition": "mean over the striatal voxels of the symmetric change",
                }
            },
        },
        template=anatomy["template"],
        affine=anatomy["affine"],
        cluster_maps=[
            ClusterMapReport("BPND", "decrease", t_map, labels, 4.297),
            ClusterMapReport("R1", "increase", t_map * 0.1, np.zeros(shape, int), 4.297),
        ],
        clusters=clusters,
        roi_values=roi_values,
        roi_stats=roi_stats,
        participant_measures=measures,
        behavior_effects=behavior,
        correlations=correlations,
        aversion_explained_variance=0.62,
        warnings=["sub-11 excluded: no challenge session"],
        provenance=provenance(),
        qc_checks=pd.DataFrame(qc_rows),
        participant_status=status,
        cluster_peaks=peaks,
        net_change_stats=net_stats,
        behavior_data=behaviour,
    )
