"""Fixtures for the voxelwise statistics tests: synthetic groups on small grids."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray

from bids_app.stats.voxelwise import smooth_volume

GroupMaker = Callable[..., tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]]


def ellipsoid(shape: tuple[int, int, int], fill: float = 0.9) -> NDArray[np.bool_]:
    """Centred ellipsoid mask whose semi-axes are ``fill`` times half the grid size."""
    grids = np.indices(shape, dtype=np.float64)
    r2 = sum(
        ((g - (s - 1) / 2.0) / (fill * s / 2.0)) ** 2 for g, s in zip(grids, shape, strict=True)
    )
    return r2 <= 1.0


@pytest.fixture
def make_group() -> GroupMaker:
    """Factory of a synthetic paired group: smoothed Gaussian noise plus an optional blob.

    Call ``make_group(seed, shape=(40, 48, 36), n=10, fwhm_vox=4.0, effect=0.0,
    centre=(12, 30, 18), blob_sigma_vox=3.0)``; returns ``(baseline, challenge, mask)`` with
    ``challenge = baseline-like noise + effect * blob`` (effect < 0 is a decrease).
    """

    def _make(
        seed: int,
        shape: tuple[int, int, int] = (40, 48, 36),
        n: int = 10,
        fwhm_vox: float = 4.0,
        effect: float = 0.0,
        centre: tuple[float, float, float] = (12.0, 30.0, 18.0),
        blob_sigma_vox: float = 3.0,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
        rng = np.random.default_rng(seed)

        def noise() -> NDArray[np.float64]:
            return np.stack(
                [smooth_volume(rng.standard_normal(shape), 1.0, fwhm_vox) for _ in range(n)]
            )

        ii, jj, kk = np.indices(shape, dtype=np.float64)
        d2 = (ii - centre[0]) ** 2 + (jj - centre[1]) ** 2 + (kk - centre[2]) ** 2
        blob = np.exp(-d2 / (2.0 * blob_sigma_vox**2))
        baseline = 1.0 + noise()
        challenge = 1.0 + noise() + effect * blob
        return baseline, challenge, ellipsoid(shape)

    return _make
