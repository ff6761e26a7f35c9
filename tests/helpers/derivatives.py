"""Write participant-level derivatives directly (no registration, no fitting).

Used to test the group level on studies with a known voxelwise effect in seconds. The files and
the manifest have the same names and layout as the participant pipeline writes.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import ndimage

from bids_app import __version__
from bids_app.outputs.io import write_tsv
from bids_app.outputs.manifest import Manifest, write_manifest
from bids_app.outputs.names import Space, session_outputs
from bids_app.roi.atlas import RoiAtlas

SPACE = Space("MNI152NLin2009aSym", 2)


def smooth_noise(
    rng: np.random.Generator, shape: tuple[int, ...], sd: float, fwhm_vox: float = 3.0
) -> NDArray[np.float64]:
    """Gaussian noise smoothed to ``fwhm_vox`` and rescaled to standard deviation ``sd``."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), fwhm_vox / 2.3548)
    return noise * (sd / noise.std())


def write_participant(
    output_dir: Path,
    subject: str,
    atlas: RoiAtlas,
    maps: dict[tuple[str, str], NDArray[np.float64]],
    sessions: dict[str, str],
) -> None:
    """Write BPND/R1 maps, kinpar tables and the manifest of one participant.

    Parameters
    ----------
    maps : dict
        ``(measure, role)`` -> volume on the atlas grid (NaN outside the analysis mask is
        applied here).
    sessions : dict
        Role -> session label.
    """
    index: dict[str, dict[str, str]] = {}
    files: dict[str, int] = {}
    for role, session in sessions.items():
        names = session_outputs(subject, session, {"trc": "raclopride"}, SPACE, "AAL3")
        entry = {"session": session}
        rows = []
        for measure in ("BPND", "R1"):
            volume = np.where(atlas.analysis_mask, maps[(measure, role)], np.nan)
            path = output_dir / names[measure]
            path.parent.mkdir(parents=True, exist_ok=True)
            nib.save(nib.Nifti1Image(volume.astype(np.float32), atlas.affine), path)
            entry[measure] = names[measure].as_posix()
        for roi, mask in atlas.masks.items():
            if roi == "cerebellum":
                continue
            rows.append(
                {
                    "roi": roi,
                    "BPND": float(np.nanmean(maps[("BPND", role)][mask])),
                    "R1": float(np.nanmean(maps[("R1", role)][mask])),
                    "k2a": 0.05,
                    "k2prime": 0.12,
                }
            )
        write_tsv(output_dir / names["kinpar"], pd.DataFrame(rows))
        entry["kinpar"] = names["kinpar"].as_posix()
        index[role] = entry
        for rel in (entry["BPND"], entry["R1"], entry["kinpar"]):
            files[rel] = (output_dir / rel).stat().st_size
    write_manifest(
        output_dir,
        Manifest(
            subject=subject,
            version=__version__,
            run_key="written-by-test-helper",
            inputs={},
            options={},
            sessions=index,
            files=files,
        ),
    )
