"""Behavioural and physiological challenge effects, FDR, the PC1 aversion index, correlations.

Pure functions on pandas tables (no file I/O); reading and validating ``phenotype/*.tsv`` and
the analysis config happen in :mod:`bids_app.bidsio.phenotype`.

Input tables are in the long format of the CONTRACT: one row per participant, session and
time point, with columns ``participant_id``, ``session_id`` (bare labels), ``time_min``
(minutes from the drug injection; negative = before) and one numeric column per measure.

The defaults reproduce the paper (Methods, "Physiological monitoring" and "Behavioral
monitoring"):

* **Subjective items** (0-10): for each item and post-injection time point (10, 30, 60 min)
  the change from the pre-injection rating (-10 min) is taken within each session. The
  challenge effect (:data:`CHALLENGE_EFFECTS`, config key ``challenge_effect``) is by default
  ``"difference_of_differences"``: a paired t-test of the challenge-session change against the
  baseline-session change across participants, i.e. (challenge post - pre) - (baseline post -
  pre). ``"post_minus_pre"`` is the literal reading of the paper ("comparing each of the three
  post-injection data points with the baseline", the pre-injection rating): a paired t-test of
  the post- against the pre-injection rating within the challenge session alone.
* **Hormones** (cortisol, prolactin): the mean over the 30 and 60 min samples (the only time
  points with complete data in the paper) per session, challenge vs baseline (paired t).
* **Cardiovascular** (systolic_bp, diastolic_bp, pulse): the mean over all time points of the
  session, challenge vs baseline (paired t).
* Benjamini-Hochberg FDR (q = 0.05) across all these tests (``p_fdr``).
* Subjective item/time tests with uncorrected ``p < 0.05`` are ``selected`` and enter the
  aversion index: PC1 of the z-scored challenge-induced changes, oriented so that higher
  scores mean a more aversive (withdrawal-like) response.

Window means use the time points that are available (NaN samples are skipped); a participant
with no sample in the window has no value for that session and drops out of that test.
Physiological changes used in correlations (``<measure>_change``) are absolute differences of
the window means, challenge minus baseline, in the measure's units.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats as sps

from bids_app.errors import StatsError
from bids_app.stats.roi import PairedTestResult, paired_roi_test

logger = logging.getLogger(__name__)

__all__ = [
    "AVERSION_LOADINGS_COLUMNS",
    "BEHAVIOR_DESCRIPTIVES_COLUMNS",
    "BEHAVIOR_EFFECTS_COLUMNS",
    "CHALLENGE_EFFECTS",
    "CORRELATION_COLUMNS",
    "DEFAULT_CORRELATION_PAIRS",
    "AversionIndex",
    "BehaviorAnalysis",
    "BehaviorDesign",
    "BehaviorEffects",
    "analyze_behavior",
    "aversion_index",
    "aversion_loadings",
    "behavior_effects",
    "bh_fdr",
    "change_column",
    "correlations",
    "descriptives",
    "leave_one_out_r",
    "subjective_effects",
    "window_effects",
]

ID_COLUMNS: tuple[str, ...] = ("participant_id", "session_id", "time_min")

#: Columns of ``behavior_effects.tsv``: the CONTRACT ones first, then extras.
BEHAVIOR_EFFECTS_COLUMNS: tuple[str, ...] = (
    "measure",
    "time_min",
    "t",
    "df",
    "p",
    "p_fdr",
    "selected",
    "kind",
    "window",
    "n",
    "mean_difference",
    "cohen_d",
    "status",
)

#: Columns of ``correlations.tsv``: the CONTRACT ones (Pearson), then Spearman's, then the
#: range of the Pearson r over the leave-one-participant-out subsets.
CORRELATION_COLUMNS: tuple[str, ...] = (
    "x",
    "y",
    "n",
    "r",
    "df",
    "p",
    "spearman_rho",
    "spearman_p",
    "r_loo_min",
    "r_loo_max",
)

#: Columns of ``behavior_descriptives.tsv`` (the paper's Supplementary Table 1).
BEHAVIOR_DESCRIPTIVES_COLUMNS: tuple[str, ...] = (
    "measure",
    "kind",
    "condition",
    "session_id",
    "time_min",
    "n",
    "mean",
    "sd",
)

#: Columns of ``aversion_loadings.tsv``: PC1 of the aversion index.
AVERSION_LOADINGS_COLUMNS: tuple[str, ...] = (
    "column",
    "measure",
    "time_min",
    "aversive_sign",
    "loading",
    "explained_variance_ratio",
    "n",
    "status",
)

#: Definitions of the subjective challenge effect (``BehaviorDesign.challenge_effect``).
CHALLENGE_EFFECTS: tuple[str, ...] = ("difference_of_differences", "post_minus_pre")

ChallengeEffect = Literal["difference_of_differences", "post_minus_pre"]

#: The paper's correlations (plus the ones the issue asks for).
DEFAULT_CORRELATION_PAIRS: tuple[tuple[str, str], ...] = (
    ("net_da_release", "aversion_index"),
    ("net_da_release", "net_rcbf_change"),
    ("net_da_release", "cortisol_change"),
    ("net_da_release", "pituitary_r1_change"),
    ("net_da_release", "carotid_r1_change"),
    ("net_rcbf_change", "aversion_index"),
)

Kind = Literal["subjective", "hormone", "cardiovascular"]


@dataclass(frozen=True)
class BehaviorDesign:
    """What to test in the phenotype tables (defaults: the paper).

    Attributes
    ----------
    item_signs : mapping of str to int
        Subjective items to analyse -> aversive sign (+1: an increase is aversive, e.g.
        anxiety; -1: a decrease is aversive, e.g. happiness). Items absent from the table are
        skipped with a notice.
    pre_time_min : float, default -10.0
        Time of the pre-injection rating (minutes).
    post_times_min : tuple of float, default (10.0, 30.0, 60.0)
        Post-injection rating times (minutes).
    hormones : tuple of str, default ("cortisol", "prolactin")
        Physiology columns averaged over ``hormone_window_min``.
    hormone_window_min : tuple of float, default (30.0, 60.0)
        Sample times averaged per session for the hormones.
    cardiovascular : tuple of str, default ("systolic_bp", "diastolic_bp", "pulse")
        Physiology columns averaged over ``cardiovascular_window_min``.
    cardiovascular_window_min : tuple of float or None, default None
        Sample times averaged for the cardiovascular measures; None = all time points.
    fdr_q : float, default 0.05
        Benjamini-Hochberg false discovery rate across all behavioural/physiological tests.
    selection_p : float, default 0.05
        Threshold for a subjective item/time test to enter the aversion index.
    selection_basis : {"p", "p_fdr"}, default "p"
        Which p-value ``selection_p`` applies to (the paper: uncorrected ``p``).
    challenge_effect : {"difference_of_differences", "post_minus_pre"}
        Definition of the subjective challenge effect (module docstring); default
        ``"difference_of_differences"``.
    """

    item_signs: Mapping[str, int] = field(default_factory=dict)
    pre_time_min: float = -10.0
    post_times_min: tuple[float, ...] = (10.0, 30.0, 60.0)
    hormones: tuple[str, ...] = ("cortisol", "prolactin")
    hormone_window_min: tuple[float, ...] = (30.0, 60.0)
    cardiovascular: tuple[str, ...] = ("systolic_bp", "diastolic_bp", "pulse")
    cardiovascular_window_min: tuple[float, ...] | None = None
    fdr_q: float = 0.05
    selection_p: float = 0.05
    selection_basis: Literal["p", "p_fdr"] = "p"
    challenge_effect: ChallengeEffect = "difference_of_differences"


@dataclass(frozen=True, eq=False)
class BehaviorEffects:
    """All behavioural/physiological tests of one study.

    Attributes
    ----------
    table : pandas.DataFrame
        ``behavior_effects.tsv`` (columns :data:`BEHAVIOR_EFFECTS_COLUMNS`).
    subjective_changes : pandas.DataFrame
        Index ``participant_id``; one column per item/time (:func:`change_column`) holding the
        challenge-induced change in rating points (``BehaviorDesign.challenge_effect``: the
        challenge-session change from pre minus the baseline-session change from pre, or the
        challenge-session change from pre alone).
    physiology_changes : pandas.DataFrame
        Index ``participant_id``; ``<measure>_change`` = challenge minus baseline window mean.
    selected_columns : tuple of str
        Columns of ``subjective_changes`` whose test is selected for the aversion index.
    orientation : mapping of str to int
        Aversive sign of every column of ``subjective_changes``.
    """

    table: pd.DataFrame
    subjective_changes: pd.DataFrame
    physiology_changes: pd.DataFrame
    selected_columns: tuple[str, ...]
    orientation: Mapping[str, int]


@dataclass(frozen=True, eq=False)
class AversionIndex:
    """PC1 aversion index.

    Attributes
    ----------
    scores : pandas.Series
        Index ``participant_id`` (all rows of the input), name ``aversion_index``: PC1 scores
        (projection of the z-scored changes on the unit loading vector; higher = more
        aversive). NaN for participants with a missing selected value, or everywhere when
        no index could be computed.
    explained_variance_ratio : float
        Fraction of the total variance of the z-scored changes carried by PC1 (NaN if none).
    loadings : pandas.Series
        Unit-norm PC1 loadings indexed by column (after orientation).
    n : int
        Number of participants in the index.
    columns : tuple of str
        Columns that entered the index.
    status : str
        ``"ok"``, ``"single_item"`` (the oriented z-score itself), ``"no_selected_items"``,
        ``"too_few_participants"`` or ``"orientation_undetermined"``.
    notice : str
        Human-readable explanation for anything but ``"ok"`` (empty otherwise).
    """

    scores: pd.Series
    explained_variance_ratio: float
    loadings: pd.Series
    n: int
    columns: tuple[str, ...]
    status: str = "ok"
    notice: str = ""


@dataclass(frozen=True, eq=False)
class BehaviorAnalysis:
    """Everything the group level writes from the phenotype data.

    Attributes
    ----------
    effects : BehaviorEffects
        Tests, changes and selection.
    aversion : AversionIndex or None
        None when there was no subjective table.
    participant_measures : pandas.DataFrame
        Index ``participant_id``: ``aversion_index`` (when computed) and the
        ``<measure>_change`` physiological changes.
    descriptives : pandas.DataFrame
        ``behavior_descriptives.tsv`` (:func:`descriptives`).
    loadings : pandas.DataFrame
        ``aversion_loadings.tsv`` (:func:`aversion_loadings`; no rows without an index).
    """

    effects: BehaviorEffects
    aversion: AversionIndex | None
    participant_measures: pd.DataFrame
    descriptives: pd.DataFrame
    loadings: pd.DataFrame


# --------------------------------------------------------------------------- FDR


def bh_fdr(p_values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Benjamini-Hochberg adjusted p-values (step-up FDR).

    Parameters
    ----------
    p_values : (m,) array_like
        Uncorrected p-values in [0, 1]. NaN entries are ignored (they do not count in the
        number of tests ``m``) and stay NaN.

    Returns
    -------
    (m,) ndarray of float64
        Adjusted p-values ``min_{j >= i} (m / j) p_(j)``, capped at 1, in the input order
        (:func:`scipy.stats.false_discovery_control`); ``p_fdr <= q`` rejects at false
        discovery rate ``q``.

    Raises
    ------
    StatsError
        If a finite p-value lies outside [0, 1].
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        msg = f"p-values must lie in [0, 1]; got min {p[ok].min():g}, max {p[ok].max():g}."
        raise StatsError(msg)
    if ok.any():
        out[ok] = sps.false_discovery_control(p[ok], method="bh")
    return out


# --------------------------------------------------------------------------- tests


def change_column(item: str, time_min: float) -> str:
    """Return the column name of an item's change at a time point (e.g. ``anxiety_10min``)."""
    return f"{item}_{time_min:g}min"


def _check_long(data: pd.DataFrame, measures: Sequence[str], what: str) -> None:
    missing = [c for c in ID_COLUMNS if c not in data.columns]
    if missing:
        msg = f"{what} table is missing column(s) {missing}; got {list(data.columns)}."
        raise StatsError(msg)
    dup = data.duplicated(subset=list(ID_COLUMNS))
    if dup.any():
        first = data.loc[dup, list(ID_COLUMNS)].iloc[0].tolist()
        msg = (
            f"{what} table has {int(dup.sum())} duplicate (participant_id, session_id, "
            f"time_min) row(s), e.g. {first}."
        )
        raise StatsError(msg)
    absent = [m for m in measures if m not in data.columns]
    if absent:
        msg = f"{what} table has no column(s) {absent}; got {list(data.columns)}."
        raise StatsError(msg)


def _by_time(data: pd.DataFrame, measure: str, session: str, index: pd.Index) -> pd.DataFrame:
    """Values of one measure in one session: rows participant_id (``index``), columns time."""
    sub = data.loc[data["session_id"] == session]
    wide = sub.pivot(index="participant_id", columns="time_min", values=measure)
    return wide.reindex(index=index).astype(np.float64)


def _participants(data: pd.DataFrame) -> pd.Index:
    labels = sorted(str(v) for v in pd.unique(data["participant_id"].astype(str)))
    return pd.Index(labels, name="participant_id")


def _check_sessions(data: pd.DataFrame, sessions: Sequence[str], what: str) -> None:
    found = set(data["session_id"].astype(str))
    missing = [s for s in sessions if s not in found]
    if missing:
        msg = (
            f"{what} table has no rows for session(s) {missing}; sessions found: "
            f"{sorted(found)}. Check --baseline-session/--challenge-session."
        )
        raise StatsError(msg)


def _effect_row(
    measure: str,
    time_min: float,
    res: PairedTestResult,
    kind: Kind,
    window: str,
) -> dict[str, object]:
    diff = res.challenge_mean - res.baseline_mean
    return {
        "measure": measure,
        "time_min": float(time_min),
        "t": res.t,
        "df": res.df,
        "p": res.p,
        "kind": kind,
        "window": window,
        "n": res.n,
        "mean_difference": diff,
        "cohen_d": res.cohen_d,
        "status": res.status,
    }


def _time_column(wide: pd.DataFrame, time_min: float) -> pd.Series:
    if time_min in wide.columns:
        return wide[time_min]
    return pd.Series(np.nan, index=wide.index)


def subjective_effects(
    data: pd.DataFrame,
    items: Sequence[str],
    *,
    baseline_session: str,
    challenge_session: str,
    pre_time_min: float = -10.0,
    post_times_min: Sequence[float] = (10.0, 30.0, 60.0),
    effect: ChallengeEffect = "difference_of_differences",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Challenge effects on subjective items at each post-injection time point.

    Parameters
    ----------
    data : pandas.DataFrame
        Long table (``participant_id``, ``session_id``, ``time_min``, one column per item).
    items : sequence of str
        Item columns to test.
    baseline_session, challenge_session : str
        Bare session labels (e.g. ``"sal"``, ``"nal"``).
    pre_time_min : float, default -10.0
        Pre-injection rating time (minutes).
    post_times_min : sequence of float, default (10, 30, 60)
        Post-injection rating times (minutes).
    effect : {"difference_of_differences", "post_minus_pre"}
        ``"difference_of_differences"``: paired t of the challenge-session change (post - pre)
        against the baseline-session change; ``"post_minus_pre"``: paired t of the post-
        against the pre-injection rating within the challenge session (the baseline session
        is not used).

    Returns
    -------
    table : pandas.DataFrame
        One row per item and post time: ``measure``, ``time_min``, ``t``, ``df``, ``p``,
        ``kind="subjective"``, ``window``, ``n``, ``mean_difference`` (mean challenge change
        minus mean baseline change, or mean challenge change, rating points), ``cohen_d``,
        ``status``.
    changes : pandas.DataFrame
        Index ``participant_id``; columns :func:`change_column` ``(item, time)``: the
        challenge-induced change per participant (challenge change minus baseline change, or
        challenge change).

    Raises
    ------
    StatsError
        For an unknown ``effect``, missing columns or sessions, duplicate rows.
    """
    if effect not in CHALLENGE_EFFECTS:
        msg = f"challenge effect must be one of {list(CHALLENGE_EFFECTS)}; got {effect!r}."
        raise StatsError(msg)
    _check_long(data, items, "subjective")
    _check_sessions(data, (baseline_session, challenge_session), "subjective")
    index = _participants(data)
    rows: list[dict[str, object]] = []
    changes: dict[str, pd.Series] = {}
    for item in items:
        base = _by_time(data, item, baseline_session, index)
        chal = _by_time(data, item, challenge_session, index)
        for time_min in post_times_min:
            d_chal = _time_column(chal, time_min) - _time_column(chal, pre_time_min)
            if effect == "post_minus_pre":
                pre = _time_column(chal, pre_time_min).to_numpy()
                res = paired_roi_test(pre, _time_column(chal, time_min).to_numpy())
                window = f"challenge session, {time_min:g} vs {pre_time_min:g} min (post - pre)"
                changes[change_column(item, time_min)] = d_chal
            else:
                d_base = _time_column(base, time_min) - _time_column(base, pre_time_min)
                res = paired_roi_test(d_base.to_numpy(), d_chal.to_numpy())
                window = f"change from {pre_time_min:g} to {time_min:g} min"
                changes[change_column(item, time_min)] = d_chal - d_base
            rows.append(_effect_row(item, time_min, res, "subjective", window))
    table = pd.DataFrame(rows)
    return table, pd.DataFrame(changes, index=index)


def _window_mean(wide: pd.DataFrame, times_min: Sequence[float] | None) -> pd.Series:
    cols = list(wide.columns) if times_min is None else [t for t in times_min if t in wide.columns]
    if not cols:
        return pd.Series(np.nan, index=wide.index)
    return wide[cols].mean(axis=1, skipna=True)


def window_effects(
    data: pd.DataFrame,
    measures: Sequence[str],
    *,
    baseline_session: str,
    challenge_session: str,
    times_min: Sequence[float] | None,
    kind: Kind,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Challenge vs baseline paired tests of per-session window means (hormones, vitals).

    Parameters
    ----------
    data : pandas.DataFrame
        Long table (``participant_id``, ``session_id``, ``time_min``, measure columns).
    measures : sequence of str
        Columns to test.
    baseline_session, challenge_session : str
        Bare session labels.
    times_min : sequence of float or None
        Time points averaged per session (available samples only); None = all time points.
    kind : {"hormone", "cardiovascular", "subjective"}
        Written to the ``kind`` column.

    Returns
    -------
    table : pandas.DataFrame
        One row per measure (``time_min`` NaN; ``window`` describes the averaging;
        ``mean_difference`` in the measure's units).
    changes : pandas.DataFrame
        Index ``participant_id``; ``<measure>_change`` = challenge minus baseline window mean.
    """
    _check_long(data, measures, kind)
    _check_sessions(data, (baseline_session, challenge_session), kind)
    index = _participants(data)
    window = (
        "mean of all time points"
        if times_min is None
        else "mean of " + ", ".join(f"{t:g}" for t in times_min) + " min"
    )
    rows: list[dict[str, object]] = []
    changes: dict[str, pd.Series] = {}
    for measure in measures:
        base = _window_mean(_by_time(data, measure, baseline_session, index), times_min)
        chal = _window_mean(_by_time(data, measure, challenge_session, index), times_min)
        res = paired_roi_test(base.to_numpy(), chal.to_numpy())
        rows.append(_effect_row(measure, float("nan"), res, kind, window))
        changes[f"{measure}_change"] = chal - base
    return pd.DataFrame(rows), pd.DataFrame(changes, index=index)


def _present(columns: Sequence[str], wanted: Sequence[str], what: str) -> list[str]:
    found = [c for c in wanted if c in columns]
    absent = [c for c in wanted if c not in columns]
    if absent:
        logger.info("No %s column(s) %s in the phenotype table: not analysed.", what, absent)
    return found


def behavior_effects(
    subjective: pd.DataFrame | None,
    physiology: pd.DataFrame | None,
    design: BehaviorDesign,
    *,
    baseline_session: str,
    challenge_session: str,
) -> BehaviorEffects:
    """Run all subjective and physiological tests, FDR-correct them and select items.

    Parameters
    ----------
    subjective, physiology : pandas.DataFrame or None
        Long phenotype tables (None = not available).
    design : BehaviorDesign
        Items, time points, windows and thresholds.
    baseline_session, challenge_session : str
        Bare session labels.

    Returns
    -------
    BehaviorEffects
        The effects table (FDR over every test with a finite p; ``selected`` marks subjective
        rows with ``selection_basis`` p below ``selection_p``), the changes and orientation.
    """
    sessions = {"baseline_session": baseline_session, "challenge_session": challenge_session}
    tables: list[pd.DataFrame] = []
    subj_changes = pd.DataFrame(index=pd.Index([], name="participant_id"))
    phys_parts: list[pd.DataFrame] = []
    orientation: dict[str, int] = {}
    if subjective is not None:
        items = _present(list(subjective.columns), list(design.item_signs), "subjective item")
        table, subj_changes = subjective_effects(
            subjective,
            items,
            pre_time_min=design.pre_time_min,
            post_times_min=design.post_times_min,
            effect=design.challenge_effect,
            **sessions,
        )
        tables.append(table)
        for item in items:
            for time_min in design.post_times_min:
                orientation[change_column(item, time_min)] = int(design.item_signs[item])
    if physiology is not None:
        cols = list(physiology.columns)
        groups: tuple[tuple[tuple[str, ...], tuple[float, ...] | None, Kind], ...] = (
            (design.hormones, design.hormone_window_min, "hormone"),
            (design.cardiovascular, design.cardiovascular_window_min, "cardiovascular"),
        )
        for names, window, kind in groups:
            found = _present(cols, names, kind)
            if found:
                table, changes = window_effects(
                    physiology, found, times_min=window, kind=kind, **sessions
                )
                tables.append(table)
                phys_parts.append(changes)
    table = _finalise_table(tables, design)
    phys_changes = (
        pd.concat(phys_parts, axis=1)
        if phys_parts
        else pd.DataFrame(index=pd.Index([], name="participant_id"))
    )
    selected = tuple(
        change_column(m, t)
        for m, t in table.loc[table["selected"], ["measure", "time_min"]].itertuples(index=False)
    )
    return BehaviorEffects(table, subj_changes, phys_changes, selected, orientation)


def _finalise_table(tables: list[pd.DataFrame], design: BehaviorDesign) -> pd.DataFrame:
    tables = [t for t in tables if len(t)]
    if not tables:
        return pd.DataFrame(columns=list(BEHAVIOR_EFFECTS_COLUMNS)).astype({"selected": bool})
    table = pd.concat(tables, ignore_index=True)
    table["p_fdr"] = bh_fdr(table["p"].to_numpy(dtype=np.float64))
    basis = table[design.selection_basis].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        below = np.nan_to_num(basis, nan=np.inf) < design.selection_p
    table["selected"] = (table["kind"] == "subjective").to_numpy() & below
    n_fdr = int((table["p_fdr"] <= design.fdr_q).sum())
    logger.info(
        "%d behavioural/physiological tests; %d significant at FDR q=%g; %d item/time "
        "changes selected for the aversion index.",
        len(table),
        n_fdr,
        design.fdr_q,
        int(table["selected"].sum()),
    )
    return table[list(BEHAVIOR_EFFECTS_COLUMNS)]


# --------------------------------------------------------------------------- PC1


def _empty_index(
    index: pd.Index, columns: Sequence[str], status: str, notice: str, n: int = 0
) -> AversionIndex:
    logger.warning("Aversion index not computed: %s", notice)
    return AversionIndex(
        scores=pd.Series(np.nan, index=index, name="aversion_index", dtype=np.float64),
        explained_variance_ratio=float("nan"),
        loadings=pd.Series(np.nan, index=pd.Index(list(columns)), dtype=np.float64),
        n=n,
        columns=tuple(columns),
        status=status,
        notice=notice,
    )


def _zscore(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    z: npt.NDArray[np.float64] = (values - values.mean(axis=0)) / values.std(axis=0, ddof=1)
    return z


def _orientation_sign(
    scores: npt.NDArray[np.float64],
    loading: npt.NDArray[np.float64],
    z: npt.NDArray[np.float64],
    signs: npt.NDArray[np.float64],
) -> float:
    """+1 or -1 so that the scores correlate positively with the sign-weighted mean z."""
    reference = z @ signs / signs.size
    if np.std(reference) > 1e-12 and np.std(scores) > 1e-12:
        r = float(np.corrcoef(scores, reference)[0, 1])
        if abs(r) > 1e-12:
            return 1.0 if r > 0 else -1.0
    dot = float(loading @ signs)
    if abs(dot) > 1e-12:
        return 1.0 if dot > 0 else -1.0
    return 0.0


def aversion_index(
    changes: pd.DataFrame,
    selected: Sequence[str],
    orientation: Mapping[str, int],
) -> AversionIndex:
    """PC1 aversion index of the selected challenge-induced changes.

    The selected columns are z-scored across participants (``ddof=1``), PC1 is the first
    right singular vector of the z-score matrix, and the scores are the projections on it.
    A principal component has an arbitrary sign: it is flipped so that the scores correlate
    positively with the sign-weighted mean z-score ``mean_j(sign_j * z_j)``, where ``sign_j``
    (``orientation``) is +1 when an increase in column ``j`` is aversive and -1 when a decrease
    is. Higher scores therefore mean a more aversive response, whatever the sign of the data.

    Parameters
    ----------
    changes : pandas.DataFrame
        Index ``participant_id``; one column per item/time with the challenge-induced change.
    selected : sequence of str
        Columns entering the index.
    orientation : mapping of str to int
        Aversive sign (+1 or -1) of every selected column.

    Returns
    -------
    AversionIndex
        Scores (NaN for participants with a missing selected value), explained variance
        ratio, loadings, n and a status. With no selected column there is no index
        (``status="no_selected_items"``); with one, the score is the oriented z-score
        (``status="single_item"``). Columns with zero variance are dropped with a notice.

    Raises
    ------
    StatsError
        If a selected column is absent from ``changes`` or has no valid orientation.
    """
    index = changes.index
    selected = list(dict.fromkeys(selected))
    missing = [c for c in selected if c not in changes.columns]
    if missing:
        msg = f"selected column(s) {missing} not in the changes table {list(changes.columns)}."
        raise StatsError(msg)
    bad = [c for c in selected if orientation.get(c) not in (1, -1)]
    if bad:
        msg = f"orientation must give +1 or -1 for every selected column; missing/invalid: {bad}."
        raise StatsError(msg)
    if not selected:
        return _empty_index(
            index, [], "no_selected_items", "no subjective change passed the selection threshold."
        )
    complete = changes[selected].astype(np.float64).dropna(how="any")
    n = len(complete)
    if n < len(index):
        logger.info(
            "Aversion index: %d of %d participants have every selected value.", n, len(index)
        )
    if n < 3:
        notice = f"only {n} participant(s) have every selected value; at least 3 are needed."
        return _empty_index(index, selected, "too_few_participants", notice, n)
    values = complete.to_numpy()
    varying = values.std(axis=0, ddof=1) > 1e-12
    if not varying.all():
        dropped = [c for c, v in zip(selected, varying, strict=True) if not v]
        logger.warning("Aversion index: column(s) %s have zero variance; dropped.", dropped)
        selected = [c for c, v in zip(selected, varying, strict=True) if v]
        values = values[:, varying]
        if not selected:
            return _empty_index(index, [], "no_selected_items", "all selected columns constant.")
    return _pc1(index, complete.index, selected, _zscore(values), orientation)


def _pc1(
    index: pd.Index,
    rows: pd.Index,
    columns: list[str],
    z: npt.NDArray[np.float64],
    orientation: Mapping[str, int],
) -> AversionIndex:
    signs = np.array([orientation[c] for c in columns], dtype=np.float64)
    status, notice = "ok", ""
    if len(columns) == 1:
        loading = signs.copy()
        ratio = 1.0
        status, notice = "single_item", f"one selected column ({columns[0]}): oriented z-score."
        logger.info("Aversion index: %s", notice)
    else:
        _, s, vt = np.linalg.svd(z, full_matrices=False)
        loading = vt[0]
        ratio = float(s[0] ** 2 / np.sum(s**2))
        flip = _orientation_sign(z @ loading, loading, z, signs)
        if flip == 0.0:
            status = "orientation_undetermined"
            notice = "PC1 is orthogonal to the aversive direction; its sign is arbitrary."
            logger.warning("Aversion index: %s", notice)
            flip = 1.0
        loading = loading * flip
    scores = pd.Series(np.nan, index=index, name="aversion_index", dtype=np.float64)
    scores.loc[rows] = z @ loading
    return AversionIndex(
        scores=scores,
        explained_variance_ratio=ratio,
        loadings=pd.Series(loading, index=pd.Index(columns)),
        n=len(rows),
        columns=tuple(columns),
        status=status,
        notice=notice,
    )


# --------------------------------------------------------------------------- correlations


def _pearson_spearman(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
) -> tuple[float, float, float, float]:
    """Return Pearson ``(r, p)`` and Spearman ``(rho, p)``, two-sided; NaN if undefined.

    Undefined means fewer than 3 pairs or a constant variable (scipy would warn and return
    NaN); the p-values use the t distribution with ``n - 2`` df.
    """
    nan = float("nan")
    if x.size < 3 or float(np.ptp(x)) == 0.0 or float(np.ptp(y)) == 0.0:
        return nan, nan, nan, nan
    pearson = sps.pearsonr(x, y)
    spearman = sps.spearmanr(x, y)
    return (
        float(pearson.statistic),
        float(pearson.pvalue),
        float(spearman.statistic),
        float(spearman.pvalue),
    )


def leave_one_out_r(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Pearson r of ``x`` and ``y`` with each pair left out in turn.

    Parameters
    ----------
    x, y : (n,) ndarray of float64
        Complete pairs (no NaN).

    Returns
    -------
    (n,) ndarray of float64
        Element ``i`` is the Pearson r without pair ``i``; NaN where the remaining ``n - 1``
        pairs are fewer than 3 or one variable is constant among them.
    """
    out = np.full(x.size, np.nan)
    for i in range(x.size):
        out[i] = _pearson_spearman(np.delete(x, i), np.delete(y, i))[0]
    return out


def correlations(
    table: pd.DataFrame, pairs: Sequence[tuple[str, str]] = DEFAULT_CORRELATION_PAIRS
) -> pd.DataFrame:
    """Pearson correlations between participant-level measures (pairwise complete).

    Parameters
    ----------
    table : pandas.DataFrame
        One row per participant, one column per measure (``participant_measures.tsv``).
    pairs : sequence of (str, str), default :data:`DEFAULT_CORRELATION_PAIRS`
        ``(x, y)`` column pairs. Pairs naming an absent column are skipped with a notice.

    Returns
    -------
    pandas.DataFrame
        Columns ``x``, ``y``, ``n`` (complete pairs), Pearson ``r``, ``df = n - 2``, its
        two-sided ``p``, then Spearman's rank correlation ``spearman_rho`` and its two-sided
        ``spearman_p`` (robust to one outlying participant, which n = 10 cannot absorb),
        then ``r_loo_min`` and ``r_loo_max``: the smallest and largest Pearson r when each
        participant is left out in turn (:func:`leave_one_out_r`; how much one participant
        carries the correlation). Correlations and p-values are NaN when ``n < 3`` or a
        variable is constant; the leave-one-out range is NaN when no subset has one.
    """
    rows: list[dict[str, object]] = []
    for x_name, y_name in pairs:
        absent = [c for c in (x_name, y_name) if c not in table.columns]
        if absent:
            logger.info("Correlation %s vs %s skipped: no column %s.", x_name, y_name, absent)
            continue
        x = pd.to_numeric(table[x_name], errors="coerce").to_numpy(dtype=np.float64)
        y = pd.to_numeric(table[y_name], errors="coerce").to_numpy(dtype=np.float64)
        keep = np.isfinite(x) & np.isfinite(y)
        r, p, rho, p_rho = _pearson_spearman(x[keep], y[keep])
        n = int(keep.sum())
        loo = leave_one_out_r(x[keep], y[keep])
        finite = loo[np.isfinite(loo)]
        rows.append(
            {
                "x": x_name,
                "y": y_name,
                "n": n,
                "r": r,
                "df": n - 2,
                "p": p,
                "spearman_rho": rho,
                "spearman_p": p_rho,
                "r_loo_min": float(finite.min()) if finite.size else float("nan"),
                "r_loo_max": float(finite.max()) if finite.size else float("nan"),
            }
        )
    return pd.DataFrame(rows, columns=list(CORRELATION_COLUMNS))


# --------------------------------------------------------------------------- descriptives


def descriptives(
    tables: Sequence[tuple[pd.DataFrame | None, Sequence[str], str]],
    *,
    baseline_session: str,
    challenge_session: str,
) -> pd.DataFrame:
    """Mean, SD and n of each measure per session and time point (Supplementary Table 1).

    Parameters
    ----------
    tables : sequence of (DataFrame or None, sequence of str, str)
        ``(long table, measures, kind)``: a phenotype table (None = absent), the measure
        columns to describe (absent ones are skipped) and the ``kind`` written to the rows
        (``"subjective"``, ``"hormone"``, ``"cardiovascular"``).
    baseline_session, challenge_session : str
        Bare session labels; other sessions are not described.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`BEHAVIOR_DESCRIPTIVES_COLUMNS`: one row per measure, session
        (``condition`` ``baseline``/``challenge``) and time point with ``n`` finite values,
        their ``mean`` and ``sd`` (ddof 1; NaN when ``n < 2``), in the measure's units. Rows
        are in measure order, baseline first, then by time.
    """
    rows: list[dict[str, object]] = []
    conditions = (("baseline", baseline_session), ("challenge", challenge_session))
    for data, measures, kind in tables:
        if data is None:
            continue
        for measure in (m for m in measures if m in data.columns):
            for condition, session in conditions:
                sub = data.loc[data["session_id"].astype(str) == session]
                for time_min, values in sub.groupby("time_min", sort=True)[measure]:
                    v = values.to_numpy(dtype=np.float64)
                    v = v[np.isfinite(v)]
                    rows.append(
                        {
                            "measure": measure,
                            "kind": kind,
                            "condition": condition,
                            "session_id": session,
                            "time_min": float(cast("float", time_min)),
                            "n": int(v.size),
                            "mean": float(v.mean()) if v.size else float("nan"),
                            "sd": float(v.std(ddof=1)) if v.size > 1 else float("nan"),
                        }
                    )
    return pd.DataFrame(rows, columns=list(BEHAVIOR_DESCRIPTIVES_COLUMNS))


def aversion_loadings(aversion: AversionIndex, effects: BehaviorEffects) -> pd.DataFrame:
    """PC1 loadings and explained variance of the aversion index, one row per column.

    Parameters
    ----------
    aversion : AversionIndex
        The index (:func:`aversion_index`).
    effects : BehaviorEffects
        The tests whose selected rows name each column's item and time point.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`AVERSION_LOADINGS_COLUMNS`: the change column (``anxiety_10min``), its
        ``measure`` and ``time_min``, the ``aversive_sign`` used to orient PC1, the unit-norm
        ``loading`` (after orientation: positive = this change moves with aversion), and,
        repeated on every row, PC1's ``explained_variance_ratio`` (0-1), ``n`` and
        ``status``. No rows when no column entered the index.
    """
    subjective = effects.table.loc[effects.table["kind"] == "subjective"]
    where = {
        change_column(str(m), float(t)): (str(m), float(t))
        for m, t in zip(subjective["measure"], subjective["time_min"], strict=True)
    }
    rows = []
    for column, loading in zip(
        map(str, aversion.loadings.index), aversion.loadings.to_numpy(float), strict=True
    ):
        measure, time_min = where.get(column, (column, float("nan")))
        rows.append(
            {
                "column": column,
                "measure": measure,
                "time_min": time_min,
                "aversive_sign": int(effects.orientation.get(column, 0)),
                "loading": float(loading),
                "explained_variance_ratio": float(aversion.explained_variance_ratio),
                "n": int(aversion.n),
                "status": aversion.status,
            }
        )
    return pd.DataFrame(rows, columns=list(AVERSION_LOADINGS_COLUMNS))


# --------------------------------------------------------------------------- all together


def analyze_behavior(
    subjective: pd.DataFrame | None,
    physiology: pd.DataFrame | None,
    design: BehaviorDesign,
    *,
    baseline_session: str,
    challenge_session: str,
) -> BehaviorAnalysis:
    """Run the tests, FDR, selection, aversion index and participant-level changes at once.

    Parameters
    ----------
    subjective, physiology : pandas.DataFrame or None
        Long phenotype tables (see :mod:`bids_app.bidsio.phenotype`); None = absent.
    design : BehaviorDesign
        The analysis design.
    baseline_session, challenge_session : str
        Bare session labels.

    Returns
    -------
    BehaviorAnalysis
        ``effects``, ``aversion`` (None without a subjective table), the participant
        measures (``aversion_index`` and ``<measure>_change`` columns), the descriptives of
        every analysed measure and the PC1 loadings.
    """
    effects = behavior_effects(
        subjective,
        physiology,
        design,
        baseline_session=baseline_session,
        challenge_session=challenge_session,
    )
    aversion = None
    loadings = pd.DataFrame(columns=list(AVERSION_LOADINGS_COLUMNS))
    parts = [effects.physiology_changes]
    if subjective is not None:
        aversion = aversion_index(
            effects.subjective_changes, effects.selected_columns, effects.orientation
        )
        parts.insert(0, aversion.scores.to_frame())
        loadings = aversion_loadings(aversion, effects)
    table = descriptives(
        (
            (subjective, list(design.item_signs), "subjective"),
            (physiology, design.hormones, "hormone"),
            (physiology, design.cardiovascular, "cardiovascular"),
        ),
        baseline_session=baseline_session,
        challenge_session=challenge_session,
    )
    parts = [p for p in parts if len(p.columns)]
    if parts:
        measures = pd.concat(parts, axis=1)
        measures.index.name = "participant_id"
    else:
        measures = pd.DataFrame(index=pd.Index([], name="participant_id"))
    return BehaviorAnalysis(
        effects=effects,
        aversion=aversion,
        participant_measures=measures,
        descriptives=table,
        loadings=loadings,
    )
