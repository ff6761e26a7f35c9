"""Fixtures of the preproc tests (phantoms live in helpers/preproc_phantoms.py)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from helpers.preproc_phantoms import Series, make_series
from numpy.typing import NDArray


@pytest.fixture
def series_factory(rng: np.random.Generator) -> Callable[..., Series]:
    """Factory: ``series_factory(params, noise=0.05)`` -> Series."""

    def build(params: NDArray, noise: float = 0.05) -> Series:
        return make_series(rng, params, noise)

    return build
