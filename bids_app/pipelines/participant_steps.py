"""One participant, end to end: motion, co-registration, normalisation, ROIs, SRTM2, report.

Every output is first written to a staging folder inside ``--work-dir`` and then moved into
OUTPUT_DIR file by file with an atomic rename; a manifest (``logs/sub-<label>_outputs.json``)
is written last, so a participant counts as complete only when all of its files are in place.
A run killed half-way leaves no partial file under OUTPUT_DIR and is redone on the next run.
"""

from __future__ import annotations

import errno
import json
import logging
import re
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from bids_app import __version__
from bids_app.bidsio.derivatives import (
    derivative_name,
    participant_dir,
    write_json,
    write_nifti,
    write_tsv,
)
from bids_app.bidsio.layout import ParticipantInput, PetScan
from bids_app.config import Config
from bids_app.errors import BidsAppError, InputError
from bids_app.kinetics import estimate_k2prime, fit_srtm2
from bids_app.kinetics.timing import FrameTiming
from bids_app.log import log_to_file, step
from bids_app.pipelines.common import (
    RESOLUTION_MM,
    load_atlas,
    now_iso,
    provenance,
    publish,
)
from bids_app.preproc import configure_ants_threads
from bids_app.preproc.motion import MotionEstimate, estimate_motion
from bids_app.preproc.registration import (
    Normalisation,
    coregister_sessions,
    motion_corrected_mean,
    normalise_to_template,
    resample_to_template,
)
from bids_app.report.data import ParticipantReport, SessionReport
from bids_app.report.render import render_participant, write_html
from bids_app.roi.atlas import RoiAtlas
from bids_app.roi.extract import extract_tacs, reference_coverage
from bids_app.roi.pet_template import load_pet_template
from bids_app.roi.template import TEMPLATE_NAME, load_template

LOGGER = logging.getLogger(__name__)

REFERENCE_ROI = "cerebellum"
K2PRIME_ROI = "striatum"
MIN_REFERENCE_COVERAGE = 0.5
MIN_REFERENCE_CV = 0.05
MAP_UNITS = {"BPND": "unitless", "R1": "unitless", "k2a": "1/min"}
FIT_STATUS_CODES = {
    0: "outside the fit mask",
    1: "fit valid",
    2: "best basis at the k2a range bound (valid but flagged)",
    3: "fit failed (NaN in the maps)",
}

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


@dataclass
class SessionResult:
    """Everything computed for one session (arrays on the template grid)."""

    role: Literal["baseline", "challenge"]
    scan: PetScan
    motion: MotionEstimate
    tacs: pd.DataFrame
    kinpar: pd.DataFrame
    fitted: dict[str, NDArray[np.float64]]
    maps: dict[str, NDArray[np.float32]]
    fit_status: NDArray[np.uint8]
    k2prime: float
    k2prime_method: str
    mean_mni: NDArray[np.float32]
    warnings: list[str] = field(default_factory=list)


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
        ``success``, ``skipped`` (outputs already complete) or ``failed`` with the reason.
    """
    subject = participant.subject
    sessions = (participant.baseline.session, participant.challenge.session)
    log_file = config.output_dir / "logs" / f"sub-{subject}_{run_id}.log"
    start = time.perf_counter()
    with log_to_file(log_file, config.verbosity):
        if not config.overwrite and outputs_complete(config.output_dir, subject):
            LOGGER.info("sub-%s: outputs complete, skipped (use --overwrite to redo)", subject)
            return ParticipantOutcome(subject, "skipped", "outputs already complete", sessions)
        try:
            outputs = _process(participant, config)
        except BidsAppError as exc:
            LOGGER.error("sub-%s failed: %s", subject, exc)
            return ParticipantOutcome(subject, "failed", str(exc), sessions)
        except Exception as exc:  # one participant's crash must not stop the others
            if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                message = (
                    f"No space left on device while writing {exc.filename}; free some space "
                    "or point --work-dir and OUTPUT_DIR to a larger disk, then run again"
                )
                LOGGER.error("sub-%s failed: %s", subject, message)
            else:
                LOGGER.error("sub-%s failed unexpectedly:\n%s", subject, traceback.format_exc())
                message = f"unexpected {type(exc).__name__}: {exc} (traceback in {log_file})"
            return ParticipantOutcome(subject, "failed", message, sessions)
    elapsed = time.perf_counter() - start
    return ParticipantOutcome(subject, "success", "", sessions, tuple(outputs), elapsed)


def outputs_complete(output_dir: Path, subject: str) -> bool:
    """True when the manifest of ``subject`` exists and every file it lists is in place."""
    manifest = manifest_path(output_dir, subject)
    if not manifest.is_file():
        return False
    try:
        listed = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError):
        return False
    return all(
        (output_dir / rel).is_file() and (output_dir / rel).stat().st_size == size
        for rel, size in listed.items()
    )


def manifest_path(output_dir: Path, subject: str) -> Path:
    """``OUTPUT_DIR/logs/sub-<label>_outputs.json``."""
    return output_dir / "logs" / f"sub-{subject}_outputs.json"


def _process(participant: ParticipantInput, config: Config) -> list[str]:
    subject = participant.subject
    started = now_iso()
    work = config.work_dir / f"sub-{subject}"
    staging = work / "staging"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    configure_ants_threads(config.omp_nthreads)
    template_img = load_template(RESOLUTION_MM)
    atlas = load_atlas(config, template_img)
    scans = (("baseline", participant.baseline), ("challenge", participant.challenge))

    images: dict[str, nib.Nifti1Image] = {}
    motions: dict[str, MotionEstimate] = {}
    means: dict[str, nib.Nifti1Image] = {}
    for role, scan in scans:
        images[role] = nib.load(scan.path)
        with step(LOGGER, f"sub-{subject} ses-{scan.session}: motion correction"):
            motions[role] = estimate_motion(
                images[role],
                scan.timing,
                work / f"ses-{scan.session}" / "motion",
                n_threads=config.omp_nthreads,
            )
        means[role] = motion_corrected_mean(images[role], motions[role], frames="all")
    # An early (perfusion-weighted) mean has the grey/white contrast PET-only normalisation
    # needs; a whole-scan or late raclopride mean is dominated by the striatum.
    early_mean = motion_corrected_mean(images["baseline"], motions["baseline"], frames="early")
    with step(LOGGER, f"sub-{subject}: co-registration challenge -> baseline"):
        coreg = coregister_sessions(
            means["challenge"], means["baseline"], work / "coreg", n_threads=config.omp_nthreads
        )
    t1w_img = nib.load(participant.t1w) if participant.t1w is not None else None
    normalisation_path = (
        "PET→T1w→MNI" if t1w_img is not None else f"PET-only ({config.pet_normalisation})"
    )
    with step(LOGGER, f"sub-{subject}: normalisation to {TEMPLATE_NAME} ({normalisation_path})"):
        norm = normalise_to_template(
            means["baseline"] if t1w_img is not None else early_mean,
            template_img,
            work / "norm",
            t1w=t1w_img,
            pet_template=load_pet_template(RESOLUTION_MM),
            pet_deformable=config.pet_normalisation == "syn",
            n_threads=config.omp_nthreads,
        )

    results: list[SessionResult] = []
    for role, scan in scans:
        with step(LOGGER, f"sub-{subject} ses-{scan.session}: resampling frames to MNI"):
            mni = resample_to_template(
                images[role],
                motions[role],
                norm,
                template_img,
                session_transform=coreg if role == "challenge" else None,
                work_dir=work / f"ses-{scan.session}" / "resample",
                n_threads=config.omp_nthreads,
            )
        data = np.asarray(mni.dataobj, dtype=np.float32)
        del mni
        with step(LOGGER, f"sub-{subject} ses-{scan.session}: SRTM2 fits"):
            results.append(_model_session(role, scan, motions[role], data, atlas, config))
        del data

    index = {r.role: _write_session(staging, r, template_img, atlas, config) for r in results}
    written = [path for files in index.values() for path in files.values()]
    report_rel = Path(f"sub-{subject}.html")
    report = _participant_report(
        participant,
        results,
        template_img,
        atlas,
        normalisation_path,
        norm,
        written,
        config,
        started,
    )
    write_html(render_participant(report), staging / report_rel)
    written.append(report_rel)
    sessions = {
        r.role: {"session": r.scan.session, **{k: v.as_posix() for k, v in index[r.role].items()}}
        for r in results
    }
    return _publish(staging, config.output_dir, subject, written, sessions)


def _weights(config: Config) -> str | None:
    return None if config.weights == "duration" else "uniform"


def _model_session(
    role: Literal["baseline", "challenge"],
    scan: PetScan,
    motion: MotionEstimate,
    data: NDArray[np.float32],
    atlas: RoiAtlas,
    config: Config,
) -> SessionResult:
    """TACs, k2', voxelwise SRTM2 and ROI SRTM2 for one session on the template grid."""
    where = f"sub-{scan.subject} ses-{scan.session}"
    timing: FrameTiming = scan.timing
    coverage = reference_coverage(data, atlas.masks[REFERENCE_ROI])
    if coverage < MIN_REFERENCE_COVERAGE:
        msg = (
            f"{where}: only {100 * coverage:.0f}% of the cerebellar reference region has PET "
            f"signal after normalisation; expected at least {100 * MIN_REFERENCE_COVERAGE:.0f}%. "
            f"The field of view of {scan.path.name} may miss the cerebellum, or the "
            "normalisation failed (check the registration overlay in the report)."
        )
        raise InputError(msg)
    tacs = extract_tacs(data, atlas.masks, timing.start_s, timing.end_s)
    ref = tacs[REFERENCE_ROI].to_numpy(dtype=np.float64)
    if not _reference_is_usable(ref, timing):
        msg = (
            f"{where}: the cerebellar reference TAC of {scan.path.name} is flat, negative or "
            "not finite; a reference-tissue model needs a positive reference curve. Check the "
            "image units and the field of view."
        )
        raise InputError(msg)
    weights = _weights(config)
    start_s, end_s = _times_from_injection(scan)
    mask = atlas.analysis_mask
    voxels = data[mask].T  # (n_frames, n_voxels)
    if config.k2prime_method == "roi":
        k2p = estimate_k2prime(
            start_s, end_s, ref, tacs[K2PRIME_ROI].to_numpy(), method="roi", weights=weights
        )
        k2p_method = f"SRTM fit of the {K2PRIME_ROI} TAC"
    else:
        k2p = estimate_k2prime(start_s, end_s, ref, voxels, method="voxel_median", weights=weights)
        k2p_method = "median k2' of voxelwise SRTM over voxels with BPND > 0"
    k2prime = float(k2p.k2prime)
    if not np.isfinite(k2prime) or k2prime <= 0:
        msg = (
            f"{where}: k2' could not be estimated ({k2p_method} gave {k2prime}); the striatal "
            "and reference TACs may be too noisy or mislabelled."
        )
        raise InputError(msg)
    fit = fit_srtm2(
        start_s,
        end_s,
        ref,
        voxels,
        k2prime,
        weights=weights,
        n_basis=config.n_basis,
        k2a_range_per_min=config.k2a_range_per_min,
    )
    maps: dict[str, NDArray[np.float32]] = {}
    valid = np.asarray(fit.status, dtype=bool)
    for name, values in (("BPND", fit.bp_nd), ("R1", fit.r1), ("k2a", fit.k2a)):
        volume = np.full(atlas.shape, np.nan, dtype=np.float32)
        volume[mask] = np.where(valid, values, np.nan)
        maps[name] = volume
    status = np.zeros(atlas.shape, dtype=np.uint8)
    at_bound = np.asarray(fit.at_bound, dtype=bool)
    status[mask] = np.where(valid, np.where(at_bound, 2, 1), 3)
    n_failed = int(np.count_nonzero(~valid))
    warnings: list[str] = []
    if n_failed:
        LOGGER.warning("%s: %d of %d voxel fits failed (NaN)", where, n_failed, valid.size)
        warnings.append(f"{n_failed} of {valid.size} voxel fits failed and are NaN")
    kinpar, fitted = _roi_fits(tacs, (start_s, end_s), ref, k2prime, weights, atlas)
    return SessionResult(
        role=role,
        scan=scan,
        motion=motion,
        tacs=tacs,
        kinpar=kinpar,
        fitted=fitted,
        maps=maps,
        fit_status=status,
        k2prime=k2prime,
        k2prime_method=k2p_method,
        mean_mni=_frame_mean(data),
        warnings=warnings,
    )


def _reference_is_usable(ref: NDArray[np.float64], timing: FrameTiming) -> bool:
    """A reference TAC must be finite, positive on the whole and change over time.

    A time-constant curve (duration-weighted coefficient of variation below
    :data:`MIN_REFERENCE_CV`) carries no kinetics: SRTM would return a meaningless k2'.
    """
    if not np.all(np.isfinite(ref)):
        return False
    weights = timing.duration_min
    mean = float(np.average(ref, weights=weights))
    if mean <= 0 or np.trapezoid(np.clip(ref, 0, None), timing.mid_min) <= 0:
        return False
    cv = float(np.sqrt(np.average((ref - mean) ** 2, weights=weights))) / mean
    return cv >= MIN_REFERENCE_CV


def _frame_mean(data: NDArray[np.float32]) -> NDArray[np.float32]:
    """Mean over frames; NaN where no frame has data (outside the field of view)."""
    finite = np.isfinite(data)
    count = finite.sum(axis=3)
    total = np.where(finite, data, 0).sum(axis=3, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan).astype(np.float32)


def _roi_fits(
    tacs: pd.DataFrame,
    times_s: tuple[NDArray[np.float64], NDArray[np.float64]],
    ref: NDArray[np.float64],
    k2prime: float,
    weights: str | None,
    atlas: RoiAtlas,
) -> tuple[pd.DataFrame, dict[str, NDArray[np.float64]]]:
    rows = []
    fitted: dict[str, NDArray[np.float64]] = {}
    for roi in atlas.masks:
        if roi == REFERENCE_ROI:
            continue
        fit = fit_srtm2(*times_s, ref, tacs[roi].to_numpy(), k2prime, weights=weights)
        ok = bool(np.all(fit.status))
        rows.append(
            {
                "roi": roi,
                "BPND": float(fit.bp_nd) if ok else np.nan,
                "R1": float(fit.r1) if ok else np.nan,
                "k2a": float(fit.k2a) if ok else np.nan,
                "k2prime": k2prime,
            }
        )
        fitted[roi] = np.asarray(fit.fitted, dtype=np.float64)
    return pd.DataFrame(rows, columns=["roi", "BPND", "R1", "k2a", "k2prime"]), fitted


def _times_from_injection(scan: PetScan) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Frame bounds in seconds from the injection (kinetic models start at the injection).

    PET-BIDS frame times are relative to ``TimeZero``; ``InjectionStart`` is the injection time
    on the same clock (usually 0).
    """
    injection_s = scan.metadata.get("InjectionStart", 0)
    if not isinstance(injection_s, (int, float)) or isinstance(injection_s, bool):
        injection_s = 0.0
    start_s = scan.timing.start_s - float(injection_s)
    end_s = scan.timing.end_s - float(injection_s)
    if start_s[0] < 0:
        msg = (
            f"sub-{scan.subject} ses-{scan.session}: the first frame of {scan.path.name} starts "
            f"{-start_s[0]:g} s before the injection (InjectionStart={injection_s:g} s); "
            "reference-tissue models need frames from the injection on. Check FrameTimesStart "
            "and InjectionStart in the sidecar."
        )
        raise InputError(msg)
    return start_s, end_s


def _write_session(
    staging: Path,
    result: SessionResult,
    template_img: nib.Nifti1Image,
    atlas: RoiAtlas,
    config: Config,
) -> dict[str, Path]:
    """Write one session's derivatives under ``staging``.

    Returns
    -------
    dict
        Output kind (``confounds``, ``BPND``, ``tacs``, ..., sidecars as ``<kind>_json``) ->
        path relative to ``staging``.
    """
    scan = result.scan
    source = {"sub": scan.subject, "ses": scan.session, **scan.entities}
    folder = participant_dir(staging, scan.subject, scan.session)
    written: dict[str, Path] = {}

    def out(kind: str, name: str) -> Path:
        path = folder / name
        written[kind] = path.relative_to(staging)
        return path

    def sidecar(kind: str, name: str) -> Path:
        return out(f"{kind}_json", re.sub(r"\.(tsv|nii\.gz)$", ".json", name))

    name = derivative_name(source, "timeseries", ".tsv", desc="confounds")
    confounds = result.motion.confounds
    write_tsv(out("confounds", name), confounds)
    write_json(sidecar("confounds", name), _confounds_sidecar(result, list(confounds)))

    space = {"space": TEMPLATE_NAME, "res": str(RESOLUTION_MM)}
    affine = template_img.affine
    for meas, volume in result.maps.items():
        name = derivative_name(source, "mimap", ".nii.gz", model="SRTM2", meas=meas, **space)
        write_nifti(out(meas, name), _float_image(volume, affine))
        write_json(sidecar(meas, name), _map_sidecar(result, meas, atlas, config))
    name = derivative_name(source, "mask", ".nii.gz", model="SRTM2", desc="fitstatus", **space)
    status_img = nib.Nifti1Image(result.fit_status, affine)
    status_img.header.set_data_dtype(np.uint8)
    write_nifti(out("fitstatus", name), status_img)
    write_json(
        sidecar("fitstatus", name),
        {"Description": "SRTM2 voxel fit status", "Levels": FIT_STATUS_CODES},
    )

    name = derivative_name(source, "tacs", ".tsv", seg=atlas.name, desc="preproc")
    write_tsv(out("tacs", name), result.tacs)
    write_json(sidecar("tacs", name), _tacs_sidecar(result, atlas))

    name = derivative_name(source, "kinpar", ".tsv", model="SRTM2")
    write_tsv(out("kinpar", name), result.kinpar)
    write_json(sidecar("kinpar", name), _kinpar_sidecar(result, config))
    return written


def _float_image(volume: NDArray[np.float32], affine: NDArray[np.float64]) -> nib.Nifti1Image:
    img = nib.Nifti1Image(volume.astype(np.float32), affine)
    img.header.set_data_dtype(np.float32)
    img.header.set_xyzt_units("mm")
    img.header.set_qform(affine, code=4)
    img.header.set_sform(affine, code=4)
    return img


def _basis_settings(config: Config) -> dict[str, object]:
    lo, hi = config.k2a_range_per_min
    return {
        "Method": "basis functions (Gunn et al. 1997; SRTM2 form of Wu & Carson 2002)",
        "NumberOfBasisFunctions": config.n_basis,
        "k2aRange": [lo, hi],
        "k2aRangeUnits": "1/min",
        "Spacing": "logarithmic",
    }


def _map_sidecar(
    result: SessionResult, meas: str, atlas: RoiAtlas, config: Config
) -> dict[str, object]:
    return {
        "ModelName": "SRTM2",
        "Measure": meas,
        "Units": MAP_UNITS[meas],
        "ReferenceRegion": REFERENCE_ROI,
        "Atlas": atlas.name,
        "k2prime": result.k2prime,
        "k2primeUnits": "1/min",
        "k2primeMethod": result.k2prime_method,
        "BasisFunctions": _basis_settings(config),
        "FitWeights": config.weights,
        "ModelSampling": "model averaged over each frame on a fine time grid",
        "SpatialReference": TEMPLATE_NAME,
        "Resolution": f"{RESOLUTION_MM} mm isotropic",
        "Smoothing": "none (smoothing belongs to the group level)",
        "MissingValues": "NaN outside the fit mask and where the fit failed",
        "Sources": [f"bids:raw:{_bids_rel(result.scan)}"],
        "SoftwareVersion": __version__,
        "RandomSeed": config.seed,
        "Threads": config.omp_nthreads,
    }


def _confounds_sidecar(result: SessionResult, columns: list[str]) -> dict[str, object]:
    described = {
        "trans_x": ("Translation along x (left-right)", "mm"),
        "trans_y": ("Translation along y (posterior-anterior)", "mm"),
        "trans_z": ("Translation along z (inferior-superior)", "mm"),
        "rot_x": ("Rotation about x", "rad"),
        "rot_y": ("Rotation about y", "rad"),
        "rot_z": ("Rotation about z", "rad"),
        "framewise_displacement": (
            "Framewise displacement (Power et al. 2012; rotations on a 50 mm sphere)",
            "mm",
        ),
    }
    payload: dict[str, object] = {
        col: {"Description": described[col][0], "Units": described[col][1]}
        for col in columns
        if col in described
    }
    motion = result.motion
    payload["RotationCentre"] = {
        "Description": "Centre of the rotations (the motion reference's centre of mass); "
        "each frame's transform maps reference-space points x to frame-space points "
        "R (x - c) + c + t, with R = Rz Ry Rx",
        "Value": [float(v) for v in motion.centre_mm],
        "Units": "mm",
    }
    payload["ReferenceFrames"] = [int(i) for i in motion.reference_frames]
    payload["Sources"] = [f"bids:raw:{_bids_rel(result.scan)}"]
    return payload


def _tacs_sidecar(result: SessionResult, atlas: RoiAtlas) -> dict[str, object]:
    return {
        "Units": result.scan.units,
        "frame_start": {"Description": "Frame start relative to TimeZero", "Units": "s"},
        "frame_end": {"Description": "Frame end relative to TimeZero", "Units": "s"},
        "ReferenceRegion": REFERENCE_ROI,
        "Atlas": atlas.name,
        "Regions": {
            name: {
                "Description": atlas.descriptions.get(name, ""),
                "NumberOfVoxels": int(np.count_nonzero(mask)),
            }
            for name, mask in atlas.masks.items()
        },
        "SpatialReference": TEMPLATE_NAME,
        "Sources": [f"bids:raw:{_bids_rel(result.scan)}"],
    }


def _kinpar_sidecar(result: SessionResult, config: Config) -> dict[str, object]:
    return {
        "ModelName": "SRTM2",
        "Method": "bounded non-linear least squares on ROI TACs, k2' fixed",
        "ReferenceRegion": REFERENCE_ROI,
        "k2primeMethod": result.k2prime_method,
        "FitWeights": config.weights,
        "BPND": {"Description": "Non-displaceable binding potential", "Units": "unitless"},
        "R1": {"Description": "Relative delivery K1/K1'", "Units": "unitless"},
        "k2a": {"Description": "Apparent efflux rate k2/(1+BPND)", "Units": "1/min"},
        "k2prime": {"Description": "Reference-region efflux rate (fixed)", "Units": "1/min"},
    }


def _bids_rel(scan: PetScan) -> str:
    parts = scan.path.parts
    idx = max(i for i, part in enumerate(parts) if part == f"sub-{scan.subject}")
    return "/".join(parts[idx:])


def _participant_report(
    participant: ParticipantInput,
    results: list[SessionResult],
    template_img: nib.Nifti1Image,
    atlas: RoiAtlas,
    normalisation_path: str,
    norm: Normalisation,
    written: list[Path],
    config: Config,
    started: str,
) -> ParticipantReport:
    template = np.asarray(template_img.dataobj, dtype=np.float64)
    quality = {
        "correlation with template": norm.correlation,
        "brain-mask Dice": norm.brain_overlap,
        "affine determinant": norm.affine_determinant,
    }
    shown = ("cerebellum", "dorsal_striatum", "ventral_striatum")
    sessions = [
        SessionReport(
            session=r.scan.session,
            role=r.role,
            pet_file=_bids_rel(r.scan),
            n_frames=r.scan.timing.n_frames,
            frame_start_s=r.scan.timing.start_s,
            frame_end_s=r.scan.timing.end_s,
            confounds=r.motion.confounds,
            template=template,
            affine=template_img.affine,
            mean_pet_mni=r.mean_mni.astype(np.float64),
            roi_masks={k: atlas.masks[k] for k in shown if k in atlas.masks},
            tacs=r.tacs,
            fitted=r.fitted,
            kinpar=r.kinpar,
            k2prime=r.k2prime,
            k2prime_method=r.k2prime_method,
            bp_map=r.maps["BPND"].astype(np.float64),
            r1_map=r.maps["R1"].astype(np.float64),
            n_fit_voxels=int(np.count_nonzero(r.fit_status)),
            n_failed=int(np.count_nonzero(r.fit_status == 3)),
            n_at_bound=int(np.count_nonzero(r.fit_status == 2)),
            registration_quality={k: float(v) for k, v in quality.items()},
            warnings=r.warnings,
            tac_units=r.scan.units,
        )
        for r in results
    ]
    return ParticipantReport(
        participant_id=participant.subject,
        sessions=sessions,
        normalisation=normalisation_path,
        template_name=TEMPLATE_NAME,
        atlas_name=atlas.name,
        outputs=[str(p) for p in written],
        warnings=[w for r in results for w in r.warnings],
        errors=[],
        provenance=provenance(config, started),
    )


def _publish(
    staging: Path,
    output_dir: Path,
    subject: str,
    written: list[Path],
    sessions: dict[str, dict[str, str]],
) -> list[str]:
    """Move staged files into OUTPUT_DIR (atomic renames), then write the manifest.

    The manifest lists every file with its size (the completeness check of re-runs) and, per
    role (baseline/challenge), the session label and its output files (what the group level
    reads).
    """
    sizes = {rel.as_posix(): (staging / rel).stat().st_size for rel in written}
    publish(staging, output_dir, written)
    write_json(
        manifest_path(output_dir, subject),
        {
            "participant_id": f"sub-{subject}",
            "version": __version__,
            "sessions": sessions,
            "files": sizes,
        },
    )
    return sorted(sizes)
