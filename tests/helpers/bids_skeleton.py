"""Write a minimal valid PET-BIDS dataset from a dict (PETPrep's dict -> BIDS skeleton pattern).

Example
-------
>>> root = write_bids_skeleton(tmp_path / "bids", {
...     "01": {"sal": {}, "nal": {}},                       # one default PET scan per session
...     "02": {"sal": {"pet": [{"metadata": {"TracerName": "FDG"}}]}, "nal": {"t1w": True}},
... })

Spec: ``{subject: {session: session_spec}}``; a session key ``""`` means a session-less subject
(files directly in ``sub-<p>/pet``). A session spec may hold:

- ``"pet"``: a list of scan specs (default: one default scan); a scan spec may hold
  ``"entities"`` (e.g. ``{"trc": "raclopride", "rec": "acdyn"}``), ``"metadata"`` (overrides of
  :func:`default_pet_metadata`; a value ``None`` deletes the key), ``"n_frames"`` (default 6),
  ``"shape"`` (spatial shape, default (7, 8, 9)), ``"data"`` (``"blob"`` default, ``"zeros"``, or
  an ndarray), ``"image"`` (False: write no NIfTI), ``"sidecar"`` (False: no JSON; a str: write
  that raw text).
- ``"t1w"``: True to write ``anat/*_T1w.nii.gz``.

Subject-level extras go under the reserved key ``"_sessions_tsv"``: ``{session: condition}``
written to ``sub-<p>/sub-<p>_sessions.tsv``; ``"_t1w"``: True for a session-less T1w.
Every image is tiny; values are seeded, so trees are reproducible.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

DEFAULT_N_FRAMES = 6
DEFAULT_SHAPE = (7, 8, 9)
PET_ENTITY_ORDER = ("task", "trc", "rec", "run")


def frame_schedule_s(n_frames: int) -> tuple[list[float], list[float]]:
    """A plausible schedule in seconds: 30 s frames doubling up to 600 s, back to back."""
    durations = [float(min(30 * 2**i, 600)) for i in range(n_frames)]
    starts = [float(sum(durations[:i])) for i in range(n_frames)]
    return starts, durations


def default_pet_metadata(n_frames: int = DEFAULT_N_FRAMES, tracer: str = "raclopride") -> dict:
    """Every REQUIRED PET-BIDS sidecar field with plausible values (frames in seconds)."""
    starts, durations = frame_schedule_s(n_frames)
    return {
        "Manufacturer": "Siemens",
        "ManufacturersModelName": "ECAT 931",
        "Units": "kBq/mL",
        "TracerName": tracer,
        "TracerRadionuclide": "C11",
        "InjectedRadioactivity": 250.0,
        "InjectedRadioactivityUnits": "MBq",
        "InjectedMass": 1.2,
        "InjectedMassUnits": "ug",
        "SpecificRadioactivity": 200.0,
        "SpecificRadioactivityUnits": "MBq/ug",
        "ModeOfAdministration": "bolus",
        "TimeZero": "10:00:00",
        "ScanStart": 0,
        "InjectionStart": 0,
        "FrameTimesStart": starts,
        "FrameDuration": durations,
        "AcquisitionMode": "list mode",
        "ImageDecayCorrected": True,
        "ImageDecayCorrectionTime": 0,
        "ReconMethodName": "FBP",
        "ReconMethodParameterLabels": ["none"],
        "ReconFilterType": "none",
        "AttenuationCorrection": "transmission scan",
    }


def pet_image_data(
    shape: tuple[int, int, int], n_frames: int, kind: str | np.ndarray = "blob", seed: int = 0
) -> np.ndarray:
    """A small 4-D PET array: a bright blob over a noisy background, rising over frames."""
    if isinstance(kind, np.ndarray):
        return kind.astype(np.float32)
    if kind == "zeros":
        return np.zeros((*shape, n_frames), dtype=np.float32)
    rng = np.random.default_rng(seed)
    grid = np.indices(shape).astype(float)
    centre = (np.asarray(shape, dtype=float) - 1) / 2
    r2 = sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True))
    blob = 1.0 + 4.0 * np.exp(-r2 / 4.0)
    rise = 1.0 - np.exp(-np.arange(1, n_frames + 1) / 2.0)
    data = blob[..., None] * rise + 0.05 * rng.standard_normal((*shape, n_frames))
    return np.abs(data).astype(np.float32)


def _save_nifti(path: Path, data: np.ndarray, zooms: tuple[float, ...]) -> None:
    affine = np.diag([*zooms[:3], 1.0])
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, path)


def pet_basename(subject: str, session: str, entities: Mapping[str, str]) -> str:
    """``sub-<p>[_ses-<s>][_task-][_trc-][_rec-][_run-]`` in BIDS order."""
    parts = [f"sub-{subject}"] + ([f"ses-{session}"] if session else [])
    parts += [f"{k}-{entities[k]}" for k in PET_ENTITY_ORDER if k in entities]
    return "_".join(parts)


def _write_scan(folder: Path, subject: str, session: str, spec: Mapping[str, Any], seed: int):
    n_frames = int(spec.get("n_frames", DEFAULT_N_FRAMES))
    base = pet_basename(subject, session, spec.get("entities", {}))
    metadata = default_pet_metadata(n_frames)
    for key, value in spec.get("metadata", {}).items():
        if value is None:
            metadata.pop(key, None)
        else:
            metadata[key] = value
    folder.mkdir(parents=True, exist_ok=True)
    sidecar = spec.get("sidecar", True)
    if isinstance(sidecar, str):
        (folder / f"{base}_pet.json").write_text(sidecar)
    elif sidecar:
        (folder / f"{base}_pet.json").write_text(json.dumps(metadata, indent=2))
    if spec.get("image", True):
        shape = tuple(spec.get("shape", DEFAULT_SHAPE))
        data = pet_image_data(shape, n_frames, spec.get("data", "blob"), seed=seed)
        _save_nifti(folder / f"{base}_pet.nii.gz", data, (2.0, 2.0, 2.0, 1.0))


def _write_t1w(folder: Path, subject: str, session: str) -> None:
    base = "_".join([f"sub-{subject}"] + ([f"ses-{session}"] if session else []))
    data = pet_image_data(DEFAULT_SHAPE, 1, seed=7)[..., 0]
    _save_nifti(folder / f"{base}_T1w.nii.gz", data, (2.0, 2.0, 2.0))
    (folder / f"{base}_T1w.json").write_text(json.dumps({"MagneticFieldStrength": 3}))


def write_bids_skeleton(
    root: Path, spec: Mapping[str, Mapping[str, Any]], *, name: str = "synthetic PET study"
) -> Path:
    """Write a PET-BIDS dataset described by ``spec`` under ``root`` and return ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    description = {"Name": name, "BIDSVersion": "1.9.0", "DatasetType": "raw"}
    (root / "dataset_description.json").write_text(json.dumps(description, indent=2))
    (root / "README").write_text("Synthetic PET-BIDS dataset written by tests.\n")
    subjects = sorted(spec)
    rows = "".join(f"sub-{s}\n" for s in subjects)
    (root / "participants.tsv").write_text("participant_id\n" + rows)
    seed = 0
    for subject in subjects:
        sub_dir = root / f"sub-{subject}"
        sub_dir.mkdir(exist_ok=True)
        for session, session_spec in spec[subject].items():
            if session.startswith("_"):
                continue
            ses_dir = sub_dir / f"ses-{session}" if session else sub_dir
            for scan_spec in session_spec.get("pet", [{}]):
                seed += 1
                _write_scan(ses_dir / "pet", subject, session, scan_spec, seed)
            if session_spec.get("t1w"):
                _write_t1w(ses_dir / "anat", subject, session)
        if spec[subject].get("_t1w"):
            _write_t1w(sub_dir / "anat", subject, "")
        conditions = spec[subject].get("_sessions_tsv")
        if conditions:
            lines = ["session_id\tcondition", *(f"ses-{s}\t{c}" for s, c in conditions.items())]
            (sub_dir / f"sub-{subject}_sessions.tsv").write_text("\n".join(lines) + "\n")
    return root


def write_phenotype(root: Path, lines: list[str], name: str = "subjective") -> Path:
    """Write ``phenotype/<name>.tsv`` under a dataset root from its lines (header first).

    Parameters
    ----------
    root : Path
        The BIDS root (created when missing).
    lines : list of str
        Tab-separated lines: the header (``participant_id``, ``session_id``, ...), then rows.
    name : str, optional
        File stem (the phenotype table's name).

    Returns
    -------
    Path
        The written TSV.
    """
    folder = root / "phenotype"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tree_digest(root: Path) -> str:
    """SHA-256 of every entry's relative path, mode, size, mtime and content (proves no change)."""
    digest = hashlib.sha256()
    root = Path(root)
    for path in sorted(root.rglob("*")):
        stat = path.lstat()
        digest.update(str(path.relative_to(root)).encode())
        digest.update(f"{stat.st_mode}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()
