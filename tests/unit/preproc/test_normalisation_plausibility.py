"""Which template affines the normalisation retries from another initialisation."""

from __future__ import annotations

import numpy as np
import pytest

from bids_app.preproc.normalisation import DETERMINANT_RANGE, _scaling_problem


@pytest.mark.parametrize("scale", [0.85, 1.0, 1.2])
def test_plausible_scalings_pass(scale: float) -> None:
    matrix = np.diag([scale, scale, scale, 1.0])
    matrix[:3, 3] = (10.0, -4.0, 30.0)
    assert _scaling_problem(float(np.linalg.det(matrix[:3, :3]))) is None


@pytest.mark.parametrize("volume_ratio", [0.3, DETERMINANT_RANGE[1] * 1.2])
def test_implausible_scalings_are_explained(volume_ratio: float) -> None:
    scale = volume_ratio ** (1.0 / 3.0)
    problem = _scaling_problem(float(np.linalg.det(np.diag([scale, scale, scale]))))
    assert problem is not None
    assert f"{volume_ratio:.2f}" in problem
    assert "expected 0.5-2.0" in problem
