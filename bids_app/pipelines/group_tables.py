"""Group-level tables of the voxelwise and net-change statistics, and the explicit mask.

Builds, from the :mod:`bids_app.stats` results, what the group level writes about them:
``clusters.tsv`` (every cluster, flagged ``significant``, with per-condition cluster means and
atlas-label shares) and ``cluster_peaks.tsv`` (SPM's table of up to 3 local maxima per
cluster), both with BIDS sidecars describing every column; the cluster index volumes of the
cluster-mask images; the net striatal changes of ``participant_measures.tsv`` with their
one-sample tests (``net_change_stats.tsv``); and the user's ``--explicit-mask``. File
writing stays with :mod:`bids_app.pipelines.group` except for the two cluster tables.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from bids_app.errors import InputError
from bids_app.outputs.io import write_json, write_tsv
from bids_app.outputs.names import GROUP_FILES, sidecar_name
from bids_app.roi.atlas import RoiAtlas
from bids_app.roi.template import TEMPLATE_NAME
from bids_app.stats.clusters import (
    SPM_MAXIMA_PER_CLUSTER,
    SPM_MIN_MAXIMA_DISTANCE_MM,
    label_fractions,
)
from bids_app.stats.inference import Direction, PairedInference
from bids_app.stats.roi import (
    NetChange,
    NetMethod,
    net_da_release,
    net_rcbf_change,
    one_sample_test,
    roi_participant_measures,
)

LOGGER = logging.getLogger(__name__)

ClusterMasks = Literal["significant", "all"]

#: RFT cluster-level p(FWE) below which a cluster is significant.
ALPHA = 0.05
#: Labels with a smaller share of a cluster are summed into "other labels" in ``label_shares``.
MIN_LABEL_SHARE = 0.01
SEARCH_VOLUME_DEFINITION = (
    "voxels with a finite value in every participant's baseline and challenge maps "
    "(SPM's implicit mask)"
)

#: ``clusters.tsv`` (BIDS sidecar ``clusters.json``): the CONTRACT's columns, then extras.
CLUSTER_COLUMN_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "measure": {"Description": "Parametric map tested (BPND or R1)."},
    "direction": {
        "Description": "decrease: challenge < baseline (t < -u); increase: challenge > baseline."
    },
    "cluster_id": {
        "Description": "1-based within measure and direction, by decreasing size; the value "
        "of the cluster in the cluster-mask images."
    },
    "size_voxels": {"Description": "Cluster extent.", "Units": "voxels"},
    "size_mm3": {"Description": "Cluster extent.", "Units": "mm^3"},
    "peak_x": {"Description": "Peak (largest |t|) x coordinate, MNI.", "Units": "mm"},
    "peak_y": {"Description": "Peak y coordinate, MNI.", "Units": "mm"},
    "peak_z": {"Description": "Peak z coordinate, MNI.", "Units": "mm"},
    "peak_t": {"Description": "t at the peak (negative for decreases)."},
    "p_fwe_rft": {
        "Description": "SPM12 cluster-level p(FWE-corr), random field theory, over the search "
        "volume (group_parameters.json: search_volume)."
    },
    "p_fwe_perm": {"Description": "Sign-flip permutation cluster-level FWE p (n/a when not run)."},
    "label": {"Description": "Atlas label at the peak ('near <label>' within 4 mm)."},
    "p_unc_rft": {"Description": "SPM12 cluster-level p(unc), random field theory."},
    "peak_p_fwe_rft": {
        "Description": "SPM12 peak-level p(FWE-corr) of the peak (RFT, Bonferroni-capped)."
    },
    "significant": {"Description": f"True when p_fwe_rft < {ALPHA}."},
    "baseline_mean": {
        "Description": "Mean across participants of each participant's average baseline value "
        "over the cluster's voxels, on the smoothed maps used for the voxelwise test "
        "(group_parameters.json: smoothing_fwhm_mm), in the measure's units."
    },
    "baseline_sd": {
        "Description": "SD across participants (ddof 1) of the same cluster averages, baseline."
    },
    "challenge_mean": {
        "Description": "As baseline_mean, for the challenge session (smoothed maps)."
    },
    "challenge_sd": {"Description": "As baseline_sd, for the challenge session."},
    "mean_change_pct": {
        "Description": "100 * (challenge_mean - baseline_mean) / baseline_mean.",
        "Units": "%",
    },
    "label_shares": {
        "Description": "Atlas labels of the cluster's voxels with the fraction of the cluster "
        f"in each (0-1), largest first; labels under {MIN_LABEL_SHARE} are summed as 'other "
        "labels'."
    },
}
CLUSTER_COLUMNS = tuple(CLUSTER_COLUMN_DESCRIPTIONS)

#: ``cluster_peaks.tsv`` (sidecar ``cluster_peaks.json``): SPM's table of local maxima.
PEAK_COLUMN_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "measure": {"Description": "Parametric map tested (BPND or R1)."},
    "direction": {"Description": "decrease or increase, as in clusters.tsv."},
    "cluster_id": {"Description": "The cluster (clusters.tsv) the maximum belongs to."},
    "rank": {
        "Description": "1 = the cluster's peak; 2, 3 = the next local maxima by height, each "
        f"more than {SPM_MIN_MAXIMA_DISTANCE_MM:g} mm from the ones before (SPM's table: at "
        f"most {SPM_MAXIMA_PER_CLUSTER} per cluster)."
    },
    "x_mm": {"Description": "x coordinate, MNI.", "Units": "mm"},
    "y_mm": {"Description": "y coordinate, MNI.", "Units": "mm"},
    "z_mm": {"Description": "z coordinate, MNI.", "Units": "mm"},
    "t": {"Description": "t value (negative for decreases)."},
    "z_equivalent": {"Description": "Standard normal value with the same uncorrected p."},
    "p_unc": {"Description": "One-sided uncorrected p of t."},
    "p_fwe_rft_peak": {
        "Description": "SPM12 peak-level p(FWE-corr): random field theory, capped by "
        "Bonferroni over the search voxels."
    },
    "p_fwe_perm_peak": {"Description": "Sign-flip permutation max-t FWE p (n/a when not run)."},
    "label": {"Description": "Atlas label at the maximum ('near <label>' within 4 mm)."},
    "cluster_significant": {"Description": f"True when the cluster's p_fwe_rft < {ALPHA}."},
}
PEAK_COLUMNS = tuple(PEAK_COLUMN_DESCRIPTIONS)

NET_COLUMNS = ["measure", "n", "mean", "sd", "t", "df", "p", "cohen_d", "estimator"]
#: ``participant_measures.tsv`` net striatal changes: (column, map, function, estimator).
NET_MEASURES: tuple[tuple[str, str, Callable[..., NetChange], NetMethod], ...] = (
    ("net_da_release", "BPND", net_da_release, "symmetric"),
    ("net_da_release_roi", "BPND", net_da_release, "roi_mean"),
    ("net_rcbf_change", "R1", net_rcbf_change, "symmetric"),
    ("net_rcbf_change_roi", "R1", net_rcbf_change, "roi_mean"),
)


def cluster_mask_volume(
    inference: PairedInference, direction: Direction, which: ClusterMasks
) -> NDArray[np.int32]:
    """Cluster index volume of one direction for the cluster-mask image.

    Parameters
    ----------
    inference : PairedInference
        The measure's voxelwise inference.
    direction : {"decrease", "increase"}
    which : {"significant", "all"}
        Keep the clusters with RFT cluster-level p(FWE) < :data:`ALPHA` (``--cluster-masks``
        default) or every cluster above the cluster-forming threshold.

    Returns
    -------
    (X, Y, Z) ndarray of int32
        ``cluster_id`` inside the kept clusters, 0 elsewhere.
    """
    res = inference.direction(direction)
    if which == "all":
        return res.labels
    return res.label_volume([c.cluster_id for c in res.significant(ALPHA)])


def label_shares(labels: NDArray[np.int32], atlas: RoiAtlas) -> list[str]:
    """Per cluster, its atlas labels with their share of its voxels (``label_shares`` column).

    Parameters
    ----------
    labels : (X, Y, Z) ndarray of int32
        Cluster index volume (0 = none, ``1..n_clusters``).
    atlas : RoiAtlas
        Label image and names on the same grid.

    Returns
    -------
    list of str
        Item ``i`` describes cluster ``i + 1``, e.g. ``"Putamen_L 0.62; Caudate_L 0.30;
        unlabelled 0.08"``: fractions of the cluster's voxels, largest first; labels under
        :data:`MIN_LABEL_SHARE` are summed as ``other labels``.
    """
    texts = []
    for shares in label_fractions(labels, atlas.labels):
        named = [
            (atlas.label_names.get(value, str(value)) if value else "unlabelled", share)
            for value, share in shares
        ]
        shown = [f"{name} {share:.2f}" for name, share in named if share >= MIN_LABEL_SHARE]
        rest = sum(share for _, share in named if share < MIN_LABEL_SHARE)
        if rest > 0:
            shown.append(f"other labels {rest:.2f}")
        texts.append("; ".join(shown))
    return texts


def _cluster_rows(measure: str, inf: PairedInference, atlas: RoiAtlas) -> pd.DataFrame:
    """One ``clusters.tsv`` row per cluster of both directions (all clusters, flagged)."""
    voxel_mm3 = atlas.voxel_volume_ml * 1000.0
    rows = []
    for direction in ("decrease", "increase"):
        res = inf.direction(direction)
        shares = label_shares(res.labels, atlas)
        for c in res.clusters:
            xyz = nib.affines.apply_affine(atlas.affine, np.asarray(c.peak_index, dtype=float))
            change_pct = (
                100.0 * (c.challenge_mean - c.baseline_mean) / c.baseline_mean
                if np.isfinite(c.baseline_mean) and c.baseline_mean != 0.0
                else float("nan")
            )
            rows.append(
                {
                    "measure": measure,
                    "direction": direction,
                    "cluster_id": c.cluster_id,
                    "size_voxels": c.size_voxels,
                    "size_mm3": round(c.size_voxels * voxel_mm3, 3),
                    "peak_x": float(xyz[0]),
                    "peak_y": float(xyz[1]),
                    "peak_z": float(xyz[2]),
                    "peak_t": c.peak_t,
                    "p_fwe_rft": c.p_fwe_rft,
                    "p_fwe_perm": c.p_fwe_perm,
                    "label": atlas.label_at(xyz),
                    "p_unc_rft": c.p_unc_rft,
                    "peak_p_fwe_rft": c.peak_p_fwe_rft,
                    "significant": bool(c.p_fwe_rft < ALPHA),
                    "baseline_mean": c.baseline_mean,
                    "baseline_sd": c.baseline_sd,
                    "challenge_mean": c.challenge_mean,
                    "challenge_sd": c.challenge_sd,
                    "mean_change_pct": change_pct,
                    "label_shares": shares[c.cluster_id - 1],
                }
            )
    return pd.DataFrame(rows, columns=list(CLUSTER_COLUMNS))


def _peak_rows(measure: str, inf: PairedInference, atlas: RoiAtlas) -> pd.DataFrame:
    """One ``cluster_peaks.tsv`` row per listed local maximum (SPM's table)."""
    rows = []
    for direction in ("decrease", "increase"):
        for c in inf.direction(direction).clusters:
            for m in c.maxima:
                xyz = nib.affines.apply_affine(atlas.affine, np.asarray(m.index, dtype=float))
                rows.append(
                    {
                        "measure": measure,
                        "direction": direction,
                        "cluster_id": c.cluster_id,
                        "rank": m.rank,
                        "x_mm": float(xyz[0]),
                        "y_mm": float(xyz[1]),
                        "z_mm": float(xyz[2]),
                        "t": m.t,
                        "z_equivalent": m.z_equivalent,
                        "p_unc": m.p_unc,
                        "p_fwe_rft_peak": m.p_fwe_rft,
                        "p_fwe_perm_peak": m.p_fwe_perm,
                        "label": atlas.label_at(xyz),
                        "cluster_significant": bool(c.p_fwe_rft < ALPHA),
                    }
                )
    return pd.DataFrame(rows, columns=list(PEAK_COLUMNS))


def cluster_tables(
    inferences: Mapping[str, PairedInference], atlas: RoiAtlas
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``clusters.tsv`` and ``cluster_peaks.tsv`` of every measure (``{measure: inference}``).

    Returns
    -------
    clusters, peaks : pandas.DataFrame
        Columns :data:`CLUSTER_COLUMNS` and :data:`PEAK_COLUMNS`.
    """
    clusters = pd.concat(
        [_cluster_rows(m, inf, atlas) for m, inf in inferences.items()], ignore_index=True
    )
    peaks = pd.concat(
        [_peak_rows(m, inf, atlas) for m, inf in inferences.items()], ignore_index=True
    )
    return clusters, peaks


def write_cluster_tables(staging: Path, clusters: pd.DataFrame, peaks: pd.DataFrame) -> list[Path]:
    """Write both cluster tables with BIDS sidecars that describe every column.

    Returns
    -------
    list of Path
        The four file names written into ``staging`` (relative, for publishing).
    """
    written = []
    for kind, table, columns in (
        ("clusters", clusters, CLUSTER_COLUMN_DESCRIPTIONS),
        ("cluster_peaks", peaks, PEAK_COLUMN_DESCRIPTIONS),
    ):
        name = GROUP_FILES[kind]
        write_tsv(staging / name, table)
        write_json(staging / sidecar_name(name), columns)
        written += [Path(name), Path(sidecar_name(name))]
    return written


def read_explicit_mask(path: Path | None, atlas: RoiAtlas) -> NDArray[np.bool_] | None:
    """Read the user's explicit mask (``--explicit-mask``) as SPM reads one: voxels > 0.

    Parameters
    ----------
    path : Path or None
        NIfTI image on the group grid (the participant maps' grid); None = no explicit mask.
    atlas : RoiAtlas
        Gives the group grid (shape and affine).

    Returns
    -------
    (X, Y, Z) ndarray of bool or None
        Finite voxels > 0; None without a path.

    Raises
    ------
    InputError
        When the file cannot be read, is on another grid, or has no voxel > 0.
    """
    if path is None:
        return None
    try:
        img = nib.load(path)
    except (OSError, ValueError, nib.filebasedimages.ImageFileError) as exc:
        msg = f"--explicit-mask {path}: cannot read it as a NIfTI image ({exc})."
        raise InputError(msg) from exc
    if not isinstance(img, nib.spatialimages.SpatialImage):
        msg = f"--explicit-mask {path}: not a volume image; pass a 3-D NIfTI mask."
        raise InputError(msg)
    data = np.asarray(img.dataobj, dtype=np.float64)
    data = data.reshape(data.shape[:3]) if data.ndim == 4 and data.shape[3] == 1 else data
    if data.shape != atlas.shape or not np.allclose(img.affine, atlas.affine, atol=1e-3):
        msg = (
            f"--explicit-mask {path}: its grid (shape {data.shape}) is not the group grid "
            f"({TEMPLATE_NAME}, 2 mm, shape {atlas.shape}, the participant maps' grid). "
            "Resample it onto one of the participant maps (nearest neighbour) and pass that."
        )
        raise InputError(msg)
    with np.errstate(invalid="ignore"):
        mask = np.isfinite(data) & (data > 0)
    if not mask.any():
        msg = f"--explicit-mask {path}: no voxel is > 0; an explicit mask keeps voxels > 0."
        raise InputError(msg)
    LOGGER.info(
        "Explicit mask %s: %d voxels (%.1f mL)",
        path,
        int(mask.sum()),
        mask.sum() * atlas.voxel_volume_ml,
    )
    return mask


def net_change_tables(
    subjects: Sequence[str],
    maps: Mapping[str, tuple[NDArray[np.floating], NDArray[np.floating]]],
    striatum: NDArray[np.bool_],
    rois: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-participant net striatal changes (two estimators) and their one-sample tests.

    ``net_da_release``/``net_rcbf_change`` use the symmetric voxelwise estimator and the
    ``_roi`` columns the ratio of striatal means (:mod:`bids_app.stats.roi`), both on the
    unsmoothed participant maps.

    Parameters
    ----------
    subjects : sequence of str
        Participant labels without ``sub-``, in the maps' order.
    maps : mapping
        ``"BPND"``/``"R1"`` -> ``(baseline, challenge)`` stacks of shape (n, X, Y, Z).
    striatum : (X, Y, Z) ndarray of bool
        The striatum on the maps' grid.
    rois : pandas.DataFrame
        Tidy ROI table (:func:`bids_app.outputs.manifest.roi_table`) for the regional columns.

    Returns
    -------
    table : pandas.DataFrame
        Index ``participant_id``: the :data:`NET_MEASURES` columns (fractions) and the ROI
        relative changes of :func:`~bids_app.stats.roi.roi_participant_measures`.
    stats : pandas.DataFrame
        ``net_change_stats.tsv``: columns :data:`NET_COLUMNS`, one row per net column.
    """
    index = pd.Index([f"sub-{s}" for s in subjects], name="participant_id")
    table = pd.DataFrame(index=index)
    for column, measure, net, method in NET_MEASURES:
        baseline, challenge = maps[measure]
        table[column] = [
            net(baseline[i], challenge[i], striatum, method=method).value
            for i in range(len(subjects))
        ]
    table = table.join(roi_participant_measures(rois))
    rows = []
    for column, measure, _, method in NET_MEASURES:
        res = one_sample_test(table[column].to_numpy(dtype=float))
        rows.append(
            {
                "measure": column,
                "n": res.n,
                "mean": res.mean,
                "sd": res.sd,
                "t": res.t,
                "df": res.df,
                "p": res.p,
                "cohen_d": res.cohen_d,
                "estimator": method,
            }
        )
        LOGGER.info(
            "%s (%s, %s): mean %.3f, t(%s)=%.2f, p=%.3g",
            column,
            measure,
            method,
            res.mean,
            res.df,
            res.t,
            res.p,
        )
    return table, pd.DataFrame(rows, columns=NET_COLUMNS)
