"""PET-BIDS input discovery and validation: the only module of the app that uses pybids.

One :class:`bids.BIDSLayout` is built per run (:func:`build_layout`; ``validate=False`` because the
official validator runs separately, see :mod:`bids_app.bidsio.validator`; ``derivatives/`` and
``sourcedata/`` are not indexed; sidecar metadata is not indexed either: each scan's metadata is
resolved by the BIDS inheritance principle, :mod:`bids_app.bidsio.inheritance`, and checked by
:mod:`bids_app.bidsio.metadata`).

:func:`discover_study` maps each selected participant's baseline and challenge sessions, finds one
PET scan per session and its T1w, and checks everything cheap (and, by default, the image data:
integrity, per-frame signal, content hashes) before any heavy work, raising one
:class:`~bids_app.errors.ValidationError` that lists *all* problems found.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from bids_app.bidsio import messages
from bids_app.bidsio.decay import DecayCorrection, implausible_schedule, plan_decay_correction
from bids_app.bidsio.filters import ScanFilters, as_filters, describe, matches
from bids_app.bidsio.imagedata import check_image_data, hash_image_file
from bids_app.bidsio.inheritance import (
    ResolvedMetadata,
    parse_bids_name,
    read_json_object,
    resolve_metadata,
)
from bids_app.bidsio.metadata import (
    IMAGE_READ_ERRORS,
    check_frame_count,
    check_pet_sidecar,
    frame_timing_from_metadata,
    normalise_units,
    read_image_header,
)
from bids_app.bidsio.nifti import load_spatial_image
from bids_app.errors import BidsAppError, InputError, MetadataError, ValidationError
from bids_app.timing import FrameTiming

if TYPE_CHECKING:
    from bids import BIDSLayout

logger = logging.getLogger(__name__)

SessionSource = Literal["flags", "default sal/nal", "sessions.tsv"]

#: Default session labels of the paper's design (saline placebo, naloxone challenge).
DEFAULT_BASELINE_SESSION = "sal"
DEFAULT_CHALLENGE_SESSION = "nal"

#: Top-level folders never indexed (besides hidden files): not raw data, possibly huge.
IGNORED_FOLDERS: tuple[str, ...] = ("derivatives", "sourcedata", "code", "stimuli", "models")

#: Shortest frame schedule accepted for reference-tissue modelling, s (a shorter one is most
#: often a schedule written in minutes).
MIN_SCAN_DURATION_S = 300.0
#: Tolerance when comparing the first frame start with ``InjectionStart``, s (rounding).
INJECTION_TOLERANCE_S = 1e-3
#: A first analysed frame starting this long after the injection is reported (missing early
#: frames bias k2' and R1), s.
LATE_START_WARNING_S = 60.0
_IMAGE_EXTENSIONS = (".nii.gz", ".nii")
_SCAN_KEYS_IGNORED = frozenset({"sub", "ses"})


class PybidsStartupError(RuntimeError, BidsAppError):
    """pybids could not be imported (it reads a settings file from HOME when imported)."""


def _pybids() -> Any:
    """Import pybids, turning its HOME-dependent start-up failure into a clear message.

    pybids reads ``$HOME/pybids_config.json`` when imported; a HOME the user cannot read (a
    container run with ``-u <uid>`` and the image's HOME, an HPC node's unmounted home) makes
    that raise ``PermissionError`` deep inside pybids.
    """
    try:
        import bids
    except (OSError, RuntimeError, KeyError) as exc:
        raise PybidsStartupError(messages.pybids_startup(exc)) from exc
    return bids


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class PetScan:
    """One validated dynamic PET scan.

    Attributes
    ----------
    subject, session : str
        Labels without the ``sub-``/``ses-`` prefixes.
    path : Path
        The ``*_pet.nii[.gz]`` image.
    sidecar_path : Path
        Its most specific sidecar (its own ``*_pet.json`` when it has one).
    entities : dict of str to str
        The other filename entities, keyed as in file names (``trc``, ``rec``, ``run``, ``task``).
    metadata : dict
        The resolved metadata: every applicable sidecar merged by the inheritance principle
        (what the participant manifest hashes).
    n_frames : int
        Number of frames (volumes) in the image file.
    timing : FrameTiming
        Start and end of each *analysed* frame (excluded frames left out), minutes from
        TimeZero (converted once, from the sidecar seconds).
    shape : tuple of int
        Image shape ``(x, y, z, n_frames)``.
    voxel_size_mm : tuple of float
        Spatial voxel size, mm.
    units : str
        Image units, canonical spelling (e.g. ``"kBq/mL"``).
    metadata_sources : dict of str to Path
        The sidecar each metadata key came from.
    sidecar_files : tuple of Path
        Every applicable sidecar, dataset root first.
    decay : DecayCorrection or None
        How the frames are brought to decay correction at the injection (None: not checked).
    excluded_frames : tuple of int
        Frames of the file left out of the analysis (``--exclude-bad-frames``).
    notes : tuple of str
        Warnings and notes about the scan (excluded frames, late start, decay correction),
        shown in the log, ``logs/summary.tsv`` and the report.
    sha256 : str or None
        SHA-256 of the image file, computed once during validation (the participant manifest
        reuses it).
    data_sha256 : str or None
        SHA-256 of the voxel values (None when the data were not read).
    outside_fov_voxels : int or None
        Voxels that are NaN in every frame (outside the field of view); None when not read.
    """

    subject: str
    session: str
    path: Path
    sidecar_path: Path
    entities: dict[str, str]
    metadata: dict[str, Any]
    n_frames: int
    timing: FrameTiming
    shape: tuple[int, ...]
    voxel_size_mm: tuple[float, float, float]
    units: str
    metadata_sources: dict[str, Path] = field(default_factory=dict)
    sidecar_files: tuple[Path, ...] = ()
    decay: DecayCorrection | None = None
    excluded_frames: tuple[int, ...] = ()
    notes: tuple[str, ...] = ()
    sha256: str | None = None
    data_sha256: str | None = None
    outside_fov_voxels: int | None = None

    @property
    def tracer(self) -> str:
        """``TracerName`` from the sidecar."""
        return str(self.metadata["TracerName"])


@dataclass(frozen=True)
class ParticipantInput:
    """The two scans (and optional T1w) of one participant."""

    subject: str
    baseline: PetScan
    challenge: PetScan
    t1w: Path | None

    @property
    def notes(self) -> tuple[str, ...]:
        """The notes of both scans."""
        return (*self.baseline.notes, *self.challenge.notes)


@dataclass(frozen=True)
class Study:
    """The validated inputs of a run.

    Attributes
    ----------
    bids_dir : Path
        Resolved dataset root.
    participants : list of ParticipantInput
        Selected, complete, valid participants, sorted by label.
    baseline_session, challenge_session : str or None
        The session labels; None when read per participant from ``sessions.tsv`` and they
        differ between participants (each :class:`PetScan` holds its own session).
    session_source : {"flags", "default sal/nal", "sessions.tsv"}
        How the sessions were mapped.
    tracer : str or None
        ``TracerName`` shared by all scans (None when no participant is left).
    skipped : list of (str, str)
        ``(subject, reason)`` of participants left out (``skip_incomplete=True``).
    """

    bids_dir: Path
    participants: list[ParticipantInput]
    baseline_session: str | None
    challenge_session: str | None
    session_source: SessionSource
    tracer: str | None
    skipped: list[tuple[str, str]] = field(default_factory=list)


# ----------------------------------------------------------------------------- layout
def build_layout(bids_dir: Path, *, database_path: Path | None = None) -> BIDSLayout:
    """Index a BIDS dataset once (no validation, no metadata, no derivatives/sourcedata).

    Parameters
    ----------
    bids_dir : Path
        Dataset root.
    database_path : Path, optional
        Folder for pybids' SQLite index (e.g. under the work directory) to reuse it between runs.
        Never inside ``bids_dir``, which is read-only.

    Returns
    -------
    BIDSLayout

    Raises
    ------
    PybidsStartupError
        When pybids cannot be imported (an unreadable HOME).
    """
    bids = _pybids()
    bids_dir = Path(bids_dir)
    ignore: list[Any] = [bids_dir / name for name in IGNORED_FOLDERS]
    ignore.append(re.compile(r"^\."))
    indexer = bids.BIDSLayoutIndexer(validate=False, ignore=ignore, index_metadata=False)
    layout = bids.BIDSLayout(
        bids_dir,
        validate=False,
        indexer=indexer,
        database_path=database_path,
    )
    logger.debug("indexed %s: %d subjects", bids_dir, len(layout.get_subjects()))
    return layout


def check_dataset_description(bids_dir: Path) -> list[str]:
    """Check ``dataset_description.json``: a JSON object with ``Name`` and ``BIDSVersion``.

    Returns
    -------
    list of str
        One line per problem.
    """
    path = Path(bids_dir) / "dataset_description.json"
    if not path.is_file():
        return [messages.dataset_description_missing(Path(bids_dir))]
    try:
        description = read_json_object(path, "dataset")
    except MetadataError as exc:
        return [str(exc)]
    return [
        messages.dataset_description_field(path, key, description.get(key))
        for key in ("Name", "BIDSVersion")
        if not (isinstance(description.get(key), str) and description[key].strip())
    ]


def normalise_participant_labels(labels: Iterable[str]) -> list[str]:
    """Strip a leading ``sub-`` and surrounding blanks; drop duplicates, keep order."""
    out: list[str] = []
    for label in labels:
        text = str(label).strip()
        text = text.removeprefix("sub-")
        if text and text not in out:
            out.append(text)
    return out


def _pet_sessions(layout: BIDSLayout, subject: str) -> list[str]:
    """Sessions of ``subject`` that hold PET files (image or sidecar)."""
    return sorted(
        layout.get_sessions(subject=subject, datatype="pet", suffix="pet", return_type="id")
    )


# ----------------------------------------------------------------------------- sessions
@dataclass(frozen=True)
class SessionMapping:
    """Which session is baseline and which is challenge, per participant."""

    pairs: dict[str, tuple[str, str]]
    source: SessionSource


@dataclass(frozen=True)
class SessionConditions:
    """The ``condition`` column of one participant's ``sub-<label>_sessions.tsv``.

    Attributes
    ----------
    path : Path or None
        The file (None when the participant has none).
    conditions : dict of str to str
        Session label -> condition (lower case); empty when unusable.
    reason : str
        Why ``conditions`` is empty; empty otherwise.
    """

    path: Path | None
    conditions: dict[str, str]
    reason: str = ""


def read_session_conditions(layout: BIDSLayout, subject: str) -> SessionConditions:
    """Read ``session_id`` -> ``condition`` from a participant's ``sessions.tsv``.

    The file is read as UTF-8 (a byte-order mark is accepted); ``ses-`` prefixes are stripped.
    """
    found = layout.get(
        subject=subject, suffix="sessions", extension=".tsv", return_type="filename"
    )
    if not found:
        return SessionConditions(None, {}, f"no sub-{subject}_sessions.tsv")
    path = Path(found[0])
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return SessionConditions(path, {}, f"{path.name} unreadable ({exc})")
    if not rows or "session_id" not in rows[0] or "condition" not in rows[0]:
        return SessionConditions(
            path, {}, f"{path.name} has no 'session_id' and 'condition' columns"
        )
    conditions = {
        (row.get("session_id") or "").strip().removeprefix("ses-"): (
            (row.get("condition") or "").strip().lower()
        )
        for row in rows
    }
    return SessionConditions(path, conditions)


def _contradiction(
    subject: str, pair: tuple[str, str], table: SessionConditions, source: str
) -> str | None:
    """A message when ``sessions.tsv`` says the opposite of ``pair`` (baseline, challenge)."""
    base, chal = pair
    said = table.conditions
    if table.path is None or not (said.get(base) == "challenge" or said.get(chal) == "baseline"):
        return None
    return messages.sessions_tsv_contradiction(subject, base, chal, dict(said), table.path, source)


def map_sessions(
    layout: BIDSLayout,
    sessions_by_subject: Mapping[str, Sequence[str]],
    *,
    baseline_session: str | None = None,
    challenge_session: str | None = None,
) -> SessionMapping:
    """Decide each participant's baseline and challenge session (CONTRACT "Command line").

    Order: the two flags; else ``sal``/``nal`` when any participant has one of them; else, when
    every participant has exactly two sessions, the ``condition`` column (``baseline`` /
    ``challenge``) of ``sub-<label>_sessions.tsv``. A ``condition`` column that says the opposite
    of the ``sal``/``nal`` defaults is an error (which one is right cannot be guessed); one that
    contradicts explicit flags is logged as a warning (the flags win).

    Parameters
    ----------
    layout : BIDSLayout
        The run's layout (finds the ``sessions.tsv`` files).
    sessions_by_subject : mapping of str to sequence of str
        PET sessions of each selected participant.
    baseline_session, challenge_session : str, optional
        The flags (a leading ``ses-`` is accepted).

    Returns
    -------
    SessionMapping
        ``pairs[subject] = (baseline, challenge)``; the sessions may be missing for some
        participants (checked by the caller).

    Raises
    ------
    ValidationError
        Only one flag, equal flags, an ambiguous design (listing the sessions found and the
        flags to pass), or ``sessions.tsv`` files contradicting the ``sal``/``nal`` labels.
    """
    if baseline_session is not None or challenge_session is not None:
        if baseline_session is None or challenge_session is None:
            given, missing = (
                ("baseline", "challenge")
                if challenge_session is None
                else ("challenge", "baseline")
            )
            raise ValidationError([messages.session_flags_incomplete(given, missing)])
        base = baseline_session.strip().removeprefix("ses-")
        chal = challenge_session.strip().removeprefix("ses-")
        if base == chal:
            raise ValidationError([messages.session_flags_equal(base)])
        for sub in sorted(sessions_by_subject):
            table = read_session_conditions(layout, sub)
            warning = _contradiction(sub, (base, chal), table, "flags")
            if warning is not None:
                logger.warning(warning)
        return SessionMapping({sub: (base, chal) for sub in sessions_by_subject}, "flags")
    defaults = {DEFAULT_BASELINE_SESSION, DEFAULT_CHALLENGE_SESSION}
    if any(defaults & set(ses) for ses in sessions_by_subject.values()):
        pair = (DEFAULT_BASELINE_SESSION, DEFAULT_CHALLENGE_SESSION)
        contradictions = [
            problem
            for sub in sorted(sessions_by_subject)
            if (
                problem := _contradiction(
                    sub, pair, read_session_conditions(layout, sub), "labels"
                )
            )
        ]
        if contradictions:
            raise ValidationError(contradictions)
        return SessionMapping({sub: pair for sub in sessions_by_subject}, "default sal/nal")
    pairs: dict[str, tuple[str, str]] = {}
    reasons: list[str] = []
    for subject, sessions in sorted(sessions_by_subject.items()):
        found, reason = _pair_from_sessions_tsv(layout, subject, sessions)
        if found is None:
            reasons.append(reason)
        else:
            pairs[subject] = found
    if reasons:
        if not pairs and all("no sub-" in r for r in reasons):
            reasons = ["no ses-sal/ses-nal, no flags and no sessions.tsv with a condition column"]
        raise ValidationError(
            [messages.ambiguous_sessions(sessions_by_subject, "; ".join(reasons))]
        )
    return SessionMapping(pairs, "sessions.tsv")


def _pair_from_sessions_tsv(
    layout: BIDSLayout, subject: str, sessions: Sequence[str]
) -> tuple[tuple[str, str] | None, str]:
    """Read one participant's ``condition`` column; return (pair or None, reason if None)."""
    if len(sessions) != 2:
        return None, f"sub-{subject} has {len(sessions)} PET sessions, not 2"
    table = read_session_conditions(layout, subject)
    if table.path is None or not table.conditions:
        return None, table.reason
    by_condition: dict[str, list[str]] = {}
    for ses, cond in table.conditions.items():
        if ses in sessions:
            by_condition.setdefault(cond, []).append(ses)
    base, chal = by_condition.get("baseline", []), by_condition.get("challenge", [])
    if len(base) != 1 or len(chal) != 1:
        return None, (
            f"{table.path.name} 'condition' must give one 'baseline' and one 'challenge' session "
            f"of {sorted(sessions)}; found {by_condition}"
        )
    return (base[0], chal[0]), ""


# ----------------------------------------------------------------------------- scans
@dataclass(frozen=True)
class _Candidate:
    """A PET image and/or its own sidecar (same entities), or an orphan sidecar."""

    entities: dict[str, str]
    image: Path | None
    sidecar: Path | None

    @property
    def name(self) -> str:
        path = self.image if self.image is not None else self.sidecar
        return path.name if path is not None else "?"


def _scan_entities(path: Path) -> dict[str, str] | None:
    parsed = parse_bids_name(path.name)
    if parsed is None:
        return None
    return {k: v for k, v in parsed.entities.items() if k not in _SCAN_KEYS_IGNORED}


def _find_pet_candidates(layout: BIDSLayout, subject: str, session: str) -> list[_Candidate]:
    """A session's PET images (each with its own sidecar, if any) and orphan sidecars.

    A sidecar whose entities are a subset of an image's (e.g. ``sub-01_ses-sal_pet.json`` next
    to ``sub-01_ses-sal_trc-rac_pet.nii.gz``) is inherited by that image, not a scan of its own.
    """
    files = layout.get(
        subject=subject,
        session=session,
        datatype="pet",
        suffix="pet",
        extension=[*_IMAGE_EXTENSIONS, ".json"],
        return_type="filename",
    )
    images: dict[tuple[tuple[str, str], ...], Path] = {}
    sidecars: dict[tuple[tuple[str, str], ...], Path] = {}
    for name in sorted(files):
        path = Path(name)
        entities = _scan_entities(path)
        if entities is None:
            continue
        key = tuple(sorted(entities.items()))
        if path.name.endswith(".json"):
            sidecars[key] = path
        elif key not in images or path.name.endswith(".nii.gz"):
            images[key] = path
    candidates = [_Candidate(dict(key), image, sidecars.get(key)) for key, image in images.items()]
    for key, sidecar in sidecars.items():
        inherited = any(set(key) <= set(image_key) for image_key in images)
        if key not in images and not inherited:
            candidates.append(_Candidate(dict(key), None, sidecar))
    return sorted(candidates, key=lambda c: tuple(sorted(c.entities.items())))


def _select_candidate(
    candidates: list[_Candidate],
    pet_filters: ScanFilters,
    prefix: str,
    folder: Path,
) -> tuple[_Candidate | None, list[str]]:
    """Apply the entity filters; exactly one scan must remain."""
    kept = [c for c in candidates if matches(c.entities, pet_filters)]
    if not kept:
        return None, [
            messages.no_pet(prefix, folder, describe(pet_filters) if pet_filters else "")
        ]
    if len(kept) > 1:
        return None, [messages.several_pet(prefix, [c.name for c in kept], describe(pet_filters))]
    return kept[0], []


def _expected_image(sidecar: Path) -> Path:
    return sidecar.with_name(sidecar.name.removesuffix(".json") + ".nii.gz")


def _expected_sidecar(image: Path) -> Path:
    stem = image.name
    for ext in _IMAGE_EXTENSIONS:
        stem = stem.removesuffix(ext)
    return image.with_name(stem + ".json")


def _orphan_problems(sidecar: Path, prefix: str) -> list[str]:
    """A sidecar without its image: its own readability, and the missing image."""
    problems: list[str] = []
    try:
        read_json_object(sidecar, prefix)
    except MetadataError as exc:
        problems.append(str(exc))
    return [*problems, messages.missing_image(prefix, sidecar, _expected_image(sidecar))]


def _resolved_metadata(
    root: Path, image: Path, prefix: str
) -> tuple[ResolvedMetadata | None, list[str]]:
    """Resolve and check an image's metadata (own sidecar merged with inherited ones)."""
    resolved, problems = resolve_metadata(root, image, prefix)
    if resolved is None:
        return None, problems
    if not resolved.files:
        return None, [messages.missing_sidecar(prefix, image, _expected_sidecar(image))]
    return resolved, check_pet_sidecar(resolved, prefix)


def load_pet_scan(
    subject: str,
    session: str,
    candidate: _Candidate,
    *,
    root: Path,
    check_data: bool = True,
    exclude_bad_frames: bool = False,
) -> tuple[PetScan | None, list[str]]:
    """Read and check one PET scan (resolved metadata, header, decay, optionally the data).

    Parameters
    ----------
    subject, session : str
        Labels.
    candidate : _Candidate
        The image and its own sidecar.
    root : Path
        Dataset root (inherited sidecars are searched up to it).
    check_data : bool
        Read every frame (integrity, signal checks, content hash); else only hash the file.
    exclude_bad_frames : bool
        Leave unusable frames out (with a note) instead of reporting them as problems.

    Returns
    -------
    scan : PetScan or None
        None when any problem was found.
    problems : list of str
    """
    prefix = messages.where(subject, session)
    if candidate.image is None:
        return None, _orphan_problems(candidate.sidecar, prefix) if candidate.sidecar else []
    resolved, problems = _resolved_metadata(root, candidate.image, prefix)
    header, header_problems = read_image_header(candidate.image, prefix)
    problems += header_problems
    if header is not None and resolved is not None:
        problems += check_frame_count(resolved, prefix, candidate.image, header.n_frames)
    if problems or header is None or resolved is None:
        return None, problems
    metadata = resolved.values
    location = resolved.location("FrameTimesStart", "FrameDuration")
    timing = frame_timing_from_metadata(metadata, location)
    problems += check_modelling_schedule(resolved, prefix)
    if problems:  # decay factors of an implausible schedule (e.g. milliseconds) overflow
        return None, problems
    decay, problems = plan_decay_correction(resolved, timing.start_s, timing.end_s, prefix)
    if problems or decay is None:
        return None, problems
    if check_data:
        data, data_problems = check_image_data(
            candidate.image, prefix, decay.factors, exclude_bad_frames=exclude_bad_frames
        )
    else:
        data, data_problems = hash_image_file(candidate.image, prefix)
    if data is None:
        return None, data_problems
    kept = [i for i in range(timing.n_frames) if i not in set(data.excluded)]
    analysed = FrameTiming(timing.start_min[kept], timing.end_min[kept])
    notes = list(data.notes)
    late = late_start_note(analysed, metadata, prefix, excluded=bool(data.excluded))
    if late is not None:
        notes.append(late)
    for note in notes:
        logger.warning(note)
    if not decay.is_identity:
        notes.append(messages.decay_note(prefix, decay.description))
        logger.info(notes[-1])
    units = normalise_units(metadata["Units"])
    own = candidate.sidecar if candidate.sidecar is not None else resolved.files[-1]
    scan = PetScan(
        subject=subject,
        session=session,
        path=candidate.image,
        sidecar_path=own,
        entities=dict(candidate.entities),
        metadata=metadata,
        n_frames=header.n_frames,
        timing=analysed,
        shape=header.shape,
        voxel_size_mm=header.voxel_size_mm,
        units=units if units is not None else str(metadata["Units"]),
        metadata_sources=dict(resolved.sources),
        sidecar_files=resolved.files,
        decay=decay,
        excluded_frames=data.excluded,
        notes=tuple(notes),
        sha256=data.sha256,
        data_sha256=data.data_sha256,
        outside_fov_voxels=data.outside_fov_voxels,
    )
    return scan, []


def _injection_s(metadata: Mapping[str, Any]) -> float:
    value = metadata.get("InjectionStart", 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    return float(value)


def late_start_note(
    timing: FrameTiming, metadata: Mapping[str, Any], prefix: str, *, excluded: bool
) -> str | None:
    """A warning when the analysed frames start :data:`LATE_START_WARNING_S` after injection."""
    delay_s = float(timing.start_s[0]) - _injection_s(metadata)
    if delay_s < LATE_START_WARNING_S:
        return None
    return messages.late_start(prefix, delay_s, excluded)


def check_modelling_schedule(resolved: ResolvedMetadata, prefix: str) -> list[str]:
    """App-specific checks of a valid PET-BIDS schedule: plausible length, after injection.

    All are legal PET-BIDS, so they are not part of
    :func:`~bids_app.bidsio.metadata.check_pet_sidecar`; but a reference-tissue model needs at
    least :data:`MIN_SCAN_DURATION_S` of data (a shorter schedule is most often written in
    minutes), no more than the radionuclide allows (a longer one is most often written in
    milliseconds, :func:`~bids_app.bidsio.decay.implausible_schedule`), and frames from the
    injection on (the participant pipeline would otherwise stop after registration).

    Parameters
    ----------
    resolved : ResolvedMetadata
        Metadata that passed :func:`~bids_app.bidsio.metadata.check_pet_sidecar`.
    prefix : str
        Message prefix.

    Returns
    -------
    list of str
        One line per problem.
    """
    metadata = resolved.values
    start_s = np.asarray(metadata["FrameTimesStart"], dtype=np.float64)
    end_s = start_s + np.asarray(metadata["FrameDuration"], dtype=np.float64)
    location = resolved.location("FrameTimesStart", "FrameDuration")
    problems: list[str] = []
    total_s = float(np.max(end_s) - np.min(start_s))
    if total_s < MIN_SCAN_DURATION_S:
        problems.append(messages.scan_too_short(prefix, total_s, MIN_SCAN_DURATION_S, location))
    problems += implausible_schedule(resolved, start_s, end_s, prefix)
    injection_s = _injection_s(metadata)
    if float(start_s[0]) < injection_s - INJECTION_TOLERANCE_S:
        problems.append(
            messages.frames_before_injection(
                prefix,
                float(start_s[0]),
                injection_s,
                resolved.location("FrameTimesStart", "InjectionStart"),
            )
        )
    return problems


def check_t1w(image: Path, prefix: str) -> list[str]:
    """Read a T1w image completely: readable, 3-D (or 4-D with one volume), sane voxel size.

    Parameters
    ----------
    image : Path
        ``*_T1w.nii[.gz]``.
    prefix : str
        Message prefix, e.g. ``"sub-01"``.

    Returns
    -------
    list of str
        One line when the image is unusable; empty otherwise.
    """
    try:
        img = load_spatial_image(image)
        shape = tuple(int(n) for n in img.shape)
        zooms = [float(z) for z in img.header.get_zooms()[:3]]
        np.asarray(img.dataobj)
    except IMAGE_READ_ERRORS as exc:
        return [messages.corrupt_t1w(prefix, image, f"{type(exc).__name__}: {exc}")]
    if not (len(shape) == 3 or (len(shape) == 4 and shape[3] == 1)) or min(shape[:3]) < 2:
        return [messages.corrupt_t1w(prefix, image, f"shape {shape}, expected a 3-D volume")]
    if len(zooms) < 3 or not all(np.isfinite(z) and z > 0 for z in zooms):
        return [messages.corrupt_t1w(prefix, image, f"voxel size {zooms} mm")]
    return []


def find_t1w(
    layout: BIDSLayout,
    subject: str,
    baseline_session: str,
    t1w_filters: ScanFilters | None = None,
) -> Path | None:
    """The participant's T1w: a session-less one, else the baseline session's, else None.

    ``t1w_filters`` (e.g. ``{"acq": ("mprage",)}``) narrow the choice; among several the first
    by name is used (logged).
    """
    files = layout.get(
        subject=subject, suffix="T1w", extension=list(_IMAGE_EXTENSIONS), return_type="filename"
    )
    chosen = []
    for name in files:
        path = Path(name)
        entities = _scan_entities(path)
        parsed = parse_bids_name(path.name)
        if entities is None or parsed is None or not matches(entities, t1w_filters or {}):
            continue
        chosen.append((parsed.entities.get("ses"), path))
    sessionless = sorted(path for ses, path in chosen if ses is None)
    in_baseline = sorted(path for ses, path in chosen if ses == baseline_session)
    for group in (sessionless, in_baseline):
        if group:
            if len(group) > 1:
                logger.info("sub-%s: %d T1w images; using %s", subject, len(group), group[0].name)
            return group[0]
    return None


# ----------------------------------------------------------------------------- discovery
def _select_participants(
    available: Sequence[str], participant_labels: Iterable[str] | None
) -> tuple[list[str], list[str]]:
    """Return (selected existing labels, problems for unknown labels)."""
    if participant_labels is None:
        return sorted(available), []
    wanted = normalise_participant_labels(participant_labels)
    missing = [label for label in wanted if label not in available]
    problems = [messages.unknown_participants(missing, sorted(available))] if missing else []
    return sorted(label for label in wanted if label in available), problems


@dataclass(frozen=True)
class _Selection:
    """How scans are chosen and checked (the options of :func:`discover_study`)."""

    pet_filters: ScanFilters
    t1w_filters: ScanFilters
    check_data: bool
    exclude_bad_frames: bool


def _collect_participant(
    layout: BIDSLayout,
    subject: str,
    pair: tuple[str, str],
    sessions: Sequence[str],
    selection: _Selection,
) -> tuple[ParticipantInput | None, list[str], str | None]:
    """Check one participant; return (input or None, problems, incomplete-reason or None)."""
    absent = [
        messages.missing_session(subject, ses, role, sessions)
        for ses, role in zip(pair, ("baseline", "challenge"), strict=True)
        if ses not in sessions
    ]
    if absent:
        return None, absent, " ".join(absent)
    root = Path(layout.root)
    problems: list[str] = []
    scans: list[PetScan | None] = []
    for ses in pair:
        prefix = messages.where(subject, ses)
        folder = root / f"sub-{subject}" / f"ses-{ses}" / "pet"
        candidate, found = _select_candidate(
            _find_pet_candidates(layout, subject, ses), selection.pet_filters, prefix, folder
        )
        problems += found
        scan = None
        if candidate is not None:
            scan, scan_problems = load_pet_scan(
                subject,
                ses,
                candidate,
                root=root,
                check_data=selection.check_data,
                exclude_bad_frames=selection.exclude_bad_frames,
            )
            problems += scan_problems
        scans.append(scan)
    baseline, challenge = scans
    if baseline is not None and challenge is not None:
        if baseline.tracer.strip().casefold() != challenge.tracer.strip().casefold():
            tracers = {baseline.session: baseline.tracer, challenge.session: challenge.tracer}
            problems.append(messages.different_tracers(subject, tracers))
    t1w = find_t1w(layout, subject, pair[0], selection.t1w_filters)
    if t1w is not None:
        _, t1w_problems = resolve_metadata(root, t1w, messages.where(subject))
        problems += t1w_problems
        if selection.check_data and not t1w_problems:
            problems += check_t1w(t1w, messages.where(subject))
    if problems or baseline is None or challenge is None:
        return None, problems, None
    return ParticipantInput(subject, baseline, challenge, t1w), [], None


def _label(scan: PetScan) -> str:
    return f"sub-{scan.subject} ses-{scan.session} ({scan.path.name})"


def duplicate_scans(participants: Sequence[ParticipantInput]) -> list[str]:
    """Scans that must differ but are one file or hold the same image.

    Within a participant the baseline and challenge scans, and across participants every scan,
    are compared by file identity, then by the SHA-256 of their voxel values (or, when the
    data were not read, of their files), computed once during validation.

    Returns
    -------
    list of str
        One line per pair of identical scans.
    """
    problems: list[str] = []
    by_digest: dict[str, list[PetScan]] = {}
    for participant in participants:
        for scan in (participant.baseline, participant.challenge):
            digest = scan.data_sha256 or scan.sha256
            if digest is not None:
                by_digest.setdefault(digest, []).append(scan)
    for digest, scans in by_digest.items():
        for i, first in enumerate(scans):
            for second in scans[i + 1 :]:
                same_file = first.path.resolve() == second.path.resolve() or (
                    first.path.exists() and os.path.samefile(first.path, second.path)
                )
                how = "are the same file" if same_file else "hold the same image"
                problems.append(
                    messages.identical_images(
                        _label(first),
                        _label(second),
                        how,
                        digest,
                        within=first.subject == second.subject,
                    )
                )
    return problems


def discover_study(
    bids_dir: Path | str,
    *,
    participant_labels: Iterable[str] | None = None,
    baseline_session: str | None = None,
    challenge_session: str | None = None,
    pet_filters: Mapping[str, object] | None = None,
    t1w_filters: Mapping[str, object] | None = None,
    skip_incomplete: bool = False,
    check_data: bool = True,
    exclude_bad_frames: bool = False,
    database_path: Path | None = None,
) -> Study:
    """Find and validate the baseline and challenge PET scans of every selected participant.

    Parameters
    ----------
    bids_dir : Path or str
        BIDS dataset root (read only).
    participant_labels : iterable of str, optional
        Labels to process (a leading ``sub-`` is stripped); all participants when None.
    baseline_session, challenge_session : str, optional
        Session labels (``--baseline-session``/``--challenge-session``); see :func:`map_sessions`
        for the defaults.
    pet_filters, t1w_filters : mapping, optional
        Filename entities a PET scan / T1w must have when a session holds several, keys as in
        file names (``trc``, ``rec``, ``run``, ``task``, ``acq``), e.g. ``{"run": 2}`` or
        ``{"rec": ("acdyn", "ac")}``; None as a value: the entity must be absent (see
        :mod:`bids_app.bidsio.filters`).
    skip_incomplete : bool
        Leave out participants lacking a session (recorded in :attr:`Study.skipped`) instead of
        reporting them as problems; it is still an error when no participant is left.
    check_data : bool
        Also read every image frame by frame (integrity, per-frame signal, voxel hash).
    exclude_bad_frames : bool
        Leave unusable frames out of the analysis (recorded in :attr:`PetScan.excluded_frames`
        and its notes) instead of reporting them as problems.
    database_path : Path, optional
        pybids index folder (see :func:`build_layout`).

    Returns
    -------
    Study

    Raises
    ------
    ValidationError
        Listing every problem found (one line each).
    """
    root = Path(bids_dir).expanduser().resolve()
    if not root.is_dir():
        raise ValidationError([messages.bids_dir_missing(root)])
    problems = check_dataset_description(root)
    layout = build_layout(root, database_path=database_path)
    available = sorted(layout.get_subjects())
    if not available:
        raise ValidationError([*problems, messages.no_participants(root)])
    selected, label_problems = _select_participants(available, participant_labels)
    problems += label_problems
    sessions_by_subject = {sub: _pet_sessions(layout, sub) for sub in selected}
    try:
        mapping = map_sessions(
            layout,
            sessions_by_subject,
            baseline_session=baseline_session,
            challenge_session=challenge_session,
        )
    except ValidationError as exc:
        raise ValidationError([*problems, *exc.problems]) from None
    selection = _Selection(
        as_filters(pet_filters), as_filters(t1w_filters), check_data, exclude_bad_frames
    )
    participants: list[ParticipantInput] = []
    skipped: list[tuple[str, str]] = []
    for subject in selected:
        participant, found, incomplete = _collect_participant(
            layout,
            subject,
            mapping.pairs[subject],
            sessions_by_subject[subject],
            selection,
        )
        if incomplete is not None and skip_incomplete:
            logger.warning("skipping sub-%s: %s", subject, incomplete)
            skipped.append((subject, incomplete))
        elif participant is None:
            problems += found
        else:
            participants.append(participant)
    problems += duplicate_scans(participants)
    tracers = {p.subject: p.baseline.tracer for p in participants}
    if len({t.strip().casefold() for t in tracers.values()}) > 1:
        problems.append(messages.different_tracers_across(tracers))
    if not problems and not participants and skipped:
        problems = [reason for _, reason in skipped]
    if problems:
        raise ValidationError(problems)
    pairs = {mapping.pairs[p.subject] for p in participants} or set(mapping.pairs.values())
    base, chal = next(iter(pairs)) if len(pairs) == 1 else (None, None)
    logger.info(
        "found %d participant(s) with baseline and challenge PET (%s); %d skipped",
        len(participants),
        mapping.source,
        len(skipped),
    )
    return Study(
        bids_dir=root,
        participants=participants,
        baseline_session=base,
        challenge_session=chal,
        session_source=mapping.source,
        tracer=next(iter(tracers.values()), None),
        skipped=skipped,
    )


# ----------------------------------------------------------------------------- output dir
def check_output_dir(bids_dir: Path | str, output_dir: Path | str) -> Path:
    """Check OUTPUT_DIR: not BIDS_DIR, not inside it, not containing it, creatable and writable.

    Nothing is created.

    Parameters
    ----------
    bids_dir, output_dir : Path or str

    Returns
    -------
    Path
        The resolved output directory.

    Raises
    ------
    InputError
        With a message that says how to fix it.
    """
    bids = Path(bids_dir).expanduser().resolve()
    out = Path(output_dir).expanduser().resolve()
    if out == bids:
        raise InputError(messages.output_is_bids_dir(out))
    if out.is_relative_to(bids):
        raise InputError(messages.output_inside_bids_dir(out, bids))
    if bids.is_relative_to(out):
        raise InputError(messages.bids_dir_inside_output(out, bids))
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(messages.output_not_writable(out, existing, "is a file, not a folder"))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(messages.output_not_writable(out, existing, "is not writable"))
    return out
