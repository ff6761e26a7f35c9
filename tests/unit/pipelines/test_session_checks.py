"""Per-session k2' and injection values, and their paired baseline-vs-challenge tests."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats as sps

from bids_app.outputs.manifest import Manifest, ParticipantDerivatives
from bids_app.pipelines import session_checks as sc

SESSIONS = {"baseline": "sal", "challenge": "nal"}
K2 = {"01": (0.30, 0.33), "02": (0.28, 0.29), "03": (0.35, 0.40), "04": (0.31, 0.30)}
MBQ = {"01": (300.0, 310.0), "02": (290.0, 305.0), "03": (320.0, 330.0), "04": (280.0, 300.0)}
MASS_UG = {"01": (5.0, 6.0), "02": (4.5, 4.0), "03": (6.0, 7.5), "04": (5.5, 5.0)}


def _participant(
    bids: Path, out: Path, sub: str, sidecars: dict[str, dict[str, object] | None]
) -> ParticipantDerivatives:
    inputs: dict[str, str] = {}
    kinpar: dict[str, Path] = {}
    for i, (role, ses) in enumerate(SESSIONS.items()):
        rel = f"sub-{sub}/ses-{ses}/pet/sub-{sub}_ses-{ses}_pet.nii.gz"
        (bids / rel).parent.mkdir(parents=True, exist_ok=True)
        inputs[rel] = "0" * 64
        inputs[f"{rel}:metadata"] = "1" * 64
        meta = sidecars[role]
        if meta is not None:
            (bids / rel.replace(".nii.gz", ".json")).write_text(json.dumps(meta))
        path = out / f"sub-{sub}_ses-{ses}_kinpar.tsv"
        k2 = K2[sub][i]
        pd.DataFrame(
            {"roi": ["striatum", "putamen"], "BPND": [2.0, 2.5], "k2prime": [k2, k2]}
        ).to_csv(path, sep="\t", index=False)
        kinpar[role] = path
    manifest = Manifest(sub, "test", "key", inputs, {}, {}, {})
    return ParticipantDerivatives(sub, dict(SESSIONS), {}, kinpar, manifest)


def _sidecar(mbq: float, ug: float, units: str = "MBq") -> dict[str, object]:
    return {
        "InjectedRadioactivity": mbq if units == "MBq" else mbq / 37.0,
        "InjectedRadioactivityUnits": units,
        "InjectedMass": ug,
        "InjectedMassUnits": "ug",
        "MolarActivity": 80.0,
        "MolarActivityUnits": "GBq/umol",
    }


@pytest.fixture
def group(tmp_path: Path) -> list[ParticipantDerivatives]:
    bids, out = tmp_path / "bids", tmp_path / "out"
    out.mkdir()
    bids.mkdir()
    parts = []
    for sub in K2:
        units = "mCi" if sub == "02" else "MBq"  # one participant in mCi: converted to MBq
        sidecars = {
            role: _sidecar(MBQ[sub][i], MASS_UG[sub][i], units) for i, role in enumerate(SESSIONS)
        }
        parts.append(_participant(bids, out, sub, sidecars))
    return parts


def test_values_per_participant_in_canonical_units(
    group: list[ParticipantDerivatives], tmp_path: Path
) -> None:
    table, notes = sc.session_values(group, tmp_path / "bids")
    assert notes == []
    assert list(table.index) == ["sub-01", "sub-02", "sub-03", "sub-04"]
    np.testing.assert_allclose(table["k2prime_baseline"], [v[0] for v in K2.values()])
    np.testing.assert_allclose(table["k2prime_challenge"], [v[1] for v in K2.values()])
    np.testing.assert_allclose(
        table["injected_radioactivity_challenge"], [v[1] for v in MBQ.values()]
    )
    np.testing.assert_allclose(table["injected_mass_baseline"], [v[0] for v in MASS_UG.values()])
    assert (table["molar_activity_baseline"] == 80.0).all()


def test_paired_tests_match_scipy(group: list[ParticipantDerivatives], tmp_path: Path) -> None:
    table, _ = sc.session_values(group, tmp_path / "bids")
    out = sc.session_comparisons(table).set_index("quantity")
    assert list(out.columns) == list(sc.COMPARISON_COLUMNS[1:])
    b = np.array([v[0] for v in K2.values()])
    c = np.array([v[1] for v in K2.values()])
    expected = sps.ttest_rel(c, b)
    row = out.loc["k2prime"]
    assert row["unit"] == "1/min"
    assert row["n"] == 4
    assert row["t"] == pytest.approx(expected.statistic)
    assert row["p"] == pytest.approx(expected.pvalue)
    assert row["baseline_mean"] == pytest.approx(b.mean())
    assert row["challenge_sd"] == pytest.approx(c.std(ddof=1))
    assert row["mean_change_pct"] == pytest.approx(100 * (c.mean() - b.mean()) / b.mean())
    mass = out.loc["injected_mass"]
    mb = np.array([v[0] for v in MASS_UG.values()])
    mc = np.array([v[1] for v in MASS_UG.values()])
    assert mass["t"] == pytest.approx(sps.ttest_rel(mc, mb).statistic)
    # identical molar activity in every session: no test, said so
    assert out.loc["molar_activity", "status"] == "zero_variance"
    assert math.isnan(out.loc["molar_activity", "t"])


def test_missing_fields_are_na_with_notes(tmp_path: Path) -> None:
    bids, out = tmp_path / "bids", tmp_path / "out"
    out.mkdir()
    bids.mkdir()
    no_mass = _sidecar(300.0, 5.0)
    no_mass["InjectedMass"] = "n/a"
    del no_mass["MolarActivityUnits"]
    odd_units = _sidecar(310.0, 6.0)
    odd_units["InjectedRadioactivityUnits"] = "furlongs"
    parts = [
        _participant(bids, out, "01", {"baseline": no_mass, "challenge": odd_units}),
        _participant(bids, out, "02", {"baseline": None, "challenge": _sidecar(1.0, 1.0)}),
        _participant(bids, out, "03", {"baseline": _sidecar(320, 6), "challenge": None}),
    ]
    table, notes = sc.session_values(parts, bids)
    assert math.isnan(table.loc["sub-01", "injected_mass_baseline"])
    assert math.isnan(table.loc["sub-01", "molar_activity_baseline"])
    assert math.isnan(table.loc["sub-01", "injected_radioactivity_challenge"])
    assert table.loc["sub-01", "injected_radioactivity_baseline"] == 300.0
    assert math.isnan(table.loc["sub-02", "injected_mass_baseline"])
    assert table.loc["sub-02", "k2prime_baseline"] == pytest.approx(0.28)
    text = "\n".join(notes)
    assert "sub-01 ses-sal: InjectedMass is 'n/a', not a number" in text
    assert "sub-01 ses-sal: MolarActivityUnits missing" in text
    assert "sub-01 ses-nal: InjectedRadioactivityUnits 'furlongs' not convertible" in text
    assert "sub-02 ses-sal: InjectedRadioactivity missing" in text
    comp = sc.session_comparisons(table).set_index("quantity")
    assert comp.loc["injected_mass", "n"] == 0
    assert comp.loc["injected_mass", "status"] == "too_few_pairs"
    assert comp.loc["injected_mass", "note"] == "3 participant(s) without both values"
    assert comp.loc["k2prime", "n"] == 3
    assert pd.isna(comp.loc["k2prime", "note"])


def test_pet_image_not_identifiable(tmp_path: Path) -> None:
    part = _participant(tmp_path, tmp_path, "01", {"baseline": None, "challenge": None})
    # two PET images of one session: ambiguous, so n/a rather than a guess
    inputs = dict(part.manifest.inputs)
    inputs["sub-01/ses-sal/pet/sub-01_ses-sal_acq-b_pet.nii.gz"] = "2" * 64
    manifest = Manifest("01", "test", "key", inputs, {}, {}, {})
    part = ParticipantDerivatives("01", dict(SESSIONS), {}, part.kinpar, manifest)
    table, notes = sc.session_values([part], tmp_path)
    assert math.isnan(table.loc["sub-01", "injected_radioactivity_baseline"])
    assert any("ses-sal: PET image not identifiable" in n for n in notes)


@pytest.mark.parametrize(
    ("value", "units", "field", "expected"),
    [
        (10.0, "mCi", "injected_radioactivity", 370.0),
        (0.37, "GBq", "injected_radioactivity", 370.0),
        (2.0, "µg", "injected_mass", 2.0),
        (0.002, "mg", "injected_mass", 2.0),
        (2.0, "Ci/mmol", "molar_activity", 0.074),
        (80.0, "MBq/nmol", "molar_activity", 80.0),
    ],
)
def test_unit_conversion(value: float, units: str, field: str, expected: float) -> None:
    quantity = next(q for q in sc.QUANTITIES if q.name == field)
    converted, note = sc.convert(value, units, quantity)
    assert converted == pytest.approx(expected)
    assert note == ""
