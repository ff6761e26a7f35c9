"""User-facing message templates (the MRIQC pattern).

Every problem the input checks can report is worded here, once, so that messages stay
consistent: *where* (participant/session, file), *what* (field), *expected vs found*, and *how to
fix it*. Each function returns one line without a trailing full stop being required by callers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path


def where(subject: str | None = None, session: str | None = None) -> str:
    """Return the ``"sub-01 ses-nal"`` prefix of a message (empty parts left out)."""
    parts = []
    if subject is not None:
        parts.append(f"sub-{subject}")
    if session is not None:
        parts.append(f"ses-{session}")
    return " ".join(parts) if parts else "dataset"


def _join(items: Iterable[str]) -> str:
    items = list(items)
    return ", ".join(items) if items else "(none)"


# ----------------------------------------------------------------------------- dataset level
def bids_dir_missing(bids_dir: Path) -> str:
    """BIDS root does not exist or is not a directory."""
    return (
        f"BIDS directory {bids_dir} does not exist or is not a directory. "
        "Pass the path of the dataset root (the folder holding dataset_description.json)."
    )


def dataset_description_missing(bids_dir: Path) -> str:
    """No ``dataset_description.json`` at the root."""
    return (
        f"dataset: dataset_description.json not found in {bids_dir}. Is this the root of a BIDS "
        'dataset? Create it with at least {"Name": "...", "BIDSVersion": "1.9.0"}.'
    )


def dataset_description_field(path: Path, field: str, found: object) -> str:
    """A required ``dataset_description.json`` field is missing or not a non-empty string."""
    got = "missing" if found is None else f"{found!r}"
    return (
        f"dataset: {path.name} field {field} must be a non-empty string; found {got}. "
        f"Fix the JSON ({path})."
    )


def invalid_json(prefix: str, path: Path, error: str) -> str:
    """A JSON file cannot be parsed."""
    return (
        f"{prefix}: {path.name} is not valid JSON ({error}). Fix the JSON syntax ({path}); "
        "e.g. check commas, quotes and brackets with `python -m json.tool`."
    )


def json_not_object(prefix: str, path: Path, found_type: str) -> str:
    """A sidecar holds valid JSON that is not an object."""
    return (
        f"{prefix}: {path.name} must hold a JSON object ({{...}}); found a {found_type}. "
        f"Fix the sidecar JSON ({path})."
    )


# ----------------------------------------------------------------------------- participants
def unknown_participants(missing: Sequence[str], available: Sequence[str]) -> str:
    """Requested participant labels that are not in the dataset."""
    return (
        f"participant label(s) not found in the dataset: {_join(missing)}. "
        f"Available: {_join(available)}. Fix --participant-label (a leading 'sub-' is optional)."
    )


def no_participants(bids_dir: Path) -> str:
    """The dataset has no ``sub-*`` folders with data."""
    return (
        f"dataset: no participants (sub-<label> folders) found in {bids_dir}. "
        "Check that BIDS_DIR is the dataset root."
    )


# ----------------------------------------------------------------------------- sessions
def session_flags_incomplete(given: str, missing: str) -> str:
    """Only one of the two session flags was passed."""
    return (
        f"--{given}-session was given without --{missing}-session; pass both "
        "(e.g. --baseline-session sal --challenge-session nal)."
    )


def session_flags_equal(label: str) -> str:
    """Baseline and challenge sessions are the same label."""
    return (
        f"--baseline-session and --challenge-session are both '{label}'; they must name two "
        "different sessions."
    )


def ambiguous_sessions(sessions_by_subject: Mapping[str, Sequence[str]], reason: str) -> str:
    """Cannot tell which session is baseline and which is challenge."""
    found = "; ".join(
        f"sub-{sub}: {_join(sorted(ses)) if ses else '(no sessions)'}"
        for sub, ses in sorted(sessions_by_subject.items())
    )
    all_ses = sorted({s for ses in sessions_by_subject.values() for s in ses})
    example = (
        f"--baseline-session {all_ses[0]} --challenge-session {all_ses[1]}"
        if len(all_ses) >= 2
        else "--baseline-session <label> --challenge-session <label>"
    )
    return (
        f"cannot tell which session is baseline and which is challenge ({reason}). "
        f"Sessions found: {found}. Pass the labels, e.g. {example}, or name the sessions "
        "ses-sal/ses-nal, or add a 'condition' column (baseline/challenge) to "
        "sub-<label>_sessions.tsv."
    )


def missing_session(subject: str, session: str, role: str, available: Sequence[str]) -> str:
    """A selected participant lacks the baseline or the challenge session."""
    return (
        f"{where(subject)}: {role} session ses-{session} not found (sessions present: "
        f"{_join(sorted(available))}). Add the session, choose other labels with "
        f"--{role}-session, or leave the participant out with --participant-label."
    )


# ----------------------------------------------------------------------------- PET files
def no_pet(prefix: str, folder: Path) -> str:
    """No ``*_pet.nii[.gz]`` or ``*_pet.json`` in a session."""
    return (
        f"{prefix}: no PET scan (*_pet.nii.gz + *_pet.json) found in {folder}. "
        "Add the scan or leave the participant out with --participant-label."
    )


def several_pet(prefix: str, names: Sequence[str], filters: Mapping[str, str]) -> str:
    """More than one PET scan remains in a session after filtering."""
    how = f" after the filters {dict(filters)}" if filters else ""
    return (
        f"{prefix}: {len(names)} PET scans found{how} ({_join(names)}); exactly one is needed. "
        "Select one with a PET entity filter, e.g. pet_filters={'rec': '<label>'} "
        "(the entities of the names above: trc, rec, run, task)."
    )


def missing_image(prefix: str, sidecar: Path, expected: Path) -> str:
    """A PET sidecar without its image file."""
    return (
        f"{prefix}: PET image file missing: {expected.name} not found next to {sidecar.name}. "
        f"Add the NIfTI image ({expected}) or remove the orphan sidecar."
    )


def missing_sidecar(prefix: str, image: Path, expected: Path) -> str:
    """A PET image without its JSON sidecar."""
    return (
        f"{prefix}: PET sidecar missing: {expected.name} not found for {image.name}. "
        f"Create the JSON sidecar ({expected}) with the required PET-BIDS fields."
    )


# ----------------------------------------------------------------------------- sidecar fields
def missing_field(prefix: str, field: str, sidecar: Path) -> str:
    """A REQUIRED PET-BIDS field is absent."""
    return (
        f"{prefix}: required PET-BIDS field {field} is missing from {sidecar.name}. "
        f"Add it to the sidecar JSON ({sidecar})."
    )


def wrong_type(prefix: str, field: str, expected: str, found: object, sidecar: Path) -> str:
    """A sidecar field has the wrong JSON type."""
    shown = repr(found)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return (
        f"{prefix}: {field} must be {expected}; found {shown} ({type(found).__name__}). "
        f"Fix the sidecar JSON ({sidecar})."
    )


def bad_value(
    prefix: str, field: str, allowed: Sequence[str], found: object, sidecar: Path
) -> str:
    """A sidecar field's value is not one of the allowed ones."""
    return (
        f"{prefix}: {field} must be one of {_join(allowed)}; found {found!r}. "
        f"Fix the sidecar JSON ({sidecar})."
    )


def bad_time_of_day(prefix: str, field: str, found: object, sidecar: Path) -> str:
    """A clock time (``TimeZero``) not in ``hh:mm:ss`` format."""
    return (
        f"{prefix}: {field} must be a clock time 'hh:mm:ss' (e.g. '13:04:42'); found {found!r}. "
        f"Fix the sidecar JSON ({sidecar})."
    )


def timing_length_mismatch(prefix: str, n_start: int, n_duration: int, sidecar: Path) -> str:
    """``FrameTimesStart`` and ``FrameDuration`` differ in length."""
    return (
        f"{prefix}: FrameTimesStart has {n_start} entries but FrameDuration has {n_duration}; "
        f"they must have one entry per frame. Fix the sidecar JSON ({sidecar})."
    )


def frame_count_mismatch(
    prefix: str, field: str, n_entries: int, image_name: str, n_frames: int, sidecar: Path
) -> str:
    """A timing array's length differs from the image's number of volumes."""
    return (
        f"{prefix}: {field} has {n_entries} entries but {image_name} has {n_frames} frames. "
        f"Fix the sidecar JSON ({sidecar})."
    )


def nonfinite_timing(prefix: str, field: str, index: int, sidecar: Path) -> str:
    """A timing entry is NaN/Inf (can come from a non-standard JSON writer)."""
    return (
        f"{prefix}: {field} entry {index} is not a finite number. Fix the sidecar JSON "
        f"({sidecar})."
    )


def nonpositive_duration(prefix: str, index: int, value: float, sidecar: Path) -> str:
    """A frame duration is zero or negative."""
    return (
        f"{prefix}: FrameDuration must be positive (seconds); frame {index} has {value:g}. "
        f"Fix the sidecar JSON ({sidecar})."
    )


def unsorted_frames(prefix: str, index: int, prev: float, value: float, sidecar: Path) -> str:
    """Frame start times are not increasing."""
    return (
        f"{prefix}: FrameTimesStart must be increasing; frame {index} starts at {value:g} s, "
        f"not after frame {index - 1} at {prev:g} s. Fix the sidecar JSON ({sidecar})."
    )


def overlapping_frames(
    prefix: str,
    index: int,
    start_s: float,
    prev_end_s: float,
    sidecar: Path,
    *,
    durations_look_like_ends: bool = False,
) -> str:
    """A frame starts before the previous one ends."""
    hint = (
        " FrameDuration looks like frame end times (FrameDuration[i] == FrameTimesStart[i+1]);"
        " it must hold each frame's length (end - start)."
        if durations_look_like_ends
        else ""
    )
    return (
        f"{prefix}: frames overlap; frame {index} starts at {start_s:g} s, before frame "
        f"{index - 1} ends at {prev_end_s:g} s (FrameTimesStart + FrameDuration).{hint} "
        f"Fix FrameTimesStart/FrameDuration ({sidecar})."
    )


def minutes_not_seconds(prefix: str, n_frames: int, total: float, sidecar: Path) -> str:
    """A schedule whose total length suggests minutes were written instead of seconds."""
    return (
        f"{prefix}: the frame schedule lasts {total:g} s in total for {n_frames} frames, "
        "which suggests FrameTimesStart/FrameDuration were written in minutes; PET-BIDS "
        f"needs seconds. Multiply them by 60 in the sidecar JSON ({sidecar})."
    )


# ----------------------------------------------------------------------------- images
def corrupt_image(prefix: str, image: Path, error: str) -> str:
    """A NIfTI file that cannot be read (truncated gzip, bad header)."""
    return (
        f"{prefix}: cannot read {image.name} ({error}); the file is truncated or corrupt. "
        f"Re-export or re-copy the image ({image})."
    )


def not_4d(prefix: str, image: Path, shape: Sequence[int], min_frames: int) -> str:
    """The PET image is not a 4-D dynamic image."""
    return (
        f"{prefix}: {image.name} has shape {tuple(shape)} ({len(shape)}-D) but a dynamic PET "
        f"image must be 4-D (x, y, z, frames) with at least {min_frames} frames. "
        f"Use the dynamic (framed) reconstruction ({image})."
    )


def too_few_frames(prefix: str, image: Path, n_frames: int, min_frames: int) -> str:
    """A 4-D image with too few frames for kinetic modelling."""
    return (
        f"{prefix}: {image.name} has {n_frames} frame(s) but kinetic modelling needs at least "
        f"{min_frames}. Use the dynamic (framed) reconstruction ({image})."
    )


def nonfinite_frame(prefix: str, image: Path, frames: Sequence[int], n_bad: int) -> str:
    """Frames containing NaN or Inf voxels."""
    return (
        f"{prefix}: {image.name} has {n_bad} non-finite (NaN/Inf) voxel value(s) in frame(s) "
        f"{_join(str(f) for f in frames)}. Re-export the image without NaN/Inf ({image})."
    )


def all_zero_image(prefix: str, image: Path) -> str:
    """An image whose every voxel is zero."""
    return (
        f"{prefix}: all-zero image: every voxel of {image.name} is 0 (no signal). "
        f"Check the export/conversion of the scan ({image})."
    )


def nonpositive_image(prefix: str, image: Path, total: float) -> str:
    """An image whose values sum to zero or less (negative or sign-flipped data)."""
    return (
        f"{prefix}: {image.name} has no net positive signal (sum of all voxels {total:.3g}); "
        "PET images must hold activity concentrations (positive values). Check the sign and "
        f"scaling (scl_slope) of the export ({image})."
    )


def bad_geometry(prefix: str, image: Path, detail: str) -> str:
    """A header whose voxel sizes or voxel-to-world matrix are unusable."""
    return (
        f"{prefix}: {image.name} has an invalid geometry ({detail}); voxel sizes must be "
        "positive and the voxel-to-world matrix (sform/qform) invertible. Fix the NIfTI header "
        f"of {image}."
    )


def scan_too_short(prefix: str, total_s: float, min_s: float, sidecar: Path) -> str:
    """A frame schedule too short for reference-tissue modelling (often minutes, not s)."""
    return (
        f"{prefix}: the frame schedule lasts {total_s:g} s in total; reference-tissue "
        f"modelling needs at least {min_s:g} s ({min_s / 60:g} min) of dynamic data. If "
        "FrameTimesStart/FrameDuration were written in minutes, multiply them by 60 "
        f"(PET-BIDS needs seconds) in the sidecar JSON ({sidecar})."
    )


def frames_before_injection(
    prefix: str, first_start_s: float, injection_s: float, sidecar: Path
) -> str:
    """A frame starting before the injection (the models start at the injection)."""
    return (
        f"{prefix}: the first frame starts at {first_start_s:g} s, before the injection "
        f"(InjectionStart={injection_s:g} s); reference-tissue models need frames from the "
        "injection on. Check FrameTimesStart and InjectionStart (both relative to TimeZero) "
        f"in the sidecar JSON ({sidecar})."
    )


def corrupt_t1w(prefix: str, image: Path, error: str) -> str:
    """A T1w image that cannot be read or is not a 3-D volume."""
    return (
        f"{prefix}: the T1w image {image.name} is unusable ({error}). Re-export or re-copy it, "
        f"or move it out of the dataset to use PET-only normalisation ({image})."
    )


def different_tracers(subject: str, tracers: Mapping[str, str]) -> str:
    """The two sessions of one participant used different tracers."""
    shown = ", ".join(f"ses-{ses}: {trc!r}" for ses, trc in tracers.items())
    return (
        f"{where(subject)}: TracerName differs between sessions ({shown}); a "
        "baseline-vs-challenge comparison needs the same tracer. Fix TracerName in the sidecars "
        "or select other sessions."
    )


def different_tracers_across(tracers: Mapping[str, str]) -> str:
    """Participants were scanned with different tracers."""
    shown = ", ".join(f"sub-{sub}: {trc!r}" for sub, trc in sorted(tracers.items()))
    return (
        f"dataset: participants used different tracers ({shown}); a group analysis needs one "
        "tracer. Select participants with --participant-label."
    )


# ----------------------------------------------------------------------------- output dir
def output_is_bids_dir(output_dir: Path) -> str:
    """OUTPUT_DIR equals BIDS_DIR."""
    return (
        f"OUTPUT_DIR {output_dir} is the BIDS directory itself; the input is never written to. "
        "Choose another folder, e.g. <bids_dir>/../derivatives/bids_app."
    )


def output_inside_bids_dir(output_dir: Path, bids_dir: Path) -> str:
    """OUTPUT_DIR lies within BIDS_DIR."""
    return (
        f"OUTPUT_DIR {output_dir} is inside the BIDS directory {bids_dir}; the input is never "
        f"written to. Choose a folder outside it, e.g. {bids_dir.parent / 'bids_app_output'}."
    )


def bids_dir_inside_output(output_dir: Path, bids_dir: Path) -> str:
    """BIDS_DIR lies within OUTPUT_DIR."""
    return (
        f"the BIDS directory {bids_dir} is inside OUTPUT_DIR {output_dir}; outputs would mix "
        "with the input. Choose an OUTPUT_DIR that does not contain the dataset."
    )


def output_not_writable(output_dir: Path, blocker: Path, detail: str) -> str:
    """OUTPUT_DIR cannot be created or written."""
    return (
        f"OUTPUT_DIR {output_dir} cannot be created or written: {blocker} {detail}. "
        "Choose a writable folder or fix its permissions."
    )
