"""Reading NIfTI files as the spatial images they are.

``nibabel.load`` is typed to return the base class of every nibabel image (no voxel grid, no
data), whereas a NIfTI file always loads as a spatial image (shape, affine, header zooms, data
proxy). :func:`load_spatial_image` is ``nibabel.load`` with that return type checked, so the
callers in :mod:`bids_app.bidsio` and the pipelines use the image's grid without a cast.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib


def load_spatial_image(
    path: str | Path, *, keep_file_open: bool = False
) -> nib.spatialimages.SpatialImage:
    """Load ``path`` with :func:`nibabel.load` and check that it is a spatial image.

    Parameters
    ----------
    path : str or Path
        An image file, e.g. ``*_pet.nii.gz``.
    keep_file_open : bool, optional
        Passed to :func:`nibabel.load` (keep the file handle open while reading frame by frame).

    Returns
    -------
    nibabel.spatialimages.SpatialImage
        The image (for a NIfTI file a ``Nifti1Image`` or ``Nifti2Image``); data stay on disk.

    Raises
    ------
    ValueError
        When the file loads as an image without a voxel grid.
    """
    img = nib.load(path, keep_file_open=keep_file_open)
    if not isinstance(img, nib.spatialimages.SpatialImage):
        msg = f"{path} is not a spatial image ({type(img).__name__})"
        raise ValueError(msg)
    return img
