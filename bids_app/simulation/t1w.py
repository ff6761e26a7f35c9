"""Optional T1-weighted image: the MNI template in a third head pose, lightly noised."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bids_app.simulation import bids_writer as bw
from bids_app.simulation.motion import sample_session_pose

T1W_FOV_MM: tuple[float, float, float] = (190.0, 230.0, 210.0)
"""Field of view of the T1w grid, mm (x, y, z), centred on the scanner origin."""

T1W_NOISE_SD = 0.015
"""Gaussian noise SD relative to the template's maximum."""

T1W_MAX_INTENSITY = 1000.0
"""Template intensity 1 maps to this stored value (int16)."""


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


def render_t1w(
    rng: np.random.Generator, path: Path, head_centre_mm: NDArray[np.float64], voxel_mm: float
) -> NDArray[np.float64]:
    """Write a T1w image (1 mm template resampled into a random pose) and return the pose.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random generator (pose and noise).
    path : Path
        Destination ``sub-XX_T1w.nii.gz``.
    head_centre_mm : (3,) ndarray
        Centre of rotation, MNI mm.
    voxel_mm : float
        Isotropic voxel size of the T1w, mm.

    Returns
    -------
    (4, 4) ndarray
        Head (MNI mm) -> scanner mm pose of the T1w.
    """
    from bids_app.roi import template as tpl

    template = tpl.load_template(1)
    source = np.asarray(template.dataobj, dtype=np.float32)
    pose, _ = sample_session_pose(rng, head_centre_mm)
    affine, shape = t1w_affine(voxel_mm)
    matrix = np.linalg.inv(template.affine) @ np.linalg.inv(pose) @ affine
    image = ndimage.affine_transform(
        source, matrix[:3, :3], offset=matrix[:3, 3], output_shape=shape, order=1
    )
    image += rng.normal(0.0, T1W_NOISE_SD * float(source.max()), size=shape).astype(np.float32)
    data = np.clip(np.rint(image * T1W_MAX_INTENSITY), 0, 32767).astype(np.int16)
    bw.write_nifti(path, data, affine)
    bw.write_json(
        path.with_name(path.name.replace(".nii.gz", ".json")),
        {
            "Manufacturer": "Siemens",
            "ManufacturersModelName": "synthetic (MNI152 2009a template)",
            "MagneticFieldStrength": 3,
        },
    )
    return pose
