"""Selecting one scan among several: entity filters and fMRIPrep-style BIDS filter files.

A session may hold several PET scans (two runs, two reconstructions) or a participant several
T1w images. Filters pick one by filename entities. On the command line they come from
``--pet-run N`` or a ``--bids-filter-file`` in fMRIPrep's format, a JSON object with one query per
data type::

    {"pet": {"run": 2, "reconstruction": "acdyn"}, "t1w": {"acquisition": "mprage"}}

Keys are pybids entity names (``run``, ``reconstruction``, ``tracer``, ``acquisition``, ``task``)
or the filename keys (``run``, ``rec``, ``trc``, ``acq``, ``task``); a value is a label, a number
(``2`` matches ``run-2`` and ``run-02``), a list of allowed values, or ``null`` for "the entity
must be absent". Filters are stored with filename keys and tuples of string values
(:data:`ScanFilters`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from bids_app.bidsio.inheritance import read_json_object
from bids_app.errors import InputError, MetadataError

#: Allowed values of one entity (None: the entity must be absent).
ScanFilterValue = tuple[str, ...] | None
#: Filters of one data type: filename key -> allowed values.
ScanFilters = Mapping[str, ScanFilterValue]

#: Data types a filter file may select, as fMRIPrep names its queries.
FILTER_QUERIES: tuple[str, ...] = ("pet", "t1w")

#: pybids entity names -> filename keys.
ENTITY_KEYS: Mapping[str, str] = MappingProxyType(
    {
        "task": "task",
        "tracer": "trc",
        "reconstruction": "rec",
        "run": "run",
        "acquisition": "acq",
        "ceagent": "ce",
        "trc": "trc",
        "rec": "rec",
        "acq": "acq",
        "ce": "ce",
    }
)


def _values(query: str, key: str, value: object, source: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int)) or str(item).strip() == "":
            msg = (
                f"{source}: {query}.{key} must be a label, a whole number, a list of them or "
                f'null; got {value!r}. Example: {{"{query}": {{"run": 2}}}}'
            )
            raise InputError(msg)
        out.append(str(item).strip())
    return tuple(out)


def normalise_filters(
    query: str, raw: Mapping[str, object], source: str
) -> dict[str, ScanFilterValue]:
    """Check one query of a filter file and convert it to filename keys.

    Parameters
    ----------
    query : str
        ``"pet"`` or ``"t1w"`` (named in messages).
    raw : mapping
        Entity -> value(s), as written in the file.
    source : str
        Where it came from (named in messages).

    Returns
    -------
    dict of str to tuple of str or None

    Raises
    ------
    InputError
        For unknown entities (``subject``/``session`` are chosen by other options) or values
        of the wrong type.
    """
    out: dict[str, ScanFilterValue] = {}
    for key, value in raw.items():
        if key not in ENTITY_KEYS:
            hint = (
                " (participants and sessions are chosen with --participant-label and "
                "--baseline-session/--challenge-session)"
                if key in ("subject", "session", "sub", "ses")
                else ""
            )
            msg = (
                f"{source}: {query} filter on {key!r} is not supported{hint}; use one of "
                f"{', '.join(sorted(ENTITY_KEYS))}."
            )
            raise InputError(msg)
        out[ENTITY_KEYS[key]] = _values(query, key, value, source)
    return out


def read_bids_filter_file(path: Path) -> dict[str, dict[str, ScanFilterValue]]:
    """Read a ``--bids-filter-file`` (fMRIPrep format; a UTF-8 byte-order mark is accepted).

    Parameters
    ----------
    path : Path
        JSON file such as ``{"pet": {"run": 2}, "t1w": {"acquisition": "mprage"}}``.

    Returns
    -------
    dict
        ``{"pet": filters, "t1w": filters}`` (absent queries are empty).

    Raises
    ------
    InputError
        Unreadable file, unknown query or entity, or a value of the wrong type.
    """
    source = str(path)
    try:
        content = read_json_object(Path(path), "--bids-filter-file")
    except MetadataError as exc:
        raise InputError(str(exc)) from exc
    unknown = sorted(set(content) - set(FILTER_QUERIES))
    if unknown:
        msg = (
            f"{source}: unknown filter quer{'ies' if len(unknown) > 1 else 'y'} {unknown}; this "
            f"app reads {list(FILTER_QUERIES)}, e.g. "
            '{"pet": {"run": 2}, "t1w": {"acquisition": "mprage"}}.'
        )
        raise InputError(msg)
    out: dict[str, dict[str, ScanFilterValue]] = {q: {} for q in FILTER_QUERIES}
    for query, raw in content.items():
        if not isinstance(raw, dict):
            msg = (
                f'{source}: "{query}" must be an object of entity -> value(s), e.g. '
                f'{{"{query}": {{"run": 2}}}}; got {raw!r}.'
            )
            raise InputError(msg)
        out[query] = normalise_filters(query, raw, source)
    return out


def as_filters(raw: Mapping[str, object] | None) -> dict[str, ScanFilterValue]:
    """Filters given in Python (filename keys) with plain values, as :data:`ScanFilters`.

    ``{"rec": "acdyn", "run": 2}`` becomes ``{"rec": ("acdyn",), "run": ("2",)}``; lists and
    tuples become tuples of strings; None stays None (the entity must be absent).
    """
    out: dict[str, ScanFilterValue] = {}
    for key, value in (raw or {}).items():
        if value is None:
            out[key] = None
        elif isinstance(value, (list, tuple)):
            out[key] = tuple(str(v) for v in value)
        else:
            out[key] = (str(value),)
    return out


def _same_label(found: str, wanted: str) -> bool:
    if found.isdigit() and wanted.isdigit():
        return int(found) == int(wanted)
    return found == wanted


def matches(entities: Mapping[str, str], filters: ScanFilters) -> bool:
    """True when a file's entities (filename keys) satisfy every filter."""
    for key, allowed in filters.items():
        found = entities.get(key)
        if allowed is None:
            if found is not None:
                return False
        elif found is None or not any(_same_label(found, value) for value in allowed):
            return False
    return True


def describe(filters: ScanFilters) -> str:
    """Filters as text for messages, e.g. ``"run-2, rec-acdyn|rec-ac"``."""
    parts = [
        f"no {key}" if allowed is None else "|".join(f"{key}-{v}" for v in allowed)
        for key, allowed in filters.items()
    ]
    return ", ".join(parts) if parts else "(none)"
