"""Read and validate BIDS ``phenotype/*.tsv`` tables and the behavioural analysis config.

Phenotype tables (CONTRACT, "Inputs") come in two forms, read into one long table:

* long: one row per participant, session and time point, with the columns ``participant_id``,
  ``session_id`` and ``time_min`` (minutes from the drug injection; negative = before), then one
  numeric column per measure;
* wide (BIDS-valid, what the example writes): one row per ``participant_id`` and ``session_id``,
  then one column per measure and time point, ``<measure>_t<minutes>`` (``sick_t10``,
  ``sick_tminus10``; ``p`` as the decimal point), described in the JSON sidecar.

Label normalisation: ``participant_id`` and ``session_id`` may be written with or without
their BIDS prefix (``sub-01`` or ``01``, ``ses-nal`` or ``nal``); both are returned as **bare
labels** (``01``, ``nal``), the form used everywhere else in the app (``--participant-label``,
``--baseline-session``). Cells ``n/a`` (the BIDS missing value) and empty cells become NaN.

The analysis config (:class:`BehaviorConfig`) maps columns to analyses; its defaults reproduce
the paper and any field can be overridden by a JSON file (:func:`load_behavior_config`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeGuard

import numpy as np
import pandas as pd

from bids_app.errors import InputError, ValidationError

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_AVERSIVE_SIGN",
    "ID_COLUMNS",
    "WIDE_COLUMN",
    "BehaviorConfig",
    "dataset_participants",
    "load_behavior_config",
    "read_phenotype",
]

ID_COLUMNS: tuple[str, ...] = ("participant_id", "session_id", "time_min")
_MISSING = frozenset({"", "n/a"})
_LABEL = re.compile(r"[A-Za-z0-9]+")
_MAX_LISTED = 5

#: Aversive sign of the paper's 16 subjective items (0-10 self-reports): +1 when an increase
#: is aversive (withdrawal-like), -1 when a decrease is. Alertness is grouped with the
#: positive-valence states (happiness, mood, concentration, optimism, activeness): opioid
#: withdrawal brings fatigue and yawning, so a loss of alertness counts as aversive.
DEFAULT_AVERSIVE_SIGN: Mapping[str, int] = MappingProxyType(
    {
        "alertness": -1,
        "anxiety": 1,
        "annoyance": 1,
        "loss_of_control": 1,
        "depression": 1,
        "distressful_thoughts": 1,
        "happiness": -1,
        "mood": -1,
        "restlessness": 1,
        "concentration": -1,
        "desire_to_use": 1,
        "optimism": -1,
        "activeness": -1,
        "indifference": 1,
        "irritability": 1,
        "pain": 1,
    }
)

_DEFAULT_PAIRS: tuple[tuple[str, str], ...] = (
    ("net_da_release", "aversion_index"),
    ("net_da_release", "net_rcbf_change"),
    ("net_da_release", "cortisol_change"),
    ("net_da_release", "pituitary_r1_change"),
    ("net_da_release", "carotid_r1_change"),
    ("net_rcbf_change", "aversion_index"),
)


@dataclass(frozen=True)
class BehaviorConfig:
    """Which phenotype columns are analysed, and how (defaults: the paper).

    Attributes
    ----------
    aversive_sign : mapping of str to int
        Known subjective items -> aversive sign (+1 or -1); default
        :data:`DEFAULT_AVERSIVE_SIGN` (the paper's 16 items).
    subjective_items : tuple of str or None, default None
        Items to analyse; None = every numeric column of ``subjective.tsv``.
    subjective_name, physiology_name : str
        Phenotype table names (``phenotype/<name>.tsv``).
    pre_time_min : float, default -10.0
        Pre-injection rating time (minutes).
    post_times_min : tuple of float, default (10, 30, 60)
        Post-injection rating times (minutes).
    hormones : tuple of str, default ("cortisol", "prolactin")
        Physiology columns averaged over ``hormone_window_min``.
    hormone_window_min : tuple of float, default (30, 60)
        Post-injection samples averaged per session (complete in the paper).
    cardiovascular : tuple of str, default ("systolic_bp", "diastolic_bp", "pulse")
        Physiology columns averaged over ``cardiovascular_window_min``.
    cardiovascular_window_min : tuple of float or None, default None
        None = all time points of the session (the paper).
    fdr_q : float, default 0.05
        Benjamini-Hochberg FDR level across all behavioural/physiological tests.
    selection_p : float, default 0.05
        Threshold for an item/time change to enter the aversion index.
    selection_basis : {"p", "p_fdr"}, default "p"
        The p-value the threshold applies to (the paper: uncorrected).
    correlation_pairs : tuple of (str, str)
        Participant-measure pairs to correlate (``correlations.tsv``).
    challenge_effect : {"difference_of_differences", "post_minus_pre"}
        Definition of the subjective challenge effect at each post-injection time point:
        ``"difference_of_differences"`` (default, kept from earlier versions): (challenge post
        - pre) - (baseline post - pre), paired across participants;
        ``"post_minus_pre"``: challenge post - pre, paired within the challenge session (the
        literal reading of the paper's Methods). Hormones and cardiovascular measures always
        compare the session window means, challenge - baseline.
    """

    aversive_sign: Mapping[str, int] = field(default_factory=lambda: DEFAULT_AVERSIVE_SIGN)
    subjective_items: tuple[str, ...] | None = None
    subjective_name: str = "subjective"
    physiology_name: str = "physiology"
    pre_time_min: float = -10.0
    post_times_min: tuple[float, ...] = (10.0, 30.0, 60.0)
    hormones: tuple[str, ...] = ("cortisol", "prolactin")
    hormone_window_min: tuple[float, ...] = (30.0, 60.0)
    cardiovascular: tuple[str, ...] = ("systolic_bp", "diastolic_bp", "pulse")
    cardiovascular_window_min: tuple[float, ...] | None = None
    fdr_q: float = 0.05
    selection_p: float = 0.05
    selection_basis: Literal["p", "p_fdr"] = "p"
    correlation_pairs: tuple[tuple[str, str], ...] = _DEFAULT_PAIRS
    challenge_effect: Literal["difference_of_differences", "post_minus_pre"] = (
        "difference_of_differences"
    )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict of every field (for provenance)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Mapping):
                value = dict(value)
            elif isinstance(value, tuple):
                value = [list(v) if isinstance(v, tuple) else v for v in value]
            out[f.name] = value
        return out

    def item_signs(self, subjective: pd.DataFrame | None) -> dict[str, int]:
        """Subjective items to analyse -> aversive sign, for the columns of a table.

        Parameters
        ----------
        subjective : pandas.DataFrame or None
            The table from :func:`read_phenotype` (None -> no items).

        Returns
        -------
        dict of str to int
            Every measure column (or only ``subjective_items`` when set) with its sign from
            ``aversive_sign``; a column without a known sign gets +1 and a logged warning.
        """
        if subjective is None:
            return {}
        columns = [c for c in subjective.columns if c not in ID_COLUMNS]
        if self.subjective_items is not None:
            absent = [c for c in self.subjective_items if c not in columns]
            if absent:
                logger.info("Configured subjective item(s) %s not in the table: skipped.", absent)
            columns = [c for c in self.subjective_items if c in columns]
        signs: dict[str, int] = {}
        for column in columns:
            if column in self.aversive_sign:
                signs[column] = int(self.aversive_sign[column])
            else:
                logger.warning(
                    "Subjective item %r has no aversive sign in the config: assuming +1 "
                    "(an increase is aversive). Set it with 'aversive_sign' in the config.",
                    column,
                )
                signs[column] = 1
        return signs

    def physiology_roles(
        self, physiology: pd.DataFrame | None
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Split the physiology columns into hormones and cardiovascular measures.

        Parameters
        ----------
        physiology : pandas.DataFrame or None
            The table from :func:`read_phenotype`.

        Returns
        -------
        hormones, cardiovascular : tuple of str
            The configured columns present in the table, in config order. Other measure
            columns are ignored with a logged notice.
        """
        if physiology is None:
            return (), ()
        columns = [c for c in physiology.columns if c not in ID_COLUMNS]
        hormones = tuple(c for c in self.hormones if c in columns)
        cardio = tuple(c for c in self.cardiovascular if c in columns)
        ignored = [c for c in columns if c not in hormones and c not in cardio]
        if ignored:
            logger.info(
                "Physiology column(s) %s are neither configured hormones %s nor cardiovascular "
                "measures %s: ignored.",
                ignored,
                list(self.hormones),
                list(self.cardiovascular),
            )
        return hormones, cardio

    def design_kwargs(
        self, subjective: pd.DataFrame | None, physiology: pd.DataFrame | None
    ) -> dict[str, Any]:
        """Keyword arguments of :class:`bids_app.stats.behavior.BehaviorDesign` for two tables.

        Parameters
        ----------
        subjective, physiology : pandas.DataFrame or None
            Tables from :func:`read_phenotype`.

        Returns
        -------
        dict
            ``BehaviorDesign(**config.design_kwargs(subjective, physiology))`` builds the
            design (kept as a dict so that ``bidsio`` does not import ``stats``).
        """
        hormones, cardio = self.physiology_roles(physiology)
        return {
            "item_signs": self.item_signs(subjective),
            "pre_time_min": self.pre_time_min,
            "post_times_min": self.post_times_min,
            "hormones": hormones,
            "hormone_window_min": self.hormone_window_min,
            "cardiovascular": cardio,
            "cardiovascular_window_min": self.cardiovascular_window_min,
            "fdr_q": self.fdr_q,
            "selection_p": self.selection_p,
            "selection_basis": self.selection_basis,
            "challenge_effect": self.challenge_effect,
        }


# --------------------------------------------------------------------------- config file


def _number(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        msg = f"config key {key!r} must be a finite number; got {value!r}."
        raise InputError(msg)
    return float(value)


def _probability(key: str, value: object) -> float:
    number = _number(key, value)
    if not 0.0 < number < 1.0:
        msg = f"config key {key!r} must lie strictly between 0 and 1; got {value!r}."
        raise InputError(msg)
    return number


def _numbers(key: str, value: object) -> tuple[float, ...]:
    if not isinstance(value, list) or not value:
        msg = f"config key {key!r} must be a non-empty list of numbers; got {value!r}."
        raise InputError(msg)
    return tuple(_number(key, v) for v in value)


def _strings(key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        msg = f"config key {key!r} must be a list of non-empty strings; got {value!r}."
        raise InputError(msg)
    return tuple(value)


def _signs(key: str, value: object) -> Mapping[str, int]:
    if not isinstance(value, dict):
        msg = f"config key {key!r} must be an object item -> +1 or -1; got {value!r}."
        raise InputError(msg)
    bad = {k: v for k, v in value.items() if isinstance(v, bool) or v not in (1, -1)}
    if bad:
        msg = f"config key {key!r}: signs must be +1 or -1; got {bad}."
        raise InputError(msg)
    # Entries are merged into the defaults: a config adds or changes single items.
    return MappingProxyType({**DEFAULT_AVERSIVE_SIGN, **{k: int(v) for k, v in value.items()}})


def _is_pair_list(value: object) -> TypeGuard[list[list[str]]]:
    """Whether ``value`` is a list of two-string lists (the JSON form of column-name pairs)."""
    return isinstance(value, list) and all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(s, str) for s in p) for p in value
    )


def _pairs(key: str, value: object) -> tuple[tuple[str, str], ...]:
    if not _is_pair_list(value):
        msg = (
            f"config key {key!r} must be a list of [x, y] column-name pairs, e.g. "
            f'[["net_da_release", "aversion_index"]]; got {value!r}.'
        )
        raise InputError(msg)
    return tuple((p[0], p[1]) for p in value)


def _basis(key: str, value: object) -> str:
    if value not in ("p", "p_fdr"):
        msg = f"config key {key!r} must be one of 'p', 'p_fdr'; got {value!r}."
        raise InputError(msg)
    return str(value)


#: Values of the config key ``challenge_effect`` (the subjective challenge effect).
CHALLENGE_EFFECTS: tuple[str, ...] = ("difference_of_differences", "post_minus_pre")


def _effect(key: str, value: object) -> str:
    if value not in CHALLENGE_EFFECTS:
        msg = (
            f"config key {key!r} must be one of {', '.join(repr(v) for v in CHALLENGE_EFFECTS)} "
            "('difference_of_differences': (challenge post - pre) - (baseline post - pre); "
            f"'post_minus_pre': challenge post - pre); got {value!r}."
        )
        raise InputError(msg)
    return str(value)


def _name(key: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        msg = f"config key {key!r} must be a non-empty string; got {value!r}."
        raise InputError(msg)
    return value


def _nullable(convert: Any) -> Any:
    def wrapped(key: str, value: object) -> Any:
        return None if value is None else convert(key, value)

    return wrapped


_CONVERTERS: Mapping[str, Any] = MappingProxyType(
    {
        "aversive_sign": _signs,
        "subjective_items": _nullable(_strings),
        "subjective_name": _name,
        "physiology_name": _name,
        "pre_time_min": _number,
        "post_times_min": _numbers,
        "hormones": _strings,
        "hormone_window_min": _numbers,
        "cardiovascular": _strings,
        "cardiovascular_window_min": _nullable(_numbers),
        "fdr_q": _probability,
        "selection_p": _probability,
        "selection_basis": _basis,
        "correlation_pairs": _pairs,
        "challenge_effect": _effect,
    }
)


def load_behavior_config(path: str | Path | None) -> BehaviorConfig:
    """Read a JSON file that overrides fields of :class:`BehaviorConfig`.

    Parameters
    ----------
    path : str or Path or None
        A JSON object whose keys are :class:`BehaviorConfig` field names, e.g.
        ``{"hormone_window_min": [10, 30, 60], "aversive_sign": {"craving": 1},
        "challenge_effect": "post_minus_pre"}``.
        ``aversive_sign`` entries are merged into the defaults; every other key replaces the
        default. None returns the defaults.

    Returns
    -------
    BehaviorConfig

    Raises
    ------
    InputError
        If the file is missing or not a JSON object, a key is unknown (the message lists the
        valid keys), or a value has the wrong type (the message names the file and the key).
    """
    if path is None:
        return BehaviorConfig()
    path = Path(path)
    if not path.is_file():
        msg = f"behaviour config {path} does not exist. Pass an existing JSON file."
        raise InputError(msg)
    try:
        raw = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        msg = f"behaviour config {path} is not valid JSON ({exc}). Fix the file."
        raise InputError(msg) from exc
    if not isinstance(raw, dict):
        msg = f"behaviour config {path} must hold a JSON object {{key: value}}; got {type(raw)}."
        raise InputError(msg)
    unknown = sorted(set(raw) - set(_CONVERTERS))
    if unknown:
        msg = (
            f"behaviour config {path}: unknown key(s) {unknown}. Valid keys: "
            f"{sorted(_CONVERTERS)}."
        )
        raise InputError(msg)
    try:
        values = {key: _CONVERTERS[key](key, value) for key, value in raw.items()}
    except InputError as exc:
        msg = f"behaviour config {path}: {exc} Fix the value in the file."
        raise InputError(msg) from exc
    return BehaviorConfig(**values)


# --------------------------------------------------------------------------- phenotype TSV


def _strip_prefix(value: str, prefix: str) -> str:
    value = value.strip()
    return value[len(prefix) :] if value.startswith(prefix) else value


def _listed(items: Sequence[object]) -> str:
    shown = ", ".join(str(i) for i in items[:_MAX_LISTED])
    return shown + (f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")


def _read_raw(path: Path) -> pd.DataFrame:
    """Read every cell as a string, checking the row lengths and the header for duplicates."""
    sep = "\t"
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        msg = f"{path}: not UTF-8 text ({exc}). Save the file as UTF-8."
        raise InputError(msg) from exc
    if not lines or not lines[0].strip():
        msg = f"{path}: the file is empty or has no header line."
        raise InputError(msg)
    header = lines[0].split(sep)
    ragged = [
        f"line {i + 1} has {len(line.split(sep))}"
        for i, line in enumerate(lines[1:], start=1)
        if line.strip() and len(line.split(sep)) != len(header)
    ]
    if ragged:
        msg = (
            f"{path}: the header has {len(header)} tab-separated fields but {_listed(ragged)}. "
            "Every row needs one cell per column (write n/a for a missing value)."
        )
        raise InputError(msg)
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        msg = f"{path}: duplicate column name(s) {dup} in the header. Give each column one name."
        raise InputError(msg)
    try:
        raw = pd.read_csv(
            path, sep=sep, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8-sig"
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        msg = f"{path}: cannot be read as a tab-separated table ({exc}). Fix the file."
        raise InputError(msg) from exc
    return raw.fillna("")


def _check_columns(path: Path, raw: pd.DataFrame) -> list[str]:
    missing = [c for c in ID_COLUMNS if c not in raw.columns]
    if missing:
        msg = (
            f"{path}: missing required column(s) {missing}; expected {list(ID_COLUMNS)} then one "
            f"column per measure (long form), or {list(WIDE_ID_COLUMNS)} then one column per "
            "measure and time point such as sick_t10 (wide form); found "
            f"{list(raw.columns)}. Rename or add the columns."
        )
        raise InputError(msg)
    measures = [c for c in raw.columns if c not in ID_COLUMNS]
    if not measures:
        msg = f"{path}: no measure columns after {list(ID_COLUMNS)}. Add one column per measure."
        raise InputError(msg)
    if len(raw) == 0:
        msg = f"{path}: the table has a header but no rows."
        raise InputError(msg)
    return measures


def _parse_numeric(
    path: Path, raw: pd.DataFrame, column: str, problems: list[str], allow_missing: bool
) -> np.ndarray:
    values = np.full(len(raw), np.nan)
    bad: list[str] = []
    for i, cell in enumerate(raw[column].astype(str)):
        text = cell.strip()
        if text in _MISSING:
            if not allow_missing:
                bad.append(f"line {i + 2}: {cell!r}")
            continue
        try:
            values[i] = float(text)
        except ValueError:
            bad.append(f"line {i + 2}: {cell!r}")
            continue
        if not math.isfinite(values[i]):
            bad.append(f"line {i + 2}: {cell!r}")
    if bad:
        expected = "a finite number" + (" or n/a" if allow_missing else " (n/a is not allowed)")
        problems.append(
            f"{path}: column {column!r} expected {expected}; found {_listed(bad)}. "
            "Fix those cells (use n/a for a missing value)."
        )
    return values


def _parse_labels(
    path: Path, raw: pd.DataFrame, column: str, prefix: str, problems: list[str]
) -> list[str]:
    labels = [_strip_prefix(str(v), prefix) for v in raw[column]]
    bad = [
        f"line {i + 2}: {v!r}"
        for i, v in enumerate(raw[column])
        if not _LABEL.fullmatch(labels[i])
    ]
    if bad:
        problems.append(
            f"{path}: column {column!r} expected alphanumeric labels such as "
            f"'{prefix}01' or '01'; found {_listed(bad)}."
        )
    return labels


def _check_known(
    path: Path,
    labels: Iterable[str],
    known: Iterable[str] | None,
    what: str,
    prefix: str,
    problems: list[str],
) -> None:
    if known is None:
        return
    allowed = {_strip_prefix(str(k), prefix) for k in known}
    unknown = sorted(set(labels) - allowed)
    if unknown:
        problems.append(
            f"{path}: unknown {what}(s) {_listed(unknown)}; expected one of "
            f"{_listed(sorted(allowed))}. Fix the labels or remove those rows."
        )


def _drop_ignored(
    path: Path, table: pd.DataFrame, ignored: Mapping[str, str]
) -> tuple[pd.DataFrame, list[str]]:
    """Drop the rows of known-but-excluded participants, logging one note per participant."""
    labels = {_strip_prefix(str(k), "sub-"): why for k, why in ignored.items()}
    drop = table["participant_id"].isin(list(labels))
    dropped = sorted(set(table.loc[drop, "participant_id"]))
    for label in dropped:
        logger.info("%s: the rows of sub-%s are ignored (%s).", path.name, label, labels[label])
    return table.loc[~drop].reset_index(drop=True), dropped


def _check_duplicates(path: Path, table: pd.DataFrame, problems: list[str]) -> None:
    dup = table.duplicated(subset=list(ID_COLUMNS), keep=False)
    if dup.any():
        rows = [
            f"line {i + 2}: ({p}, {s}, {t:g})"
            for i, (p, s, t) in zip(
                np.flatnonzero(dup.to_numpy()),
                table.loc[dup, list(ID_COLUMNS)].itertuples(index=False),
                strict=True,
            )
        ]
        problems.append(
            f"{path}: duplicate (participant_id, session_id, time_min) rows: {_listed(rows)}. "
            "Keep one row per participant, session and time point."
        )


def _read_sidecar(path: Path) -> dict[str, Any]:
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        return {}
    try:
        content = json.loads(sidecar.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        msg = f"{sidecar}: not valid JSON ({exc}). Fix or remove the sidecar."
        raise InputError(msg) from exc
    if not isinstance(content, dict):
        msg = f"{sidecar}: must hold a JSON object (column -> description); got {type(content)}."
        raise InputError(msg)
    return content


def dataset_participants(bids_dir: str | Path) -> list[str]:
    """Participants of a BIDS dataset: its ``sub-*`` folders and ``participants.tsv`` rows.

    The reference that phenotype labels are checked against: a label that is neither here
    nor among the participant-level outputs is a typo. Reads no images (no pybids index).

    Parameters
    ----------
    bids_dir : str or Path
        The BIDS root.

    Returns
    -------
    list of str
        Sorted bare labels (without ``sub-``).
    """
    root = Path(bids_dir)
    labels = {p.name.removeprefix("sub-") for p in root.glob("sub-*") if p.is_dir()}
    table = root / "participants.tsv"
    if table.is_file():
        try:
            rows = pd.read_csv(table, sep="\t", dtype=str, keep_default_na=False)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            logger.warning("%s is unreadable (%s); using the sub-* folders only", table, exc)
        else:
            if "participant_id" in rows.columns:
                labels |= {_strip_prefix(v, "sub-") for v in rows["participant_id"] if v.strip()}
    return sorted(labels)


# --------------------------------------------------------------------------- wide form
#: A wide-form column name: a measure, ``_t``, then minutes from the drug injection, ``minus``
#: for negative times and ``p`` as the decimal point (``sick_t10``, ``sick_tminus10``,
#: ``cortisol_t7p5``).
WIDE_COLUMN = re.compile(r"^(?P<measure>.+)_t(?P<minus>minus)?(?P<whole>\d+)(?:p(?P<frac>\d+))?$")
WIDE_ID_COLUMNS: tuple[str, ...] = ("participant_id", "session_id")


def wide_column_time(column: str) -> tuple[str, float] | None:
    """``(measure, time_min)`` of a wide-form column name, or None when it has no time.

    Examples
    --------
    >>> wide_column_time("sick_tminus10"), wide_column_time("cortisol_t7p5")
    (('sick', -10.0), ('cortisol', 7.5))
    """
    match = WIDE_COLUMN.match(column)
    if match is None:
        return None
    value = float(f"{match['whole']}.{match['frac'] or 0}")
    return match["measure"], -value if match["minus"] else value


def _is_wide(raw: pd.DataFrame) -> bool:
    """The BIDS-valid wide form: no ``time_min``, and measure columns named with a time."""
    if "time_min" in raw.columns or not set(WIDE_ID_COLUMNS) <= set(raw.columns):
        return False
    return any(wide_column_time(c) is not None for c in raw.columns)


def _wide_table(
    path: Path, raw: pd.DataFrame, problems: list[str]
) -> tuple[pd.DataFrame, list[str]]:
    """Read the wide form (one row per participant and session) into the long table.

    Returns
    -------
    table : pandas.DataFrame
        ``participant_id``, ``session_id``, ``time_min`` and one column per measure, one row
        per participant, session and time point (NaN where a measure has no column).
    measures : list of str
        The measure names, in column order.
    """
    timed = {c: wide_column_time(c) for c in raw.columns if c not in WIDE_ID_COLUMNS}
    untimed = [c for c, found in timed.items() if found is None]
    if untimed:
        msg = (
            f"{path}: column(s) {untimed} have no time point. In the wide form (one row per "
            "participant_id and session_id) every other column is <measure>_t<minutes> from the "
            "drug injection, e.g. sick_t10 or sick_tminus10 (p as the decimal point: t7p5); "
            "or use the long form with a time_min column."
        )
        raise InputError(msg)
    if len(raw) == 0:
        msg = f"{path}: the table has a header but no rows."
        raise InputError(msg)
    ids = pd.DataFrame(
        {
            "participant_id": _parse_labels(path, raw, "participant_id", "sub-", problems),
            "session_id": _parse_labels(path, raw, "session_id", "ses-", problems),
        }
    )
    dup = ids.duplicated(keep=False)
    if dup.any():
        rows = [
            f"line {i + 2}: ({p}, {s})"
            for i, (p, s) in zip(
                np.flatnonzero(dup.to_numpy()), ids[dup].itertuples(index=False), strict=True
            )
        ]
        problems.append(
            f"{path}: duplicate (participant_id, session_id) rows: {_listed(rows)}. The wide "
            "form has one row per participant and session."
        )
    values = {c: _parse_numeric(path, raw, c, problems, allow_missing=True) for c in timed}
    measures = list(dict.fromkeys(found[0] for found in timed.values() if found is not None))
    times = sorted({found[1] for found in timed.values() if found is not None})
    rows_out = []
    for i, (participant, session) in enumerate(ids.itertuples(index=False)):
        for time_min in times:
            row: dict[str, object] = {
                "participant_id": participant,
                "session_id": session,
                "time_min": time_min,
            }
            for column, found in timed.items():
                if found is not None and found[1] == time_min:
                    row[found[0]] = values[column][i]
            rows_out.append(row)
    table = pd.DataFrame(rows_out, columns=[*ID_COLUMNS, *measures]).astype(
        dict.fromkeys(measures, np.float64)
    )
    return table, measures


def read_phenotype(
    bids_dir: str | Path,
    name: str,
    participants: Iterable[str] | None = None,
    sessions: Iterable[str] | None = None,
    ignored: Mapping[str, str] | None = None,
) -> pd.DataFrame | None:
    """Read and validate ``<bids_dir>/phenotype/<name>.tsv`` (long or wide form).

    The long form has one row per participant, session and time point (``time_min``); the
    BIDS-valid wide form one row per participant and session, with one column per measure and
    time point named ``<measure>_t<minutes>`` (``sick_t10``, ``sick_tminus10``; see
    :func:`wide_column_time`). Both give the same long table.

    Parameters
    ----------
    bids_dir : str or Path
        The BIDS root.
    name : str
        Table name without extension, e.g. ``"subjective"`` or ``"physiology"``.
    participants : iterable of str, optional
        Known participant labels (bare or ``sub-``-prefixed); rows of other participants are an
        error. None = no check.
    sessions : iterable of str, optional
        Known session labels (bare or ``ses-``-prefixed); None = no check.
    ignored : mapping of str to str, optional
        Participants that are known but left out of the analysis (e.g. failed at the
        participant level), label -> reason. Their rows are dropped before any check, with a
        logged note; they are not unknown participants.

    Returns
    -------
    pandas.DataFrame or None
        None when the file does not exist. Otherwise columns ``participant_id`` and
        ``session_id`` (bare labels, str), ``time_min`` (float, minutes) and the measure
        columns (float64, NaN for ``n/a``/empty), sorted by participant, session and time.
        ``attrs["sidecar"]`` holds the optional ``<name>.json`` content, ``attrs["source"]``
        the file path and ``attrs["ignored_participants"]`` the sorted labels whose rows were
        dropped (``ignored``).

    Raises
    ------
    InputError
        Missing required columns, duplicate header names, or an unreadable file/sidecar.
    ValidationError
        (an :class:`InputError`) listing every problem found in the rows: non-numeric cells,
        missing ``time_min``, bad labels, unknown participants or sessions, duplicate rows.
    """
    path = Path(bids_dir) / "phenotype" / f"{name}.tsv"
    if not path.is_file():
        logger.info("No %s: the analyses that need it are skipped.", path)
        return None
    raw = _read_raw(path)
    problems: list[str] = []
    wide = _is_wide(raw)
    if wide:
        table, measures = _wide_table(path, raw, problems)
    else:
        measures = _check_columns(path, raw)
        table = pd.DataFrame(
            {
                "participant_id": _parse_labels(path, raw, "participant_id", "sub-", problems),
                "session_id": _parse_labels(path, raw, "session_id", "ses-", problems),
                "time_min": _parse_numeric(path, raw, "time_min", problems, allow_missing=False),
            }
        )
        for column in measures:
            table[column] = _parse_numeric(path, raw, column, problems, allow_missing=True)
    table, dropped = _drop_ignored(path, table, ignored or {})
    if participants is not None:
        participants = [*participants, *(ignored or {})]
    _check_known(path, table["participant_id"], participants, "participant", "sub-", problems)
    _check_known(path, table["session_id"], sessions, "session", "ses-", problems)
    if not wide:  # the wide form's duplicates were checked on its own rows
        _check_duplicates(path, table, problems)
    if problems:
        raise ValidationError(problems)
    table = table.sort_values(list(ID_COLUMNS), kind="stable", ignore_index=True)
    table.attrs["sidecar"] = _read_sidecar(path)
    table.attrs["source"] = str(path)
    table.attrs["ignored_participants"] = dropped
    logger.info(
        "Read %s (%s form): %d rows, %d participants, measures %s.",
        path,
        "wide" if wide else "long",
        len(table),
        table["participant_id"].nunique(),
        measures,
    )
    return table
