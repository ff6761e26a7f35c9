"""Write participant-level derivatives directly (no registration, no fitting).

Used to test the group level on studies with a known voxelwise effect in seconds. The files and
the manifest have the same names and layout as the participant pipeline writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import ndimage

from bids_app.bidsio.derivatives import derivative_name, participant_dir, write_tsv
from bids_app.roi.atlas import RoiAtlas

SPACE = {"space": "MNI152NLin2009aSym", "res": "2"}


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
        source = {"sub": subject, "ses": session, "trc": "raclopride"}
        folder = participant_dir(output_dir, subject, session)
        entry = {"session": session}
        rows = []
        for measure in ("BPND", "R1"):
            volume = np.where(atlas.analysis_mask, maps[(measure, role)], np.nan)
            name = derivative_name(
                source, "mimap", ".nii.gz", model="SRTM2", meas=measure, **SPACE
            )
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            nib.save(nib.Nifti1Image(volume.astype(np.float32), atlas.affine), path)
            entry[measure] = path.relative_to(output_dir).as_posix()
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
        kinpar = folder / derivative_name(source, "kinpar", ".tsv", model="SRTM2")
        write_tsv(kinpar, pd.DataFrame(rows))
        entry["kinpar"] = kinpar.relative_to(output_dir).as_posix()
        index[role] = entry
        for rel in (entry["BPND"], entry["R1"], entry["kinpar"]):
            files[rel] = (output_dir / rel).stat().st_size
    manifest = output_dir / "logs" / f"sub-{subject}_outputs.json"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(
        json.dumps({"participant_id": f"sub-{subject}", "sessions": index, "files": files})
    )
