"""Template-space sources of the T1-weighted image: a whole head, or the stripped template.

The MNI152 template is skull-stripped; a real T1w (MPRAGE) is not. :func:`head_t1_volume`
builds, once per study, a noise-free T1w intensity volume of a whole head around the template
brain, with geometric structures placed from MNI coordinates (drawn here; plausible, not
anatomically exact):

* **brain**: inside the intracranial volume (the template brain mask closed by 6 mm, holes
  filled) white matter, grey matter and CSF mixed by the template's WM/GM probabilities (the
  rest is CSF, so sulci and ventricles are dark);
* **cranium**, by the distance ``d`` outside the intracranial volume: CSF (0-2 mm), inner table
  of cortical bone (2-4 mm), diploe marrow (4-7 mm), outer table (7-9 mm);
* **soft tissue**: the head is the union of the surface 16 mm outside the intracranial volume,
  an orbital face with the nose, a lower face and a neck (elliptic cylinder down to the bottom
  of the grid), merged by a 6 mm closing. Inside it: skin (outer 1.5 mm), subcutaneous fat (to
  6 mm deep) and muscle;
* **eyes** (vitreous globe, orbital fat behind it), **air** in the nasal cavity, maxillary
  sinuses and airway, a **mandible** and the **cervical spine** (marrow with a cortical rim),
  the spinal canal (CSF) and the spinal cord continuing the template's brainstem.

Relative intensities (:data:`T1_INTENSITY`, white matter = 1) follow MPRAGE contrast: fat is
brightest, then white matter, cord, grey matter, marrow and skin, muscle, CSF and vitreous, and
cortical bone and air are dark. The cranial layers and the head outline come from 2 mm signed
distance maps interpolated to the output grid (sub-millimetre accurate, as distances are smooth).

:func:`stripped_t1_volume` is the alternative source: the template T1 itself (brain only).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from petsim import atlas
from petsim.anatomy import brain_mask_1mm
from petsim.atlas import Ellipsoid, Grid

T1_INTENSITY: dict[str, float] = {
    "air": 0.0,
    "cortical_bone": 0.06,
    "vitreous": 0.12,
    "csf": 0.15,
    "muscle": 0.40,
    "marrow": 0.55,
    "skin": 0.55,
    "gm": 0.62,
    "cord": 0.85,
    "wm": 1.0,
    "fat": 1.25,
}
"""MPRAGE-like relative intensities (white matter = 1)."""

HEAD_BOUNDS_MM: tuple[tuple[float, float], ...] = ((-96.0, 96.0), (-136.0, 124.0), (-160.0, 110.0))
"""Extent of the head volume (x, y, z), MNI mm; everything outside is air."""

ICV_CLOSING_MM = 6.0
CRANIAL_LAYERS_MM: tuple[tuple[float, str], ...] = (
    (2.0, "csf"),
    (4.0, "cortical_bone"),
    (7.0, "marrow"),
    (9.0, "cortical_bone"),
)
"""(outer distance from the intracranial volume, tissue) of the cranial layers, mm."""
SCALP_SURFACE_MM = 16.0
"""Distance of the scalp surface from the intracranial volume, mm."""
HEAD_CLOSING_MM = 6.0
SKIN_MM = 1.5
FAT_DEPTH_MM = 6.0

FACE_SHAPES: tuple[Ellipsoid, ...] = (
    Ellipsoid((0.0, 45.0, -35.0), (62.0, 40.0, 30.0)),  # orbits and cheeks
    Ellipsoid((0.0, 30.0, -75.0), (58.0, 68.0, 50.0)),  # lower face and jaw
    Ellipsoid((0.0, 86.0, -52.0), (11.0, 18.0, 22.0)),  # nose
)
NECK_CENTRE_MM = (0.0, -15.0)
NECK_SEMI_AXES_MM = (52.0, 58.0)
NECK_TOP_Z_MM = -40.0

EYE_GLOBES: tuple[Ellipsoid, ...] = (
    Ellipsoid((-31.0, 58.0, -38.0), (12.0, 12.0, 12.0)),
    Ellipsoid((31.0, 58.0, -38.0), (12.0, 12.0, 12.0)),
)
ORBITAL_FAT: tuple[Ellipsoid, ...] = (
    Ellipsoid((-31.0, 46.0, -38.0), (15.0, 22.0, 15.0)),
    Ellipsoid((31.0, 46.0, -38.0), (15.0, 22.0, 15.0)),
)
AIR_SPACES: tuple[Ellipsoid, ...] = (
    Ellipsoid((0.0, 62.0, -52.0), (9.0, 24.0, 17.0)),  # nasal cavity
    Ellipsoid((-25.0, 52.0, -58.0), (12.0, 15.0, 13.0)),  # maxillary sinuses
    Ellipsoid((25.0, 52.0, -58.0), (12.0, 15.0, 13.0)),
)
AIRWAY_CENTRE_MM = (0.0, 2.0)
AIRWAY_SEMI_AXES_MM = (9.0, 7.0)
AIRWAY_TOP_Z_MM = -62.0
SPINE_TOP_Z_MM = -62.0
VERTEBRA_CENTRE_MM = (0.0, -22.0)
VERTEBRA_RADIUS_MM = 9.0
CANAL_CENTRE_MM = (0.0, -45.0)
CANAL_RADIUS_MM = 8.0
CORD_RADIUS_MM = 4.5
BONE_RIM_MM = 1.5
MANDIBLE_CENTRE_MM = (0.0, 22.0)
MANDIBLE_SEMI_AXES_MM = (46.0, 62.0)
MANDIBLE_THICKNESS = 0.16
"""Mandible: the elliptic ring between 1 - thickness and 1 of the (x, y) ellipse, in front of
its centre, between :data:`MANDIBLE_Z_MM`."""
MANDIBLE_Z_MM = (-115.0, -92.0)

_SLAB_VOXELS = 2_000_000


@dataclass(frozen=True)
class T1Source:
    """A noise-free T1w intensity volume in template (MNI) space.

    Attributes
    ----------
    volume : (nx, ny, nz) float32 ndarray
        Intensity, white matter = 1 (stripped template: template T1 scaled to 0-1).
    grid : Grid
        Voxel -> MNI mm.
    skull : bool
        Whole head (True) or the skull-stripped template (False).
    """

    volume: NDArray[np.float32]
    grid: Grid
    skull: bool


def _signed_distance(mask: NDArray[np.bool_], voxel_mm: float) -> NDArray[np.float32]:
    """Signed distance to the mask boundary (positive outside, negative inside), mm."""
    outside = ndimage.distance_transform_edt(~mask)
    inside = ndimage.distance_transform_edt(mask)
    return ((outside - inside) * voxel_mm - np.where(mask, -0.5, 0.5) * voxel_mm).astype(
        np.float32
    )


def _close(mask: NDArray[np.bool_], radius_mm: float, voxel_mm: float) -> NDArray[np.bool_]:
    """Morphological closing with a ball of ``radius_mm`` (via distance transforms)."""
    dilated = ndimage.distance_transform_edt(~mask) * voxel_mm <= radius_mm
    return ndimage.distance_transform_edt(dilated) * voxel_mm > radius_mm  # type: ignore[no-any-return]


def _neck(xyz: NDArray[np.float64]) -> NDArray[np.bool_]:
    dx = (xyz[..., 0] - NECK_CENTRE_MM[0]) / NECK_SEMI_AXES_MM[0]
    dy = (xyz[..., 1] - NECK_CENTRE_MM[1]) / NECK_SEMI_AXES_MM[1]
    return (dx**2 + dy**2 <= 1.0) & (xyz[..., 2] <= NECK_TOP_Z_MM)


def _radial(xyz: NDArray[np.float64], centre: tuple[float, float]) -> NDArray[np.float64]:
    """Distance from a vertical (z) axis through ``centre`` (x, y), mm."""
    return np.hypot(xyz[..., 0] - centre[0], xyz[..., 1] - centre[1])


def _in_any(xyz: NDArray[np.float64], shapes: tuple[Ellipsoid, ...]) -> NDArray[np.bool_]:
    out = np.zeros(xyz.shape[:-1], dtype=bool)
    for shape in shapes:
        out |= atlas.inside_shape(xyz, shape)
    return out


@dataclass(frozen=True)
class _Geometry:
    """2 mm signed distance maps of the intracranial volume and of the head outline."""

    grid: Grid
    icv_mm: NDArray[np.float32]
    head_mm: NDArray[np.float32]


def _geometry() -> _Geometry:
    src = atlas.load_sources()
    grid = Grid.from_bounds(HEAD_BOUNDS_MM, 2.0)
    brain = atlas.downsample_2mm(brain_mask_1mm()) >= 0.5
    brain2 = atlas.resample_aligned(brain, atlas.grid_2mm(src.grid_1mm), grid)
    icv = ndimage.binary_fill_holes(_close(brain2, ICV_CLOSING_MM, 2.0))
    icv_mm = _signed_distance(icv, 2.0)
    xyz = grid.centres_mm().reshape(*grid.shape, 3)
    head = (icv_mm <= SCALP_SURFACE_MM) | _neck(xyz) | _in_any(xyz, FACE_SHAPES)
    head = ndimage.binary_fill_holes(_close(head, HEAD_CLOSING_MM, 2.0))
    return _Geometry(grid=grid, icv_mm=icv_mm, head_mm=_signed_distance(head, 2.0))


_FAR_MM = 1000.0
"""Signed distance assumed outside the geometry grid (far outside the head), mm."""


def _sample(
    volume: NDArray[np.floating], grid: Grid, xyz: NDArray[np.float64], outside: float = 0.0
) -> NDArray:
    """Trilinear samples of ``volume`` at MNI points (n, 3); ``outside`` beyond the grid."""
    inv = np.linalg.inv(grid.affine)
    ijk = inv[:3, :3] @ xyz.T + inv[:3, 3:4]
    return ndimage.map_coordinates(volume, ijk, order=1, mode="constant", cval=outside)


def head_intensity(xyz: NDArray[np.float64], geometry: _Geometry) -> NDArray[np.float32]:
    """Noise-free T1w intensity of the whole head at MNI points (n, 3)."""
    src = atlas.load_sources()
    t = T1_INTENSITY
    d_icv = _sample(geometry.icv_mm, geometry.grid, xyz, _FAR_MM)
    depth = -_sample(geometry.head_mm, geometry.grid, xyz, _FAR_MM)
    out = np.zeros(xyz.shape[0], dtype=np.float32)
    out[depth > 0] = t["muscle"]
    out[(depth > 0) & (depth <= FAT_DEPTH_MM)] = t["fat"]
    out[(depth > 0) & (depth <= SKIN_MM)] = t["skin"]
    soft = depth > 0
    out[soft & _in_any(xyz, ORBITAL_FAT)] = t["fat"]
    out[soft & _in_any(xyz, EYE_GLOBES)] = t["vitreous"]
    out[soft & _in_any(xyz, AIR_SPACES)] = t["air"]
    z = xyz[:, 2]
    airway = (
        ((xyz[:, 0] - AIRWAY_CENTRE_MM[0]) / AIRWAY_SEMI_AXES_MM[0]) ** 2
        + ((xyz[:, 1] - AIRWAY_CENTRE_MM[1]) / AIRWAY_SEMI_AXES_MM[1]) ** 2
        <= 1.0
    ) & (z <= AIRWAY_TOP_Z_MM)
    out[soft & airway] = t["air"]
    ring = ((xyz[:, 0] - MANDIBLE_CENTRE_MM[0]) / MANDIBLE_SEMI_AXES_MM[0]) ** 2 + (
        (xyz[:, 1] - MANDIBLE_CENTRE_MM[1]) / MANDIBLE_SEMI_AXES_MM[1]
    ) ** 2
    jaw = (xyz[:, 1] > MANDIBLE_CENTRE_MM[1]) & (z >= MANDIBLE_Z_MM[0]) & (z <= MANDIBLE_Z_MM[1])
    outer, inner = 1.0, 1.0 - MANDIBLE_THICKNESS
    out[soft & jaw & (ring <= outer) & (ring >= inner)] = t["cortical_bone"]
    mid = 1.0 - 0.5 * MANDIBLE_THICKNESS
    out[soft & jaw & (np.abs(ring - mid) <= 0.25 * MANDIBLE_THICKNESS)] = t["marrow"]
    spine = soft & (z <= SPINE_TOP_Z_MM)
    r_body = _radial(xyz, VERTEBRA_CENTRE_MM)
    out[spine & (r_body <= VERTEBRA_RADIUS_MM)] = t["cortical_bone"]
    out[spine & (r_body <= VERTEBRA_RADIUS_MM - BONE_RIM_MM)] = t["marrow"]
    r_canal = _radial(xyz, CANAL_CENTRE_MM)
    posterior = xyz[:, 1] < CANAL_CENTRE_MM[1]
    out[spine & posterior & (r_canal <= CANAL_RADIUS_MM + 2 * BONE_RIM_MM)] = t["cortical_bone"]
    canal = (z <= SPINE_TOP_Z_MM) & (r_canal <= CANAL_RADIUS_MM) & (d_icv > 0)
    for limit, tissue in reversed(CRANIAL_LAYERS_MM):
        out[(d_icv > 0) & (d_icv <= limit) & ~canal] = t[tissue]
    out[canal] = t["csf"]
    out[canal & (r_canal <= CORD_RADIUS_MM)] = t["cord"]
    brain = d_icv <= 0
    gm = _sample(src.gm, src.grid_1mm, xyz[brain])
    wm = _sample(src.wm, src.grid_1mm, xyz[brain])
    total = np.maximum(gm + wm, 1.0)
    gm, wm = gm / total, wm / total
    out[brain] = wm * t["wm"] + gm * t["gm"] + (1.0 - gm - wm) * t["csf"]
    return out


@functools.lru_cache(maxsize=2)
def head_t1_volume(spacing_mm: float) -> T1Source:
    """The whole-head T1w volume on a grid of ``spacing_mm`` (cached; read-only).

    Parameters
    ----------
    spacing_mm : float
        Voxel size of the volume, mm (use the T1w's voxel size).

    Returns
    -------
    T1Source
        Intensities (white matter = 1) over :data:`HEAD_BOUNDS_MM`.
    """
    geometry = _geometry()
    grid = Grid.from_bounds(HEAD_BOUNDS_MM, spacing_mm)
    volume = np.empty(grid.shape, dtype=np.float32)
    nx, ny, nz = grid.shape
    step = max(1, _SLAB_VOXELS // (nx * ny))
    for z0 in range(0, nz, step):
        z1 = min(nz, z0 + step)
        ijk = np.indices((nx, ny, z1 - z0)).reshape(3, -1).astype(np.float64)
        ijk[2] += z0
        xyz = (grid.affine[:3, :3] @ ijk + grid.affine[:3, 3:4]).T
        volume[:, :, z0:z1] = head_intensity(xyz, geometry).reshape(nx, ny, z1 - z0)
    volume.setflags(write=False)
    return T1Source(volume=volume, grid=grid, skull=True)


def stripped_t1_volume() -> T1Source:
    """The skull-stripped template T1 (1 mm, scaled 0-1) as a T1w source."""
    src = atlas.load_sources()
    return T1Source(volume=src.t1, grid=src.grid_1mm, skull=False)
