"""Report contents and transform files computed by the participant level."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from bids_app.pipelines.participant_outputs import (
    injection_quantities,
    itk_transform_list,
    resample_by_matrix,
    session_registration_metrics,
)
from bids_app.preproc.transforms import itk_affine_to_ras, params_to_matrix


def test_injection_prefers_molar_activity_and_keeps_units() -> None:
    metadata = {
        "InjectedRadioactivity": 357.2,
        "InjectedRadioactivityUnits": "MBq",
        "InjectedMass": "n/a",
        "InjectedMassUnits": "ug",
        "MolarActivity": 55.1,
        "MolarActivityUnits": "GBq/umol",
        "SpecificRadioactivity": 1.2e5,
        "SpecificRadioactivityUnits": "MBq/ug",
    }
    out = injection_quantities(metadata)
    assert out["injected radioactivity"] == (357.2, "MBq")
    assert np.isnan(out["injected mass"][0])
    assert out["molar activity"] == (55.1, "GBq/umol")
    assert "specific radioactivity" not in out
    del metadata["MolarActivity"]
    assert injection_quantities(metadata)["specific radioactivity"] == (1.2e5, "MBq/ug")


def test_itk_transform_list_round_trips_every_frame() -> None:
    matrices = np.stack(
        [params_to_matrix(np.array([1.0, -2.0, 0.5, 0.01, -0.02, 0.03]) * k) for k in range(3)]
    )
    text = itk_transform_list(matrices)
    assert text.startswith("#Insight Transform File V1.0\n")
    params = [
        np.array(line.split(": ")[1].split(), dtype=float)
        for line in text.splitlines()
        if line.startswith("Parameters:")
    ]
    centres = [
        np.array(line.split(": ")[1].split(), dtype=float)
        for line in text.splitlines()
        if line.startswith("FixedParameters:")
    ]
    assert len(params) == 3
    for matrix, p, c in zip(matrices, params, centres, strict=True):
        np.testing.assert_allclose(itk_affine_to_ras(p, c), matrix, atol=1e-8)


def test_resample_by_matrix_places_by_header_or_by_the_transform() -> None:
    rng = np.random.default_rng(0)
    data = rng.random((7, 8, 9))
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    img = nib.Nifti1Image(data, affine)
    same = resample_by_matrix(img, data.shape, affine)
    np.testing.assert_allclose(same, data)
    shift = np.eye(4)
    shift[0, 3] = 2.0  # target point x maps to moving point x + 2 mm = one voxel further
    moved = resample_by_matrix(img, data.shape, affine, shift)
    np.testing.assert_allclose(moved[:-1], data[1:])
    assert np.isnan(moved[-1]).all()


def test_registration_metrics_of_a_session() -> None:
    rng = np.random.default_rng(1)
    template = np.zeros((20, 20, 20))
    template[4:16, 4:16, 4:16] = 1.0 + rng.random((12, 12, 12))
    brain = template > 0
    mean = np.where(brain, template * 3.0, np.nan)
    metrics = session_registration_metrics(mean, template, brain)
    assert metrics["correlation with the template (brain)"] == pytest.approx(1.0)
    assert metrics["brain in the field of view (%)"] == pytest.approx(100.0)
    assert 0.8 < metrics["Dice of PET signal and template brain"] <= 1.0
    assert "correlation with the baseline mean (brain)" not in metrics
    half = mean.copy()
    half[:10] = np.nan
    challenge = session_registration_metrics(half, template, brain, baseline_mean=mean)
    assert challenge["brain in the field of view (%)"] == pytest.approx(50.0)
    assert challenge["correlation with the baseline mean (brain)"] == pytest.approx(1.0)
