"""Small pieces both levels use: the analysis grid, the atlas choice, provenance."""

from __future__ import annotations

from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version

import nibabel as nib

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
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
