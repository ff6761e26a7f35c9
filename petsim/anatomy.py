"""Tissue-class anatomy of the simulated head on the 2 mm MNI grid, and the truth ROIs.

Every voxel is a mixture of tissue classes with fractions ``f_c(x)`` (sum <= 1; the rest is
CSF or air, without activity). The classes are made on the template's 1 mm grid from the
simulator's own sources (:mod:`petsim.atlas`: nilearn's MNI152 2009a maps, HCPex and AAL) and
averaged onto the 2 mm grid, so boundary voxels carry partial volumes:

* grey matter (template GM probability) is split into ``cerebellum`` (AAL cerebellar
  hemispheres and vermis: the reference tissue), ``insula`` (HCPex insular areas) and
  ``cortex`` (the rest);
* white matter (template WM probability) is ``wm``;
* deep structures replace the mixture entirely (fraction 1), later ones winning:
  ``thalamus`` (HCPex thalamic nuclei and globus pallidus), ``caudate``, ``putamen``,
  ``ventral`` (HCPex nucleus accumbens), ``habenula``, ``habenula_control``, ``pituitary``,
  ``carotid`` (geometric, :data:`petsim.atlas.GEOMETRIC_REGIONS`);
* ``extracerebral`` (scalp, skull, muscle) fills a 12 mm shell around the brain with low
  uptake, so the native images show a head outline.

The truth ROIs (:data:`TRUTH_ROIS`, the names the tests use) are the 2 mm voxels at least half
inside a region: ``caudate``, ``putamen``, ``ventral_striatum`` (accumbens), their unions
``dorsal_striatum`` and ``striatum``, the geometric regions, and the reference ``cerebellum``
(:func:`petsim.atlas.reference_region`).

The scanner resolution is applied per participant (after the individual warp): the fraction
maps are blurred with an isotropic Gaussian of the protocol's FWHM (:func:`blur_fractions`).
Because blurring is linear, a frame image is then ``sum_c blurred_f_c(x) * TAC_c(t)``.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from petsim import atlas
from petsim.errors import InputError

logger = logging.getLogger(__name__)

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))

TISSUE_CLASSES: tuple[str, ...] = (
    "cerebellum",
    "cortex",
    "insula",
    "wm",
    "thalamus",
    "caudate",
    "putamen",
    "ventral",
    "habenula",
    "habenula_control",
    "pituitary",
    "carotid",
    "extracerebral",
)
"""Names of the tissue classes, in the order of :attr:`Anatomy.fractions`."""

OVERRIDE_CLASSES: tuple[str, ...] = (
    "thalamus",
    "caudate",
    "putamen",
    "ventral",
    "habenula",
    "habenula_control",
    "pituitary",
    "carotid",
)
"""Classes that replace the GM/WM mixture (fraction 1), later ones winning."""

TRUTH_ROIS: tuple[str, ...] = (
    "dorsal_striatum",
    "ventral_striatum",
    "striatum",
    "caudate",
    "putamen",
    "pituitary",
    "carotid",
    "habenula",
    "habenula_control",
)
"""ROIs the expected measured values are reported for."""

REFERENCE_ROI = "cerebellum"
"""The reference-region ROI (cerebellar hemisphere cortex)."""

EXTRACEREBRAL_SHELL_MM = 12.0
"""Thickness of the scalp/skull shell around the brain, mm."""

ROI_MIN_FRACTION = 0.5
"""A 2 mm voxel belongs to an ROI when at least this part of it lies in the region."""


@dataclass(frozen=True)
class Anatomy:
    """Unblurred tissue fractions and ROIs on the 2 mm MNI (template) grid.

    Attributes
    ----------
    classes : tuple of str
        Tissue class names (:data:`TISSUE_CLASSES`).
    fractions : (n_classes, nx, ny, nz) float32 ndarray
        Fraction of each voxel occupied by each class (0-1), read-only.
    grid : petsim.atlas.Grid
        The 2 mm grid (voxel -> MNI mm).
    head_centre_mm : (3,) ndarray
        Centroid of all tissue, MNI mm: the centre of rotation and of the individual scaling.
    roi_masks : dict of str to (nx, ny, nz) bool ndarray
        Truth ROIs (:data:`TRUTH_ROIS`) and the reference ``cerebellum``.
    cerebellum_whole : (nx, ny, nz) bool ndarray
        The whole cerebellum including the tonsils (where the limited field of view is placed).
    """

    classes: tuple[str, ...]
    fractions: NDArray[np.float32]
    grid: atlas.Grid
    head_centre_mm: NDArray[np.float64]
    roi_masks: dict[str, NDArray[np.bool_]]
    cerebellum_whole: NDArray[np.bool_]

    @property
    def shape(self) -> tuple[int, int, int]:
        """Grid shape (nx, ny, nz)."""
        return self.grid.shape

    @property
    def affine(self) -> NDArray[np.float64]:
        """Voxel -> MNI mm affine."""
        return self.grid.affine

    def index(self, name: str) -> int:
        """Position of a tissue class in :attr:`classes`."""
        try:
            return self.classes.index(name)
        except ValueError:
            msg = f"unknown tissue class {name!r}; expected one of {list(self.classes)}"
            raise InputError(msg) from None


def _override_regions(src: atlas.TemplateSources) -> dict[str, NDArray[np.bool_]]:
    """1 mm masks of the override classes, before resolving overlaps."""
    grid = src.grid_1mm
    regions = {
        "thalamus": src.hcpex_mask(atlas.thalamus_names(src)),
        "caudate": src.hcpex_mask(atlas.HCPEX_CAUDATE),
        "putamen": src.hcpex_mask(atlas.HCPEX_PUTAMEN),
        "ventral": src.hcpex_mask(atlas.HCPEX_ACCUMBENS),
    }
    for name, shapes in atlas.GEOMETRIC_REGIONS.items():
        regions[name] = atlas.paint(grid, shapes)
    return regions


@functools.lru_cache(maxsize=1)
def brain_mask_1mm() -> NDArray[np.bool_]:
    """Template brain mask (T1 above threshold, holes filled) on the 1 mm grid (read-only)."""
    src = atlas.load_sources()
    mask = ndimage.binary_fill_holes(src.t1 > atlas.BRAIN_T1_THRESHOLD)
    mask.setflags(write=False)
    return mask  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=1)
def build_anatomy() -> Anatomy:
    """Build the template-space anatomy (cached per process; arrays are read-only).

    Returns
    -------
    Anatomy
        Unblurred 2 mm fractions, truth ROIs and the head centre.
    """
    src = atlas.load_sources()
    grid = atlas.grid_2mm(src.grid_1mm)
    down = atlas.downsample_2mm
    brain = brain_mask_1mm()
    gm = np.where(brain, np.clip(src.gm, 0.0, 1.0), 0.0)
    wm = np.where(brain, np.clip(src.wm, 0.0, 1.0), 0.0)
    total = gm + wm
    over = total > 1.0
    gm[over] /= total[over]
    wm[over] /= total[over]

    regions = _override_regions(src)
    claimed = np.zeros(brain.shape, dtype=bool)
    final: dict[str, NDArray[np.bool_]] = {}
    for name in reversed(OVERRIDE_CLASSES):  # later classes win
        final[name] = regions[name] & ~claimed
        claimed |= regions[name]
    cerebellum = src.aal_mask(atlas.cerebellum_names(src)) & brain
    insula = src.hcpex_mask(atlas.HCPEX_INSULA) & ~cerebellum
    free = ~claimed

    idx = {name: i for i, name in enumerate(TISSUE_CLASSES)}
    fractions = np.zeros((len(TISSUE_CLASSES), *grid.shape), dtype=np.float32)
    fractions[idx["cerebellum"]] = down(gm * (cerebellum & free))
    fractions[idx["insula"]] = down(gm * (insula & free))
    fractions[idx["cortex"]] = down(gm * (~cerebellum & ~insula & free))
    fractions[idx["wm"]] = down(wm * free)
    for name in OVERRIDE_CLASSES:
        fractions[idx[name]] = down(final[name])

    inside = down(brain | claimed) >= ROI_MIN_FRACTION
    shell = ~inside & (atlas.distance_mm(inside, grid.voxel_mm) <= EXTRACEREBRAL_SHELL_MM)
    rest = np.clip(1.0 - fractions.sum(axis=0), 0.0, 1.0)
    fractions[idx["extracerebral"]] = np.where(shell, rest, 0.0)

    def roi(mask_1mm: NDArray[np.bool_]) -> NDArray[np.bool_]:
        return down(mask_1mm) >= ROI_MIN_FRACTION

    masks = {
        "caudate": roi(regions["caudate"]),
        "putamen": roi(regions["putamen"]),
        "ventral_striatum": roi(regions["ventral"]),
        "pituitary": roi(regions["pituitary"]),
        "carotid": roi(regions["carotid"]),
        "habenula": roi(regions["habenula"]),
        "habenula_control": roi(regions["habenula_control"]),
        REFERENCE_ROI: roi(atlas.reference_region(src, brain, cerebellum)),
    }
    masks["dorsal_striatum"] = masks["caudate"] | masks["putamen"]
    masks["striatum"] = masks["dorsal_striatum"] | masks["ventral_striatum"]
    for mask in masks.values():
        mask.setflags(write=False)
    whole = roi(cerebellum)
    whole.setflags(write=False)
    fractions.setflags(write=False)
    ijk = np.argwhere(fractions.sum(axis=0) > 0.5).mean(axis=0)
    centre = grid.affine[:3, :3] @ ijk + grid.affine[:3, 3]
    logger.debug("Simulated anatomy: %d classes, head centre %s mm", len(TISSUE_CLASSES), centre)
    return Anatomy(
        classes=TISSUE_CLASSES,
        fractions=fractions,
        grid=grid,
        head_centre_mm=centre,
        roi_masks=masks,
        cerebellum_whole=whole,
    )


def blur_fractions(
    fractions: NDArray[np.float32], fwhm_mm: float, voxel_mm: float
) -> NDArray[np.float32]:
    """Blur each class map by an isotropic Gaussian of ``fwhm_mm`` (the scanner PSF).

    Parameters
    ----------
    fractions : (n_classes, nx, ny, nz) ndarray
        Class fractions.
    fwhm_mm : float
        Resolution, mm (0 returns a copy).
    voxel_mm : float
        Isotropic voxel size, mm.

    Returns
    -------
    (n_classes, nx, ny, nz) float32 ndarray
        Blurred fractions (zero-padded at the grid border).
    """
    out = np.array(fractions, dtype=np.float32)
    if fwhm_mm <= 0.0:
        return out
    sigma_vox = fwhm_mm * FWHM_TO_SIGMA / voxel_mm
    for i, frac in enumerate(fractions):
        out[i] = ndimage.gaussian_filter(frac, sigma_vox, mode="constant", cval=0.0)
    return out
