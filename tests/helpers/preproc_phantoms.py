"""Synthetic PET phantoms with known rigid motion, built on the fly (no data files)."""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bids_app.preproc.transforms import params_to_matrix
from bids_app.timing import FrameTiming

VOXEL_MM = 3.0
SHAPE = (48, 56, 40)  # unequal dimensions on purpose


def grid_affine(shape: tuple[int, int, int] = SHAPE, voxel_mm: float = VOXEL_MM) -> NDArray:
    """RAS affine with the world origin near the grid centre (plus an odd offset)."""
    aff = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    aff[:3, 3] = -(np.array(shape) - 1) / 2.0 * voxel_mm + np.array([1.3, -2.1, 0.7])
    return aff


def world_points(shape: tuple[int, int, int], affine: NDArray) -> NDArray:
    """World coordinates (n, 3) of every voxel, C order."""
    ijk = np.indices(shape).reshape(3, -1).T.astype(float)
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def head_compartments(shape: tuple[int, int, int], affine: NDArray) -> dict[str, NDArray]:
    """Smooth (6 mm FWHM-ish) compartment maps of an ellipsoidal head, world-centred at 0."""
    xyz = world_points(shape, affine)

    def ell(centre: list[float], radii: list[float]) -> NDArray:
        return (((xyz - np.array(centre)) / np.array(radii)) ** 2).sum(axis=1) <= 1.0

    scalp = ell([0, 0, 0], [62, 76, 56]) & ~ell([0, 0, 0], [56, 70, 50])
    grey = ell([0, 0, 2], [54, 68, 48]) & ~ell([0, -4, 6], [42, 54, 36])
    white = ell([0, -4, 6], [42, 54, 36])
    striatum = ell([-18, 10, 6], [7, 11, 9]) | ell([18, 10, 6], [7, 11, 9])
    cerebellum = ell([0, -52, -30], [30, 14, 12])
    maps = {
        "scalp": scalp,
        "grey": grey & ~striatum,
        "white": white & ~striatum,
        "striatum": striatum,
        "cerebellum": cerebellum,
    }
    sigma_vox = 2.5 / np.linalg.norm(affine[:3, :3], axis=0)
    return {
        k: ndimage.gaussian_filter(v.reshape(shape).astype(float), sigma_vox)
        for k, v in maps.items()
    }


def frame_image(comp: dict[str, NDArray], t_min: float) -> NDArray:
    """Raclopride-like activity at time ``t_min``: perfusion early, striatum late."""
    early = np.exp(-t_min / 3.0)
    late = 1.0 - early
    return (
        comp["scalp"] * (0.6 * early + 0.3)
        + comp["grey"] * (2.0 * early + 0.8)
        + comp["white"] * (0.8 * early + 0.4)
        + comp["cerebellum"] * (2.0 * early + 0.9)
        + comp["striatum"] * (2.0 * early + 3.6 * late + 0.8)
    )


def move(volume: NDArray, affine: NDArray, reference_to_frame: NDArray) -> NDArray:
    """Frame = volume pulled through ``reference_to_frame`` (cubic; what a moved head gives)."""
    vox = np.linalg.inv(affine) @ np.linalg.inv(reference_to_frame) @ affine
    return ndimage.affine_transform(volume, vox[:3, :3], vox[:3, 3], order=3, mode="constant")


@dataclass(frozen=True)
class Series:
    """A synthetic dynamic PET series and its truth."""

    img: nib.Nifti1Image
    timing: FrameTiming
    params: NDArray  # (n_frames, 6) true reference->frame params about centre (0, 0, 0)
    matrices: NDArray  # (n_frames, 4, 4)
    static: NDArray  # noise-free, motion-free late-frame image


#: 14 frames: 6 short early ones (< 2 min), then 1-10 min frames.
FRAME_STARTS_S = np.array([0, 20, 40, 60, 80, 100, 120, 240, 420, 600, 900, 1200, 1500, 1800])
FRAME_DURATIONS_S = np.diff(np.append(FRAME_STARTS_S, 2400)).astype(float)


def make_series(
    rng: np.random.Generator,
    params: NDArray,
    noise: float = 0.05,
    shape: tuple[int, int, int] = SHAPE,
) -> Series:
    """Build a 4-D series whose frame ``i`` is moved by ``params[i]`` (about the origin)."""
    timing = FrameTiming.from_seconds(FRAME_STARTS_S, FRAME_DURATIONS_S)
    affine = grid_affine(shape)
    comp = head_compartments(shape, affine)
    frames = []
    matrices = np.stack([params_to_matrix(p) for p in params])
    for i in range(timing.n_frames):
        clean = frame_image(comp, float(timing.mid_min[i]))
        moved = move(clean, affine, matrices[i])
        sd = noise / np.sqrt(timing.duration_min[i])
        frames.append(moved + rng.normal(0.0, sd, shape) * (moved > 0.05))
    data = np.stack(frames, axis=-1).astype(np.float32)
    static = frame_image(comp, float(timing.mid_min[-1]))
    return Series(nib.Nifti1Image(data, affine), timing, params, matrices, static)


def random_params(rng: np.random.Generator, n: int, trans_mm: float, rot_deg: float) -> NDArray:
    """Uniform random rigid parameters (mm, radians)."""
    t = rng.uniform(-trans_mm, trans_mm, (n, 3))
    r = np.deg2rad(rng.uniform(-rot_deg, rot_deg, (n, 3)))
    return np.hstack([t, r])
