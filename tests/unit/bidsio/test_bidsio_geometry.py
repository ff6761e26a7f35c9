"""Header geometry checks that nibabel would otherwise repair silently."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from bids_app.bidsio.metadata import read_image_header


def _write(path: Path, pixdim: tuple[float, float, float]) -> Path:
    img = nib.Nifti1Image(np.ones((4, 5, 6, 4), np.float32), np.diag([2.0, 2.0, 2.0, 1.0]))
    img.header["pixdim"][1:4] = pixdim
    nib.save(img, path)
    return path


def test_zero_pixdim_is_reported(tmp_path: Path) -> None:
    image = _write(tmp_path / "sub-01_ses-a_pet.nii.gz", (2.0, 0.0, 2.0))
    _, problems = read_image_header(image, "sub-01 ses-a")
    assert len(problems) == 1
    assert "voxel size (pixdim) 2 x 0 x 2 mm" in problems[0]
    assert str(image) in problems[0]


def test_valid_pixdim_passes(tmp_path: Path) -> None:
    image = _write(tmp_path / "sub-01_ses-a_pet.nii.gz", (2.0, 2.0, 2.0))
    info, problems = read_image_header(image, "sub-01 ses-a")
    assert problems == []
    assert info is not None
    assert info.voxel_size_mm == (2.0, 2.0, 2.0)
