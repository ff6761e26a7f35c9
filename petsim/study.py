"""Generate a complete synthetic study: ``out_dir/bids`` (PET-BIDS) and ``out_dir/truth``.

:func:`generate_study` is the entry point. It draws every participant's generating values
(:mod:`~petsim.design`), renders each participant in its own (optionally parallel) job: the
individual anatomy (:mod:`~petsim.warp`, or the template itself), both sessions
(:mod:`~petsim.imaging`) with their expected measured values (:mod:`~petsim.truth`, the
simulator's own SRTM/SRTM2) and the optional T1w (:mod:`~petsim.t1w`); then it simulates the
phenotype tables and writes everything into a temporary folder that is renamed into place.

Random streams are derived from one ``seed`` with :class:`numpy.random.SeedSequence`: the
participants' baseline values, the effects, the phenotype noise, each session (plasma input,
head motion, image noise), the T1w and each participant's anatomy have their own streams. So
the results do not depend on ``n_jobs``, a ``null=True`` study with the same seed has exactly
the same motion, noise and baseline kinetics as its effect twin, and switching the anatomy,
the field of view or the noise level leaves every other random number unchanged.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from petsim import bids_writer as bw
from petsim._version import __version__
from petsim.anatomy import Anatomy, build_anatomy
from petsim.design import (
    SESSIONS,
    ParticipantDesign,
    StudyEffects,
    sample_participants,
)
from petsim.errors import InputError
from petsim.head import T1Source, head_t1_volume, stripped_t1_volume
from petsim.imaging import HeadModel, class_tacs, render_session
from petsim.kinetics_sim import (
    CompartmentParameters,
    PlasmaInput,
    decay_correction_factors,
    sample_plasma_input,
)
from petsim.motion import PARAM_NAMES, SessionMotion, sample_session_motion
from petsim.phenotype import (
    physiology_sidecar,
    physiology_table,
    subjective_sidecar,
    subjective_table,
    wide_form,
)
from petsim.protocol import FOV_MARGIN_MM, NOISE_LEVELS, ScanProtocol, default_protocol
from petsim.t1w import render_t1w
from petsim.truth import (
    SessionExpected,
    TruthVoxels,
    expected_session,
    ideal_fractions,
    truth_voxels,
)
from petsim.truth_writer import write_truth
from petsim.warp import IndividualWarp, WarpSettings, sample_warp

logger = logging.getLogger(__name__)

AnatomyMode = Literal["template", "individual"]
PhenotypeForm = Literal["long", "wide"]
ANATOMY_TEXT: dict[str, str] = {
    "template": "every participant shares this anatomy (only the head pose differs)",
    "individual": (
        "each participant's head is this anatomy scaled per axis (+-5 %) and deformed by a "
        "smooth random displacement field (2-4 mm)"
    ),
}
"""How the README describes each ``anatomy`` option."""
ANATOMY_MODES: tuple[str, ...] = tuple(ANATOMY_TEXT)


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
class _ParticipantJob:
    """Everything one worker needs to render and write one participant."""

    design: ParticipantDesign
    session_seeds: tuple[np.random.SeedSequence, ...]
    t1w_seed: np.random.SeedSequence | None
    anatomy_seed: np.random.SeedSequence
    anatomy: Anatomy
    shared_head: HeadModel | None
    warp_settings: WarpSettings | None
    voxels: TruthVoxels
    protocol: ScanProtocol
    t1_source: T1Source | None
    bids_dir: Path


@dataclass(frozen=True)
class SessionResult:
    """What a session reports back (everything the truth files need).

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
        Ideal-pipeline fits and field-of-view coverage.
    """

    participant_id: str
    session: str
    plasma: PlasmaInput
    motion: SessionMotion
    tacs: NDArray[np.float64]
    expected: SessionExpected


@dataclass(frozen=True)
class ParticipantResult:
    """What a participant job reports back.

    Attributes
    ----------
    participant_id : str
        ``sub-XX``.
    sessions : tuple of SessionResult
        Both sessions.
    warp : IndividualWarp
        The participant's anatomy (identity for the template anatomy).
    t1w_pose : (4, 4) ndarray or None
        Head -> scanner pose of the T1w, when one was written.
    """

    participant_id: str
    sessions: tuple[SessionResult, ...]
    warp: IndividualWarp
    t1w_pose: NDArray[np.float64] | None


def pet_path(bids_dir: Path, participant_id: str, session: str) -> Path:
    """Path of a session's PET image (``..._trc-raclopride_pet.nii.gz``)."""
    stem = f"{participant_id}_ses-{session}_trc-{bw.TRACER}_pet"
    return bids_dir / participant_id / f"ses-{session}" / "pet" / f"{stem}.nii.gz"


def _fov_z_shift(
    anchor_head_mm: NDArray[np.float64], protocol: ScanProtocol
) -> Callable[[NDArray[np.float64]], float] | None:
    """``z_shift(pose)`` placing the field-of-view bottom below the cerebellum (or None)."""
    if protocol.axial_fov_mm is None:
        return None
    affine = protocol.native_affine()
    fov_bottom_mm = affine[2, 3] - 0.5 * affine[2, 2]

    def z_shift(pose: NDArray[np.float64]) -> float:
        lowest = float((pose[2, :3] @ anchor_head_mm.T + pose[2, 3]).min())
        return fov_bottom_mm + FOV_MARGIN_MM - lowest

    return z_shift


def _run_session(
    job: _ParticipantJob,
    s_idx: int,
    head: HeadModel,
    truth_points_mm: NDArray[np.float64],
    anchor_points_mm: NDArray[np.float64],
) -> SessionResult:
    """Render, write and fit one session."""
    design, protocol = job.design, job.protocol
    session = SESSIONS[s_idx]
    params: dict[str, CompartmentParameters] = design.sessions[session]
    rng_plasma, rng_motion, rng_noise = (
        np.random.default_rng(s) for s in job.session_seeds[s_idx].spawn(3)
    )
    frames = protocol.frames()
    plasma = sample_plasma_input(rng_plasma, design.injected_mbq[session])
    tacs = class_tacs(params, job.anatomy.classes, plasma, protocol).tacs
    motion = sample_session_motion(
        rng_motion,
        head.head_centre_mm,
        frames.mid_min,
        protocol.motion_scale,
        z_shift=_fov_z_shift(anchor_points_mm, protocol),
    )
    data = render_session(head, tacs, motion, protocol, rng_noise)
    path = pet_path(job.bids_dir, design.participant_id, session)
    bw.write_nifti(path, data, protocol.native_affine())
    dcf = decay_correction_factors(frames, protocol.decay_constant_per_min)
    sidecar = bw.pet_sidecar(
        frames, protocol, session, design.injected_mbq[session], design.weight_kg, dcf
    )
    bw.write_json(path.with_name(path.name.replace(".nii.gz", ".json")), sidecar)
    ideal = ideal_fractions(job.voxels, truth_points_mm, head, motion, protocol)
    expected = expected_session(job.voxels, ideal, tacs, frames)
    return SessionResult(
        participant_id=design.participant_id,
        session=session,
        plasma=plasma,
        motion=motion,
        tacs=tacs,
        expected=expected,
    )


def _run_participant(job: _ParticipantJob) -> ParticipantResult:
    """Anatomy, both sessions and the optional T1w of one participant (worker process)."""
    t0 = time.perf_counter()
    anatomy = job.anatomy
    if job.warp_settings is None:
        warp = IndividualWarp.identity(anatomy.head_centre_mm)
        head = job.shared_head
        if head is None:
            head = HeadModel.build(anatomy, warp, job.protocol.fwhm_mm)
    else:
        warp = sample_warp(
            np.random.default_rng(job.anatomy_seed), anatomy.head_centre_mm, job.warp_settings
        )
        head = HeadModel.build(anatomy, warp, job.protocol.fwhm_mm)
    truth_points = warp.to_head(job.voxels.points_mm)
    anchor = anatomy.grid.centres_mm(np.flatnonzero(anatomy.cerebellum_whole.ravel()))
    anchor_points = warp.to_head(anchor) if job.protocol.axial_fov_mm is not None else anchor
    sessions = tuple(
        _run_session(job, s_idx, head, truth_points, anchor_points)
        for s_idx in range(len(SESSIONS))
    )
    t1w_pose = None
    if job.t1w_seed is not None and job.t1_source is not None:
        pid = job.design.participant_id
        t1w_pose = render_t1w(
            np.random.default_rng(job.t1w_seed),
            job.bids_dir / pid / "anat" / f"{pid}_T1w.nii.gz",
            job.t1_source,
            warp,
            head.head_centre_mm,
            job.protocol.t1w_voxel_mm,
        )
    logger.info("%s rendered in %.1f s", job.design.participant_id, time.perf_counter() - t0)
    return ParticipantResult(
        participant_id=job.design.participant_id,
        sessions=sessions,
        warp=warp,
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
    anatomy_text: str,
    phenotype_form: PhenotypeForm = "long",
) -> None:
    """Top-level BIDS files, per-subject session tables and the phenotype tables."""
    bw.write_json(
        bids_dir / "dataset_description.json",
        bw.dataset_description(__version__, seed, effects.is_null),
    )
    if phenotype_form == "long":
        bw.write_text(bids_dir / ".bidsignore", bw.BIDSIGNORE_TEXT)
    vox = " x ".join(f"{v:g}" for v in protocol.voxel_size_mm)
    fov = (
        "the whole head in the field of view"
        if protocol.axial_fov_mm is None
        else f"an axial field of view of {protocol.axial_fov_mm:g} mm over the striatum and "
        "cerebellum"
    )
    bw.write_text(
        bids_dir / "README",
        bw.README_TEXT.format(
            vb_pct=100 * protocol.blood_volume_fraction,
            fwhm=protocol.fwhm_mm,
            vox=vox,
            fov=fov,
            noise=protocol.noise_scale,
            anatomy=anatomy_text,
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
    tables = {
        "subjective": (
            subjective_table(rng_subjective, ids, severity, effects),
            subjective_sidecar(),
        ),
        "physiology": (
            physiology_table(rng_physiology, ids, severity, effects),
            physiology_sidecar(),
        ),
    }
    for name, (table, sidecar) in tables.items():
        if phenotype_form == "wide":
            table, sidecar = wide_form(table, sidecar)
        bw.write_tsv(pheno / f"{name}.tsv", table)
        bw.write_json(pheno / f"{name}.json", sidecar)


def _run_jobs(jobs: list[_ParticipantJob], n_jobs: int) -> list[ParticipantResult]:
    """Run the participant jobs serially or in a process pool (spawned workers)."""
    if n_jobs <= 1 or len(jobs) <= 1:
        return [_run_participant(job) for job in jobs]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(n_jobs, len(jobs)), mp_context=context) as pool:
        return list(pool.map(_run_participant, jobs))


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


def _resolve_protocol(
    protocol: ScanProtocol | None,
    small: bool,
    axial_fov_mm: float | None,
    noise: str | float | None,
) -> ScanProtocol:
    """The protocol with the field of view and noise level applied."""
    resolved = protocol if protocol is not None else default_protocol(small=small)
    if axial_fov_mm is not None:
        resolved = dataclasses.replace(resolved, axial_fov_mm=float(axial_fov_mm))
    if noise is None:
        return resolved
    if isinstance(noise, str):
        if noise not in NOISE_LEVELS:
            msg = f"noise must be one of {sorted(NOISE_LEVELS)} or a number >= 0; got {noise!r}"
            raise InputError(msg)
        return dataclasses.replace(resolved, noise_scale=NOISE_LEVELS[noise])
    if isinstance(noise, bool) or not isinstance(noise, int | float):
        msg = f"noise must be one of {sorted(NOISE_LEVELS)} or a number >= 0; got {noise!r}"
        raise InputError(msg)
    return dataclasses.replace(resolved, noise_scale=float(noise))


def _make_jobs(
    designs: list[ParticipantDesign],
    anatomy: Anatomy,
    protocol: ScanProtocol,
    seeds: tuple[np.random.SeedSequence, np.random.SeedSequence],
    bids_dir: Path,
    options: tuple[WarpSettings | None, T1Source | None],
) -> list[_ParticipantJob]:
    """One job per participant, each with its own seeds."""
    warp_settings, t1_source = options
    session_seeds, anatomy_seeds = (ss.spawn(len(designs)) for ss in seeds)
    shared_head = None
    if warp_settings is None:
        identity = IndividualWarp.identity(anatomy.head_centre_mm)
        shared_head = HeadModel.build(anatomy, identity, protocol.fwhm_mm)
    voxels = truth_voxels(anatomy)
    jobs = []
    for design, session_seed, anatomy_seed in zip(
        designs, session_seeds, anatomy_seeds, strict=True
    ):
        per_session = session_seed.spawn(len(SESSIONS) + 1)
        jobs.append(
            _ParticipantJob(
                design=design,
                session_seeds=tuple(per_session[: len(SESSIONS)]),
                t1w_seed=per_session[-1] if t1_source is not None else None,
                anatomy_seed=anatomy_seed,
                anatomy=anatomy,
                shared_head=shared_head,
                warp_settings=warp_settings,
                voxels=voxels,
                protocol=protocol,
                t1_source=t1_source,
                bids_dir=bids_dir,
            )
        )
    return jobs


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
    anatomy: AnatomyMode = "template",
    warp_settings: WarpSettings | None = None,
    t1w_skull: bool = False,
    axial_fov_mm: float | None = None,
    noise: str | float | None = None,
    phenotype_form: PhenotypeForm = "long",
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
        Worker processes (one participant per task).
    overwrite : bool, default False
        Replace the contents of a non-empty ``out_dir``.
    protocol : ScanProtocol or None
        Acquisition protocol; None uses :func:`default_protocol` (``small`` aware).
    anatomy : {"template", "individual"}, default "template"
        ``"template"``: every head is the template, posed rigidly. ``"individual"``: each
        participant's head is the template scaled per axis and deformed by a smooth random
        field (:mod:`petsim.warp`), for PET and T1w alike.
    warp_settings : WarpSettings or None
        Parameter ranges of the individual anatomy (None: :class:`WarpSettings` defaults;
        ignored for the template anatomy).
    t1w_skull : bool, default False
        Write a whole-head T1w (skull, scalp fat, eyes, neck, bias field, Rician noise) instead
        of the skull-stripped template; implies ``with_t1w``.
    axial_fov_mm : float or None
        Axial field of view of the scanner, mm (e.g. 108 for the ECAT 931); None keeps the
        protocol's (the full grid by default).
    noise : {"example", "high"}, float or None
        Noise amplitude (:attr:`ScanProtocol.noise_scale`): a name of
        :data:`petsim.protocol.NOISE_LEVELS` or a number; None keeps the protocol's
        (``"example"`` by default).
    phenotype_form : {"long", "wide"}, default "long"
        ``"long"``: one row per participant, session and time point (``time_min`` column;
        listed in ``.bidsignore``, since BIDS 1.10 indexes phenotype rows by participant and
        session). ``"wide"``: one row per participant and session, one column per measure and
        time point (``sick_t10``, ``sick_tminus10``), the form the BIDS validator accepts.

    Returns
    -------
    StudyPaths
        ``root``, ``bids_dir`` and ``truth_dir``.

    Raises
    ------
    InputError
        Non-empty ``out_dir`` without ``overwrite``, invalid counts or options, or ``null``
        with effects.
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
    if anatomy not in ANATOMY_MODES:
        msg = f"anatomy must be one of {list(ANATOMY_MODES)}; got {anatomy!r}"
        raise InputError(msg)
    if phenotype_form not in ("long", "wide"):
        msg = f"phenotype_form must be 'long' or 'wide'; got {phenotype_form!r}"
        raise InputError(msg)
    protocol = _resolve_protocol(protocol, small, axial_fov_mm, noise)
    with_t1w = with_t1w or t1w_skull
    study_effects = _resolve_effects(effects, null)
    ss_params, ss_effects, ss_pheno, ss_sessions, ss_anatomy = np.random.SeedSequence(
        int(seed)
    ).spawn(5)
    designs = sample_participants(
        np.random.default_rng(ss_params),
        np.random.default_rng(ss_effects),
        int(n_participants),
        study_effects,
        protocol.blood_volume_fraction,
        protocol.injected_mbq_range,
    )
    template = build_anatomy()
    t1_source = None
    if with_t1w:
        t1_source = head_t1_volume(protocol.t1w_voxel_mm) if t1w_skull else stripped_t1_volume()
    individual = anatomy == "individual"
    settings_used = (warp_settings or WarpSettings()) if individual else None
    logger.info("Anatomy ready after %.1f s", time.perf_counter() - t0)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_root = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        bids_dir = tmp_root / "bids"
        truth_dir = tmp_root / "truth"
        _write_dataset_files(
            bids_dir,
            designs,
            study_effects,
            protocol,
            int(seed),
            ss_pheno,
            ANATOMY_TEXT[anatomy],
            phenotype_form,
        )
        jobs = _make_jobs(
            designs,
            template,
            protocol,
            (ss_sessions, ss_anatomy),
            bids_dir,
            (settings_used, t1_source),
        )
        results = _run_jobs(jobs, int(n_jobs))
        write_truth(
            truth_dir,
            anatomy=template,
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
                "t1w_skull": bool(t1w_skull),
                "anatomy": anatomy,
                "warp_settings": dataclasses.asdict(settings_used) if settings_used else None,
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
