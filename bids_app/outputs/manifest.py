"""Participant manifests: what a participant run produced, from what, and how.

The participant level writes ``logs/sub-<p>_outputs.json`` last, after every output is in place:

* ``files``: every output file with its size (the completeness check);
* ``sessions``: per role (``baseline``/``challenge``) the session label and its output files
  (what the group level reads);
* ``run_key``: a hash of the input files' contents, the options that shape the results and the
  app version; a rerun whose key differs recomputes instead of keeping stale results;
* ``inputs``, ``options``, ``version``: the parts of that key, to say *what* changed;
* ``qc``: the participant's quality-control verdict and its reasons.

:func:`collect_participants` reads them back for the group level, together with
``logs/summary.tsv``, and says why any participant is left out (:class:`Exclusion`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import nibabel as nib
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from bids_app.errors import InputError
from bids_app.outputs.io import jsonable, remove_leftover_temporaries, write_json
from bids_app.outputs.names import (
    GROUP_MEASURES,
    MANIFEST_SUFFIX,
    ROLES,
    logs_dir,
    manifest_path,
    participant_dir,
    summary_path,
)

LOGGER = logging.getLogger(__name__)

_HASH_CHUNK_BYTES = 1 << 20


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's content (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def run_key(inputs: Mapping[str, str], options: Mapping[str, Any], version: str) -> str:
    """Hash of what determines a participant's results (inputs' hashes, options, version)."""
    payload = json.dumps(
        {"inputs": dict(inputs), "options": jsonable(options), "version": version},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Manifest:
    """The content of ``logs/sub-<p>_outputs.json``.

    Attributes
    ----------
    subject : str
        Label without ``sub-``.
    version : str
        bids_app version that wrote the outputs.
    run_key : str
        :func:`run_key` of the run.
    inputs : dict of str to str
        Input file (relative to the BIDS root) -> SHA-256.
    options : dict
        The options that shape participant results.
    sessions : dict
        Role -> ``{"session": label, <kind>: path relative to OUTPUT_DIR, ...}``.
    files : dict of str to int
        Every output file (relative to OUTPUT_DIR) -> size in bytes.
    qc : dict
        Quality-control verdict (``{"status": "pass"|"warn"|"fail", "reasons": [...], ...}``).
    """

    subject: str
    version: str
    run_key: str
    inputs: dict[str, str]
    options: dict[str, Any]
    sessions: dict[str, dict[str, str]]
    files: dict[str, int]
    qc: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON document."""
        return {
            "participant_id": f"sub-{self.subject}",
            "version": self.version,
            "run_key": self.run_key,
            "inputs": self.inputs,
            "options": self.options,
            "sessions": self.sessions,
            "files": self.files,
            "qc": self.qc,
        }


def write_manifest(output_dir: Path, manifest: Manifest) -> Path:
    """Write the manifest (the last file of a participant run)."""
    path = manifest_path(output_dir, manifest.subject)
    write_json(path, manifest.to_json())
    return path


def read_manifest(path: Path) -> Manifest:
    """Read a manifest.

    Raises
    ------
    InputError
        When it is unreadable or lacks the fields every manifest has.
    """
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
        return Manifest(
            subject=str(content["participant_id"]).removeprefix("sub-"),
            version=str(content["version"]),
            run_key=str(content.get("run_key", "")),
            inputs=dict(content.get("inputs", {})),
            options=dict(content.get("options", {})),
            sessions={k: dict(v) for k, v in content["sessions"].items()},
            files={k: int(v) for k, v in content["files"].items()},
            qc=dict(content.get("qc", {})),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        msg = f"its manifest {path} is unreadable ({exc}); re-run the participant level"
        raise InputError(msg) from exc


def missing_files(output_dir: Path, manifest: Manifest) -> list[str]:
    """Listed outputs that are absent or whose size changed."""
    return [
        rel
        for rel, size in manifest.files.items()
        if not ((output_dir / rel).is_file() and (output_dir / rel).stat().st_size == size)
    ]


def existing_manifest(output_dir: Path, subject: str) -> Manifest | None:
    """The participant's manifest when it exists and is readable, else None."""
    path = manifest_path(output_dir, subject)
    if not path.is_file():
        return None
    try:
        return read_manifest(path)
    except InputError:
        return None


def remove_outputs(output_dir: Path, manifest: Manifest) -> None:
    """Delete a participant's previous outputs and manifest (before publishing new ones)."""
    manifest_path(output_dir, manifest.subject).unlink(missing_ok=True)
    for rel in manifest.files:
        (output_dir / rel).unlink(missing_ok=True)


def remove_participant_leftovers(output_dir: Path, subject: str) -> list[Path]:
    """Delete the temporary files a killed earlier run of this participant left under OUTPUT_DIR.

    Looks in the participant's folder, ``logs/`` and OUTPUT_DIR itself (the report), and only at
    the temporary names of this participant's files.

    Returns
    -------
    list of Path
        The files removed.
    """
    stem = f"sub-{subject}"
    return [
        *remove_leftover_temporaries(participant_dir(output_dir, subject), stem, recursive=True),
        *remove_leftover_temporaries(logs_dir(output_dir), stem),
        *remove_leftover_temporaries(output_dir, stem),
    ]


def describe_changes(
    old: Manifest, inputs: Mapping[str, str], options: Mapping[str, Any], version: str
) -> list[str]:
    """What differs between a previous run and this one (inputs, options, version)."""
    changes: list[str] = []
    if old.version != version:
        changes.append(f"bids_app version {old.version} -> {version}")
    for rel in sorted(set(old.inputs) | set(inputs)):
        if old.inputs.get(rel) != inputs.get(rel):
            state = "new" if rel not in old.inputs else "gone" if rel not in inputs else "changed"
            changes.append(f"input {rel} {state}")
    new_options = jsonable(options)
    for key in sorted(set(old.options) | set(new_options)):
        if old.options.get(key) != new_options.get(key):
            changes.append(f"option {key}: {old.options.get(key)!r} -> {new_options.get(key)!r}")
    if not changes and old.run_key != run_key(inputs, options, version):
        changes.append("run key differs (manifest written by another version)")
    return changes


# --------------------------------------------------------------------------- group side
@dataclass(frozen=True)
class ParticipantDerivatives:
    """The participant-level outputs of one participant, as the group level reads them.

    Attributes
    ----------
    subject : str
        Label without ``sub-``.
    sessions : dict
        Role (``baseline``/``challenge``) -> session label.
    maps : dict
        ``(measure, role)`` -> absolute path of the parametric map.
    kinpar : dict
        Role -> absolute path of the ROI ``kinpar.tsv``.
    manifest : Manifest
        The manifest they were read from.
    """

    subject: str
    sessions: dict[str, str]
    maps: dict[tuple[str, str], Path]
    kinpar: dict[str, Path]
    manifest: Manifest


#: Why the group level leaves a participant out: its participant level failed, its outputs
#: are incomplete, it was never processed, or its quality control failed.
ExclusionStatus = Literal["failed", "incomplete", "not processed", "qc fail"]


@dataclass(frozen=True)
class Exclusion:
    """A participant the group level leaves out, and why.

    Attributes
    ----------
    subject : str
        Label without ``sub-``.
    status : {"failed", "incomplete", "not processed", "qc fail"}
        The kind of reason.
    reason : str
        What happened, from the participant's ``logs/summary.tsv`` row or manifest.
    """

    subject: str
    status: ExclusionStatus
    reason: str

    def describe(self) -> str:
        """One line: ``sub-<label> (<status>): <reason>``."""
        return f"sub-{self.subject} ({self.status}): {self.reason}"

    def to_json(self) -> dict[str, str]:
        """JSON form (``group_parameters.json``)."""
        return {
            "participant_id": f"sub-{self.subject}",
            "status": self.status,
            "reason": self.reason,
        }


def read_summary_status(output_dir: Path) -> dict[str, tuple[str, str]]:
    """The last participant-level status of each participant in ``logs/summary.tsv``.

    Parameters
    ----------
    output_dir : Path
        OUTPUT_DIR.

    Returns
    -------
    dict
        Label (without ``sub-``) -> ``(status, message)``; a participant with any ``failed``
        session row is ``failed``. Empty when the summary is absent; an unreadable summary is
        logged and treated as absent (the manifests still decide who is complete).
    """
    path = summary_path(output_dir)
    if not path.is_file():
        return {}
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        rows = table[["participant_id", "status", "message"]].itertuples(index=False)
        status: dict[str, tuple[str, str]] = {}
        for participant_id, state, message in rows:
            subject = str(participant_id).removeprefix("sub-")
            if subject not in status or state == "failed":
                status[subject] = (str(state), str(message))
    except (OSError, ValueError, KeyError) as exc:
        LOGGER.warning(
            "%s is unreadable (%s); participant statuses are taken from the manifests only",
            path,
            exc,
        )
        return {}
    return status


def collect_participants(
    output_dir: Path,
    participant_labels: Sequence[str] | None = None,
    expected: Iterable[str] = (),
) -> tuple[list[ParticipantDerivatives], list[Exclusion]]:
    """Find every participant whose participant-level outputs are complete and usable.

    A participant is left out (with the reason) when its last participant-level run failed
    (``logs/summary.tsv``; outputs present from an earlier run are not used either), when its
    outputs are incomplete or its manifest unreadable, or when it is ``expected`` but has no
    outputs at all. Quality control is not judged here (see the group level's
    ``--qc-fail``).

    Parameters
    ----------
    output_dir : Path
        The OUTPUT_DIR of the participant level.
    participant_labels : sequence of str, optional
        Restrict to these participants.
    expected : iterable of str
        Participants that should have outputs (e.g. those of the BIDS dataset); the ones
        without any are reported as ``"not processed"``.

    Returns
    -------
    included : list of ParticipantDerivatives
        Complete participants, sorted by label.
    excluded : list of Exclusion
        Participants left out, sorted by label.
    """
    manifests = {
        path.name.removesuffix(MANIFEST_SUFFIX).removeprefix("sub-"): path
        for path in logs_dir(output_dir).glob(f"sub-*{MANIFEST_SUFFIX}")
    }
    summary = read_summary_status(output_dir)
    subjects = set(manifests) | set(summary) | set(expected) | set(participant_labels or ())
    if participant_labels:
        subjects &= set(participant_labels)
    included: list[ParticipantDerivatives] = []
    excluded: list[Exclusion] = []
    for subject in sorted(subjects):
        status, message = summary.get(subject, ("", ""))
        path = manifests.get(subject)
        if status == "failed":
            earlier = (
                "; its outputs in OUTPUT_DIR were not used (they may be from an earlier run): "
                f"re-run the participant level for sub-{subject}"
                if path is not None
                else ""
            )
            excluded.append(Exclusion(subject, "failed", (message or "failed") + earlier))
        elif path is None and status:
            reason = (
                f"logs/summary.tsv lists it as {status!r} but its manifest "
                f"{manifest_path(output_dir, subject).name} is missing; re-run the "
                "participant level"
            )
            excluded.append(Exclusion(subject, "incomplete", reason))
        elif path is None:
            reason = "no participant-level outputs; run the participant level for it"
            excluded.append(Exclusion(subject, "not processed", reason))
        else:
            try:
                included.append(_derivatives(output_dir, read_manifest(path)))
            except InputError as exc:
                excluded.append(Exclusion(subject, "incomplete", str(exc)))
    for exclusion in excluded:
        LOGGER.warning("left out of the group analysis: %s", exclusion.describe())
    return included, excluded


def _derivatives(output_dir: Path, manifest: Manifest) -> ParticipantDerivatives:
    missing = missing_files(output_dir, manifest)
    if missing:
        msg = (
            f"{len(missing)} participant-level output(s) are missing or changed (e.g. "
            f"{missing[0]}); re-run the participant level with --overwrite"
        )
        raise InputError(msg)
    sessions = manifest.sessions
    if set(sessions) != set(ROLES):
        msg = f"its manifest names roles {sorted(sessions)}; expected {list(ROLES)}"
        raise InputError(msg)
    try:
        maps: dict[tuple[str, str], Path] = {
            (measure, role): output_dir / sessions[role][measure]
            for measure in GROUP_MEASURES
            for role in ROLES
        }
        kinpar: dict[str, Path] = {role: output_dir / sessions[role]["kinpar"] for role in ROLES}
        labels: dict[str, str] = {role: sessions[role]["session"] for role in ROLES}
    except KeyError as exc:
        msg = f"its manifest lacks the {exc} output; re-run the participant level"
        raise InputError(msg) from exc
    return ParticipantDerivatives(
        subject=manifest.subject, sessions=labels, maps=maps, kinpar=kinpar, manifest=manifest
    )


def _load_map(path: Path) -> nib.Nifti1Image:
    """Load one participant map (``*_mimap.nii.gz``), the NIfTI image the participant level wrote.

    Raises
    ------
    InputError
        When the file is not a NIfTI image.
    """
    img = nib.load(path)
    if not isinstance(img, nib.Nifti1Image):
        msg = (
            f"{path} is not a NIfTI image ({type(img).__name__}); participant maps are written as "
            "NIfTI (.nii.gz). Re-run the participant level for this participant."
        )
        raise InputError(msg)
    return img


def load_maps(
    participants: Sequence[ParticipantDerivatives], measure: str
) -> tuple[NDArray[np.float32], NDArray[np.float32], nib.Nifti1Image]:
    """Stack one measure's maps of every participant.

    Returns
    -------
    baseline, challenge : (n_participants, X, Y, Z) float32 ndarray
        The maps, NaN where the participant level wrote NaN.
    reference : nibabel image
        The first map (its affine and grid are the group grid).

    Raises
    ------
    InputError
        When grids differ between participants.
    """
    first = _load_map(participants[0].maps[(measure, ROLES[0])])
    shape, affine = first.shape, first.affine
    stacks: dict[str, list[NDArray[np.float32]]] = {role: [] for role in ROLES}
    for p in participants:
        for role in ROLES:
            path = p.maps[(measure, role)]
            img = _load_map(path)
            if img.shape != shape or not np.allclose(img.affine, affine, atol=1e-3):
                msg = (
                    f"{path.name} is on a different grid ({img.shape}) than {first.get_filename()}"
                    f" ({shape}); all participant maps must share the template grid. Re-run the "
                    "participant level with the same version of bids_app."
                )
                raise InputError(msg)
            stacks[role].append(np.asarray(img.dataobj, dtype=np.float32))
    return np.stack(stacks["baseline"]), np.stack(stacks["challenge"]), first


def roi_table(participants: Sequence[ParticipantDerivatives]) -> pd.DataFrame:
    """Long ROI table: participant_id, measure, roi, baseline, challenge (from ``kinpar.tsv``)."""
    frames = []
    for p in participants:
        per_role = {
            role: pd.read_csv(p.kinpar[role], sep="\t", na_values=["n/a"]).set_index("roi")
            for role in ROLES
        }
        for measure in GROUP_MEASURES:
            frame = pd.DataFrame(
                {
                    "baseline": per_role["baseline"][measure],
                    "challenge": per_role["challenge"][measure],
                }
            )
            frame.index.name = "roi"
            frame = frame.reset_index()
            frame.insert(0, "measure", measure)
            frame.insert(0, "participant_id", f"sub-{p.subject}")
            frames.append(frame)
    columns = ["participant_id", "measure", "roi", "baseline", "challenge"]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]
