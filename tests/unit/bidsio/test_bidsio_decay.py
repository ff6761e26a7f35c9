"""Decay correction to the injection: half-lives, frame factors, contradictions, same BPND."""

from __future__ import annotations

import json
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from helpers.globbing import glob_some

from bids_app.bidsio import discover_study, load_pet_data
from bids_app.bidsio.decay import (
    HALF_LIFE_MIN,
    frame_decay_factors,
    half_life_min,
    implausible_schedule,
    normalise_radionuclide,
    plan_decay_correction,
)
from bids_app.bidsio.inheritance import from_single_file
from bids_app.errors import ValidationError
from bids_app.kinetics import fit_srtm

C11_HALF_LIFE_S = 20.364 * 60.0
#: 26 frames, 60 min, as a raclopride protocol.
DURATIONS_S = np.array([15.0] * 8 + [30.0] * 4 + [60.0] * 4 + [180.0] * 4 + [400.0] * 6)
STARTS_S = np.concatenate([[0.0], np.cumsum(DURATIONS_S)[:-1]])
ENDS_S = STARTS_S + DURATIONS_S
SIDECAR = Path("/data/sub-01/ses-sal/pet/sub-01_ses-sal_pet.json")


def _metadata(**fields: object) -> object:
    base = {
        "TracerRadionuclide": "C11",
        "InjectionStart": 0,
        "ImageDecayCorrected": True,
        "ImageDecayCorrectionTime": 0,
    }
    base.update(fields)
    return from_single_file({k: v for k, v in base.items() if v is not None}, SIDECAR)


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("C11", "C11"),
        ("11C", "C11"),
        ("[11C]", "C11"),
        ("C-11", "C11"),
        ("carbon-11", "C11"),
        ("^18F", "F18"),
        ("Fluorine-18", "F18"),
        ("68Ga", "Ga68"),
        ("Zr-89", "Zr89"),
        ("O15", "O15"),
        ("Tc99m", None),
        ("unobtainium", None),
        (11, None),
    ],
)
def test_radionuclide_spellings(name: object, canonical: str | None) -> None:
    assert normalise_radionuclide(name) == canonical
    expected = None if canonical is None else HALF_LIFE_MIN[canonical]
    assert half_life_min(name) == expected


def test_frame_factors_undo_decay_of_a_constant_activity() -> None:
    # numerical integration of exp(-lambda t) over each frame, independent of the closed form
    lam = math.log(2.0) / C11_HALF_LIFE_S
    measured = []
    for start, end in zip(STARTS_S, ENDS_S, strict=True):
        t = np.linspace(start, end, 2001)
        measured.append(np.trapezoid(np.exp(-lam * t), t) / (end - start))
    factors = frame_decay_factors(STARTS_S, ENDS_S, C11_HALF_LIFE_S, 0.0)
    np.testing.assert_allclose(np.asarray(measured) * factors, 1.0, rtol=1e-7)
    mid = frame_decay_factors(STARTS_S, ENDS_S, C11_HALF_LIFE_S, 0.0, form="mid_frame")
    np.testing.assert_allclose(mid, factors, rtol=0.012)  # the two forms agree within ~1 %
    # referencing to another time is one constant factor
    later = frame_decay_factors(STARTS_S, ENDS_S, C11_HALF_LIFE_S, 300.0)
    np.testing.assert_allclose(later / factors, math.exp(-lam * 300.0), rtol=1e-12)


def _srtm_curves(bp_nd: float, r1: float, k2prime: float) -> tuple[np.ndarray, np.ndarray]:
    """Decay-corrected reference and target curves on a fine grid (minutes), by convolution."""
    t = np.arange(0.0, 60.0 + 1e-9, 0.005)
    dt = t[1] - t[0]
    plasma = 120.0 * t * np.exp(-t / 0.6) + 6.0 * np.exp(-t / 40.0) * (1 - np.exp(-t / 0.3))
    k1_ref = 0.1
    k2a = r1 * k2prime / (1.0 + bp_nd)
    ref = k1_ref * np.convolve(plasma, np.exp(-k2prime * t))[: t.size] * dt
    target = r1 * k1_ref * np.convolve(plasma, np.exp(-k2a * t))[: t.size] * dt
    return t, np.stack([ref, target])


def _frame_means(t_min: np.ndarray, curves: np.ndarray, decay: bool) -> np.ndarray:
    """Frame means as a scanner measures them: decaying activity (decay=True) or not."""
    lam_per_min = math.log(2.0) / 20.364
    weight = np.exp(-lam_per_min * t_min) if decay else np.ones_like(t_min)
    out = []
    for start, end in zip(STARTS_S / 60.0, ENDS_S / 60.0, strict=True):
        inside = (t_min >= start - 1e-9) & (t_min <= end + 1e-9)
        seg = curves[:, inside] * weight[inside]
        out.append(np.trapezoid(seg, t_min[inside], axis=1) / (end - start))
    return np.asarray(out).T


def test_uncorrected_tacs_give_the_corrected_bpnd() -> None:
    t, curves = _srtm_curves(bp_nd=2.5, r1=1.2, k2prime=0.15)
    uncorrected = _frame_means(t, curves, decay=True)
    # what a scanner writes when it decay-corrects: the measured means times the standard
    # frame factor, here from numerical integration of the decay over each frame
    lam_per_min = math.log(2.0) / 20.364
    scanner = np.array(
        [
            (end - start) / np.trapezoid(np.exp(-lam_per_min * g), g)
            for start, end in zip(STARTS_S / 60.0, ENDS_S / 60.0, strict=True)
            for g in [np.linspace(start, end, 2001)]
        ]
    )
    corrected_by_scanner = uncorrected * scanner
    plan, problems = plan_decay_correction(
        _metadata(ImageDecayCorrected=False), STARTS_S, ENDS_S, "sub-01 ses-sal"
    )
    assert problems == []
    assert plan is not None
    corrected_by_app = uncorrected * plan.factors
    fits = {
        name: fit_srtm(STARTS_S, ENDS_S, tacs[0], tacs[1])
        for name, tacs in (
            ("scanner", corrected_by_scanner),
            ("app", corrected_by_app),
            ("naive", uncorrected),
        )
    }
    bp = {name: float(fit.bp_nd) for name, fit in fits.items()}
    assert bp["app"] == pytest.approx(bp["scanner"], rel=1e-5)
    assert float(fits["app"].r1) == pytest.approx(float(fits["scanner"].r1), rel=1e-5)
    assert bp["scanner"] == pytest.approx(2.5, rel=0.02)
    # ignoring ImageDecayCorrected=false biases BPND strongly (the "27 % low")
    assert bp["naive"] < 0.85 * bp["scanner"]


def test_plan_corrected_at_injection_is_identity() -> None:
    plan, problems = plan_decay_correction(_metadata(), STARTS_S, ENDS_S, "p")
    assert problems == []
    assert plan is not None
    assert plan.is_identity


def test_plan_corrected_to_another_time_is_one_constant() -> None:
    plan, _ = plan_decay_correction(
        _metadata(ImageDecayCorrectionTime=-600), STARTS_S, ENDS_S, "p"
    )
    assert plan is not None
    expected = math.exp(math.log(2.0) / C11_HALF_LIFE_S * -600.0)
    np.testing.assert_allclose(plan.factors, expected)
    assert "from ImageDecayCorrectionTime=-600 s to the injection at 0 s" in plan.description


def test_plan_uncorrected_accepts_matching_or_unit_factors() -> None:
    factors = frame_decay_factors(STARTS_S, ENDS_S, C11_HALF_LIFE_S, 0.0)
    for given in (list(np.round(factors, 6)), [1.0] * STARTS_S.size, None):
        meta = _metadata(ImageDecayCorrected=False, DecayCorrectionFactor=given)
        plan, problems = plan_decay_correction(meta, STARTS_S, ENDS_S, "p")
        assert problems == []
        assert plan is not None
        np.testing.assert_allclose(plan.factors, factors)


def test_contradiction_corrected_but_factors_are_one() -> None:
    meta = _metadata(DecayCorrectionFactor=[1.0] * STARTS_S.size)
    plan, problems = plan_decay_correction(meta, STARTS_S, ENDS_S, "sub-01 ses-sal")
    assert plan is None
    (problem,) = problems
    assert problem.startswith(
        "sub-01 ses-sal: ImageDecayCorrected is true but DecayCorrectionFactor is 1 for every "
        "frame"
    )
    assert "set ImageDecayCorrected to false" in problem
    assert str(SIDECAR) in problem


def test_contradiction_factors_of_another_correction_time() -> None:
    factors = frame_decay_factors(STARTS_S, ENDS_S, C11_HALF_LIFE_S, -300.0)
    meta = _metadata(DecayCorrectionFactor=list(factors))
    _, problems = plan_decay_correction(meta, STARTS_S, ENDS_S, "sub-01 ses-sal")
    (problem,) = problems
    assert "DecayCorrectionFactor contradicts the other fields: frame 25 has" in problem
    assert "The factors match a correction to -300 s: set ImageDecayCorrectionTime" in problem


def test_contradiction_uncorrected_with_foreign_factors() -> None:
    factors = frame_decay_factors(STARTS_S, ENDS_S, 109.77 * 60.0, 0.0)  # F-18 factors
    meta = _metadata(ImageDecayCorrected=False, DecayCorrectionFactor=list(factors))
    _, problems = plan_decay_correction(meta, STARTS_S, ENDS_S, "p")
    assert "ImageDecayCorrected is false but DecayCorrectionFactor is neither 1" in problems[0]


def test_uncorrected_unknown_radionuclide_cannot_be_corrected() -> None:
    meta = _metadata(ImageDecayCorrected=False, TracerRadionuclide="Xx99")
    _, problems = plan_decay_correction(meta, STARTS_S, ENDS_S, "p")
    assert "TracerRadionuclide 'Xx99' is not a radionuclide it knows (Br76, C11" in problems[0]


def test_bad_factor_list() -> None:
    meta = _metadata(DecayCorrectionFactor=[1.0, 2.0])
    _, problems = plan_decay_correction(meta, STARTS_S, ENDS_S, "p")
    assert "DecayCorrectionFactor must be a list of 26 positive numbers" in problems[0]


def test_schedule_in_milliseconds_is_implausible() -> None:
    problems = implausible_schedule(_metadata(), STARTS_S * 1000, ENDS_S * 1000, "sub-01 ses-nal")
    (problem,) = problems
    assert problem.startswith(
        "sub-01 ses-nal: implausible frame times: the scan lasts 3.6e+06 s (1e+03 h)"
    )
    assert "for C11 (half-life 20.364 min) a scan longer than 12218.4 s" in problem
    assert "divide FrameTimesStart and FrameDuration by 1000" in problem
    assert implausible_schedule(_metadata(), STARTS_S, ENDS_S, "p") == []


def test_frame_longer_than_a_few_half_lives() -> None:
    starts = np.array([0.0, 600.0])
    ends = np.array([600.0, 600.0 + 4 * 3600.0])
    (problem,) = implausible_schedule(_metadata(), starts, ends, "p")
    assert "frame 1 lasts 14400 s" in problem
    assert "Check the units" in problem
    # the same schedule is plausible for fluorine-18
    assert implausible_schedule(_metadata(TracerRadionuclide="F18"), starts, ends, "p") == []


def test_uncorrected_scan_is_corrected_when_loaded(synthetic_bids) -> None:
    spec = {"pet": [{"metadata": {"ImageDecayCorrected": False}}]}
    root = synthetic_bids({"01": {"sal": spec, "nal": {}}})
    scan = discover_study(root).participants[0].baseline
    assert scan.decay is not None
    assert not scan.decay.is_identity
    assert any("ImageDecayCorrected was false" in note for note in scan.notes)
    stored = np.asarray(nib.load(scan.path).dataobj, dtype=np.float64)
    loaded = np.asarray(load_pet_data(scan).dataobj, dtype=np.float64)
    expected = frame_decay_factors(scan.timing.start_s, scan.timing.end_s, C11_HALF_LIFE_S, 0.0)
    np.testing.assert_allclose(loaded, stored * expected, rtol=1e-6)


def test_contradictory_sidecar_stops_discovery(synthetic_bids) -> None:
    spec = {"pet": [{"metadata": {"DecayCorrectionFactor": [1.0] * 6}}]}
    root = synthetic_bids({"01": {"sal": spec, "nal": {}}})
    with pytest.raises(ValidationError, match="DecayCorrectionFactor is 1 for every frame"):
        discover_study(root)


def test_decay_fields_inherited_from_the_root(synthetic_bids) -> None:
    def root_uncorrected(root: Path) -> None:
        (root / "pet.json").write_text(json.dumps({"ImageDecayCorrected": False}))
        for path in glob_some(root, "*_pet.json", recursive=True):
            meta = json.loads(path.read_text())
            del meta["ImageDecayCorrected"]
            path.write_text(json.dumps(meta))

    root = synthetic_bids(post=root_uncorrected)
    scan = discover_study(root).participants[0].challenge
    assert scan.metadata_sources["ImageDecayCorrected"] == root / "pet.json"
    assert scan.decay is not None
    assert not scan.decay.is_identity
