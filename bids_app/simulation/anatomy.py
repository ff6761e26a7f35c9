"""Tissue-class anatomy of the simulated head on the app's MNI template grid.

Every voxel is a mixture of tissue classes with fractions ``f_c(x)`` (sum <= 1; the rest is
CSF or air, without activity). The classes come from the same template and ROI atlas the app
uses (:func:`bids_app.roi.template.load_template`, :func:`bids_app.roi.atlas.build_roi_atlas`):

* grey matter (nilearn GM probability) is split by AAL3 region into ``cerebellum`` (hemispheres
  and vermis: the reference tissue), ``insula`` and ``cortex`` (everything else);
* white matter (nilearn WM probability) is ``wm``;
* deep structures replace the mixture entirely (fraction 1): ``thalamus`` (AAL3 thalamic nuclei
  and pallidum), the striatal masks ``caudate``, ``putamen`` and ``ventral`` (accumbens), the
  ``habenula`` and ``habenula_control`` spheres, the ``pituitary`` and the ``carotid`` arteries;
* ``extracerebral`` (scalp, skull, muscle) is a 12 mm shell around the brain with low uptake,
  so the native images show a head outline.

The scanner's resolution is applied once here: the fraction maps are blurred with an isotropic
Gaussian of the protocol's FWHM. Because blurring is linear, a frame image is then just
``sum_c blurred_f_c(x) * TAC_c(t)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bids_app.errors import InputError

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

EXTRACEREBRAL_SHELL_MM = 12.0
"""Thickness of the scalp/skull shell around the brain, mm."""

_OVERRIDE_ORDER: tuple[tuple[str, str], ...] = (
    ("thalamus", "thalamus"),
    ("caudate", "caudate"),
    ("putamen", "putamen"),
    ("ventral", "ventral_striatum"),
    ("habenula", "habenula"),
    ("habenula_control", "habenula_control"),
    ("pituitary", "pituitary"),
    ("carotid", "carotid"),
)
"""(tissue class, atlas mask) pairs that replace the GM/WM mixture, later ones win."""


@dataclass(frozen=True)
class Anatomy:
    """Tissue fractions on the MNI template grid, before and after the scanner blur.

    Attributes
    ----------
    classes : tuple of str
        Tissue class names (:data:`TISSUE_CLASSES`).
    fractions : (n_classes, nx, ny, nz) float32 ndarray
        Fraction of each voxel occupied by each class (0-1).
    blurred : (n_classes, nx, ny, nz) float32 ndarray
        ``fractions`` blurred by the scanner resolution.
    affine : (4, 4) ndarray
        Voxel -> MNI mm affine of the grid.
    head_centre_mm : (3,) ndarray
        Centre of the head (centroid of all tissue), MNI mm: the centre of rotation.
    roi_masks : dict of str to (nx, ny, nz) bool ndarray
        The atlas masks the truth is computed in (the app's own ROIs).
    template : (nx, ny, nz) float32 ndarray
        The T1 template intensities (for the optional T1w image).
    fwhm_mm : float
        Resolution applied to ``blurred``, mm.
    """

    classes: tuple[str, ...]
    fractions: NDArray[np.float32]
    blurred: NDArray[np.float32]
    affine: NDArray[np.float64]
    head_centre_mm: NDArray[np.float64]
    roi_masks: dict[str, NDArray[np.bool_]]
    template: NDArray[np.float32]
    fwhm_mm: float

    @property
    def shape(self) -> tuple[int, int, int]:
        """Grid shape (nx, ny, nz)."""
        return tuple(int(n) for n in self.fractions.shape[1:])  # type: ignore[return-value]

    def index(self, name: str) -> int:
        """Position of a tissue class in :attr:`classes`."""
        try:
            return self.classes.index(name)
        except ValueError:
            msg = f"unknown tissue class {name!r}; expected one of {list(self.classes)}"
            raise InputError(msg) from None


def _labels_matching(label_names: dict[int, str], prefixes: tuple[str, ...]) -> list[int]:
    """Label values whose name starts with any of ``prefixes``."""
    return [v for v, n in label_names.items() if n.startswith(prefixes)]


def _region(labels: NDArray[np.int32], values: list[int]) -> NDArray[np.bool_]:
    """Boolean mask of the voxels carrying any of ``values``."""
    return np.isin(labels, np.asarray(values, dtype=labels.dtype))


def build_fractions(
    gm_prob: NDArray[np.floating],
    wm_prob: NDArray[np.floating],
    brain: NDArray[np.bool_],
    labels: NDArray[np.int32],
    label_names: dict[int, str],
    masks: dict[str, NDArray[np.bool_]],
    voxel_mm: float,
) -> NDArray[np.float32]:
    """Assign tissue-class fractions from probability maps, atlas labels and ROI masks.

    Parameters
    ----------
    gm_prob, wm_prob : (nx, ny, nz) ndarray
        Grey/white matter probabilities (0-1).
    brain : (nx, ny, nz) bool ndarray
        Brain mask.
    labels : (nx, ny, nz) int ndarray
        AAL3 labels on the grid.
    label_names : dict of int to str
        AAL3 label names.
    masks : dict of str to (nx, ny, nz) bool ndarray
        Atlas ROI masks (``caudate``, ``putamen``, ``ventral_striatum``, ``habenula``,
        ``habenula_control``, ``pituitary``, ``carotid``, ``cerebellum``).
    voxel_mm : float
        Isotropic voxel size, mm.

    Returns
    -------
    (n_classes, nx, ny, nz) float32 ndarray
        Fractions in the order of :data:`TISSUE_CLASSES`.
    """
    idx = {name: i for i, name in enumerate(TISSUE_CLASSES)}
    gm = np.where(brain, np.clip(gm_prob, 0.0, 1.0), 0.0)
    wm = np.where(brain, np.clip(wm_prob, 0.0, 1.0), 0.0)
    total = gm + wm
    over = total > 1.0
    gm[over] /= total[over]
    wm[over] /= total[over]

    cerebellum = _region(labels, _labels_matching(label_names, ("Cerebellum_", "Vermis_")))
    cerebellum |= masks["cerebellum"]
    insula = _region(labels, _labels_matching(label_names, ("Insula",)))
    thalamus = _region(labels, _labels_matching(label_names, ("Thal_", "Thalamus", "Pallidum")))

    fractions = np.zeros((len(TISSUE_CLASSES), *gm.shape), dtype=np.float32)
    fractions[idx["cerebellum"]] = np.where(cerebellum, gm, 0.0)
    fractions[idx["insula"]] = np.where(insula & ~cerebellum, gm, 0.0)
    fractions[idx["cortex"]] = np.where(~insula & ~cerebellum, gm, 0.0)
    fractions[idx["wm"]] = wm

    region_masks = dict(masks)
    region_masks["thalamus"] = thalamus
    occupied = np.zeros(gm.shape, dtype=bool)
    for tissue, mask_name in _OVERRIDE_ORDER:
        region = region_masks[mask_name]
        fractions[:, region] = 0.0
        fractions[idx[tissue], region] = 1.0
        occupied |= region

    inside = brain | occupied
    reach = int(np.ceil(EXTRACEREBRAL_SHELL_MM / voxel_mm))
    ball = ndimage.iterate_structure(ndimage.generate_binary_structure(3, 1), reach)
    head = ndimage.binary_dilation(inside, structure=ball)
    fractions[idx["extracerebral"]] = (head & ~inside).astype(np.float32)
    return fractions


def blur_fractions(
    fractions: NDArray[np.float32], fwhm_mm: float, voxel_mm: float
) -> NDArray[np.float32]:
    """Blur each class map by an isotropic Gaussian of ``fwhm_mm`` (the scanner PSF).

    Returns
    -------
    (n_classes, nx, ny, nz) float32 ndarray
        Blurred fractions (zero-padded at the grid border).
    """
    sigma_vox = fwhm_mm * FWHM_TO_SIGMA / voxel_mm
    out = np.empty_like(fractions)
    for i, frac in enumerate(fractions):
        ndimage.gaussian_filter(frac, sigma_vox, output=out[i], mode="constant", cval=0.0)
    return out


def build_anatomy(fwhm_mm: float = 6.0, resolution_mm: int = 2) -> Anatomy:
    """Build the simulated head on the app's template grid.

    Parameters
    ----------
    fwhm_mm : float
        Scanner resolution applied to the blurred fractions, mm.
    resolution_mm : {2}
        Template grid resolution, mm.

    Returns
    -------
    Anatomy
        Fractions, blurred fractions, ROI masks and the template.
    """
    from bids_app.roi import template as tpl
    from bids_app.roi.atlas import build_roi_atlas

    atlas = build_roi_atlas(resolution_mm)
    template_img = tpl.load_template(resolution_mm)
    gm_prob = np.asarray(tpl.load_tissue_probability("gm", resolution_mm).dataobj)
    wm_prob = np.asarray(tpl.load_tissue_probability("wm", resolution_mm).dataobj)
    brain = np.asarray(tpl.load_brain_mask(resolution_mm).dataobj) > 0
    voxel_mm = float(np.sqrt((atlas.affine[:3, :3] ** 2).sum(axis=0))[0])
    fractions = build_fractions(
        gm_prob, wm_prob, brain, atlas.labels, atlas.label_names, atlas.masks, voxel_mm
    )
    blurred = blur_fractions(fractions, fwhm_mm, voxel_mm)
    tissue = fractions.sum(axis=0)
    ijk = np.argwhere(tissue > 0.5).mean(axis=0)
    centre = (atlas.affine @ np.append(ijk, 1.0))[:3]
    logger.debug("Simulated anatomy: %d classes, head centre %s mm", len(TISSUE_CLASSES), centre)
    return Anatomy(
        classes=TISSUE_CLASSES,
        fractions=fractions,
        blurred=blurred,
        affine=np.asarray(atlas.affine, dtype=np.float64),
        head_centre_mm=centre,
        roi_masks={k: np.asarray(v, dtype=bool) for k, v in atlas.masks.items()},
        template=np.asarray(template_img.dataobj, dtype=np.float32),
        fwhm_mm=float(fwhm_mm),
    )
