"""A toy striatum on a 2 mm grid and noisy BPND maps with a known release (test helper).

Shape: per hemisphere a caudate (a tube bending back and up, radius 6 -> 2.5 mm), a putamen
(ellipsoid, semi-axes 7 x 16 x 10 mm) and a nucleus accumbens (5.5 x 5.5 x 4.5 mm), 16 mL in
all. Generating BPND: putamen 3.2, caudate 2.8, accumbens 2.2, elsewhere 0.3; the maps are
blurred to 6 mm FWHM (partial volume, as an ECAT 931) before noise is added. Noise: white
noise smoothed to ``noise_fwhm_mm`` and rescaled to unit SD, times ``cov`` x the striatal
mean of the noise-free baseline map (homoscedastic).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

VOXEL_MM = 2.0
SHAPE = (40, 44, 32)
RESOLUTION_FWHM_MM = 6.0
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def _ellipsoid(
    grid_mm: NDArray[np.float64], centre: tuple[float, ...], semi_axes: tuple[float, ...]
) -> NDArray[np.bool_]:
    r2 = sum(((g - c) / a) ** 2 for g, c, a in zip(grid_mm, centre, semi_axes, strict=True))
    return np.asarray(r2 <= 1.0)


@dataclass(frozen=True)
class ToyStriatum:
    """Masks of the toy striatum (caudate + putamen = dorsal, accumbens = ventral)."""

    caudate: NDArray[np.bool_]
    putamen: NDArray[np.bool_]
    accumbens: NDArray[np.bool_]

    @property
    def dorsal(self) -> NDArray[np.bool_]:
        """Caudate and putamen."""
        return self.caudate | self.putamen

    @property
    def striatum(self) -> NDArray[np.bool_]:
        """The whole striatum."""
        return self.caudate | self.putamen | self.accumbens


def toy_striatum() -> ToyStriatum:
    """Build the masks (about 2000 voxels of 2 mm)."""
    grid = np.indices(SHAPE, dtype=np.float64) * VOXEL_MM
    mid_x = SHAPE[0] * VOXEL_MM / 2.0
    caudate = np.zeros(SHAPE, dtype=bool)
    putamen = np.zeros(SHAPE, dtype=bool)
    accumbens = np.zeros(SHAPE, dtype=bool)
    for side in (-1.0, 1.0):
        for t in np.linspace(0.0, 1.0, 40):
            centre = (
                mid_x + side * (13.0 + 2.0 * t),
                62.0 - 34.0 * t,
                28.0 + 14.0 * np.sin(0.8 * np.pi * t),
            )
            radius = 6.0 - 3.5 * t
            caudate |= _ellipsoid(grid, centre, (radius, radius, radius))
        putamen |= _ellipsoid(grid, (mid_x + side * 25.0, 48.0, 24.0), (7.0, 16.0, 10.0))
        accumbens |= _ellipsoid(grid, (mid_x + side * 11.0, 58.0, 16.0), (5.5, 5.5, 4.5))
    putamen &= ~caudate
    accumbens &= ~(caudate | putamen)
    return ToyStriatum(caudate, putamen, accumbens)


def noise_free_maps(
    anatomy: ToyStriatum, release: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Blurred baseline and challenge BPND maps; ``release`` is the voxel fraction released."""
    bp = np.where(anatomy.putamen, 3.2, 0.3)
    bp = np.where(anatomy.caudate, 2.8, bp)
    bp = np.where(anatomy.accumbens, 2.2, bp)
    sigma_vox = RESOLUTION_FWHM_MM / VOXEL_MM / FWHM_PER_SIGMA
    baseline = ndimage.gaussian_filter(bp, sigma_vox, mode="nearest")
    challenge = ndimage.gaussian_filter(bp * (1.0 - release), sigma_vox, mode="nearest")
    return baseline, challenge


def unit_noise(rng: np.random.Generator, n: int, noise_fwhm_mm: float) -> NDArray[np.float64]:
    """``n`` fields of spatially correlated Gaussian noise with unit SD."""
    sigma_vox = noise_fwhm_mm / VOXEL_MM / FWHM_PER_SIGMA
    fields = np.stack(
        [
            ndimage.gaussian_filter(rng.standard_normal(SHAPE), sigma_vox, mode="wrap")
            for _ in range(n)
        ]
    )
    return fields / fields.std(axis=(1, 2, 3), keepdims=True)
