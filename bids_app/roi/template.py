"""The MNI template the app normalises to, read offline from nilearn's bundled copy.

nilearn ships (no download) the ICBM 2009a nonlinear symmetric MNI152 template with
brain, grey-matter and white-matter masks at 1 and 2 mm. Its TemplateFlow name is
``MNI152NLin2009aSym`` (Fonov et al., NeuroImage 2011; Fonov et al., NeuroImage 2009).

The loaders are pure; the arrays are cached once per process and handed out
**read-only**, so a caller cannot mutate the shared copy (``img.get_fdata()`` returns a
fresh float64 array; ``np.asarray(img.dataobj)`` is the read-only cache).
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Literal, TypeVar

import nibabel as nib
import numpy as np
from numpy.typing import NDArray

from bids_app.errors import InputError

logger = logging.getLogger(__name__)

#: A cached array, returned with its own type by :func:`_read_only`.
_ArrayT = TypeVar("_ArrayT", bound=NDArray[Any])

TEMPLATE_NAME = "MNI152NLin2009aSym"
"""TemplateFlow-style name of the template (used in ``space-<label>`` entities)."""

SUPPORTED_RESOLUTIONS_MM: tuple[int, ...] = (1, 2)
"""Template resolutions available offline (isotropic voxel size, mm)."""

Tissue = Literal["gm", "wm"]


def _check_resolution(resolution_mm: int) -> int:
    """Validate the requested template resolution.

    Parameters
    ----------
    resolution_mm : int
        Isotropic voxel size, mm.

    Returns
    -------
    int
        The same resolution, as a Python int.
    """
    try:
        res = int(resolution_mm)
    except (TypeError, ValueError):
        res = -1
    if res not in SUPPORTED_RESOLUTIONS_MM or res != resolution_mm:
        msg = (
            f"Template resolution must be one of {list(SUPPORTED_RESOLUTIONS_MM)} mm; "
            f"got {resolution_mm!r}. Pass resolution_mm=2 (the app's analysis grid)."
        )
        raise InputError(msg)
    return res


def _read_only(array: _ArrayT) -> _ArrayT:
    """Return ``array`` with its write flag cleared (the cached, shared copy)."""
    array.setflags(write=False)
    return array


def _image(data: NDArray[np.generic], affine: NDArray[np.float64]) -> nib.Nifti1Image:
    """Wrap a cached array in a fresh NIfTI image (new header, shared read-only data)."""
    img = nib.Nifti1Image(data, affine.copy())
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_qform(affine, code=4)  # 4 = MNI152
    img.header.set_sform(affine, code=4)
    return img


@functools.lru_cache(maxsize=4)
def _template_arrays(res: int) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """Load the T1 template once per process: (data float32, affine)."""
    from nilearn.datasets import load_mni152_template

    img = load_mni152_template(resolution=res)
    data = np.asarray(img.get_fdata(dtype=np.float32), dtype=np.float32)
    affine = np.asarray(img.affine, dtype=np.float64)
    logger.debug("Loaded %s template at %d mm, shape %s", TEMPLATE_NAME, res, data.shape)
    return _read_only(data), _read_only(affine)


@functools.lru_cache(maxsize=4)
def _mask_array(kind: str, res: int) -> NDArray[np.uint8]:
    """Load one nilearn mask (brain, gm or wm) once per process as a 0/1 uint8 array.

    NIfTI has no boolean type, so images carry uint8; callers test ``> 0``.
    """
    from nilearn import datasets

    loader = {
        "brain": datasets.load_mni152_brain_mask,
        "gm": datasets.load_mni152_gm_mask,
        "wm": datasets.load_mni152_wm_mask,
    }[kind]
    img = loader(resolution=res)
    return _read_only((np.asarray(img.dataobj) > 0).astype(np.uint8))


@functools.lru_cache(maxsize=4)
def _probability_array(tissue: str, res: int) -> NDArray[np.float32]:
    """Load one nilearn tissue-probability template once per process (float32, 0-1)."""
    from nilearn import datasets

    loader = {
        "gm": datasets.load_mni152_gm_template,
        "wm": datasets.load_mni152_wm_template,
    }[tissue]
    img = loader(resolution=res)
    return _read_only(np.asarray(img.get_fdata(dtype=np.float32), dtype=np.float32))


def _check_tissue(tissue: str) -> str:
    """Validate a tissue name ("gm" or "wm")."""
    if tissue not in ("gm", "wm"):
        msg = f"tissue must be one of ['gm', 'wm']; got {tissue!r}."
        raise InputError(msg)
    return tissue


def template_affine(resolution_mm: int = 2) -> NDArray[np.float64]:
    """Voxel-to-MNI affine of the template grid.

    Parameters
    ----------
    resolution_mm : {1, 2}
        Isotropic voxel size, mm.

    Returns
    -------
    (4, 4) ndarray
        A fresh copy of the affine (voxel indices -> MNI mm).
    """
    return _template_arrays(_check_resolution(resolution_mm))[1].copy()


def load_template(resolution_mm: int = 2) -> nib.Nifti1Image:
    """Load the MNI152 2009a symmetric T1 template (offline, from nilearn).

    Parameters
    ----------
    resolution_mm : {1, 2}
        Isotropic voxel size, mm. At 2 mm the grid is (99, 117, 95).

    Returns
    -------
    nibabel.Nifti1Image
        3-D float32 image, intensities 0-1 (arbitrary T1 units), MNI mm affine.
        Its data array is a read-only cached copy.
    """
    data, affine = _template_arrays(_check_resolution(resolution_mm))
    return _image(data, affine)


def load_brain_mask(resolution_mm: int = 2) -> nib.Nifti1Image:
    """Load nilearn's MNI152 2009a brain mask on the template grid.

    Parameters
    ----------
    resolution_mm : {1, 2}
        Isotropic voxel size, mm.

    Returns
    -------
    nibabel.Nifti1Image
        3-D uint8 image, 1 inside the brain (nilearn: probability > 0.2).
    """
    res = _check_resolution(resolution_mm)
    return _image(_mask_array("brain", res), _template_arrays(res)[1])


def load_tissue_mask(tissue: Tissue, resolution_mm: int = 2) -> nib.Nifti1Image:
    """Load nilearn's binary grey- or white-matter mask on the template grid.

    Parameters
    ----------
    tissue : {"gm", "wm"}
        Which tissue.
    resolution_mm : {1, 2}
        Isotropic voxel size, mm.

    Returns
    -------
    nibabel.Nifti1Image
        3-D uint8 image, 1 inside the tissue (nilearn: probability > 0.2, then a closing).
    """
    res = _check_resolution(resolution_mm)
    return _image(_mask_array(_check_tissue(tissue), res), _template_arrays(res)[1])


def load_tissue_probability(tissue: Tissue, resolution_mm: int = 2) -> nib.Nifti1Image:
    """Load nilearn's grey- or white-matter probability template on the template grid.

    Parameters
    ----------
    tissue : {"gm", "wm"}
        Which tissue.
    resolution_mm : {1, 2}
        Isotropic voxel size, mm.

    Returns
    -------
    nibabel.Nifti1Image
        3-D float32 image of tissue probabilities in [0, 1].
    """
    res = _check_resolution(resolution_mm)
    return _image(_probability_array(_check_tissue(tissue), res), _template_arrays(res)[1])
