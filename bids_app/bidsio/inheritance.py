"""BIDS metadata by the inheritance principle: which sidecars apply to a file, and their merge.

A JSON sidecar applies to a data file when (BIDS specification, "The Inheritance Principle"):

1. it lies in the data file's folder or in one of its parents up to the dataset root;
2. it has the data file's suffix (``_pet.json`` for ``_pet.nii.gz``);
3. every entity in its name is in the data file's name with the same value.

So ``pet.json`` at the dataset root applies to every PET scan, ``sub-01/ses-sal/sub-01_ses-sal_pet
.json`` to every PET scan of that session, and ``sub-01_ses-sal_trc-raclopride_pet.json`` next to
the image to that scan only. Values are merged from the top level down, and within a folder from
the file with the fewest entities to the one with the most; a later value replaces an earlier one
(whole values: objects are not merged key by key). This is what pybids' ``get_metadata`` returns
(checked by a test), with two additions the app needs for its messages: where each value came
from (:attr:`ResolvedMetadata.sources`), and a problem, instead of an arbitrary order, when two
applicable files of one folder cannot be ordered (neither's entities include the other's).

JSON files are read with :func:`read_json_object`, which accepts a UTF-8 byte-order mark.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bids_app.bidsio import messages
from bids_app.errors import MetadataError

#: The UTF-8 byte-order mark some editors (Windows Notepad, Excel exports) put at the start.
UTF8_BOM = b"\xef\xbb\xbf"


def read_json_object(path: Path, prefix: str) -> dict[str, Any]:
    """Read a JSON file holding an object; a UTF-8 byte-order mark is accepted.

    Parameters
    ----------
    path : Path
        The JSON file (a sidecar, ``dataset_description.json``, a config file).
    prefix : str
        Message prefix, e.g. ``"sub-01 ses-nal"``.

    Returns
    -------
    dict
        The parsed object.

    Raises
    ------
    MetadataError
        When the file cannot be read, is not UTF-8, is not valid JSON, or holds something other
        than an object.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}: {exc.msg}"
        raise MetadataError(messages.invalid_json(prefix, path, where)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise MetadataError(messages.invalid_json(prefix, path, str(exc))) from exc
    if not isinstance(data, dict):
        raise MetadataError(messages.json_not_object(prefix, path, type(data).__name__))
    return data


def has_utf8_bom(path: Path) -> bool:
    """True when ``path`` starts with the UTF-8 byte-order mark (unreadable files: False)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(UTF8_BOM)) == UTF8_BOM
    except OSError:
        return False


@dataclass(frozen=True)
class BidsName:
    """The parts of a BIDS file name: ``key-value`` entities, suffix and extension.

    Attributes
    ----------
    entities : dict of str to str
        Filename keys (``sub``, ``ses``, ``trc``, ...) and values, in name order.
    suffix : str
        E.g. ``"pet"``.
    extension : str
        Everything from the first dot, e.g. ``".nii.gz"``.
    """

    entities: dict[str, str]
    suffix: str
    extension: str


def parse_bids_name(name: str) -> BidsName | None:
    """Split a BIDS file name; None when it is not ``[key-value_]...suffix.ext``.

    Examples
    --------
    >>> parse_bids_name("sub-01_ses-sal_trc-rac_pet.nii.gz").entities
    {'sub': '01', 'ses': 'sal', 'trc': 'rac'}
    >>> parse_bids_name("pet.json").suffix
    'pet'
    """
    stem, dot, rest = name.partition(".")
    if not dot or not stem:
        return None
    *pairs, suffix = stem.split("_")
    if not suffix or "-" in suffix:
        return None
    entities: dict[str, str] = {}
    for pair in pairs:
        key, dash, value = pair.partition("-")
        if not dash or not key or not value or key in entities:
            return None
        entities[key] = value
    return BidsName(entities, suffix, "." + rest)


@dataclass(frozen=True)
class ResolvedMetadata:
    """The metadata of one data file, merged from every applicable sidecar.

    Attributes
    ----------
    values : dict
        The merged key-value pairs.
    sources : dict of str to Path
        The file each key's value came from (the most specific applicable file holding it).
    files : tuple of Path
        Every applicable sidecar in merge order: dataset root first, the data file's own last.
    """

    values: dict[str, Any]
    sources: dict[str, Path] = field(default_factory=dict)
    files: tuple[Path, ...] = ()

    def location(self, *keys: str) -> str:
        """Where to fix ``keys``: the sidecar(s) they came from, or every applicable sidecar.

        Returns
        -------
        str
            ``"the sidecar JSON (<path>)"`` when one file holds them all (or, for keys that are
            absent, when a single sidecar applies); otherwise ``"the sidecar JSONs (<key>: <path>;
            ...)"``, or, for absent keys, every applicable file, e.g. ``"one of the sidecar JSONs
            that apply (<own>, <inherited from the dataset root>)"``.
        """
        present = {key: self.sources[key] for key in keys if key in self.sources}
        missing = [key for key in keys if key not in self.sources]
        if missing:
            if len(self.files) == 1:
                return f"the sidecar JSON ({self.files[0]})"
            if not self.files:
                return "a sidecar JSON"
            listed = ", ".join(str(p) for p in reversed(self.files))
            return f"one of the sidecar JSONs that apply ({listed})"
        paths = set(present.values())
        if len(paths) == 1:
            return f"the sidecar JSON ({next(iter(paths))})"
        listed = "; ".join(f"{key} from {path}" for key, path in present.items())
        return f"the sidecar JSONs ({listed})"

    def names(self) -> str:
        """The applicable sidecars' names, most specific first (``"a.json, inherited b.json"``)."""
        if not self.files:
            return "(no sidecar)"
        own, *inherited = list(reversed(self.files))
        if not inherited:
            return own.name
        return f"{own.name} (and inherited {', '.join(p.name for p in inherited)})"


def _json_files(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as entries:
            return sorted(
                Path(entry.path)
                for entry in entries
                if entry.name.endswith(".json")
                and not entry.name.startswith(".")
                and entry.is_file()
            )
    except OSError:
        return []


def _applies(candidate: BidsName, target: BidsName) -> bool:
    if candidate.suffix != target.suffix or candidate.extension != ".json":
        return False
    return all(target.entities.get(k) == v for k, v in candidate.entities.items())


def applicable_sidecars(root: Path, data_file: Path) -> tuple[list[Path], list[str]]:
    """The JSON sidecars that apply to ``data_file``, in merge order, and ordering problems.

    Parameters
    ----------
    root : Path
        Dataset root (no folder above it is searched).
    data_file : Path
        A file inside ``root`` with a BIDS name (e.g. ``*_pet.nii.gz``, ``*_T1w.nii.gz``).

    Returns
    -------
    files : list of Path
        From the dataset root down; within a folder, fewer entities first.
    problems : list of str
        One line per folder holding two applicable sidecars that cannot be ordered (neither's
        entities contain the other's): which value wins would be arbitrary.
    """
    root = Path(root)
    target = parse_bids_name(data_file.name)
    if target is None:
        return [], []
    try:
        relative = data_file.parent.relative_to(root)
    except ValueError:
        return [], []
    folders = [root]
    for part in relative.parts:
        folders.append(folders[-1] / part)
    files: list[Path] = []
    problems: list[str] = []
    for folder in folders:
        level: list[tuple[BidsName, Path]] = []
        for path in _json_files(folder):
            parsed = parse_bids_name(path.name)
            if parsed is not None and _applies(parsed, target):
                level.append((parsed, path))
        level.sort(key=lambda item: (len(item[0].entities), item[1].name))
        for (outer, outer_path), (inner, inner_path) in itertools.pairwise(level):
            nested = set(outer.entities.items()) < set(inner.entities.items())
            if not nested:
                problems.append(
                    messages.ambiguous_sidecars(data_file, outer_path, inner_path, folder)
                )
        files += [path for _, path in level]
    return files, problems


def resolve_metadata(
    root: Path, data_file: Path, prefix: str
) -> tuple[ResolvedMetadata | None, list[str]]:
    """Merge every applicable sidecar of ``data_file`` (the inheritance principle).

    Parameters
    ----------
    root : Path
        Dataset root.
    data_file : Path
        The data file (it need not exist: the names decide).
    prefix : str
        Message prefix, e.g. ``"sub-01 ses-sal"``.

    Returns
    -------
    metadata : ResolvedMetadata or None
        None when a sidecar is unreadable or two of one folder cannot be ordered; an empty
        :class:`ResolvedMetadata` (no files) when no sidecar applies.
    problems : list of str
        One line per unreadable sidecar or ambiguous pair.
    """
    files, problems = applicable_sidecars(root, data_file)
    values: dict[str, Any] = {}
    sources: dict[str, Path] = {}
    for path in files:
        try:
            content = read_json_object(path, prefix)
        except MetadataError as exc:
            problems.append(str(exc))
            continue
        values.update(content)
        sources.update(dict.fromkeys(content, path))
    if problems:
        return None, problems
    return ResolvedMetadata(values, sources, tuple(files)), []


def from_single_file(values: Mapping[str, Any], path: Path) -> ResolvedMetadata:
    """Metadata read from one file (no inheritance), e.g. in tests or for a lone sidecar."""
    return ResolvedMetadata(dict(values), dict.fromkeys(values, Path(path)), (Path(path),))
