"""What an ideal pipeline measures on ROIs of the caller's choosing, for a generated study.

The truth folder already holds the expected values on the simulator's own ROIs
(``expected_roi_measures.tsv``). :func:`ideal_roi_measures` recomputes them for any set of
masks on the 2 mm MNI grid, e.g. the ROIs of the pipeline under test, with everything else
unchanged: the participant's true head (warp), the session pose, the native grid with its field
of view, one resampling back to MNI and the simulator's own SRTM/SRTM2
(:mod:`petsim.truth`). Comparing the pipeline with these values isolates what the pipeline's
processing costs; comparing them with the truth's own ROIs shows what the choice of atlas
changes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from petsim.anatomy import REFERENCE_ROI, build_anatomy
from petsim.design import SESSIONS
from petsim.errors import InputError
from petsim.imaging import HeadModel
from petsim.motion import SessionMotion
from petsim.protocol import ScanProtocol
from petsim.truth import expected_session, ideal_fractions, voxels_of
from petsim.truth_writer import MATRIX_COLUMNS
from petsim.warp import load_warp


def ideal_roi_measures(truth_dir: str | Path, masks: dict[str, NDArray[np.bool_]]) -> pd.DataFrame:
    """Expected (ideal-pipeline) BPND and R1 of every session on the given ROIs.

    Parameters
    ----------
    truth_dir : path-like
        ``<study>/truth`` of a petsim study.
    masks : dict of str to (99, 117, 95) bool ndarray
        ROIs on the 2 mm MNI grid (:class:`petsim.anatomy.Anatomy` grid); must include the
        reference region under the key ``"cerebellum"`` and a ``"striatum"`` (for ``k2'``).

    Returns
    -------
    pandas.DataFrame
        Columns ``participant_id, session_id, roi, BPND, R1, k2prime, coverage`` (one row per
        session and ROI other than the reference; ROI-TAC SRTM2 fits).

    Raises
    ------
    InputError
        Missing truth files, masks of the wrong shape, or no reference/striatum mask.
    """
    folder = Path(truth_dir)
    for key in (REFERENCE_ROI, "striatum"):
        if key not in masks:
            msg = f"masks must include {key!r}; got {sorted(masks)}"
            raise InputError(msg)
    try:
        meta = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
        tacs = pd.read_csv(folder / "class_tacs.tsv", sep="\t")
        poses = pd.read_csv(folder / "session_poses.tsv", sep="\t")
        motion_table = pd.read_csv(folder / "motion_truth.tsv", sep="\t")
    except FileNotFoundError as exc:
        msg = f"{exc.filename} not found; pass the truth folder of a petsim study"
        raise InputError(msg) from None
    protocol = ScanProtocol.from_dict(meta["protocol"])
    anatomy = build_anatomy()
    rois = {name: np.asarray(m, dtype=bool) for name, m in masks.items()}
    voxels = voxels_of(rois, anatomy.grid)
    scored = [name for name in rois if name != REFERENCE_ROI]
    rows = []
    for participant in sorted(tacs["participant_id"].unique()):
        warp = load_warp(folder, participant)
        head = HeadModel.build(anatomy, warp, protocol.fwhm_mm)
        head_points = warp.to_head(voxels.points_mm)
        for session in (f"ses-{s}" for s in SESSIONS):
            sel = (tacs.participant_id == participant) & (tacs.session_id == session)
            class_tacs = tacs.loc[sel, list(anatomy.classes)].to_numpy(dtype=np.float64).T
            image = f"pet_{session}"
            pose_row = poses[(poses.participant_id == participant) & (poses.image == image)]
            frames = motion_table[
                (motion_table.participant_id == participant) & (motion_table.session_id == session)
            ].sort_values("frame")
            motion = SessionMotion(
                pose=pose_row[list(MATRIX_COLUMNS)].to_numpy(dtype=np.float64).reshape(4, 4),
                pose_params=np.zeros(6),
                frame_motion=frames[list(MATRIX_COLUMNS)].to_numpy(np.float64).reshape(-1, 4, 4),
                head_centre_mm=head.head_centre_mm,
            )
            ideal = ideal_fractions(voxels, head_points, head, motion, protocol)
            expected = expected_session(
                voxels, ideal, class_tacs, protocol.frames(), rois=tuple(scored)
            )
            rows += [
                [
                    participant,
                    session,
                    roi,
                    expected.roi_bp[roi],
                    expected.roi_r1[roi],
                    expected.k2prime,
                    expected.coverage[roi],
                ]
                for roi in scored
            ]
    return pd.DataFrame(
        rows,
        columns=["participant_id", "session_id", "roi", "BPND", "R1", "k2prime", "coverage"],
    )
