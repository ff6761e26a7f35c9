"""User-facing message templates (the MRIQC pattern).

Every problem the input checks can report is worded here, once, so that messages stay
consistent: *where* (participant/session, file), *what* (field), *expected vs found*, and *how to
fix it*. Each function returns one line without a trailing full stop being required by callers.
"""

from __future__ import annotations

import os
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


def sessions_tsv_contradiction(
    subject: str,
    baseline: str,
    challenge: str,
    conditions: Mapping[str, str],
    path: Path,
    source: str,
) -> str:
    """``sessions.tsv``'s ``condition`` column says the opposite of the session mapping."""
    said = ", ".join(f"ses-{ses}: {cond!r}" for ses, cond in sorted(conditions.items()))
    by = (
        "--baseline-session/--challenge-session"
        if source == "flags"
        else f"the default labels (ses-{baseline} = saline placebo, ses-{challenge} = naloxone)"
    )
    fix = (
        "the flags win; check that they are right"
        if source == "flags"
        else f"fix the 'condition' column, or, if the file is right, pass --baseline-session "
        f"{challenge} --challenge-session {baseline}"
    )
    return (
        f"{where(subject)}: {path.name} gives the condition {said}, but {by} make ses-{baseline} "
        f"the baseline and ses-{challenge} the challenge; {fix} ({path})."
    )


# ----------------------------------------------------------------------------- PET files
def no_pet(prefix: str, folder: Path, filters: str = "") -> str:
    """No ``*_pet.nii[.gz]`` or ``*_pet.json`` in a session (matching the filters)."""
    how = f" matching the filters {filters}" if filters else ""
    return (
        f"{prefix}: no PET scan (*_pet.nii.gz + *_pet.json){how} found in {folder}. "
        "Add the scan, fix --pet-run/--bids-filter-file, or leave the participant out with "
        "--participant-label."
    )


def several_pet(prefix: str, names: Sequence[str], filters: str = "") -> str:
    """More than one PET scan remains in a session after filtering."""
    how = f" matching the filters {filters}" if filters else ""
    return (
        f"{prefix}: {len(names)} PET scans found{how} ({_join(names)}); exactly one is needed. "
        "Select one on the command line: --pet-run <index> for runs, or --bids-filter-file "
        'with a JSON such as {"pet": {"rec": "<label>"}} (entities of the names above: trc, '
        "rec, run, task)."
    )


def missing_image(prefix: str, sidecar: Path, expected: Path) -> str:
    """A PET sidecar without its image file."""
    return (
        f"{prefix}: PET image file missing: {expected.name} not found next to {sidecar.name}. "
        f"Add the NIfTI image ({expected}) or remove the orphan sidecar."
    )


def missing_sidecar(prefix: str, image: Path, expected: Path) -> str:
    """A PET image to which no JSON sidecar applies (none of its own, none inherited)."""
    return (
        f"{prefix}: PET sidecar missing: {expected.name} not found for {image.name}, and no "
        "sidecar applies by inheritance (e.g. pet.json at the dataset root). Create the JSON "
        f"sidecar ({expected}) with the required PET-BIDS fields."
    )


def ambiguous_sidecars(data_file: Path, first: Path, second: Path, folder: Path) -> str:
    """Two applicable sidecars in one folder that cannot be ordered by their entities."""
    return (
        f"{data_file.name}: two sidecars in {folder} apply to it, {first.name} and "
        f"{second.name}, and neither's entities include the other's, so which value wins is "
        "undefined (BIDS inheritance principle). Merge them, or add an entity so that one "
        "is more specific."
    )


# ----------------------------------------------------------------------------- sidecar fields
def missing_field(prefix: str, field: str, names: str, location: str) -> str:
    """A REQUIRED PET-BIDS field is absent from every applicable sidecar."""
    return (
        f"{prefix}: required PET-BIDS field {field} is missing from {names}. Add it to {location}."
    )


def wrong_type(prefix: str, field: str, expected: str, found: object, location: str) -> str:
    """A sidecar field has the wrong JSON type."""
    shown = repr(found)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return (
        f"{prefix}: {field} must be {expected}; found {shown} ({type(found).__name__}). "
        f"Fix {location}."
    )


def bad_value(
    prefix: str, field: str, allowed: Sequence[str], found: object, location: str
) -> str:
    """A sidecar field's value is not one of the allowed ones."""
    return f"{prefix}: {field} must be one of {_join(allowed)}; found {found!r}. Fix {location}."


def bad_time_of_day(prefix: str, field: str, found: object, location: str) -> str:
    """A clock time (``TimeZero``) not in ``hh:mm:ss`` format."""
    return (
        f"{prefix}: {field} must be a clock time 'hh:mm:ss' (e.g. '13:04:42'); found {found!r}. "
        f"Fix {location}."
    )


def schedule_problem(prefix: str, problem: str, location: str) -> str:
    """A frame schedule problem found by :func:`bids_app.timing.frame_schedule_problems`."""
    return f"{prefix}: {problem.rstrip('.')}. Fix FrameTimesStart/FrameDuration in {location}."


def frame_count_mismatch(
    prefix: str, field: str, n_entries: int, image_name: str, n_frames: int, location: str
) -> str:
    """A timing array's length differs from the image's number of volumes."""
    return (
        f"{prefix}: {field} has {n_entries} entries but {image_name} has {n_frames} frames. "
        f"Fix {location}."
    )


def minutes_not_seconds(prefix: str, n_frames: int, total: float, location: str) -> str:
    """A schedule whose total length suggests minutes were written instead of seconds."""
    return (
        f"{prefix}: the frame schedule lasts {total:g} s in total for {n_frames} frames, "
        "which suggests FrameTimesStart/FrameDuration were written in minutes; PET-BIDS "
        f"needs seconds. Multiply them by 60 in {location}."
    )


def implausible_schedule(
    prefix: str,
    total_s: float,
    frame: int,
    duration_s: float,
    basis: str,
    max_total_s: float,
    max_frame_s: float,
    milliseconds: bool,
    location: str,
) -> str:
    """A frame schedule far too long for the radionuclide (often milliseconds, not seconds)."""
    hint = (
        "The values look like milliseconds: divide FrameTimesStart and FrameDuration by 1000"
        if milliseconds
        else "Check the units (PET-BIDS needs seconds) and the values of FrameTimesStart and "
        "FrameDuration"
    )
    return (
        f"{prefix}: implausible frame times: the scan lasts {total_s:g} s "
        f"({total_s / 3600:.3g} h) from the injection and frame {frame} lasts {duration_s:g} s, "
        f"but for {basis} a scan longer than {max_total_s:g} s or a frame longer than "
        f"{max_frame_s:g} s holds almost no signal at its end. {hint} in {location}."
    )


# ----------------------------------------------------------------------------- decay
def bad_decay_factor_list(prefix: str, found: object, n_frames: int, location: str) -> str:
    """``DecayCorrectionFactor`` is not one positive number per frame."""
    shown = repr(found)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return (
        f"{prefix}: DecayCorrectionFactor must be a list of {n_frames} positive numbers (one "
        f"per frame); found {shown}. Fix or remove it in {location}."
    )


def cannot_decay_correct(prefix: str, nuclide: object, known: Sequence[str], location: str) -> str:
    """Uncorrected data whose radionuclide has no known half-life."""
    return (
        f"{prefix}: ImageDecayCorrected is false, so the app must decay-correct the images, "
        f"but TracerRadionuclide {nuclide!r} is not a radionuclide it knows ({_join(known)}). "
        f"Write it like 'C11' or 'F18' in {location}, or supply decay-corrected images."
    )


def decay_factors_contradict(prefix: str, corrected: str, location: str) -> str:
    """Uncorrected data with factors that are neither 1 nor a correction's."""
    return (
        f"{prefix}: ImageDecayCorrected is {corrected} but DecayCorrectionFactor is neither 1 "
        "for every frame (no correction applied) nor the factors of a decay correction with "
        "the radionuclide's half-life. Make ImageDecayCorrected, ImageDecayCorrectionTime and "
        f"DecayCorrectionFactor agree, or remove DecayCorrectionFactor, in {location}."
    )


def decay_factors_all_one(prefix: str, expected_last: float, location: str) -> str:
    """``ImageDecayCorrected: true`` with factors of 1 (no correction applied)."""
    return (
        f"{prefix}: ImageDecayCorrected is true but DecayCorrectionFactor is 1 for every frame, "
        f"i.e. no correction was applied (the last frame would need about {expected_last:.3g}). "
        "If the images are not decay-corrected set ImageDecayCorrected to false (the app then "
        f"corrects them); if they are, fix or remove DecayCorrectionFactor in {location}."
    )


def decay_factors_mismatch(
    prefix: str,
    frame: int,
    given: float,
    expected: float,
    nuclide: str,
    correction_time_s: float,
    implied_s: float | None,
    location: str,
) -> str:
    """``DecayCorrectionFactor`` disagrees with the half-life and ``ImageDecayCorrectionTime``."""
    hint = (
        f" The factors match a correction to {implied_s:.4g} s: set ImageDecayCorrectionTime "
        "to that value if it is the true one."
        if implied_s is not None
        else " Check TracerRadionuclide too."
    )
    return (
        f"{prefix}: DecayCorrectionFactor contradicts the other fields: frame {frame} has "
        f"{given:.5g}, but a decay correction of {nuclide} to ImageDecayCorrectionTime="
        f"{correction_time_s:g} s gives {expected:.5g}.{hint} Make the fields agree (or remove "
        f"DecayCorrectionFactor) in {location}."
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


def scan_too_short(prefix: str, total_s: float, min_s: float, location: str) -> str:
    """A frame schedule too short for reference-tissue modelling (often minutes, not s)."""
    return (
        f"{prefix}: the frame schedule lasts {total_s:g} s in total; reference-tissue "
        f"modelling needs at least {min_s:g} s ({min_s / 60:g} min) of dynamic data. If "
        "FrameTimesStart/FrameDuration were written in minutes, multiply them by 60 "
        f"(PET-BIDS needs seconds) in {location}."
    )


def frames_before_injection(
    prefix: str, first_start_s: float, injection_s: float, location: str
) -> str:
    """A frame starting before the injection (the models start at the injection)."""
    return (
        f"{prefix}: the first frame starts at {first_start_s:g} s, before the injection "
        f"(InjectionStart={injection_s:g} s); reference-tissue models need frames from the "
        "injection on. Check FrameTimesStart and InjectionStart (both relative to TimeZero) "
        f"in {location}."
    )


def late_start(prefix: str, delay_s: float, excluded: bool) -> str:
    """The analysed frames start minutes after the injection (a warning)."""
    what = "after its first frame(s) were excluded, the analysis" if excluded else "the scan"
    return (
        f"{prefix}: {what} starts {delay_s / 60:.3g} min after the injection: the early, "
        "rising part of the TACs is missing, which biases k2' and R1 (SRTM/SRTM2 assume the "
        "curves from the injection on); interpret R1 and k2' with care"
    )


def decay_note(prefix: str, description: str) -> str:
    """What the app did about decay correction (a note)."""
    return f"{prefix}: {description}"


def unusable_frames(prefix: str, image: Path, reasons: Mapping[int, str]) -> str:
    """Frames whose data are broken (an error without ``--exclude-bad-frames``)."""
    listed = "; ".join(f"frame {i}: {why}" for i, why in reasons.items())
    return (
        f"{prefix}: {image.name} has {len(reasons)} unusable frame(s): {listed}. Re-export the "
        "image, or pass --exclude-bad-frames to leave these frames out of motion correction, "
        f"TACs and fits ({image})."
    )


def excluded_frames(prefix: str, image: Path, reasons: Mapping[int, str]) -> str:
    """Frames left out with ``--exclude-bad-frames`` (a warning)."""
    listed = "; ".join(f"frame {i}: {why}" for i, why in reasons.items())
    return (
        f"{prefix}: excluded {len(reasons)} frame(s) of {image.name} from motion correction, "
        f"TACs and fits (--exclude-bad-frames): {listed}"
    )


def too_many_excluded(prefix: str, image: Path, n_left: int, min_frames: int) -> str:
    """Excluding the bad frames would leave too few frames."""
    return (
        f"{prefix}: excluding the unusable frames of {image.name} leaves {n_left} frame(s); "
        f"kinetic modelling needs at least {min_frames}. Re-export the image ({image})."
    )


def identical_images(first: str, second: str, how: str, digest: str, *, within: bool) -> str:
    """Two scans that must differ are the same file or hold the same image."""
    why = (
        "a baseline-vs-challenge comparison of the same data gives a drug effect of exactly 0"
        if within
        else "two participants cannot share a scan"
    )
    return (
        f"{first} and {second} {how} (SHA-256 {digest[:12]}...): {why}. Point each session to "
        "its own scan."
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


# ----------------------------------------------------------------------------- environment
def pybids_startup(error: BaseException) -> str:
    """pybids failed while importing (it reads ``$HOME/pybids_config.json``)."""
    home = os.environ.get("HOME", "(unset)")
    return (
        f"pybids, which indexes the BIDS dataset, could not start: reading its settings file "
        f"in the home folder failed ({type(error).__name__}: {error}). HOME={home} is not "
        f"readable by this user (uid {os.getuid()}). Run with a readable HOME, e.g. "
        "`HOME=/tmp bids_app ...`, `docker run -e HOME=/tmp ...` or `apptainer run --home "
        "/tmp ...`."
    )
