"""Globbing that fails the test when nothing matches.

A test that loops over ``glob`` results and asserts something of each would pass on an empty
list; :func:`glob_some` asserts first that there is something to loop over.
"""

from __future__ import annotations

from pathlib import Path


def glob_some(root: Path, pattern: str, *, recursive: bool = False) -> list[Path]:
    """Sorted paths under ``root`` matching ``pattern``; an assertion error when there are none.

    Parameters
    ----------
    root : Path
        The folder to search.
    pattern : str
        A :meth:`pathlib.Path.glob` pattern, e.g. ``"sub-*/ses-*/pet/*_pet.json"``.
    recursive : bool, optional
        Search with :meth:`pathlib.Path.rglob` (every depth) instead of ``glob``.

    Returns
    -------
    list of Path
        At least one path, sorted.
    """
    found = sorted(root.rglob(pattern) if recursive else root.glob(pattern))
    assert found, f"nothing under {root} matches {pattern!r} (recursive={recursive})"
    return found
