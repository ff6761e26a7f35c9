"""Behavioural and physiological measures of the synthetic study (BIDS ``phenotype/``).

Both tables are long format: ``participant_id``, ``session_id``, ``time_min`` (minutes from the
drug/placebo injection; negative = before), then one numeric column per measure.

* ``subjective.tsv``: 16 self-reports (integers 0-10) at -10, 10, 30 and 60 min. In the
  challenge session ``anxiety``, ``annoyance`` and ``restlessness`` rise and ``happiness`` and
  ``mood`` fall, by ``aversion_gain_points * item_scale * severity * profile(t)`` (profile 1.0,
  0.8, 0.5 at 10, 30, 60 min); the other items carry noise only.
* ``physiology.tsv``: ``cortisol`` (ug/dL) and ``prolactin`` (ng/mL) at -10, 10, 30, 60 min;
  ``systolic_bp``, ``diastolic_bp`` (mmHg) and ``pulse`` (beats/min) at -10, 2, 5, 10, 15, 20,
  25, 30, 45 and 60 min; rows are shared, NaN where a measure was not taken. Cortisol rises
  after the challenge (mostly at 30 and 60 min, scaled with severity), prolactin does not
  change, the cardiovascular measures rise modestly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from petsim.design import SESSIONS, StudyEffects

SUBJECTIVE_TIMES_MIN: tuple[int, ...] = (-10, 10, 30, 60)
HORMONE_TIMES_MIN: tuple[int, ...] = (-10, 10, 30, 60)
CARDIO_TIMES_MIN: tuple[int, ...] = (-10, 2, 5, 10, 15, 20, 25, 30, 45, 60)
AVERSION_PROFILE: dict[int, float] = {-10: 0.0, 10: 1.0, 30: 0.8, 60: 0.5}


@dataclass(frozen=True)
class Item:
    """One subjective item: population baseline (0-10), challenge direction and scale."""

    name: str
    description: str
    baseline: float
    direction: int = 0
    scale: float = 0.0


SUBJECTIVE_ITEMS: tuple[Item, ...] = (
    Item("alertness", "Self-rated alertness", 6.0),
    Item("anxiety", "Self-rated anxiety", 2.0, +1, 1.0),
    Item("annoyance", "Self-rated annoyance", 1.5, +1, 0.9),
    Item("loss_of_control", "Self-rated loss of control", 1.0),
    Item("depression", "Self-rated depression", 2.0),
    Item("distressful_thoughts", "Self-rated distressful thoughts", 2.0),
    Item("happiness", "Self-rated happiness", 6.5, -1, 0.8),
    Item("mood", "Self-rated mood (0 worst, 10 best)", 6.5, -1, 0.9),
    Item("restlessness", "Self-rated restlessness", 2.0, +1, 1.1),
    Item("concentration", "Self-rated concentration", 6.0),
    Item("desire_to_use", "Self-rated desire to use an opiate", 4.0),
    Item("optimism", "Self-rated optimism", 6.0),
    Item("activeness", "Self-rated activeness", 5.0),
    Item("indifference", "Self-rated indifference", 2.0),
    Item("irritability", "Self-rated irritability", 2.0),
    Item("pain", "Self-rated pain", 1.0),
)
"""The 16 self-report items of the paper, in its order."""

AVERSIVE_ITEMS: tuple[str, ...] = tuple(i.name for i in SUBJECTIVE_ITEMS if i.direction != 0)


def _cardio_profile(t_min: float) -> float:
    """Time course of the cardiovascular response: rises over 10 min, decays after 20 min."""
    if t_min <= 0:
        return 0.0
    return min(t_min / 10.0, 1.0) * float(np.exp(-max(t_min - 20.0, 0.0) / 30.0))


HORMONE_PROFILE: dict[int, float] = {-10: 0.0, 10: 0.3, 30: 1.0, 60: 0.9}


def subjective_table(
    rng: np.random.Generator,
    participant_ids: list[str],
    severity: NDArray[np.float64],
    effects: StudyEffects,
) -> pd.DataFrame:
    """Simulate the subjective self-reports.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random generator (phenotype stream).
    participant_ids : list of str
        ``sub-XX`` labels.
    severity : (n_participants,) ndarray
        Withdrawal severity (1 on average; 0 in null studies).
    effects : StudyEffects
        ``aversion_gain_points`` sets the effect size.

    Returns
    -------
    pandas.DataFrame
        Columns ``participant_id, session_id, time_min`` and the 16 items (int, 0-10).
    """
    n_items = len(SUBJECTIVE_ITEMS)
    baseline = np.array([i.baseline for i in SUBJECTIVE_ITEMS])
    direction = np.array([i.direction * i.scale for i in SUBJECTIVE_ITEMS])
    rows = []
    for p, pid in enumerate(participant_ids):
        trait = baseline + rng.normal(0.0, 1.0, size=n_items)
        for ses in SESSIONS:
            state = trait + rng.normal(0.0, 0.5, size=n_items)
            for t in SUBJECTIVE_TIMES_MIN:
                noise = rng.normal(0.0, 0.8, size=n_items)
                value = state + noise
                if ses == SESSIONS[1]:
                    gain = effects.aversion_gain_points * severity[p] * AVERSION_PROFILE[t]
                    value = value + direction * gain
                scores = np.clip(np.rint(value), 0, 10).astype(int)
                rows.append([pid, f"ses-{ses}", t, *scores.tolist()])
    columns = ["participant_id", "session_id", "time_min", *(i.name for i in SUBJECTIVE_ITEMS)]
    return pd.DataFrame(rows, columns=columns)


def physiology_table(
    rng: np.random.Generator,
    participant_ids: list[str],
    severity: NDArray[np.float64],
    effects: StudyEffects,
) -> pd.DataFrame:
    """Simulate hormones and cardiovascular measures.

    Returns
    -------
    pandas.DataFrame
        Columns ``participant_id, session_id, time_min, cortisol, prolactin, systolic_bp,
        diastolic_bp, pulse``; NaN where a measure was not taken at that time.
    """
    times = sorted(set(HORMONE_TIMES_MIN) | set(CARDIO_TIMES_MIN))
    rows = []
    for p, pid in enumerate(participant_ids):
        cortisol0 = float(np.clip(rng.normal(12.0, 3.0), 5.0, 25.0))
        prolactin0 = float(np.exp(rng.normal(np.log(10.0), 0.35)))
        cardio0 = np.array([rng.normal(122.0, 10.0), rng.normal(78.0, 7.0), rng.normal(72.0, 9.0)])
        cardio_gain = np.array(
            [
                effects.systolic_bp_increase_mmhg,
                effects.diastolic_bp_increase_mmhg,
                effects.pulse_increase_bpm,
            ]
        )
        for s_idx, ses in enumerate(SESSIONS):
            challenge = s_idx == 1
            # The challenge session is ~2.5 h later: a small diurnal fall in cortisol.
            cort_base = cortisol0 * (0.92 if challenge else 1.0)
            cort_gain = effects.cortisol_increase * (0.5 + 0.5 * severity[p]) if challenge else 0
            for t in times:
                cortisol = prolactin = np.nan
                if t in HORMONE_TIMES_MIN:
                    cortisol = cort_base * (1.0 + cort_gain * HORMONE_PROFILE[t])
                    cortisol *= float(np.exp(rng.normal(0.0, 0.10)))
                    prolactin = prolactin0 * float(np.exp(rng.normal(0.0, 0.15)))
                cardio = np.full(3, np.nan)
                if t in CARDIO_TIMES_MIN:
                    response = cardio_gain * _cardio_profile(t) if challenge else 0.0
                    cardio = cardio0 + response + rng.normal(0.0, [4.0, 3.0, 3.0])
                rows.append(
                    [
                        pid,
                        f"ses-{ses}",
                        t,
                        round(cortisol, 2),
                        round(prolactin, 2),
                        *np.round(cardio, 1).tolist(),
                    ]
                )
    columns = [
        "participant_id",
        "session_id",
        "time_min",
        "cortisol",
        "prolactin",
        "systolic_bp",
        "diastolic_bp",
        "pulse",
    ]
    return pd.DataFrame(rows, columns=columns)


_COMMON_COLUMNS = {
    "participant_id": {"Description": "Participant label, as in participants.tsv."},
    "session_id": {
        "Description": "Session label: ses-sal (placebo, baseline) or ses-nal (naloxone).",
        "Levels": {"ses-sal": "saline placebo (baseline)", "ses-nal": "naloxone challenge"},
    },
    "time_min": {
        "Description": (
            "Time of the measurement relative to the drug (naloxone or saline) injection; "
            "negative values are before the injection. The tracer injection (PET TimeZero) "
            "follows the drug injection by about 6 min."
        ),
        "Units": "min",
    },
}


def subjective_sidecar() -> dict[str, object]:
    """JSON sidecar of ``phenotype/subjective.tsv``."""
    side: dict[str, object] = {
        "MeasurementToolMetadata": {
            "Description": (
                "Self-reported withdrawal experience on 0-10 scales (0 lowest, 10 highest), "
                "10 min before and 10, 30 and 60 min after the injection. Synthetic data."
            )
        },
        **_COMMON_COLUMNS,
    }
    for item in SUBJECTIVE_ITEMS:
        side[item.name] = {
            "Description": f"{item.description}, 0 (lowest) to 10 (highest).",
            "Units": "arbitrary",
            "MinValue": 0,
            "MaxValue": 10,
        }
    return side


def physiology_sidecar() -> dict[str, object]:
    """JSON sidecar of ``phenotype/physiology.tsv``."""
    return {
        "MeasurementToolMetadata": {
            "Description": (
                "Plasma hormones (before and 10, 30, 60 min after the injection) and "
                "cardiovascular measures (before and repeatedly after). n/a where a measure "
                "was not taken at that time. Synthetic data."
            )
        },
        **_COMMON_COLUMNS,
        "cortisol": {"Description": "Plasma cortisol.", "Units": "ug/dL"},
        "prolactin": {"Description": "Plasma prolactin.", "Units": "ng/mL"},
        "systolic_bp": {"Description": "Systolic blood pressure.", "Units": "mmHg"},
        "diastolic_bp": {"Description": "Diastolic blood pressure.", "Units": "mmHg"},
        "pulse": {"Description": "Pulse rate.", "Units": "beats/min"},
    }


def wide_column(measure: str, time_min: float) -> str:
    """BIDS-valid wide column name of a measure at a time, e.g. ``sick_t10``, ``sick_tminus10``."""
    minutes = abs(float(time_min))
    text = f"{minutes:g}".replace(".", "p")
    return f"{measure}_t{'minus' if time_min < 0 else ''}{text}"


def wide_form(
    table: pd.DataFrame, sidecar: dict[str, object]
) -> tuple[pd.DataFrame, dict[str, object]]:
    """One row per participant and session, one column per measure and time point.

    The form BIDS 1.10 validates (``participant_id`` unique per row with ``session_id``);
    columns that are empty at every row (a measure not taken at that time) are dropped. The
    sidecar describes every column, with the measure's units and the time point.

    Parameters
    ----------
    table : DataFrame
        Long table (``participant_id``, ``session_id``, ``time_min``, one column per measure).
    sidecar : dict
        Its JSON sidecar (per-measure entries with ``Description`` and ``Units``).
    """
    ids = ["participant_id", "session_id"]
    measures = [c for c in table.columns if c not in (*ids, "time_min")]
    columns: dict[str, pd.Series] = {}
    out_sidecar: dict[str, object] = {
        k: v for k, v in sidecar.items() if k not in (*measures, "time_min")
    }
    indexed = table.set_index(ids)
    for measure in measures:
        entry = sidecar.get(measure)
        for time_min in sorted(table["time_min"].unique()):
            rows = indexed[indexed["time_min"] == time_min][measure]
            if rows.notna().any():
                name = wide_column(measure, float(time_min))
                columns[name] = rows
                described = dict(entry) if isinstance(entry, dict) else {}
                when = "before" if time_min < 0 else "after"
                described["Description"] = (
                    f"{described.get('Description', measure)} At {abs(float(time_min)):g} min "
                    f"{when} the drug/placebo injection."
                )
                out_sidecar[name] = described
    wide = pd.DataFrame(columns).reset_index()
    order = table[ids].drop_duplicates()
    wide = order.merge(wide, on=ids, how="left")
    return wide, out_sidecar
