"""PET-BIDS input discovery and validation: the only module of the app that uses pybids.

One :class:`bids.BIDSLayout` is built per run (:func:`build_layout`; ``validate=False`` because the
official validator runs separately, see :mod:`bids_app.bidsio.validator`; ``derivatives/`` and
``sourcedata/`` are not indexed; sidecar metadata is not indexed either: the few sidecars needed
are read, and checked, by :mod:`bids_app.bidsio.metadata`).

:func:`discover_study` maps each selected participant's baseline and challenge sessions, finds one
PET scan per session and its T1w, and checks everything cheap (and, by default, the image data)
before any heavy work, raising one :class:`~bids_app.errors.ValidationError` that lists *all*
problems found.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import nibabel as nib
import numpy as np
from bids import BIDSLayout, BIDSLayoutIndexer

from bids_app.bidsio import messages
from bids_app.bidsio.metadata import (
    IMAGE_READ_ERRORS,
    check_frame_count,
    check_image_data,
    check_pet_sidecar,
    frame_timing_from_metadata,
    normalise_units,
    read_image_header,
    read_sidecar,
)
from bids_app.errors import InputError, MetadataError, ValidationError
from bids_app.timing import FrameTiming

logger = logging.getLogger(__name__)

SessionSource = Literal["flags", "default sal/nal", "sessions.tsv"]

#: Default session labels of the paper's design (saline placebo, naloxone challenge).
DEFAULT_BASELINE_SESSION = "sal"
DEFAULT_CHALLENGE_SESSION = "nal"

#: Top-level folders never indexed (besides hidden files): not raw data, possibly huge.
IGNORED_FOLDERS: tuple[str, ...] = ("derivatives", "sourcedata", "code", "stimuli", "models")

#: pybids entity names -> the BIDS filename keys used in :attr:`PetScan.entities` and filters.
ENTITY_KEYS: dict[str, str] = {
    "task": "task",
    "tracer": "trc",
    "reconstruction": "rec",
    "run": "run",
    "acquisition": "acq",
    "ceagent": "ce",
}
#: Shortest frame schedule accepted for reference-tissue modelling, s (a shorter one is most
#: often a schedule written in minutes).
MIN_SCAN_DURATION_S = 300.0
#: Tolerance when comparing the first frame start with ``InjectionStart``, s (rounding).
INJECTION_TOLERANCE_S = 1e-3
_NOT_SCAN_ENTITIES = frozenset({"subject", "session", "suffix", "extension", "datatype"})
_IMAGE_EXTENSIONS = (".nii.gz", ".nii")


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class PetScan:
    """One validated dynamic PET scan.

    Attributes
    ----------
    subject, session : str
        Labels without the ``sub-``/``ses-`` prefixes.
    path, sidecar_path : Path
        The ``*_pet.nii[.gz]`` image and its ``*_pet.json`` sidecar.
    entities : dict of str to str
        The other filename entities, keyed as in file names (``trc``, ``rec``, ``run``, ``task``).
    metadata : dict
        The parsed sidecar.
    n_frames : int
        Number of frames (volumes).
    timing : FrameTiming
        Frame starts and ends, minutes from TimeZero (converted once, from the sidecar seconds).
    shape : tuple of int
        Image shape ``(x, y, z, n_frames)``.
    voxel_size_mm : tuple of float
        Spatial voxel size, mm.
    units : str
        Image units, canonical spelling (e.g. ``"kBq/mL"``).
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
    """
    bids_dir = Path(bids_dir)
    ignore: list[Any] = [bids_dir / name for name in IGNORED_FOLDERS]
    ignore.append(re.compile(r"^\."))
    indexer = BIDSLayoutIndexer(validate=False, ignore=ignore, index_metadata=False)
    layout = BIDSLayout(
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
        description = read_sidecar(path, "dataset")
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
    ``challenge``) of ``sub-<label>_sessions.tsv``.

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
        One problem: only one flag, equal flags, or an ambiguous design (it lists the sessions
        found and the flags to pass).
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
        return SessionMapping({sub: (base, chal) for sub in sessions_by_subject}, "flags")
    defaults = {DEFAULT_BASELINE_SESSION, DEFAULT_CHALLENGE_SESSION}
    if any(defaults & set(ses) for ses in sessions_by_subject.values()):
        pair = (DEFAULT_BASELINE_SESSION, DEFAULT_CHALLENGE_SESSION)
        return SessionMapping({sub: pair for sub in sessions_by_subject}, "default sal/nal")
    pairs: dict[str, tuple[str, str]] = {}
    reasons: list[str] = []
    for subject, sessions in sorted(sessions_by_subject.items()):
        pair, reason = _pair_from_sessions_tsv(layout, subject, sessions)
        if pair is None:
            reasons.append(reason)
        else:
            pairs[subject] = pair
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
    found = layout.get(
        subject=subject, suffix="sessions", extension=".tsv", return_type="filename"
    )
    if not found:
        return None, f"no sub-{subject}_sessions.tsv"
    path = Path(found[0])
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return None, f"{path.name} unreadable ({exc})"
    if not rows or "session_id" not in rows[0] or "condition" not in rows[0]:
        return None, f"{path.name} has no 'session_id' and 'condition' columns"
    by_condition: dict[str, list[str]] = {}
    for row in rows:
        ses = (row.get("session_id") or "").strip().removeprefix("ses-")
        cond = (row.get("condition") or "").strip().lower()
        if ses in sessions:
            by_condition.setdefault(cond, []).append(ses)
    base, chal = by_condition.get("baseline", []), by_condition.get("challenge", [])
    if len(base) != 1 or len(chal) != 1:
        shown = {k: v for k, v in by_condition.items()}
        return None, (
            f"{path.name} 'condition' must give one 'baseline' and one 'challenge' session of "
            f"{sorted(sessions)}; found {shown}"
        )
    return (base[0], chal[0]), ""


# ----------------------------------------------------------------------------- scans
@dataclass(frozen=True)
class _Candidate:
    """A PET image and/or sidecar sharing one set of entities."""

    entities: dict[str, str]
    image: Path | None
    sidecar: Path | None

    @property
    def name(self) -> str:
        path = self.image if self.image is not None else self.sidecar
        return path.name if path is not None else "?"


def _find_pet_candidates(layout: BIDSLayout, subject: str, session: str) -> list[_Candidate]:
    """Group a session's ``*_pet.nii[.gz]`` and ``*_pet.json`` files by their entities."""
    files = layout.get(
        subject=subject,
        session=session,
        datatype="pet",
        suffix="pet",
        extension=[*_IMAGE_EXTENSIONS, ".json"],
    )
    groups: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for bids_file in files:
        raw = bids_file.get_entities()
        entities = {
            ENTITY_KEYS.get(k, k): str(v) for k, v in raw.items() if k not in _NOT_SCAN_ENTITIES
        }
        key = tuple(sorted(entities.items()))
        group = groups.setdefault(key, {"entities": entities, "image": None, "sidecar": None})
        path = Path(bids_file.path)
        if raw.get("extension") == ".json":
            group["sidecar"] = path
        elif group["image"] is None or raw.get("extension") == ".nii.gz":
            group["image"] = path
    return [
        _Candidate(g["entities"], g["image"], g["sidecar"])
        for _, g in sorted(groups.items(), key=lambda item: item[0])
    ]


def _select_candidate(
    candidates: list[_Candidate],
    pet_filters: Mapping[str, str],
    prefix: str,
    folder: Path,
) -> tuple[_Candidate | None, list[str]]:
    """Apply the entity filters; exactly one scan must remain."""
    kept = [
        c for c in candidates if all(c.entities.get(k) == str(v) for k, v in pet_filters.items())
    ]
    if not kept:
        return None, [messages.no_pet(prefix, folder)]
    if len(kept) > 1:
        return None, [messages.several_pet(prefix, [c.name for c in kept], pet_filters)]
    return kept[0], []


def _expected_image(sidecar: Path) -> Path:
    return sidecar.with_name(sidecar.name.removesuffix(".json") + ".nii.gz")


def _expected_sidecar(image: Path) -> Path:
    stem = image.name
    for ext in _IMAGE_EXTENSIONS:
        stem = stem.removesuffix(ext)
    return image.with_name(stem + ".json")


def load_pet_scan(
    subject: str, session: str, candidate: _Candidate, *, check_data: bool = True
) -> tuple[PetScan | None, list[str]]:
    """Read and check one PET scan (sidecar, header, optionally the data).

    Returns
    -------
    scan : PetScan or None
        None when any problem was found.
    problems : list of str
    """
    prefix = messages.where(subject, session)
    problems: list[str] = []
    metadata: dict[str, Any] | None = None
    if candidate.sidecar is None:
        if candidate.image is not None:
            problems.append(
                messages.missing_sidecar(
                    prefix, candidate.image, _expected_sidecar(candidate.image)
                )
            )
    else:
        try:
            metadata = read_sidecar(candidate.sidecar, prefix)
        except MetadataError as exc:
            problems.append(str(exc))
        else:
            problems += check_pet_sidecar(metadata, candidate.sidecar, prefix)
    if candidate.image is None:
        if candidate.sidecar is not None:
            problems.append(
                messages.missing_image(
                    prefix, candidate.sidecar, _expected_image(candidate.sidecar)
                )
            )
        return None, problems
    header, header_problems = read_image_header(candidate.image, prefix)
    problems += header_problems
    if header is not None and metadata is not None and candidate.sidecar is not None:
        problems += check_frame_count(
            metadata, candidate.sidecar, prefix, candidate.image, header.n_frames
        )
    if header is not None and not header_problems and check_data:
        problems += check_image_data(candidate.image, prefix)
    if not problems and metadata is not None and candidate.sidecar is not None:
        problems += check_modelling_schedule(metadata, candidate.sidecar, prefix)
    if problems or header is None or metadata is None or candidate.sidecar is None:
        return None, problems
    units = normalise_units(metadata["Units"])
    scan = PetScan(
        subject=subject,
        session=session,
        path=candidate.image,
        sidecar_path=candidate.sidecar,
        entities=dict(candidate.entities),
        metadata=metadata,
        n_frames=header.n_frames,
        timing=frame_timing_from_metadata(metadata, candidate.sidecar),
        shape=header.shape,
        voxel_size_mm=header.voxel_size_mm,
        units=units if units is not None else str(metadata["Units"]),
    )
    return scan, []


def check_modelling_schedule(metadata: Mapping[str, Any], sidecar: Path, prefix: str) -> list[str]:
    """App-specific checks of a valid PET-BIDS schedule: long enough, frames after injection.

    Both are legal PET-BIDS, so they are not part of :func:`check_pet_sidecar`; but a
    reference-tissue model needs at least :data:`MIN_SCAN_DURATION_S` of data (a shorter
    schedule is most often written in minutes) and frames from the injection on (the
    participant pipeline would otherwise stop after registration).

    Parameters
    ----------
    metadata : mapping
        A sidecar that passed :func:`check_pet_sidecar`.
    sidecar : Path
        Its path (named in messages).
    prefix : str
        Message prefix.

    Returns
    -------
    list of str
        One line per problem.
    """
    start_s = [float(v) for v in metadata["FrameTimesStart"]]
    duration_s = [float(v) for v in metadata["FrameDuration"]]
    problems: list[str] = []
    total_s = max(s + d for s, d in zip(start_s, duration_s, strict=True)) - min(start_s)
    if total_s < MIN_SCAN_DURATION_S:
        problems.append(messages.scan_too_short(prefix, total_s, MIN_SCAN_DURATION_S, sidecar))
    injection_s = metadata.get("InjectionStart", 0)
    if (
        isinstance(injection_s, (int, float))
        and not isinstance(injection_s, bool)
        and start_s[0] < float(injection_s) - INJECTION_TOLERANCE_S
    ):
        problems.append(
            messages.frames_before_injection(prefix, start_s[0], float(injection_s), sidecar)
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
        img = nib.load(image)
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


def find_t1w(layout: BIDSLayout, subject: str, baseline_session: str) -> Path | None:
    """Return the participant's T1w: a session-less one, else the baseline session's, else None."""
    files = layout.get(
        subject=subject, suffix="T1w", extension=list(_IMAGE_EXTENSIONS), return_type="object"
    )
    sessionless = sorted(Path(f.path) for f in files if "session" not in f.get_entities())
    in_baseline = sorted(
        Path(f.path) for f in files if f.get_entities().get("session") == baseline_session
    )
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


def _collect_participant(
    layout: BIDSLayout,
    subject: str,
    pair: tuple[str, str],
    sessions: Sequence[str],
    pet_filters: Mapping[str, str],
    check_data: bool,
) -> tuple[ParticipantInput | None, list[str], str | None]:
    """Check one participant; return (input or None, problems, incomplete-reason or None)."""
    absent = [
        messages.missing_session(subject, ses, role, sessions)
        for ses, role in zip(pair, ("baseline", "challenge"), strict=True)
        if ses not in sessions
    ]
    if absent:
        return None, absent, " ".join(absent)
    problems: list[str] = []
    scans: list[PetScan | None] = []
    for ses in pair:
        prefix = messages.where(subject, ses)
        folder = Path(layout.root) / f"sub-{subject}" / f"ses-{ses}" / "pet"
        candidate, found = _select_candidate(
            _find_pet_candidates(layout, subject, ses), pet_filters, prefix, folder
        )
        problems += found
        scan = None
        if candidate is not None:
            scan, scan_problems = load_pet_scan(subject, ses, candidate, check_data=check_data)
            problems += scan_problems
        scans.append(scan)
    baseline, challenge = scans
    if baseline is not None and challenge is not None:
        if baseline.tracer.strip().casefold() != challenge.tracer.strip().casefold():
            tracers = {baseline.session: baseline.tracer, challenge.session: challenge.tracer}
            problems.append(messages.different_tracers(subject, tracers))
    if problems or baseline is None or challenge is None:
        return None, problems, None
    t1w = find_t1w(layout, subject, pair[0])
    if t1w is not None and check_data:
        t1w_problems = check_t1w(t1w, messages.where(subject))
        if t1w_problems:
            return None, t1w_problems, None
    return ParticipantInput(subject, baseline, challenge, t1w), [], None


def discover_study(
    bids_dir: Path | str,
    *,
    participant_labels: Iterable[str] | None = None,
    baseline_session: str | None = None,
    challenge_session: str | None = None,
    pet_filters: Mapping[str, str] | None = None,
    skip_incomplete: bool = False,
    check_data: bool = True,
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
    pet_filters : mapping of str to str, optional
        Filename entities a PET scan must have, e.g. ``{"rec": "acdyn"}``, when a session holds
        several scans (keys as in file names: ``trc``, ``rec``, ``run``, ``task``).
    skip_incomplete : bool
        Leave out participants lacking a session (recorded in :attr:`Study.skipped`) instead of
        reporting them as problems.
    check_data : bool
        Also read every image frame by frame (finite values, not all zero, intact file).
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
    participants: list[ParticipantInput] = []
    skipped: list[tuple[str, str]] = []
    for subject in selected:
        participant, found, incomplete = _collect_participant(
            layout,
            subject,
            mapping.pairs[subject],
            sessions_by_subject[subject],
            dict(pet_filters or {}),
            check_data,
        )
        if incomplete is not None and skip_incomplete:
            logger.warning("skipping sub-%s: %s", subject, incomplete)
            skipped.append((subject, incomplete))
        elif participant is None:
            problems += found
        else:
            participants.append(participant)
    tracers = {p.subject: p.baseline.tracer for p in participants}
    if len({t.strip().casefold() for t in tracers.values()}) > 1:
        problems.append(messages.different_tracers_across(tracers))
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
