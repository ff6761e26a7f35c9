"""One participant, end to end, as checkpointed stages.

Stages (see :class:`~bids_app.pipelines.stages.StageRunner`): ``motion:<role>`` (frame-wise
rigid motion), ``means`` (motion-corrected means), ``coregistration`` (challenge -> baseline),
``normalisation`` (to the template, PET-only or via the T1w), ``resample:<role>`` (every frame
interpolated once onto the template grid), ``tacs:<role>`` (ROI TACs), ``k2prime``, ``fit:<role>``
(voxelwise and ROI SRTM2). Each is checkpointed in the work dir (the resampled frames excepted),
so a rerun after a change resumes at the first stage whose inputs changed.

Outputs are written to a staging folder in the work dir, published into OUTPUT_DIR all or
nothing, and listed in the participant manifest (written last). The report is rendered after
publishing, so a report error never discards computed maps (the participant still counts as
failed, and a rerun rebuilds the report from the checkpoints).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np
from numpy.typing import NDArray

from bids_app import __version__
from bids_app.bidsio.imagedata import load_pet_data
from bids_app.bidsio.layout import ParticipantInput, PetScan
from bids_app.bidsio.nifti import load_spatial_image
from bids_app.config import Config
from bids_app.log import log_to_file
from bids_app.outputs.io import write_text
from bids_app.outputs.manifest import (
    Manifest,
    describe_changes,
    existing_manifest,
    file_sha256,
    missing_files,
    remove_outputs,
    remove_participant_leftovers,
    run_key,
    write_manifest,
)
from bids_app.outputs.names import ROLES, Space, logs_dir, report_name
from bids_app.outputs.publish import publish
from bids_app.outputs.sidecars import FIT_STATUS_FAILED, FIT_STATUS_FITTED
from bids_app.pipelines.common import RESOLUTION_MM, load_atlas, now_iso, provenance
from bids_app.pipelines.crash import REPORT_STAGE, failure_stage, record_failure
from bids_app.pipelines.participant_outputs import (
    participant_report,
    stage_timings_table,
    write_preproc_outputs,
    write_session_outputs,
)
from bids_app.pipelines.qc import SessionQcInputs, participant_qc
from bids_app.pipelines.session_model import (
    K2PRIME_ROI,
    REFERENCE_ROI,
    SessionFit,
    SessionK2Prime,
    SessionTacs,
    estimate_participant_k2primes,
    fit_session,
    session_tacs,
)
from bids_app.pipelines.stages import StageRunner, StageTiming, peak_rss_mb
from bids_app.preproc import configure_ants_threads
from bids_app.preproc.motion import MotionEstimate, estimate_motion
from bids_app.preproc.normalisation import (
    Normalisation,
    normalise_to_template,
    template_brain_mask,
)
from bids_app.preproc.registration import (
    MeanFrames,
    coregister_sessions,
    motion_corrected_mean,
    resample_to_template,
)
from bids_app.qc import QcVerdict
from bids_app.report.render import render_participant
from bids_app.roi.atlas import RoiAtlas
from bids_app.roi.pet_template import load_pet_template
from bids_app.roi.template import TEMPLATE_NAME, load_template

LOGGER = logging.getLogger(__name__)

Status = Literal["success", "skipped", "failed"]


@dataclass(frozen=True)
class ParticipantOutcome:
    """What happened to one participant (one row per session in ``logs/summary.tsv``)."""

    participant_id: str
    status: Status
    message: str
    sessions: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    elapsed_s: float = 0.0
    timings: tuple[StageTiming, ...] = field(default_factory=tuple)
    qc: QcVerdict | None = None


@dataclass(frozen=True)
class _Means:
    """Motion-corrected means in each session's reference space."""

    baseline: nib.Nifti1Image
    challenge: nib.Nifti1Image
    baseline_early: nib.Nifti1Image


class _InMemoryImages:
    """The participant's PET images as analysed, each read from disk once, on first use.

    Motion, means and resampling all read every frame; from a ``.nii.gz`` each frame read
    decompresses the file from its start, so the data are loaded once (in the first stage
    that needs them, which is where the time is counted) and kept as float32 arrays
    (~60 MB per default-size session), decay-corrected and without excluded frames
    (:func:`bids_app.bidsio.load_pet_data`).
    """

    def __init__(self, scans: dict[str, PetScan]) -> None:
        self._scans = scans
        self._images: dict[str, nib.Nifti1Image] = {}

    def __getitem__(self, role: str) -> nib.Nifti1Image:
        if role not in self._images:
            img = load_pet_data(self._scans[role])
            data = np.asarray(img.dataobj, dtype=np.float32)
            self._images[role] = nib.Nifti1Image(data, img.affine)
        return self._images[role]


def process_participant(
    participant: ParticipantInput, config: Config, run_id: str = "run"
) -> ParticipantOutcome:
    """Process one participant; never raises for data problems (they become the outcome).

    Parameters
    ----------
    participant : ParticipantInput
        The validated inputs of the participant (both sessions).
    config : Config
        The run configuration.
    run_id : str
        Identifies the run in log file names.

    Returns
    -------
    ParticipantOutcome
        ``success``, ``skipped`` (outputs complete and up to date) or ``failed`` with the reason.
    """
    subject = participant.subject
    sessions = (participant.baseline.session, participant.challenge.session)
    log_file = logs_dir(config.output_dir) / f"sub-{subject}_{run_id}.log"
    start = time.perf_counter()
    runner: StageRunner | None = None  # names the failed stage in a crash file
    with log_to_file(log_file, config.verbosity, participant=f"sub-{subject}"):
        try:
            inputs = input_hashes(participant, config)
            options = config.participant_options()
            key = run_key(inputs, options, __version__)
            for leftover in remove_participant_leftovers(config.output_dir, subject):
                LOGGER.info("sub-%s: removed %s, left by an interrupted run", subject, leftover)
            previous = existing_manifest(config.output_dir, subject)
            if previous is not None and not config.overwrite:
                changes = describe_changes(previous, inputs, options, __version__)
                missing = missing_files(config.output_dir, previous)
                if not changes and not missing and previous.files.get(str(report_name(subject))):
                    LOGGER.info(
                        "sub-%s: outputs complete and up to date, skipped (use --overwrite to "
                        "redo)",
                        subject,
                    )
                    return ParticipantOutcome(
                        subject,
                        "skipped",
                        "outputs already complete",
                        sessions,
                        qc=QcVerdict.from_json(previous.qc),
                    )
                LOGGER.info(
                    "sub-%s: recomputing: %s",
                    subject,
                    "; ".join(changes) if changes else f"{len(missing) or 1} output(s) missing",
                )
            runner = _runner(participant, config, inputs)
            return _process(participant, config, runner, inputs, options, key, previous, start)
        except Exception as exc:  # one participant's failure must not stop the others
            # a crash file (stage, hint, inputs, versions, traceback) for every failure
            message = record_failure(participant, exc, failure_stage(runner), config)
            return ParticipantOutcome(subject, "failed", message, sessions)


def input_hashes(participant: ParticipantInput, config: Config) -> dict[str, str]:
    """Content hashes of everything a participant's results are computed from.

    The PET images, their (resolved) metadata, the T1w and a user atlas, keyed by their path
    relative to the BIDS root (or absolute, for the atlas).
    """
    out: dict[str, str] = {}
    for scan in (participant.baseline, participant.challenge):
        # hashed once, during validation (the same SHA-256 of the file's bytes)
        out[_relative(scan.path, config.bids_dir)] = scan.sha256 or file_sha256(scan.path)
        out[f"{_relative(scan.path, config.bids_dir)}:metadata"] = metadata_sha256(scan)
    if participant.t1w is not None:
        out[_relative(participant.t1w, config.bids_dir)] = file_sha256(participant.t1w)
    for path in (config.atlas_labels, config.atlas_tsv):
        if path is not None:
            out[str(path)] = file_sha256(path)
    return out


def metadata_sha256(scan: PetScan) -> str:
    """Hash of a scan's resolved sidecar metadata (canonical JSON)."""
    text = json.dumps(scan.metadata, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _stage_context() -> str:
    """What every stage key shares: the version (checkpoints never cross versions)."""
    return hashlib.sha256(f"bids_app {__version__}".encode()).hexdigest()


def _runner(participant: ParticipantInput, config: Config, inputs: dict[str, str]) -> StageRunner:
    """Register the participant's stages (nothing runs yet).

    ``inputs`` are the participant's :func:`input_hashes`; each stage's key holds the hashes of
    the files it reads, so a changed file re-runs exactly the stages downstream of it.
    """
    subject = participant.subject
    work = config.work_dir / f"sub-{subject}"
    runner = StageRunner(work / "checkpoints", _stage_context(), f"sub-{subject}")
    scans = {"baseline": participant.baseline, "challenge": participant.challenge}
    # each read once, decay-corrected to the injection, without excluded frames
    images = _InMemoryImages(scans)
    scan_ids = {
        role: {
            "image": inputs[_relative(scan.path, config.bids_dir)],
            "metadata": inputs[f"{_relative(scan.path, config.bids_dir)}:metadata"],
            "excluded_frames": list(scan.excluded_frames),
        }
        for role, scan in scans.items()
    }
    threads = config.omp_nthreads
    atlas_id = {
        "atlas": [inputs[str(p)] for p in (config.atlas_labels, config.atlas_tsv) if p]
        or "built-in"
    }

    for role, scan in scans.items():
        runner.add(
            f"motion:{role}",
            lambda role=role, timing=scan.timing: estimate_motion(
                images[role], timing, n_threads=threads
            ),
            params={"scan": scan_ids[role]},
        )

    def means(motion_b: MotionEstimate, motion_c: MotionEstimate) -> _Means:
        def mean(role: str, motion: MotionEstimate, frames: MeanFrames) -> nib.Nifti1Image:
            return motion_corrected_mean(images[role], motion, frames, n_threads=threads)

        return _Means(
            baseline=mean("baseline", motion_b, "all"),
            challenge=mean("challenge", motion_c, "all"),
            # An early (perfusion-weighted) mean has the grey/white contrast PET-only
            # normalisation needs; a late raclopride mean is dominated by the striatum.
            baseline_early=mean("baseline", motion_b, "early"),
        )

    runner.add("means", means, depends=["motion:baseline", "motion:challenge"], persist=False)
    runner.add(
        "coregistration",
        lambda m: coregister_sessions(m.challenge, m.baseline, work / "coreg", n_threads=threads),
        depends=["means"],
    )
    t1w_id = (
        None if participant.t1w is None else inputs[_relative(participant.t1w, config.bids_dir)]
    )

    def normalisation(m: _Means) -> Normalisation:
        t1w = load_spatial_image(participant.t1w) if participant.t1w is not None else None
        return normalise_to_template(
            m.baseline_early,
            load_template(RESOLUTION_MM),
            work / "norm",
            t1w=t1w,
            pet_template=load_pet_template(RESOLUTION_MM),
            pet_deformable=config.pet_normalisation == "syn",
            binding_mean=m.baseline,
            binding_region=atlas().masks.get(K2PRIME_ROI),
            n_threads=threads,
        )

    runner.add(
        "normalisation",
        normalisation,
        depends=["means"],
        params={"t1w": t1w_id, "pet_normalisation": config.pet_normalisation},
        still_valid=lambda n: all(Path(p).is_file() for p in n.transforms),
    )
    atlas_cache: dict[str, RoiAtlas] = {}

    def atlas() -> RoiAtlas:
        if "atlas" not in atlas_cache:
            atlas_cache["atlas"] = load_atlas(config, load_template(RESOLUTION_MM))
        return atlas_cache["atlas"]

    for role, scan in scans.items():

        def resample(
            motion: MotionEstimate,
            norm: Normalisation,
            coreg: NDArray[np.float64],
            role: str = role,
            scan: PetScan = scan,
        ) -> NDArray[np.float32]:
            mni = resample_to_template(
                images[role],
                motion,
                norm,
                load_template(RESOLUTION_MM),
                session_transform=coreg if role == "challenge" else None,
                work_dir=work / f"ses-{scan.session}" / "resample",
                n_threads=threads,
            )
            return np.asarray(mni.dataobj, dtype=np.float32)

        runner.add(
            f"resample:{role}",
            resample,
            depends=[f"motion:{role}", "normalisation", "coregistration"],
            persist=False,
        )
        runner.add(
            f"tacs:{role}",
            lambda data, scan=scan: session_tacs(scan, data, atlas()),
            depends=[f"resample:{role}"],
            params=atlas_id,
        )

    method = config.k2prime_method
    voxel_k2 = method == "voxel_median"
    k2_depends = ["tacs:baseline", "tacs:challenge"]
    if voxel_k2:
        k2_depends += ["resample:baseline", "resample:challenge"]

    def k2prime(
        baseline_tacs: SessionTacs,
        challenge_tacs: SessionTacs,
        baseline_mni: NDArray[np.float32] | None = None,
        challenge_mni: NDArray[np.float32] | None = None,
    ) -> dict[str, SessionK2Prime]:
        # the stage results in the order of k2_depends; the resampled data only for voxel_median
        tacs = {"baseline": baseline_tacs, "challenge": challenge_tacs}
        voxels = None
        if baseline_mni is not None and challenge_mni is not None:
            mask = atlas().analysis_mask
            voxels = {"baseline": baseline_mni[mask].T, "challenge": challenge_mni[mask].T}
        return estimate_participant_k2primes(
            scans,
            tacs,
            voxels,
            method,
            config.k2prime_pooling,
            config.weights,
        )

    runner.add(
        "k2prime",
        k2prime,
        depends=k2_depends,
        params={
            "method": method,
            "pooling": config.k2prime_pooling,
            "weights": config.weights,
        },
    )
    for role, scan in scans.items():
        runner.add(
            f"fit:{role}",
            lambda data, tacs, k2, role=role, scan=scan: fit_session(
                scan,
                data,
                tacs,
                k2[role],
                atlas(),
                weights=config.weights,
                n_basis=config.n_basis,
                k2a_range_per_min=config.k2a_range_per_min,
            ),
            depends=[f"resample:{role}", f"tacs:{role}", "k2prime"],
            params={
                "weights": config.weights,
                "n_basis": config.n_basis,
                "k2a_range": config.k2a_range_per_min,
            },
        )
    return runner


def _process(
    participant: ParticipantInput,
    config: Config,
    runner: StageRunner,
    inputs: dict[str, str],
    options: dict[str, object],
    key: str,
    previous: Manifest | None,
    start: float,
) -> ParticipantOutcome:
    subject = participant.subject
    started = now_iso()
    configure_ants_threads(config.omp_nthreads)
    scans = {"baseline": participant.baseline, "challenge": participant.challenge}
    sessions = tuple(scan.session for scan in scans.values())

    template_img = load_template(RESOLUTION_MM)
    space = Space(TEMPLATE_NAME, RESOLUTION_MM)
    staging = config.work_dir / f"sub-{subject}" / "staging"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    norm: Normalisation = runner.result("normalisation")
    coreg: NDArray[np.float64] = runner.result("coregistration")
    preproc: dict[str, dict[str, Path]] = {}
    results: dict[str, tuple[MotionEstimate, SessionTacs, SessionK2Prime, SessionFit]] = {}
    for role in ROLES:
        fit = runner.result(f"fit:{role}")
        if config.write_preproc:  # the resampled frames are not kept: write them now
            preproc[role] = write_preproc_outputs(
                staging,
                scans[role],
                role,
                runner.result(f"resample:{role}"),
                runner.result(f"motion:{role}"),
                coreg if role == "challenge" else None,
                norm,
                space,
                template_img.affine,
            )
        runner.forget(f"resample:{role}")
        results[role] = (
            runner.result(f"motion:{role}"),
            runner.result(f"tacs:{role}"),
            runner.result("k2prime")[role],
            fit,
        )
    atlas = load_atlas(config, template_img)
    qc = participant_qc(
        {
            role: SessionQcInputs(
                session=scans[role].session,
                motion=results[role][0],
                mean_mni=results[role][1].mean_mni,
                reference_coverage=results[role][1].reference_coverage,
                n_fitted=int(
                    np.count_nonzero(np.isin(results[role][3].fit_status, FIT_STATUS_FITTED))
                ),
                n_failed=int(np.count_nonzero(results[role][3].fit_status == FIT_STATUS_FAILED)),
            )
            for role in ROLES
        },
        norm,
        template_brain_mask(template_img),
        atlas.masks,
        REFERENCE_ROI,
    )
    if qc.status != "pass":
        LOGGER.warning("sub-%s: QC %s", subject, qc.summary())

    outputs_started = time.perf_counter()
    index = {
        role: write_session_outputs(
            staging, scans[role], *results[role], space, template_img.affine, atlas, config
        )
        | preproc.get(role, {})
        for role in ROLES
    }
    written = [path for files in index.values() for path in files.values()]
    if previous is not None:
        remove_outputs(config.output_dir, previous)
    publish(staging, config.output_dir, written)
    try:
        manifest = Manifest(
            subject=subject,
            version=__version__,
            run_key=key,
            inputs=inputs,
            options=dict(options),
            sessions={
                role: {
                    "session": scans[role].session,
                    **{k: v.as_posix() for k, v in files.items()},
                }
                for role, files in index.items()
            },
            files={p.as_posix(): (config.output_dir / p).stat().st_size for p in written},
            qc=qc.to_json(),
        )
        write_manifest(config.output_dir, manifest)
    except BaseException:
        # no complete-looking map may stay without its manifest (e.g. the disk filled up
        # while the manifest was written): take the published files back
        for rel in written:
            (config.output_dir / rel).unlink(missing_ok=True)
        raise
    outputs = sorted(manifest.files)

    timings = [
        *runner.timings,
        StageTiming("outputs", time.perf_counter() - outputs_started, False, peak_rss_mb()),
    ]
    report_started = time.perf_counter()
    report_path = config.output_dir / report_name(subject)
    normalisation_path = (
        "PET→T1w→MNI" if participant.t1w is not None else f"PET-only ({config.pet_normalisation})"
    )
    try:
        report = participant_report(
            participant,
            [(role, scans[role], *results[role]) for role in ROLES],
            template_img,
            space,
            atlas,
            normalisation_path,
            norm,
            outputs,
            replace(provenance(config, started), stage_timings=stage_timings_table(timings)),
            qc,
            coreg,
        )
        write_text(report_path, render_participant(report))
    except Exception as exc:  # the maps are published; the report failure is reported
        message = record_failure(participant, exc, REPORT_STAGE, config)
        return ParticipantOutcome(subject, "failed", message, sessions, tuple(outputs), qc=qc)
    report_rel = report_path.relative_to(config.output_dir).as_posix()
    manifest.files[report_rel] = report_path.stat().st_size
    write_manifest(config.output_dir, manifest)
    timings.append(
        StageTiming("report", time.perf_counter() - report_started, False, peak_rss_mb())
    )
    elapsed = time.perf_counter() - start
    LOGGER.info("sub-%s: report %s", subject, report_path)
    return ParticipantOutcome(
        subject,
        "success",
        "",
        sessions,
        tuple(sorted(manifest.files)),
        elapsed,
        tuple(timings),
        qc,
    )


__all__ = ["ParticipantOutcome", "input_hashes", "process_participant"]
