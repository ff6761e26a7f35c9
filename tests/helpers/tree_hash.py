"""Hash a directory tree: prove that a run left its input untouched.

:func:`hash_tree` maps every entry's relative path to a digest of its kind, mode and content, so
that a failing comparison names the files that changed (``tree_diff``) instead of one opaque
hash. Modification times are left out on purpose: a copy of a tree hashes like its original.
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

CHUNK_BYTES = 1 << 20


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hash_tree(root: Path) -> dict[str, str]:
    """Digest of every entry under ``root`` (files, folders, symlinks; hidden ones included).

    Parameters
    ----------
    root : Path
        The folder to hash.

    Returns
    -------
    dict of str to str
        POSIX relative path -> ``"<kind>:<mode>:<sha256 or link target>"`` with kind ``f``
        (file), ``d`` (folder), ``l`` (symlink, not followed) or ``o`` (anything else).
    """
    root = Path(root)
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        mode = stat.S_IMODE(info.st_mode)
        rel = path.relative_to(root).as_posix()
        if stat.S_ISLNK(info.st_mode):
            out[rel] = f"l:{mode:o}:{path.readlink()}"
        elif stat.S_ISDIR(info.st_mode):
            out[rel] = f"d:{mode:o}:"
        elif stat.S_ISREG(info.st_mode):
            out[rel] = f"f:{mode:o}:{file_sha256(path)}"
        else:
            out[rel] = f"o:{mode:o}:"
    return out


def tree_diff(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Describe how two :func:`hash_tree` results differ (empty when identical)."""
    lines = [f"removed: {p}" for p in sorted(set(before) - set(after))]
    lines += [f"added: {p}" for p in sorted(set(after) - set(before))]
    lines += [f"changed: {p}" for p in sorted(set(before) & set(after)) if before[p] != after[p]]
    return lines


def non_log_files(out: Path) -> list[str]:
    """Files of an output folder outside ``logs/`` (what a run published), as sorted POSIX paths.

    Parameters
    ----------
    out : Path
        OUTPUT_DIR; a missing folder has no files.

    Returns
    -------
    list of str
        Paths relative to ``out``.
    """
    if not out.is_dir():
        return []
    return sorted(
        p.relative_to(out).as_posix()
        for p in out.rglob("*")
        if p.is_file() and p.relative_to(out).parts[0] != "logs"
    )


# the temporary name of an atomic write: .<stem>.<8 random characters>.<extension>
ATOMIC_TEMPORARY = re.compile(r"^\.[^.]+\.[a-z0-9_]{8}\.")


def incomplete_files(
    root: Path,
    *,
    allowed_hidden: tuple[str, ...] = (".summary.lock", ".bidsignore"),
    allow_temporaries: bool = False,
) -> list[str]:
    """Files under ``root`` that a reader could see half-written or left-over temporary files.

    Every NIfTI must load completely, every TSV/JSON must parse, every HTML report must end with
    ``</html>``, and no hidden name (the temporary names of atomic writes, ``.x.nii.gz``,
    ``.x.partial``) may be present except ``allowed_hidden``.

    Parameters
    ----------
    root : Path
        The folder to inspect (e.g. OUTPUT_DIR); a missing folder has no incomplete files.
    allowed_hidden : tuple of str
        Hidden file names that are legitimate (the summary's lock file, the derivatives'
        ``.bidsignore``).
    allow_temporaries : bool
        Accept the hidden temporary files of atomic writes (right after a ``SIGKILL`` one may
        remain, invisible to readers; the next run removes it).

    Returns
    -------
    list of str
        ``"<relative path>: <problem>"`` lines; empty when every file is complete.
    """
    root = Path(root)
    problems: list[str] = []
    if not root.exists():
        return problems
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if allow_temporaries and ATOMIC_TEMPORARY.match(path.name):
            continue
        if path.name.startswith(".") and path.name not in allowed_hidden:
            problems.append(f"{rel}: hidden temporary file left behind")
            continue
        try:
            if path.name.endswith((".nii.gz", ".nii")):
                np.asarray(nib.load(path).dataobj)
            elif path.suffix == ".tsv":
                pd.read_csv(path, sep="\t")
            elif path.suffix == ".json":
                json.loads(path.read_text(encoding="utf-8"))
            elif path.suffix == ".html" and not path.read_text(encoding="utf-8").rstrip().endswith(
                "</html>"
            ):
                problems.append(f"{rel}: HTML report does not end with </html>")
        except Exception as exc:  # any failure to read means incomplete
            problems.append(f"{rel}: unreadable ({type(exc).__name__}: {exc})")
    return problems
