"""T1w-path normalisation checks judge the measured cases as calibrated (docs/qc.md)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from bids_app.pipelines.qc import normalisation_checks
from bids_app.preproc.normalisation import Normalisation

SHAPE = (20, 24, 20)


def _normalisation(**metrics: float) -> Normalisation:
    base = {
        "t1w_brain_volume_ml": 1760.0,
        "t1w_prior_dice": 0.97,
        "t1w_template_dice": 0.99,
        "pet_only_agreement_mm": 1.7,
        "jacobian_min": 0.48,
        "jacobian_max": 1.35,
    }
    return Normalisation(
        transforms=(),
        affine=np.eye(4) * 0.97,
        affine_determinant=0.92,
        correlation=0.93,
        brain_overlap=0.75,
        method="t1w",
        normalised_mean=nib.Nifti1Image(np.zeros(SHAPE, np.float32), np.eye(4)),
        metrics={**base, **metrics},
    )


def _status(norm: Normalisation) -> dict[str, str]:
    brain = np.zeros(SHAPE, bool)
    brain[4:16, 4:20, 4:16] = True
    mean = np.where(brain, 1.0, 0.0)
    checks = normalisation_checks(norm, mean, brain, {}, "cerebellum")
    return {c.key: c.status for c in checks}


@pytest.mark.parametrize(
    ("case", "mirror", "dice_t1w", "dice_pet", "expected"),
    [
        # measured on realistic participants (individual anatomy, T1w with skull; docs/qc.md)
        ("correct T1w, smallest margins", 0.049, 0.717, 0.717, ("pass", "pass")),
        ("correct T1w", 0.082, 0.738, 0.654, ("pass", "pass")),
        ("T1w flipped left-right", -0.052, 0.707, 0.717, ("fail", "pass")),
        ("another participant's T1w", 0.086, 0.662, 0.717, ("pass", "warn")),
        ("correct T1w, PET-only affine lucky", 0.076, 0.712, 0.769, ("pass", "warn")),
    ],
)
def test_flip_and_swap_checks(
    case: str, mirror: float, dice_t1w: float, dice_pet: float, expected: tuple[str, str]
) -> None:
    status = _status(
        _normalisation(
            t1w_mirror_mi_gain=mirror, binding_dice_t1w=dice_t1w, binding_dice_pet_only=dice_pet
        )
    )
    assert (status["t1w_mirror_gain"], status["binding_dice_gain"]) == expected, case


def test_pet_only_normalisation_has_no_t1w_checks() -> None:
    norm = _normalisation()
    pet_only = Normalisation(
        transforms=norm.transforms,
        affine=norm.affine,
        affine_determinant=norm.affine_determinant,
        correlation=norm.correlation,
        brain_overlap=norm.brain_overlap,
        method="pet",
        normalised_mean=norm.normalised_mean,
    )
    keys = set(_status(pet_only))
    assert not keys & {"t1w_mirror_gain", "binding_dice_gain", "pet_t1w_agreement_mm"}
    assert {"norm_scaling_low", "brain_dice"} <= keys


def test_missing_t1w_metrics_are_not_a_pass() -> None:
    status = _status(_normalisation())  # mirror and binding metrics absent: NaN
    assert status["t1w_mirror_gain"] == "warn"
    assert status["binding_dice_gain"] == "warn"


@pytest.mark.parametrize(
    ("case", "mirror", "dice_t1w", "agreement_mm", "expected"),
    [
        ("correct T1w", 0.056, 0.763, 2.4, "pass"),
        ("one identity check warns", 0.003, 0.763, 2.4, "pass"),
        # measured: another participant's T1w on a realistic head (test_individual_anatomy)
        ("another participant's T1w", 0.0031, 0.604, 5.97, "fail"),
        ("agreement and binding warn", 0.056, 0.604, 7.0, "fail"),
    ],
)
def test_two_identity_warnings_together_fail(
    case: str, mirror: float, dice_t1w: float, agreement_mm: float, expected: str
) -> None:
    status = _status(
        _normalisation(
            t1w_mirror_mi_gain=mirror,
            binding_dice_t1w=dice_t1w,
            binding_dice_pet_only=0.664,
            pet_only_agreement_mm=agreement_mm,
        )
    )
    assert status["t1w_identity_warnings"] == expected, case


def test_unmeasured_identity_checks_do_not_add_up_to_a_fail() -> None:
    status = _status(_normalisation())  # mirror and binding metrics absent: NaN (warn each)
    assert status["t1w_identity_warnings"] == "pass"
