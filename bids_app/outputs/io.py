"""Atomic writers: the one way the app writes a file under OUTPUT_DIR or the work dir.

Every file is written to a temporary name in its destination folder and renamed into place, so
a reader never sees a half-written file. Files get the permissions an ordinary ``open`` would
give them (``0666`` minus the process umask), not the ``0600`` of :func:`tempfile.mkstemp`, so
colleagues in the same group can read the outputs when the umask allows it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd


def _file_mode() -> int:
    """``0o666`` minus the process umask.

    Linux reports the umask in ``/proc/self/status``; reading it there avoids setting the umask
    (``os.umask`` can only read it by changing it, which would race with other threads).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


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
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_leftover_temporaries(folder: Path, stem: str, *, recursive: bool = False) -> list[Path]:
    """Delete the temporary files of atomic writes that were killed before their rename.

    A process killed with ``SIGKILL`` (an out-of-memory kill, a scheduler's time limit) cannot
    clean up: the hidden ``.<name>.<8 random characters>.<extension>`` it was writing stays.
    The next run of the same participant calls this before publishing, so leftovers never
    accumulate. Only names of files whose stem is ``stem`` or starts with ``stem_`` are
    touched, so runs of other participants writing into the same folder are not disturbed.

    Parameters
    ----------
    folder : Path
        Where to look; a missing folder has nothing to remove.
    stem : str
        The owner's name stem, e.g. ``"sub-01"`` (matches ``.sub-01.x1y2z3w4.html`` and
        ``.sub-01_outputs.x1y2z3w4.json``, not ``.sub-010_...``).
    recursive : bool
        Also look in sub-folders.

    Returns
    -------
    list of Path
        The files removed.
    """
    pattern = re.compile(rf"^\.{re.escape(stem)}(?:_[^.]*)?\.[a-z0-9_]{{8}}\.")
    if not folder.is_dir():
        return []
    candidates = folder.rglob(".*") if recursive else folder.glob(".*")
    removed = [p for p in candidates if p.is_file() and pattern.match(p.name)]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def write_text(path: Path, text: str) -> None:
    """Write UTF-8 text atomically."""
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    """Write a JSON sidecar atomically (sorted keys, NaN written as null)."""
    text = json.dumps(jsonable(payload), indent=2, sort_keys=True, allow_nan=False)
    write_text(path, text + "\n")


def write_tsv(path: Path, table: pd.DataFrame) -> None:
    """Write a TSV atomically with BIDS conventions (tab separated, ``n/a`` for missing)."""
    write_text(path, table.to_csv(sep="\t", index=False, na_rep="n/a", lineterminator="\n"))


def write_nifti(path: Path, img: nib.Nifti1Image) -> None:
    """Write a NIfTI image atomically."""
    with atomic_write(path) as tmp:
        nib.save(img, tmp)


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays, paths and non-finite floats made JSON-safe."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    return value
