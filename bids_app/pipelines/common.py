"""Small pieces both levels use: the analysis grid, the atlas choice, provenance."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

import nibabel as nib
import numpy as np
from numpy.typing import NDArray

from bids_app import __version__
from bids_app.config import Config
from bids_app.report.data import Provenance
from bids_app.roi.atlas import RoiAtlas, build_roi_atlas, load_custom_atlas

RESOLUTION_MM = 2
SOFTWARE = ("numpy", "scipy", "nibabel", "nilearn", "antspyx", "pandas", "pybids")


def load_atlas(config: Config, template_img: nib.Nifti1Image) -> RoiAtlas:
    """The user's label image when given (``--atlas-labels``), else the built-in atlas."""
    if config.atlas_labels is not None and config.atlas_tsv is not None:
        return load_custom_atlas(config.atlas_labels, config.atlas_tsv, template_img)
    return build_roi_atlas(RESOLUTION_MM)


def software_versions() -> dict[str, str]:
    """Versions of bids_app and the libraries that shape its numbers."""
    versions = {"bids_app": __version__}
    for name in SOFTWARE:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def provenance(config: Config, started: str) -> Provenance:
    """What ran, how and when, for the reports (finished now)."""
    return Provenance(
        version=__version__,
        command_line=" ".join(config.command_line),
        config=config.to_dict(),
        software=software_versions(),
        started=started,
        finished=now_iso(),
    )


def now_iso() -> str:
    """The current UTC time, ISO-8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def template_image(
    volume: NDArray[np.generic], affine: NDArray[np.float64], dtype: type = np.float32
) -> nib.Nifti1Image:
    """A NIfTI on the template grid: MNI qform/sform (code 4), units mm and s set."""
    img = nib.Nifti1Image(np.asarray(volume).astype(dtype), affine)
    img.header.set_data_dtype(dtype)
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_qform(affine, code=4)
    img.header.set_sform(affine, code=4)
    return img
