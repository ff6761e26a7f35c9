"""Optional T1-weighted image of each participant, in its own head pose.

The source is a noise-free template-space volume (:mod:`petsim.head`): the whole head with
skull, scalp, eyes and neck (``skull=True``) or the skull-stripped template. Every T1w voxel
(scanner mm) is mapped to the participant's head space by the inverse of the T1w pose, then to
the template by the participant's warp (:meth:`petsim.warp.IndividualWarp.to_template`), and the
source is sampled there (trilinear). The PET images use the same warp, so both see one anatomy.

Whole-head images then get a smooth multiplicative bias field (a random quadratic polynomial
of the scanner coordinates, exponentiated, about +-10 % over the head) and Rician noise (the
magnitude of the image plus complex Gaussian noise of SD :data:`RICIAN_SD` of white matter),
so the background has the usual noise floor. Stripped images keep the historical model
(additive Gaussian noise, :data:`STRIPPED_NOISE_SD` of the maximum).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from petsim import bids_writer as bw
from petsim.head import T1Source
from petsim.motion import sample_session_pose
from petsim.warp import IndividualWarp

T1W_FOV_MM: tuple[float, float, float] = (200.0, 256.0, 256.0)
"""Field of view of the T1w grid (x, y, z), mm, centred on the scanner origin (MPRAGE-like)."""

WM_INTENSITY = 1000.0
"""Stored value of white matter (int16 image)."""

RICIAN_SD = 0.025
"""SD of each complex noise channel, relative to white matter."""

BIAS_AMPLITUDE = 0.06
"""SD of each random coefficient of the log bias field (normalised coordinates)."""

STRIPPED_NOISE_SD = 0.015
"""Gaussian noise SD of the stripped template image, relative to its maximum."""

_SLAB_VOXELS = 2_000_000


def t1w_affine(voxel_mm: float) -> tuple[NDArray[np.float64], tuple[int, int, int]]:
    """Axis-aligned T1w grid of isotropic ``voxel_mm`` centred on the scanner origin.

    Returns
    -------
    affine : (4, 4) ndarray
        Voxel -> scanner mm.
    shape : tuple of int
        Grid shape.
    """
    shape = tuple(int(np.ceil(f / voxel_mm)) for f in T1W_FOV_MM)
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = -0.5 * (np.asarray(shape, dtype=np.float64) - 1.0) * voxel_mm
    return affine, shape  # type: ignore[return-value]


def sample_source(
    source: T1Source,
    warp: IndividualWarp,
    pose: NDArray[np.float64],
    affine: NDArray[np.float64],
    shape: tuple[int, int, int],
) -> NDArray[np.float32]:
    """Noise-free T1w on a scanner grid: scanner -> head (pose) -> template (warp) -> source.

    Parameters
    ----------
    source : T1Source
        Template-space intensities.
    warp : IndividualWarp
        The participant's head <-> template maps.
    pose : (4, 4) ndarray
        Head mm -> scanner mm.
    affine, shape : ndarray, tuple
        The scanner grid.

    Returns
    -------
    (nx, ny, nz) float32 ndarray
        Intensities (0 outside the source).
    """
    to_head = np.linalg.inv(pose) @ affine
    to_source = np.linalg.inv(source.grid.affine)
    out = np.empty(shape, dtype=np.float32)
    nx, ny, nz = shape
    step = max(1, _SLAB_VOXELS // (nx * ny))
    for z0 in range(0, nz, step):
        z1 = min(nz, z0 + step)
        ijk = np.indices((nx, ny, z1 - z0)).reshape(3, -1).astype(np.float64)
        ijk[2] += z0
        head = (to_head[:3, :3] @ ijk + to_head[:3, 3:4]).T
        template = head if warp.is_identity else warp.to_template(head)
        src_ijk = to_source[:3, :3] @ template.T + to_source[:3, 3:4]
        values = ndimage.map_coordinates(source.volume, src_ijk, order=1, cval=0.0)
        out[:, :, z0:z1] = values.reshape(nx, ny, z1 - z0)
    return out


def bias_field(
    rng: np.random.Generator, affine: NDArray[np.float64], shape: tuple[int, int, int]
) -> NDArray[np.float32]:
    """Smooth multiplicative field ``exp(sum_k a_k p_k(x))`` over the grid.

    ``p_k`` are the linear and quadratic monomials of the coordinates scaled to [-1, 1] over the
    field of view; ``a_k ~ N(0, BIAS_AMPLITUDE)``.

    Returns
    -------
    (nx, ny, nz) float32 ndarray
        Field around 1.
    """
    axes = [
        (affine[a, a] * np.arange(n) + affine[a, 3]) / (0.5 * T1W_FOV_MM[a])
        for a, n in enumerate(shape)
    ]
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    terms = (x, y, z, x * x, y * y, z * z, x * y, x * z, y * z)
    coefficients = rng.normal(0.0, BIAS_AMPLITUDE, size=len(terms))
    log_field = sum(c * t for c, t in zip(coefficients, terms, strict=True))
    return np.exp(np.broadcast_to(log_field, shape)).astype(np.float32)


def render_t1w(
    rng: np.random.Generator,
    path: Path,
    source: T1Source,
    warp: IndividualWarp,
    head_centre_mm: NDArray[np.float64],
    voxel_mm: float,
) -> NDArray[np.float64]:
    """Write a T1w image (with its JSON sidecar) in a random pose and return the pose.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random generator (pose, bias field, noise).
    path : Path
        Destination ``sub-XX_T1w.nii.gz``.
    source : T1Source
        Template-space intensities (whole head or stripped).
    warp : IndividualWarp
        The participant's anatomy.
    head_centre_mm : (3,) ndarray
        Centre of rotation, head-space mm.
    voxel_mm : float
        Isotropic voxel size, mm.

    Returns
    -------
    (4, 4) ndarray
        Head mm -> scanner mm pose of the T1w.
    """
    pose, _ = sample_session_pose(rng, head_centre_mm)
    affine, shape = t1w_affine(voxel_mm)
    image = sample_source(source, warp, pose, affine, shape)
    if source.skull:
        image *= bias_field(rng, affine, shape)
        real = image + rng.normal(0.0, RICIAN_SD, size=shape).astype(np.float32)
        imaginary = rng.normal(0.0, RICIAN_SD, size=shape).astype(np.float32)
        image = np.hypot(real, imaginary)
        description = "synthetic whole head (petsim head model: skull, scalp, eyes, neck)"
    else:
        noise_sd = STRIPPED_NOISE_SD * float(source.volume.max())
        image += rng.normal(0.0, noise_sd, size=shape).astype(np.float32)
        description = "synthetic (skull-stripped MNI152 2009a template)"
    data = np.clip(np.rint(image * WM_INTENSITY), 0, 32767).astype(np.int16)
    bw.write_nifti(path, data, affine)
    bw.write_json(
        path.with_name(path.name.replace(".nii.gz", ".json")),
        {
            "Manufacturer": "Siemens",
            "ManufacturersModelName": description,
            "MagneticFieldStrength": 3,
            "PulseSequenceType": "MPRAGE (simulated contrast)",
        },
    )
    return pose
