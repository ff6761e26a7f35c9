"""Crash files: everything needed to diagnose a failed participant, in one text file.

As fMRIPrep's crash files do, a failed participant leaves
``logs/crash-sub-<label>-<YYYYmmdd-HHMMSS>.txt`` with the error, the processing stage it
happened in (the :class:`~bids_app.pipelines.stages.StageRunner` stage), a hint that fits
the stage, ANTs' own output and command for registration failures, the input files with
their shapes, voxel sizes and orientations, the command line, the configuration, the
software versions and the traceback.
"""

from __future__ import annotations

import errno
import importlib.metadata
import json
import logging
import os
import platform
import sys
import time
import traceback
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_app import __version__
from bids_app.bidsio.layout import ParticipantInput
from bids_app.config import Config
from bids_app.errors import BidsAppError
from bids_app.outputs.io import write_text
from bids_app.outputs.names import crash_path
from bids_app.outputs.publish import describe_os_error
from bids_app.pipelines.stages import StageRunner
from bids_app.preproc import ITK_THREADS_ENV, AntsRegistrationError

LOGGER = logging.getLogger(__name__)

#: Packages whose versions go into crash files.
VERSIONED_PACKAGES = ("numpy", "scipy", "nibabel", "pandas", "antspyx", "pybids", "nilearn")
#: Stage of a failure before the stages were set up (input hashing, first image reads).
SETUP_STAGE = "set-up"
#: Stage of a failure after every stage finished (writing, publishing, manifest).
OUTPUT_STAGE = "outputs"
#: Stage of a failure while building the participant report (the maps are published).
REPORT_STAGE = "report"

_STAGE_HINTS: dict[str, str] = {
    "motion": (
        "Frame realignment of this session failed. Check that every frame has counts (an "
        "empty or truncated frame), that FrameTimesStart/FrameDuration match the image, and "
        "that the image is one dynamic PET acquisition."
    ),
    "means": (
        "The motion-corrected mean images could not be built. Check the frames for empty or "
        "non-finite data."
    ),
    "coregistration": (
        "The challenge session could not be aligned to the baseline session. Check that both "
        "sessions show the same head (the same participant), that their orientations and "
        "voxel sizes agree, and that neither field of view cuts the brain."
    ),
    "normalisation:t1w": (
        "Normalisation goes PET -> T1w -> template. Look at the T1w (shape, voxel size, "
        "orientation and intensities are in the crash file): an empty or nearly empty image, "
        "a field of view that misses part of the head, a flipped or rotated image (compare "
        "its orientation with the PET's), or the T1w of another participant. Fix or remove "
        "the T1w (without one the participant is normalised PET-only) and run the "
        "participant level again."
    ),
    "normalisation:pet": (
        "PET-only normalisation to the template failed. Check the PET orientation "
        "(a flipped or swapped axis), its voxel sizes (in mm, not cm), that the field of "
        "view covers the whole brain and that the early frames have counts. A T1w image "
        "(anat/*_T1w.nii.gz) makes normalisation more robust."
    ),
    "resample": (
        "Resampling the frames to the template failed: usually a transform file removed from "
        "the work directory during the run, or a full disk. Run again; if it persists, delete "
        "the participant's folder in the work directory."
    ),
    "tacs": (
        "The ROI time-activity curves could not be extracted. Check the normalisation overlay "
        "of an earlier run and, with --atlas-labels, that the atlas is on the template grid."
    ),
    "k2prime": (
        "k2' could not be estimated. Check the frame timing (FrameTimesStart, FrameDuration, "
        "in seconds) and the reference region (cerebellum) TAC: near-zero or negative counts "
        "there make the SRTM fit fail."
    ),
    "fit": (
        "The SRTM2 fit failed. Check the frame timing and the reference region (cerebellum) "
        "TAC; try --weights uniform if some frames have zero duration-weighted counts."
    ),
    SETUP_STAGE: (
        "Reading the inputs failed. Check that the input files are readable and were "
        "not changed or removed after the run started."
    ),
    REPORT_STAGE: (
        "The maps and tables were published, but the HTML report could not be built. Run the "
        "participant level again with the same --work-dir to retry the report (the computed "
        "stages are loaded from their checkpoints); if it fails again, the crash file's "
        "traceback names the figure or table that failed."
    ),
    OUTPUT_STAGE: (
        "Writing the outputs failed. Check the free space and permissions of OUTPUT_DIR and "
        "of the work directory."
    ),
}

_MESSAGE_HINTS: tuple[tuple[str, str], ...] = (
    (
        "Total Mass of the image was zero",
        "One of the registered images has no usable signal (empty, or intensities that sum to "
        "zero).",
    ),
    (
        "is empty",
        "An image has no usable signal (all zero or non-finite).",
    ),
    (
        "map outside",
        "The images do not overlap after initialisation: a field of view or orientation problem.",
    ),
    (
        "implausible",
        "The registration converged to an implausible result: orientation, field of view or "
        "a different head.",
    ),
)


def failure_hint(stage: str, exc: BaseException, has_t1w: bool) -> str:
    """What to look at for a failure in ``stage`` (and what the error itself suggests).

    Parameters
    ----------
    stage : str
        StageRunner stage name (``"normalisation"``, ``"motion:baseline"``, ...), or
        :data:`SETUP_STAGE` / :data:`OUTPUT_STAGE`.
    exc : BaseException
        The error.
    has_t1w : bool
        Whether the participant has a T1w (normalisation then goes through it).

    Returns
    -------
    str
        One or two sentences.
    """
    family = stage.split(":", 1)[0]
    if family == "normalisation":
        family = "normalisation:t1w" if has_t1w else "normalisation:pet"
    text = str(exc)
    if isinstance(exc, AntsRegistrationError):
        text += " " + " ".join(exc.output_tail)
    found = [hint for needle, hint in _MESSAGE_HINTS if needle in text]
    general = _STAGE_HINTS.get(
        family,
        "Check the inputs (in the crash file) and the participant log for the first warning.",
    )
    return " ".join([*found[:1], general])


def describe_image(path: Path, *, with_intensities: bool) -> str:
    """Shape, voxel size, orientation and data type of an image (and its intensities).

    Parameters
    ----------
    path : Path
        NIfTI file.
    with_intensities : bool
        Also read the data: range and non-zero fraction (for small 3-D images such as a T1w).

    Returns
    -------
    str
        One line; says so when the file cannot be read.
    """
    try:
        img = nib.load(path)
        if not isinstance(img, nib.spatialimages.SpatialImage):
            return f"not an image with a voxel grid ({type(img).__name__})"
        zooms = " x ".join(f"{z:g}" for z in img.header.get_zooms()[:3])
        axes = "".join(nib.aff2axcodes(img.affine))
        line = (
            f"shape {tuple(int(n) for n in img.shape)}, voxel size {zooms} mm, orientation "
            f"{axes}, data type {img.get_data_dtype()}"
        )
        if with_intensities:
            data = np.asarray(img.dataobj, dtype=np.float64)
            finite = data[np.isfinite(data)]
            if finite.size == 0:
                line += ", no finite voxels (EMPTY)"
            else:
                nonzero = 100.0 * np.count_nonzero(finite) / data.size
                line += (
                    f", intensities {finite.min():.4g} to {finite.max():.4g}, "
                    f"{nonzero:.1f} % non-zero voxels" + (" (EMPTY)" if nonzero == 0 else "")
                )
    except (OSError, ValueError, EOFError, nib.filebasedimages.ImageFileError) as exc:
        return f"cannot be read ({type(exc).__name__}: {exc})"
    return line


def library_versions() -> dict[str, str]:
    """bids_app, Python, platform and the main libraries' versions."""
    versions = {
        "bids_app": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _inputs_section(participant: ParticipantInput) -> list[str]:
    lines = []
    for role, scan in (("baseline", participant.baseline), ("challenge", participant.challenge)):
        lines.append(f"{role} PET (ses-{scan.session}): {scan.path}")
        lines.append(f"    {describe_image(scan.path, with_intensities=False)}")
        lines.append(
            f"    {scan.timing.n_frames} frames, {scan.timing.start_s[0]:g} to "
            f"{scan.timing.end_s[-1]:g} s"
        )
    if participant.t1w is None:
        lines.append("T1w: none (PET-only normalisation)")
    else:
        lines.append(f"T1w: {participant.t1w}")
        lines.append(f"    {describe_image(participant.t1w, with_intensities=True)}")
    return lines


def crash_report(
    participant: ParticipantInput, exc: BaseException, stage: str, config: Config
) -> str:
    """The text of a crash file (see the module docstring for its sections)."""
    hint = failure_hint(stage, exc, participant.t1w is not None)
    lines = [
        f"bids_app {__version__}: crash report of sub-{participant.subject}",
        f"time: {time.strftime('%Y-%m-%d %H:%M:%S %z')}",
        f"stage: {stage}",
        f"error: {type(exc).__name__}: {exc}",
        f"hint: {hint}",
        "",
    ]
    if isinstance(exc, AntsRegistrationError):
        lines += ["== antsRegistration: last lines of its own output ==", *exc.output_tail]
        if exc.log_path is not None:
            lines.append(f"(complete output: {exc.log_path})")
        lines += ["", "== antsRegistration: attempts and images ==", *exc.details, ""]
        lines += ["== antsRegistration: command (last attempt) ==", " ".join(exc.command), ""]
    lines += ["== inputs ==", *_inputs_section(participant), ""]
    lines += ["== command line ==", " ".join(config.command_line) or "(not recorded)", ""]
    lines += [
        "== configuration ==",
        config.to_json(),
        f"{ITK_THREADS_ENV}={os.environ.get(ITK_THREADS_ENV, '(not set)')}",
        "",
    ]
    lines += ["== versions ==", json.dumps(library_versions(), indent=2), ""]
    lines += [
        "== traceback ==",
        "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip(),
    ]
    return "\n".join(lines) + "\n"


def write_crash_file(
    participant: ParticipantInput, exc: BaseException, stage: str, config: Config
) -> Path | None:
    """Write ``logs/crash-sub-<label>-<time>.txt``; None (and a logged error) if that fails.

    Parameters
    ----------
    participant : ParticipantInput
        The failed participant.
    exc : BaseException
        The error (with its traceback).
    stage : str
        Where it happened (StageRunner stage name, :data:`SETUP_STAGE` or
        :data:`OUTPUT_STAGE`).
    config : Config
        The run configuration (written into the file).

    Returns
    -------
    Path or None
        The crash file. A second failure in the same second gets a numbered name.
    """
    label = time.strftime("%Y%m%d-%H%M%S")
    path = crash_path(config.output_dir, participant.subject, label)
    n = 1
    while path.exists():
        n += 1
        path = crash_path(config.output_dir, participant.subject, f"{label}-{n}")
    try:
        text = crash_report(participant, exc, stage, config)
        write_text(path, text)
    except OSError as error:
        LOGGER.error(
            "sub-%s: the crash file %s could not be written: %s", participant.subject, path, error
        )
        return None
    return path


def failure_stage(runner: StageRunner | None) -> str:
    """The stage a participant failed in: the runner's failed stage, else set-up or outputs.

    Parameters
    ----------
    runner : StageRunner or None
        The participant's runner; None when the failure came before it was built.
    """
    if runner is None:
        return SETUP_STAGE
    return runner.failed_stage or OUTPUT_STAGE


def record_failure(
    participant: ParticipantInput, exc: Exception, stage: str, config: Config
) -> str:
    """Log a participant failure with a hint, write its crash file, return the summary message.

    Parameters
    ----------
    participant : ParticipantInput
        The failed participant.
    exc : Exception
        The error.
    stage : str
        Where it happened (:func:`failure_stage`).
    config : Config
        The run configuration.

    Returns
    -------
    str
        One line for ``logs/summary.tsv``: the stage, the error and the crash file.
    """
    subject = participant.subject
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        error = describe_os_error(exc, config.work_dir, f"processing sub-{subject}")
    elif isinstance(exc, BidsAppError):
        error = str(exc)
    else:
        error = f"unexpected {type(exc).__name__}: {exc}"
    error = " ".join(error.split())
    hint = failure_hint(stage, exc, participant.t1w is not None)
    LOGGER.error("sub-%s failed at stage %s: %s", subject, stage, error)
    LOGGER.error("sub-%s: what to check: %s", subject, hint)
    LOGGER.debug(
        "sub-%s traceback:\n%s",
        subject,
        "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip(),
    )
    path = write_crash_file(participant, exc, stage, config)
    if path is None:
        return f"{stage}: {error}"
    rel = path.relative_to(config.output_dir).as_posix()
    LOGGER.error("sub-%s: crash file %s", subject, path)
    return f"{stage}: {error} (details: {rel})"


__all__ = [
    "OUTPUT_STAGE",
    "REPORT_STAGE",
    "SETUP_STAGE",
    "crash_report",
    "describe_image",
    "failure_hint",
    "failure_stage",
    "library_versions",
    "record_failure",
    "write_crash_file",
]
