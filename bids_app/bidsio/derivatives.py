"""BIDS-Derivatives names, sidecars and atomic writes.

Every output file name is built by :func:`derivative_name`, so the entity order is the same
everywhere: the source entities (``sub``, ``ses``, ``trc``, ``rec``, ``run``) first, then
``space``, ``res``, ``seg``, ``model``, ``meas``, ``desc``, then the suffix.
Files are written to a temporary name in the destination folder and renamed into place
(:func:`atomic_write`), so a reader never sees a half-written file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from bids_app import __version__

SOURCE_ENTITIES = ("sub", "ses", "trc", "rec", "run")
DERIVED_ENTITIES = ("space", "res", "seg", "model", "meas", "desc")
CODE_URL = "https://github.com/bids-app/bids_app"


def derivative_name(
    source: Mapping[str, str], suffix: str, extension: str, **entities: str | None
) -> str:
    """Build a BIDS-Derivatives file name.

    Parameters
    ----------
    source : mapping
        Entities of the source file (``sub``, ``ses``, and optionally ``trc``, ``rec``, ``run``).
    suffix : str
        The BIDS suffix, e.g. ``"mimap"``, ``"tacs"``, ``"timeseries"``.
    extension : str
        With the dot, e.g. ``".nii.gz"``.
    **entities
        Derived entities (``space``, ``res``, ``seg``, ``model``, ``meas``, ``desc``); ``None``
        values are left out.

    Returns
    -------
    str
        e.g. ``sub-01_ses-sal_trc-raclopride_space-MNI152NLin2009aSym_res-2_model-SRTM2_``
        ``meas-BPND_mimap.nii.gz``.
    """
    unknown = set(entities) - set(DERIVED_ENTITIES)
    if unknown:
        msg = f"unknown derivative entities {sorted(unknown)}; use one of {DERIVED_ENTITIES}"
        raise ValueError(msg)
    parts = [f"{key}-{source[key]}" for key in SOURCE_ENTITIES if source.get(key)]
    parts += [f"{key}-{entities[key]}" for key in DERIVED_ENTITIES if entities.get(key)]
    return "_".join([*parts, suffix]) + extension


def participant_dir(output_dir: Path, subject: str, session: str | None = None) -> Path:
    """``OUTPUT_DIR/sub-<p>[/ses-<s>/pet]``."""
    base = output_dir / f"sub-{subject}"
    return base / f"ses-{session}" / "pet" if session else base


@contextlib.contextmanager
def atomic_write(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    The temporary name keeps the file's extension so that writers choosing a format from it
    (nibabel's ``.nii.gz``) behave. On error the temporary file is removed and ``path`` is
    left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes) or ".tmp"
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name.split('.')[0]}.", suffix=suffix, dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    """Write a JSON sidecar atomically (sorted keys, NaN written as null)."""
    text = json.dumps(_jsonable(payload), indent=2, sort_keys=True, allow_nan=False)
    _write_text(path, text + "\n")


def write_tsv(path: Path, table: pd.DataFrame) -> None:
    """Write a TSV atomically with BIDS conventions (tab separated, ``n/a`` for missing)."""
    _write_text(path, table.to_csv(sep="\t", index=False, na_rep="n/a", lineterminator="\n"))


def write_nifti(path: Path, img: nib.Nifti1Image) -> None:
    """Write a NIfTI image atomically."""
    with atomic_write(path) as tmp:
        nib.save(img, tmp)


def _write_text(path: Path, text: str) -> None:
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    return value


def dataset_description(container: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``dataset_description.json`` content of the derivatives folder."""
    generated_by: dict[str, Any] = {
        "Name": "bids_app",
        "Version": __version__,
        "CodeURL": CODE_URL,
        "Description": "SRTM2 reference-tissue modelling and paired group statistics",
    }
    if container:
        generated_by["Container"] = dict(container)
    return {
        "Name": "bids_app derivatives",
        "BIDSVersion": "1.10.0",
        "DatasetType": "derivative",
        "GeneratedBy": [generated_by],
    }


def container_info() -> dict[str, str] | None:
    """Describe the container this process runs in, from variables the image sets."""
    tag = os.environ.get("BIDS_APP_CONTAINER_TAG")
    if not tag:
        return None
    return {"Type": os.environ.get("BIDS_APP_CONTAINER_TYPE", "docker"), "Tag": tag}


def write_dataset_description(output_dir: Path) -> Path:
    """Write (or refresh) ``OUTPUT_DIR/dataset_description.json``."""
    path = output_dir / "dataset_description.json"
    write_json(path, dataset_description(container_info()))
    return path
