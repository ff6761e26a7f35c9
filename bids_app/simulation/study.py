"""Generate a complete synthetic study: ``out_dir/bids`` (PET-BIDS) and ``out_dir/truth``.

:func:`generate_study` is the entry point. It draws every participant's generating values
(:mod:`~bids_app.simulation.design`), renders each session in its own (optionally parallel)
job (:mod:`~bids_app.simulation.imaging`), computes the expected measured values with the app's
SRTM/SRTM2 (:mod:`~bids_app.simulation.truth`), simulates the phenotype tables and writes
everything into a temporary folder that is renamed into place at the end.

Random streams are derived from one ``seed`` with :class:`numpy.random.SeedSequence`: the
participants' baseline values, the effects, the phenotype noise and each session (plasma
input, head motion, image noise, T1w) have their own streams. So the results do not depend on
``n_jobs``, and a ``null=True`` study with the same seed has exactly the same motion, noise and
baseline kinetics as its effect twin.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bids_app import __version__
from bids_app.errors import InputError
from bids_app.simulation import bids_writer as bw
from bids_app.simulation.anatomy import Anatomy, build_anatomy
from bids_app.simulation.design import (
    SESSIONS,
    ParticipantDesign,
    StudyEffects,
    sample_participants,
)
from bids_app.simulation.imaging import HeadModel, class_tacs, render_session
from bids_app.simulation.kinetics_sim import (
    CompartmentParameters,
    PlasmaInput,
    decay_correction_factors,
    sample_plasma_input,
)
from bids_app.simulation.motion import PARAM_NAMES, SessionMotion, sample_session_motion
from bids_app.simulation.phenotype import (
    physiology_sidecar,
    physiology_table,
    subjective_sidecar,
    subjective_table,
)
from bids_app.simulation.protocol import ScanProtocol, default_protocol
from bids_app.simulation.t1w import render_t1w
from bids_app.simulation.truth import (
    SessionExpected,
    TruthVoxels,
    expected_session,
    scanner_round_trip,
    truth_voxels,
)
from bids_app.simulation.truth_writer import write_truth

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StudyPaths:
    """Where a generated study lives.

    Attributes
    ----------
    root : Path
        The ``out_dir`` passed to :func:`generate_study`.
    bids_dir : Path
        The BIDS dataset (``root/bids``).
    truth_dir : Path
        Ground truth beside the dataset (``root/truth``), never inside it.
    """

    root: Path
    bids_dir: Path
    truth_dir: Path


@dataclass(frozen=True)
class _SessionJob:
    """Everything one worker needs to render and write one session."""

    participant_id: str
    session: str
    seed: np.random.SeedSequence
    params: dict[str, CompartmentParameters]
    classes: tuple[str, ...]
    injected_mbq: float
    weight_kg: float
    protocol: ScanProtocol
    head: HeadModel
    voxels: TruthVoxels
    bids_dir: Path
    t1w_seed: np.random.SeedSequence | None


@dataclass(frozen=True)
class SessionResult:
    """What a session job reports back (everything the truth files need).

    Attributes
    ----------
    participant_id, session : str
        Labels (``sub-XX``, ``sal``/``nal``).
    plasma : PlasmaInput
        The session's plasma input.
    motion : SessionMotion
        Pose and per-frame motion.
    tacs : (n_classes, n_frames) ndarray
        Noise-free class TACs, kBq/mL.
    expected : SessionExpected
        Ideal-pipeline fits of the blurred, noise-free MNI data.
    t1w_pose : (4, 4) ndarray or None
        Head (MNI) -> scanner pose of the T1w, when one was written.
    """

    participant_id: str
    session: str
    plasma: PlasmaInput
    motion: SessionMotion
    tacs: np.ndarray
    expected: SessionExpected
    t1w_pose: np.ndarray | None


def pet_path(bids_dir: Path, participant_id: str, session: str) -> Path:
    """Path of a session's PET image (``..._trc-raclopride_pet.nii.gz``)."""
    stem = f"{participant_id}_ses-{session}_trc-{bw.TRACER}_pet"
    return bids_dir / participant_id / f"ses-{session}" / "pet" / f"{stem}.nii.gz"


def _run_session(job: _SessionJob) -> SessionResult:
    """Render, write and fit one session (runs in a worker process when ``n_jobs > 1``)."""
    t0 = time.perf_counter()
    rng_plasma, rng_motion, rng_noise = (np.random.default_rng(s) for s in job.seed.spawn(3))
    protocol = job.protocol
    frames = protocol.frames()
    plasma = sample_plasma_input(rng_plasma, job.injected_mbq)
    tacs = class_tacs(job.params, job.classes, plasma, protocol).tacs
    motion = sample_session_motion(
        rng_motion, job.head.head_centre_mm, frames.mid_min, protocol.motion_scale
    )
    data = render_session(job.head, tacs, motion, protocol, rng_noise)
    path = pet_path(job.bids_dir, job.participant_id, job.session)
    bw.write_nifti(path, data, protocol.native_affine())
    dcf = decay_correction_factors(frames, protocol.decay_constant_per_min)
    sidecar = bw.pet_sidecar(frames, protocol, job.session, job.injected_mbq, job.weight_kg, dcf)
    bw.write_json(path.with_name(path.name.replace(".nii.gz", ".json")), sidecar)
    ideal = scanner_round_trip(
        job.voxels,
        lambda c: job.head.volume(job.head.blurred[c]),
        job.head.blurred.shape[0],
        job.head.affine,
        job.head.shape,
        motion.pose,
        protocol.native_affine(),
        tuple(protocol.grid_shape),
    )
    expected = expected_session(ideal, tacs, frames)
    t1w_pose = None
    if job.t1w_seed is not None:
        t1w_pose = render_t1w(
            np.random.default_rng(job.t1w_seed),
            job.bids_dir / job.participant_id / "anat" / f"{job.participant_id}_T1w.nii.gz",
            job.head.head_centre_mm,
            protocol.t1w_voxel_mm,
        )
    logger.info(
        "%s ses-%s rendered in %.1f s", job.participant_id, job.session, time.perf_counter() - t0
    )
    return SessionResult(
        participant_id=job.participant_id,
        session=job.session,
        plasma=plasma,
        motion=motion,
        tacs=tacs,
        expected=expected,
        t1w_pose=t1w_pose,
    )


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    """Refuse a non-empty output folder unless ``overwrite``."""
    if out_dir.exists() and not out_dir.is_dir():
        msg = f"out_dir {out_dir} exists and is not a folder. Pass a folder path."
        raise InputError(msg)
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        msg = (
            f"out_dir {out_dir} is not empty. Choose an empty or new folder, or pass "
            "overwrite=True (CLI: --overwrite) to replace its contents."
        )
        raise InputError(msg)


def _resolve_effects(effects: StudyEffects | None, null: bool) -> StudyEffects:
    """The effects to simulate (null studies have none)."""
    if null:
        if effects is not None and not effects.is_null:
            msg = "null=True conflicts with non-zero effects; pass either null=True or effects."
            raise InputError(msg)
        return StudyEffects.none()
    return effects if effects is not None else StudyEffects()


def _write_dataset_files(
    bids_dir: Path,
    designs: list[ParticipantDesign],
    effects: StudyEffects,
    protocol: ScanProtocol,
    seed: int,
    phenotype_seed: np.random.SeedSequence,
) -> None:
    """Top-level BIDS files, per-subject session tables and the phenotype tables."""
    bw.write_json(
        bids_dir / "dataset_description.json",
        bw.dataset_description(__version__, seed, effects.is_null),
    )
    bw.write_text(bids_dir / ".bidsignore", bw.BIDSIGNORE_TEXT)
    vox = " x ".join(f"{v:g}" for v in protocol.voxel_size_mm)
    bw.write_text(
        bids_dir / "README",
        bw.README_TEXT.format(
            vb_pct=100 * protocol.blood_volume_fraction, fwhm=protocol.fwhm_mm, vox=vox
        ),
    )
    participants = pd.DataFrame(
        {
            "participant_id": [d.participant_id for d in designs],
            "age": [round(d.age_years) for d in designs],
            "sex": ["M"] * len(designs),
            "weight": [round(d.weight_kg, 1) for d in designs],
            "group": ["OUD"] * len(designs),
        }
    )
    bw.write_tsv(bids_dir / "participants.tsv", participants)
    bw.write_json(bids_dir / "participants.json", bw.participants_sidecar())
    for d in designs:
        sessions = pd.DataFrame(
            {
                "session_id": [f"ses-{s}" for s in SESSIONS],
                "condition": [bw.SESSION_CONDITIONS[s] for s in SESSIONS],
                "pharmaceutical": ["saline", "naloxone"],
            }
        )
        base = bids_dir / d.participant_id / f"{d.participant_id}_sessions"
        bw.write_tsv(base.with_suffix(".tsv"), sessions)
        bw.write_json(base.with_suffix(".json"), bw.sessions_sidecar())
    ids = [d.participant_id for d in designs]
    severity = np.array([d.severity for d in designs])
    rng_subjective, rng_physiology = (np.random.default_rng(s) for s in phenotype_seed.spawn(2))
    pheno = bids_dir / "phenotype"
    bw.write_tsv(
        pheno / "subjective.tsv", subjective_table(rng_subjective, ids, severity, effects)
    )
    bw.write_json(pheno / "subjective.json", subjective_sidecar())
    bw.write_tsv(
        pheno / "physiology.tsv", physiology_table(rng_physiology, ids, severity, effects)
    )
    bw.write_json(pheno / "physiology.json", physiology_sidecar())


def _run_jobs(jobs: list[_SessionJob], n_jobs: int) -> list[SessionResult]:
    """Run the session jobs serially or in a process pool (spawned workers)."""
    if n_jobs <= 1 or len(jobs) <= 1:
        return [_run_session(job) for job in jobs]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(n_jobs, len(jobs)), mp_context=context) as pool:
        return list(pool.map(_run_session, jobs))


def _make_jobs(
    designs: list[ParticipantDesign],
    anatomy: Anatomy,
    protocol: ScanProtocol,
    session_seeds: list[np.random.SeedSequence],
    bids_dir: Path,
    with_t1w: bool,
) -> list[_SessionJob]:
    """One job per (participant, session), each with its own seed."""
    head = HeadModel.from_anatomy(anatomy)
    voxels = truth_voxels(anatomy)
    jobs = []
    for design, seed in zip(designs, session_seeds, strict=True):
        per_session = seed.spawn(len(SESSIONS) + 1)
        for s_idx, ses in enumerate(SESSIONS):
            jobs.append(
                _SessionJob(
                    participant_id=design.participant_id,
                    session=ses,
                    seed=per_session[s_idx],
                    params=design.sessions[ses],
                    classes=anatomy.classes,
                    injected_mbq=design.injected_mbq[ses],
                    weight_kg=design.weight_kg,
                    protocol=protocol,
                    head=head,
                    voxels=voxels,
                    bids_dir=bids_dir,
                    t1w_seed=per_session[-1] if (with_t1w and s_idx == 0) else None,
                )
            )
    return jobs


def _finalise(tmp_root: Path, out_dir: Path, overwrite: bool) -> None:
    """Move the finished temporary folder to ``out_dir``."""
    if out_dir.is_dir():
        if any(out_dir.iterdir()):
            if not overwrite:  # something appeared while we were working
                _check_out_dir(out_dir, overwrite)
            shutil.rmtree(out_dir)
        else:
            out_dir.rmdir()
    os.replace(tmp_root, out_dir)


def generate_study(
    out_dir: str | os.PathLike[str],
    *,
    n_participants: int | None = None,
    small: bool = False,
    seed: int = 0,
    effects: StudyEffects | None = None,
    null: bool = False,
    with_t1w: bool = False,
    n_jobs: int = 1,
    overwrite: bool = False,
    protocol: ScanProtocol | None = None,
) -> StudyPaths:
    """Generate a synthetic baseline/challenge [11C]raclopride study.

    Parameters
    ----------
    out_dir : path-like
        Output folder; receives ``bids/`` (the dataset) and ``truth/`` (ground truth). Must be
        absent or empty unless ``overwrite``.
    n_participants : int or None, default None
        Number of participants (>= 2); None means 10, or 4 with ``small=True``.
    small : bool, default False
        Fast mode: 4 participants (unless ``n_participants`` is given), 4 mm voxels,
        12 frames, coarser time grid.
    seed : int, default 0
        Master seed; the same seed gives the same data, whatever ``n_jobs``.
    effects : StudyEffects or None
        Challenge effects; None uses the paper-like defaults.
    null : bool, default False
        No effects at all (same noise, motion and baseline kinetics as the effect study).
    with_t1w : bool, default False
        Also write ``sub-XX/anat/sub-XX_T1w.nii.gz`` in a third head pose.
    n_jobs : int, default 1
        Worker processes for rendering the sessions.
    overwrite : bool, default False
        Replace the contents of a non-empty ``out_dir``.
    protocol : ScanProtocol or None
        Acquisition protocol; None uses :func:`default_protocol` (``small`` aware).

    Returns
    -------
    StudyPaths
        ``root``, ``bids_dir`` and ``truth_dir``.

    Raises
    ------
    InputError
        Non-empty ``out_dir`` without ``overwrite``, invalid counts, or ``null`` with effects.
    """
    t0 = time.perf_counter()
    out = Path(out_dir).expanduser().resolve()
    _check_out_dir(out, overwrite)
    if n_participants is None:
        n_participants = 4 if small else 10
    if isinstance(n_participants, bool) or int(n_participants) != n_participants:
        msg = f"n_participants must be an integer >= 2; got {n_participants!r}"
        raise InputError(msg)
    if int(n_jobs) < 1:
        msg = f"n_jobs must be >= 1; got {n_jobs!r}"
        raise InputError(msg)
    protocol = protocol if protocol is not None else default_protocol(small=small)
    study_effects = _resolve_effects(effects, null)
    ss_params, ss_effects, ss_pheno, ss_sessions = np.random.SeedSequence(int(seed)).spawn(4)
    designs = sample_participants(
        np.random.default_rng(ss_params),
        np.random.default_rng(ss_effects),
        int(n_participants),
        study_effects,
        protocol.blood_volume_fraction,
        protocol.injected_mbq_range,
    )
    anatomy = build_anatomy(protocol.fwhm_mm)
    logger.info("Anatomy ready after %.1f s", time.perf_counter() - t0)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_root = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        bids_dir = tmp_root / "bids"
        truth_dir = tmp_root / "truth"
        _write_dataset_files(bids_dir, designs, study_effects, protocol, int(seed), ss_pheno)
        jobs = _make_jobs(
            designs, anatomy, protocol, ss_sessions.spawn(len(designs)), bids_dir, with_t1w
        )
        results = _run_jobs(jobs, int(n_jobs))
        write_truth(
            truth_dir,
            anatomy=anatomy,
            designs=designs,
            results=results,
            effects=study_effects,
            protocol=protocol,
            settings={
                "seed": int(seed),
                "n_participants": int(n_participants),
                "small": bool(small),
                "null": bool(study_effects.is_null),
                "with_t1w": bool(with_t1w),
                "version": __version__,
            },
        )
        _finalise(tmp_root, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp_root, ignore_errors=True)
        raise
    logger.info(
        "Synthetic study with %d participants written to %s in %.1f s",
        len(designs),
        out,
        time.perf_counter() - t0,
    )
    return StudyPaths(root=out, bids_dir=out / "bids", truth_dir=out / "truth")


__all__ = ["PARAM_NAMES", "StudyPaths", "generate_study"]
