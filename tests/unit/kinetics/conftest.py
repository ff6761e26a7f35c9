"""Shared fixtures of the kinetic-model tests (simulator in ``srtm_testsim.py``)."""

from __future__ import annotations

import numpy as np
import pytest
from srtm_testsim import Simulated, simulate


@pytest.fixture(scope="session")
def sim_striatum() -> Simulated:
    """Noise-free striatum-like TAC (BPnd 2.5, R1 1.1), frame-averaged, 26 frames."""
    return simulate(2.5, 1.1)


@pytest.fixture(scope="session")
def sim_voxels() -> Simulated:
    """Noise-free voxels spanning BPnd 0.2-3 and R1 0.7-1.4 (frame-averaged)."""
    bp = np.array([0.2, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 0.8])
    r1 = np.array([0.7, 0.9, 1.0, 1.1, 1.2, 1.4, 1.0, 1.3])
    return simulate(bp, r1)
