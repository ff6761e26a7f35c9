"""Per-session checks of the group level: k2' and what was injected, baseline vs challenge.

Two quantities can fake or hide a challenge effect without any dopamine release:

- **k2'** (the reference region's efflux rate, fitted per session). A systematic k2' change
  between sessions biases R1 (and, less, BPND) in the same direction in every participant.
- **The injection.** A larger injected *mass* of raclopride (or a lower molar activity) in one
  session occupies more D2/3 receptors and lowers BPND by itself (a mass effect); injected
  radioactivity sets the counts, hence the noise.

This module reads each session's k2' (``kinpar.tsv``, column ``k2prime``) and the PET
sidecar's ``InjectedRadioactivity``, ``InjectedMass`` and ``MolarActivity`` (with their
units, converted to MBq, ug and GBq/umol), writes them per participant into
``participant_measures.tsv`` and tests baseline vs challenge (paired t) for
``session_comparisons.tsv``. A missing or unreadable field is n/a with a note, never an error.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bids_app.bidsio.inheritance import resolve_metadata
from bids_app.outputs.manifest import ParticipantDerivatives
from bids_app.outputs.names import ROLES
from bids_app.stats.roi import paired_roi_test

LOGGER = logging.getLogger(__name__)

#: Factors to MBq of the PET-BIDS ``InjectedRadioactivityUnits`` values.
TO_MBQ: dict[str, float] = {
    "bq": 1e-6,
    "kbq": 1e-3,
    "mbq": 1.0,
    "gbq": 1e3,
    "nci": 37e-6,
    "uci": 37e-3,
    "mci": 37.0,
    "ci": 37e3,
}
#: Factors to ug of ``InjectedMassUnits``.
TO_UG: dict[str, float] = {"ng": 1e-3, "ug": 1.0, "mg": 1e3, "g": 1e6, "nmol": math.nan}
#: Factors to GBq/umol of ``MolarActivityUnits`` (GBq/umol = MBq/nmol = TBq/mmol).
TO_GBQ_PER_UMOL: dict[str, float] = {
    "gbq/umol": 1.0,
    "mbq/nmol": 1.0,
    "tbq/mmol": 1.0,
    "gbq/mmol": 1e-3,
    "mbq/umol": 1e-3,
    "ci/mmol": 0.037,
    "mci/umol": 0.037,
    "mci/nmol": 37.0,
}


@dataclass(frozen=True)
class Quantity:
    """One per-session quantity: its column stem, label, unit and where it comes from.

    Attributes
    ----------
    name : str
        Column stem in ``participant_measures.tsv`` (``<name>_baseline``, ``<name>_challenge``).
    label : str
        Human-readable name for the report.
    unit : str
        Unit of the columns.
    field : str
        PET sidecar field (empty for k2', which comes from ``kinpar.tsv``).
    units_field : str
        Sidecar field holding the value's units.
    factors : dict of str to float
        Lower-case unit -> factor to ``unit``.
    """

    name: str
    label: str
    unit: str
    field: str = ""
    units_field: str = ""
    factors: Mapping[str, float] | None = None


QUANTITIES: tuple[Quantity, ...] = (
    Quantity("k2prime", "k2' (reference efflux rate)", "1/min"),
    Quantity(
        "injected_radioactivity",
        "Injected radioactivity",
        "MBq",
        "InjectedRadioactivity",
        "InjectedRadioactivityUnits",
        TO_MBQ,
    ),
    Quantity("injected_mass", "Injected mass", "ug", "InjectedMass", "InjectedMassUnits", TO_UG),
    Quantity(
        "molar_activity",
        "Molar activity",
        "GBq/umol",
        "MolarActivity",
        "MolarActivityUnits",
        TO_GBQ_PER_UMOL,
    ),
)

COMPARISON_COLUMNS = (
    "quantity",
    "unit",
    "n",
    "baseline_mean",
    "baseline_sd",
    "challenge_mean",
    "challenge_sd",
    "mean_change_pct",
    "t",
    "df",
    "p",
    "status",
    "note",
)


def convert(value: object, units: object, quantity: Quantity) -> tuple[float, str]:
    """A sidecar value in the quantity's unit, or NaN with the reason.

    Parameters
    ----------
    value : object
        The sidecar's value (a number, ``"n/a"``, or absent as None).
    units : object
        The sidecar's units string (None when absent).
    quantity : Quantity
        Gives the field names, target unit and conversion factors.

    Returns
    -------
    value : float
        In ``quantity.unit``; NaN when missing, ``n/a``, not a number or in unknown units.
    note : str
        Empty when converted, else why not.
    """
    if value is None:
        return math.nan, f"{quantity.field} missing"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan, f"{quantity.field} is {value!r}, not a number"
    factors = quantity.factors or {}
    key = str(units).strip().lower().replace("µ", "u").replace("μ", "u") if units else ""
    factor = factors.get(key, math.nan)
    if not key:
        return math.nan, f"{quantity.units_field} missing"
    if not math.isfinite(factor):
        known = ", ".join(sorted(k for k, v in factors.items() if math.isfinite(v)))
        return math.nan, f"{quantity.units_field} {units!r} not convertible (known: {known})"
    return float(value) * factor, ""


def _pet_image(manifest_inputs: Mapping[str, str], session: str) -> str | None:
    """The session's PET image (path relative to the BIDS root) among a manifest's inputs."""
    found = [
        key
        for key in manifest_inputs
        if not key.endswith(":metadata")
        and key.endswith(("_pet.nii", "_pet.nii.gz"))
        and f"_ses-{session}_" in Path(key).name
    ]
    return found[0] if len(found) == 1 else None


def _k2prime(kinpar: Path) -> tuple[float, str]:
    try:
        values = pd.read_csv(kinpar, sep="\t", na_values=["n/a"])["k2prime"].dropna()
    except (OSError, KeyError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        return math.nan, f"k2prime unreadable from {kinpar.name} ({exc})"
    if values.empty:
        return math.nan, f"no k2prime in {kinpar.name}"
    return float(values.iloc[0]), ""


def _sidecar_values(
    bids_dir: Path, participant: ParticipantDerivatives, role: str
) -> tuple[dict[str, object], str]:
    """The merged PET sidecar of one session, or {} and why."""
    session = participant.sessions[role]
    image = _pet_image(participant.manifest.inputs, session)
    if image is None:
        return {}, f"ses-{session}: PET image not identifiable from the participant manifest"
    resolved, problems = resolve_metadata(
        bids_dir, bids_dir / image, f"sub-{participant.subject} ses-{session}"
    )
    if resolved is None:
        return {}, f"ses-{session}: sidecar unreadable ({'; '.join(problems)})"
    return resolved.values, ""


def session_values(
    participants: Sequence[ParticipantDerivatives], bids_dir: Path
) -> tuple[pd.DataFrame, list[str]]:
    """Per participant, each :data:`QUANTITIES` value of the baseline and challenge sessions.

    Parameters
    ----------
    participants : sequence of ParticipantDerivatives
        The participants in the group analysis.
    bids_dir : Path
        The BIDS dataset root (for the PET sidecars, with inheritance).

    Returns
    -------
    table : pandas.DataFrame
        Index ``participant_id``; columns ``<quantity>_baseline``, ``<quantity>_challenge``
        in the quantities' units (NaN when missing).
    notes : list of str
        One line per missing value (``sub-XX ses-YY: InjectedMass missing``), for the report.
    """
    rows = []
    notes: list[str] = []
    for p in participants:
        pid = f"sub-{p.subject}"
        row: dict[str, object] = {"participant_id": pid}
        for role in ROLES:
            label = f"{pid} ses-{p.sessions[role]}"
            metadata, why = _sidecar_values(bids_dir, p, role)
            if why:
                notes.append(f"{pid} {why}")
            for q in QUANTITIES:
                if not q.field:
                    value, note = _k2prime(p.kinpar[role])
                elif why:
                    value, note = math.nan, ""
                else:
                    value, note = convert(metadata.get(q.field), metadata.get(q.units_field), q)
                if note:
                    notes.append(f"{label}: {note}")
                row[f"{q.name}_{role}"] = value
        rows.append(row)
    columns = [f"{q.name}_{role}" for q in QUANTITIES for role in ROLES]
    table = pd.DataFrame(rows, columns=["participant_id", *columns]).set_index("participant_id")
    for note in notes:
        LOGGER.warning("Session check: %s (n/a)", note)
    return table.astype(float), notes


def session_comparisons(table: pd.DataFrame) -> pd.DataFrame:
    """Paired t-test, challenge vs baseline, of every quantity (``session_comparisons.tsv``).

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`session_values` table.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COMPARISON_COLUMNS`, one row per quantity: means and SDs (ddof 1) of
        the participants with both sessions, ``mean_change_pct`` =
        100 (challenge_mean - baseline_mean) / baseline_mean, paired ``t`` (challenge -
        baseline; ``scipy.stats.ttest_rel``), ``df``, two-sided ``p``; ``status`` says why a
        test is undefined (e.g. fewer than 2 pairs, identical values) and ``note`` how many
        participants lacked a value.
    """
    rows = []
    for q in QUANTITIES:
        b = table[f"{q.name}_baseline"].to_numpy(dtype=float)
        c = table[f"{q.name}_challenge"].to_numpy(dtype=float)
        res = paired_roi_test(b, c)
        missing = len(table) - res.n
        rows.append(
            {
                "quantity": q.name,
                "unit": q.unit,
                **{k: v for k, v in res.as_dict().items() if k in COMPARISON_COLUMNS},
                "note": f"{missing} participant(s) without both values" if missing else None,
            }
        )
    return pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))
