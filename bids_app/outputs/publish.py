"""Move staged outputs into OUTPUT_DIR, all or nothing.

Outputs are first written to a staging folder in the work dir. :func:`publish` moves them into
place one atomic rename at a time (a copy beside the target, then a rename, across file systems);
if any move fails, every file already moved is removed again, so a failed publication leaves
nothing behind and the error names the disk and what to do.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from bids_app.errors import PublishError
from bids_app.outputs.io import atomic_write


def publish(staging: Path, destination: Path, relative_paths: Sequence[Path]) -> None:
    """Move ``staging/rel`` to ``destination/rel`` for every path, then remove ``staging``.

    Parameters
    ----------
    staging : Path
        Folder holding the finished files.
    destination : Path
        Where they go (OUTPUT_DIR or OUTPUT_DIR/group).
    relative_paths : sequence of Path
        Files to move, relative to both folders.

    Raises
    ------
    PublishError
        When a file cannot be moved (disk full, permissions); the files moved by this call are
        removed first.
    """
    moved: list[Path] = []
    try:
        for rel in relative_paths:
            src = staging / rel
            dst = destination / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(src, dst)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                with atomic_write(dst) as tmp:
                    shutil.copyfile(src, tmp)
            moved.append(dst)
    except OSError as exc:
        for path in moved:
            path.unlink(missing_ok=True)
        raise PublishError(describe_os_error(exc, destination, "publishing the outputs")) from exc
    shutil.rmtree(staging, ignore_errors=True)


def describe_os_error(exc: OSError, folder: Path, doing: str) -> str:
    """One sentence for a failed write: the disk and its free space when it is full."""
    if exc.errno == errno.ENOSPC:
        try:
            free_mb = shutil.disk_usage(folder).free / 2**20
            free = f"{free_mb:.0f} MB free"
        except OSError:
            free = "free space unknown"
        return (
            f"No space left on device: the disk holding {folder} is full ({free}) while "
            f"{doing}; nothing was left half-written. Free some space there (or choose another "
            "OUTPUT_DIR or --work-dir), then run again"
        )
    where = exc.filename or folder
    return f"cannot write {where} while {doing}: {exc.strerror or exc}. Check the permissions"
