"""Read what the participant level wrote into tidy inputs for the group level.

The group level reads only OUTPUT_DIR (the participant manifests, maps and ROI tables) plus the
BIDS ``participants.tsv`` and ``phenotype/``; it never re-runs participant work.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from bids_app.errors import InputError

LOGGER = logging.getLogger(__name__)

ROLES = ("baseline", "challenge")
MEASURES = ("BPND", "R1")
MANIFEST_GLOB = "sub-*_outputs.json"


@dataclass(frozen=True)
class ParticipantDerivatives:
    """The participant-level outputs of one participant.

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
    """

    subject: str
    sessions: dict[str, str]
    maps: dict[tuple[str, str], Path]
    kinpar: dict[str, Path]


def collect_participants(
    output_dir: Path, participant_labels: tuple[str, ...] | None = None
) -> tuple[list[ParticipantDerivatives], list[tuple[str, str]]]:
    """Find every participant whose participant-level outputs are complete.

    Parameters
    ----------
    output_dir : Path
        The OUTPUT_DIR of the participant level.
    participant_labels : tuple of str, optional
        Restrict to these participants.

    Returns
    -------
    included : list of ParticipantDerivatives
        Complete participants, sorted by label.
    excluded : list of (str, str)
        ``(participant, reason)`` for participants found but not usable.
    """
    manifests = sorted((output_dir / "logs").glob(MANIFEST_GLOB))
    included: list[ParticipantDerivatives] = []
    excluded: list[tuple[str, str]] = []
    for manifest in manifests:
        subject = manifest.name.split("_")[0].removeprefix("sub-")
        if participant_labels and subject not in participant_labels:
            continue
        try:
            included.append(_read_manifest(output_dir, manifest, subject))
        except InputError as exc:
            excluded.append((subject, str(exc)))
    if participant_labels:
        found = {p.subject for p in included} | {s for s, _ in excluded}
        for label in participant_labels:
            if label not in found:
                excluded.append((label, "no participant-level outputs found"))
    for subject, reason in excluded:
        LOGGER.warning("sub-%s left out of the group analysis: %s", subject, reason)
    return included, excluded


def _read_manifest(output_dir: Path, manifest: Path, subject: str) -> ParticipantDerivatives:
    try:
        content = json.loads(manifest.read_text(encoding="utf-8"))
        sessions = content["sessions"]
        sizes = content["files"]
    except (ValueError, KeyError) as exc:
        msg = f"its manifest {manifest} is unreadable ({exc}); re-run the participant level"
        raise InputError(msg) from exc
    missing = [rel for rel, size in sizes.items() if not _same_size(output_dir / rel, size)]
    if missing:
        msg = (
            f"{len(missing)} participant-level output(s) are missing or changed (e.g. "
            f"{missing[0]}); re-run the participant level with --overwrite"
        )
        raise InputError(msg)
    if set(sessions) != set(ROLES):
        msg = f"its manifest names roles {sorted(sessions)}; expected {list(ROLES)}"
        raise InputError(msg)
    maps = {
        (measure, role): output_dir / sessions[role][measure]
        for measure in MEASURES
        for role in ROLES
    }
    kinpar = {role: output_dir / sessions[role]["kinpar"] for role in ROLES}
    return ParticipantDerivatives(
        subject=subject,
        sessions={role: sessions[role]["session"] for role in ROLES},
        maps=maps,
        kinpar=kinpar,
    )


def _same_size(path: Path, size: int) -> bool:
    return path.is_file() and path.stat().st_size == size


def load_maps(
    participants: list[ParticipantDerivatives], measure: str
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
    first = nib.load(participants[0].maps[(measure, ROLES[0])])
    shape, affine = first.shape, first.affine
    stacks: dict[str, list[NDArray[np.float32]]] = {role: [] for role in ROLES}
    for p in participants:
        for role in ROLES:
            path = p.maps[(measure, role)]
            img = nib.load(path)
            if img.shape != shape or not np.allclose(img.affine, affine, atol=1e-3):
                msg = (
                    f"{path.name} is on a different grid ({img.shape}) than {first.get_filename()}"
                    f" ({shape}); all participant maps must share the template grid. Re-run the "
                    "participant level with the same version of bids_app."
                )
                raise InputError(msg)
            stacks[role].append(np.asarray(img.dataobj, dtype=np.float32))
    return np.stack(stacks["baseline"]), np.stack(stacks["challenge"]), first


def roi_table(participants: list[ParticipantDerivatives]) -> pd.DataFrame:
    """Long ROI table: participant_id, measure, roi, baseline, challenge (from ``kinpar.tsv``)."""
    frames = []
    for p in participants:
        per_role = {
            role: pd.read_csv(p.kinpar[role], sep="\t", na_values=["n/a"]).set_index("roi")
            for role in ROLES
        }
        for measure in MEASURES:
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
