"""Small pieces both levels use: the atlas choice, provenance, moving staged files into place."""

from __future__ import annotations

import errno
import os
import shutil
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

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


def publish(staging: Path, destination: Path, relative_paths: list[Path]) -> None:
    """Move staged files into ``destination`` one atomic rename at a time.

    Files are complete when they appear; across file systems a copy is written beside the
    target and renamed. The staging folder is removed afterwards.
    """
    for rel in relative_paths:
        src = staging / rel
        dst = destination / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(src, dst)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            _copy_into_place(src, dst)
    shutil.rmtree(staging, ignore_errors=True)


def _copy_into_place(src: Path, dst: Path) -> None:
    """Copy across file systems beside the target, then rename; never leave the copy behind."""
    tmp = dst.with_name(f".{dst.name}.partial")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
