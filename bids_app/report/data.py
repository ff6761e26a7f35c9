"""Plain input containers for the participant and group reports.

The pipelines fill these frozen dataclasses with arrays and tables they already hold; the report
package never reads files or imports other ``bids_app`` subpackages. All images share one MNI grid
per report (``template``/``affine``); frame times are in seconds, as written to the derivatives.

The dataclasses use ``eq=False``: they hold arrays and DataFrames, whose element-wise ``==`` would
make a generated ``__eq__`` ambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from bids_app.qc import QcVerdict

__all__ = [
    "ClusterMapReport",
    "GroupReport",
    "ParticipantReport",
    "Provenance",
    "RegistrationCheck",
    "SessionReport",
]


@dataclass(frozen=True, eq=False)
class Provenance:
    """What ran, how and when.

    Parameters
    ----------
    version : str
        ``bids_app.__version__`` of the run.
    command_line : str
        The command line as typed (already joined into one string).
    config : dict
        The run configuration (JSON-serialisable values preferred; others are shown via ``str``).
    software : dict of str to str
        Package name -> version (numpy, scipy, antspyx, ...).
    started, finished : str
        ISO-8601 timestamps of the run. The report shows them verbatim and adds no clock time of
        its own, so the same inputs give the same HTML.
    stage_timings : DataFrame or None, optional
        One row per processing stage, in run order: ``stage`` (name), ``seconds`` (wall time,
        s), ``from_checkpoint`` (bool: loaded from a previous run's checkpoint rather than
        computed) and ``peak_rss_mb`` (peak resident memory of the process after the stage,
        MiB). Shown as a small table when given (participant reports).
    """

    version: str
    command_line: str
    config: dict[str, Any]
    software: dict[str, str]
    started: str
    finished: str
    stage_timings: pd.DataFrame | None = None


@dataclass(frozen=True, eq=False)
class SessionReport:
    """Everything the participant report shows about one PET session.

    Parameters
    ----------
    session : str
        Session label without ``ses-`` (e.g. ``"sal"``).
    role : {"baseline", "challenge"}
        Role of the session in the paired design.
    pet_file : str
        Path of the raw PET file (relative to the BIDS root, preferably).
    n_frames : int
        Number of frames.
    frame_start_s, frame_end_s : (n_frames,) ndarray, s
        Frame bounds relative to TimeZero.
    confounds : DataFrame, (n_frames, k)
        ``trans_x, trans_y, trans_z`` (mm), ``rot_x, rot_y, rot_z`` (rad),
        ``framewise_displacement`` (mm) and optionally ``usable`` (bool; ``False`` marks a frame
        that borrowed the transform of a neighbouring frame).
    template : (X, Y, Z) ndarray
        MNI template on the analysis grid.
    affine : (4, 4) ndarray
        Voxel -> MNI mm affine of the analysis grid.
    mean_pet_mni : (X, Y, Z) ndarray
        Mean PET image resampled to the analysis grid.
    roi_masks : dict of str to (X, Y, Z) bool ndarray
        ROI masks on the analysis grid (at least ``cerebellum``, ``dorsal_striatum`` and
        ``ventral_striatum``).
    tacs : DataFrame, (n_frames, 2 + n_rois)
        ``frame_start``, ``frame_end`` (s) and one column per ROI (``tac_units``).
    fitted : dict of str to (n_frames,) ndarray
        Model TAC per target ROI (same units as ``tacs``).
    kinpar : DataFrame
        One row per ROI with ``roi, BPND, R1, k2a, k2prime``.
    k2prime : float
        Fixed k2' used for SRTM2, 1/min.
    k2prime_method : str
        How k2' was obtained (free text, shown verbatim).
    bp_map, r1_map : (X, Y, Z) ndarray
        Parametric maps, NaN outside the fit mask and where the fit failed.
    n_fit_voxels, n_failed, n_at_bound : int
        Voxels fitted, voxels whose fit failed (NaN), voxels whose best basis function sat at the
        edge of the k2a range.
    registration_quality : dict of str to float
        Registration metrics of this session's normalised mean PET (e.g. its correlation with
        the template, Dice with the template brain mask).
    warnings : list of str
        Session-level warnings.
    tac_units : str, optional
        Units of the TACs, default ``"kBq/mL"``.
    reference_roi : str, optional
        Name of the reference-region column in ``tacs``, default ``"cerebellum"``.
    t1w_mni : (X, Y, Z) ndarray or None, optional
        The participant's T1w in MNI space, when PET→T1w→MNI normalisation was used; the
        registration panel then also shows PET edges on it.
    injection : dict of str to (float, str), optional
        What was injected, from the PET sidecar: label (``"injected radioactivity"``,
        ``"injected mass"``, ``"molar activity"``) -> (value, unit). NaN values are shown as
        not recorded.
    """

    session: str
    role: Literal["baseline", "challenge"]
    pet_file: str
    n_frames: int
    frame_start_s: NDArray[np.float64]
    frame_end_s: NDArray[np.float64]
    confounds: pd.DataFrame
    template: NDArray[np.float64]
    affine: NDArray[np.float64]
    mean_pet_mni: NDArray[np.float64]
    roi_masks: dict[str, NDArray[np.bool_]]
    tacs: pd.DataFrame
    fitted: dict[str, NDArray[np.float64]]
    kinpar: pd.DataFrame
    k2prime: float
    k2prime_method: str
    bp_map: NDArray[np.float64]
    r1_map: NDArray[np.float64]
    n_fit_voxels: int
    n_failed: int
    n_at_bound: int
    registration_quality: dict[str, float]
    warnings: list[str]
    tac_units: str = "kBq/mL"
    reference_roi: str = "cerebellum"
    t1w_mni: NDArray[np.float64] | None = None
    injection: dict[str, tuple[float, str]] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class RegistrationCheck:
    """One registration shown before and after, with the edges of its target.

    Parameters
    ----------
    name : str
        What was registered (``"normalisation to MNI152NLin2009aSym"``).
    before : (X, Y, Z) ndarray
        The moving image on the target grid with the header geometry only (no registration).
    after : (X, Y, Z) ndarray
        The moving image on the target grid after the registration.
    target : (X, Y, Z) ndarray
        The target image whose edges are drawn on both (template, baseline mean PET).
    affine : (4, 4) ndarray
        Voxel -> mm affine of the target grid.
    target_label : str
        Name of the target in the legend (``"template edges"``).
    caption : str
        What to look for.
    """

    name: str
    before: NDArray[np.float64]
    after: NDArray[np.float64]
    target: NDArray[np.float64]
    affine: NDArray[np.float64]
    target_label: str
    caption: str


@dataclass(frozen=True, eq=False)
class ParticipantReport:
    """Inputs of ``sub-<label>.html``.

    Parameters
    ----------
    participant_id : str
        Label without ``sub-``.
    sessions : list of SessionReport
        One or two sessions (baseline first is nicest, but any order is accepted).
    normalisation : {"PET-only", "PET→T1w→MNI"}
        Spatial normalisation path used.
    template_name : str
        TemplateFlow-style template name (e.g. ``MNI152NLin2009aSym``).
    atlas_name : str
        Atlas used for the ROIs.
    outputs : list of str
        Paths written for this participant, relative to the output folder.
    warnings, errors : list of str
        Participant-level warnings and errors (errors: steps that failed).
    provenance : Provenance
        Version, command line, configuration, software versions, timestamps.
    qc : QcVerdict
        Quality-control checks and their verdict (none by default).
    registrations : list of RegistrationCheck
        Before/after views of the registrations (normalisation, challenge -> baseline).
    """

    participant_id: str
    sessions: list[SessionReport]
    normalisation: str
    template_name: str
    atlas_name: str
    outputs: list[str]
    warnings: list[str]
    errors: list[str]
    provenance: Provenance
    qc: QcVerdict = field(default_factory=lambda: QcVerdict(()))
    registrations: list[RegistrationCheck] = field(default_factory=list)


@dataclass(frozen=True, eq=False)
class ClusterMapReport:
    """One group statistic map with its clusters.

    Parameters
    ----------
    measure : str
        ``"BPND"`` or ``"R1"``.
    direction : str
        ``"decrease"`` or ``"increase"`` (challenge vs baseline).
    t_map : (X, Y, Z) ndarray
        Paired t map (challenge - baseline), NaN outside the analysis mask.
    cluster_labels : (X, Y, Z) int ndarray
        Cluster labels, 0 = no cluster. Only the clusters to show (e.g. the significant ones).
    threshold_t : float
        Cluster-forming threshold on ``|t|``.
    """

    measure: str
    direction: str
    t_map: NDArray[np.float64]
    cluster_labels: NDArray[np.integer]
    threshold_t: float


@dataclass(frozen=True, eq=False)
class GroupReport:
    """Inputs of ``group.html``.

    Parameters
    ----------
    participants : list of str
        Participants included (labels without ``sub-``).
    excluded : list of (str, str, str)
        ``(participant, status, reason)`` for every participant left out (label without
        ``sub-``; status e.g. ``"failed"``, ``"qc fail"``; the reason from its manifest or
        ``logs/summary.tsv`` row).
    parameters : dict
        Analysis parameters; recognised keys: ``smoothing_fwhm_mm``, ``cluster_forming_p``,
        ``cluster_forming_t``, ``df``, ``fwhm_mm`` (estimated smoothness, scalar or 3 values),
        ``resels``, ``n_permutations``, ``alpha``, ``search_volume_mm3``. Missing keys are
        reported as "not recorded".
    template : (X, Y, Z) ndarray
        Template on the group grid.
    affine : (4, 4) ndarray
        Voxel -> MNI mm affine of the group grid.
    cluster_maps : list of ClusterMapReport
        Statistic maps to show.
    clusters : DataFrame
        The ``clusters.tsv`` table.
    roi_values : DataFrame
        Long table ``participant_id, measure, roi, baseline, challenge``.
    roi_stats : DataFrame
        The ``roi_stats.tsv`` table.
    participant_measures : DataFrame
        The ``participant_measures.tsv`` table.
    behavior_effects : DataFrame or None
        The ``behavior_effects.tsv`` table (None without phenotype data).
    correlations : DataFrame or None
        The ``correlations.tsv`` table (``x, y, n, r, df, p``); the scatter plots read ``x`` and
        ``y`` from ``participant_measures``.
    aversion_explained_variance : float or None
        Fraction of variance explained by the aversion PC1 (0 to 1).
    warnings : list of str
        Group-level warnings.
    provenance : Provenance
        Version, command line, configuration, software versions, timestamps.
    qc_checks : DataFrame or None
        Long table of every participant's QC measurements: ``participant_id``, ``key``,
        ``label``, ``scope`` (``participant`` or ``ses-<label>``), ``value``, ``unit``,
        ``warn``, ``fail`` (NaN: no such threshold), ``bad`` (``above``/``below``) and
        ``status`` (``pass``/``warn``/``fail``, or ``info`` for values without thresholds).
    participant_status : DataFrame or None
        One row per participant found: ``participant_id``, ``included`` (bool), ``reason``
        (why excluded, else empty), ``qc`` (overall QC status) and ``report`` (relative link to
        the participant report, empty when there is none).
    cluster_peaks : DataFrame or None
        The ``cluster_peaks.tsv`` table.
    net_change_stats : DataFrame or None
        The ``net_change_stats.tsv`` table; definitions in
        ``parameters["net_change_estimators"]``.
    behavior_data : DataFrame or None
        Long phenotype table for time courses: ``participant_id``, ``role``
        (``baseline``/``challenge``), ``time_min``, ``measure``, ``value``, ``kind``
        (``subjective``/``physiology``).
    session_comparisons : DataFrame or None
        The ``session_comparisons.tsv`` table (k2' and injection, baseline vs challenge).
    session_notes : list of str
        Per-session values that were missing (shown as n/a), one line each.
    behavior_descriptives : DataFrame or None
        The ``behavior_descriptives.tsv`` table (mean, SD, n per measure, session and time).
    aversion_loadings : DataFrame or None
        The ``aversion_loadings.tsv`` table (PC1 loadings and explained variance).
    """

    participants: list[str]
    excluded: list[tuple[str, str, str]]
    parameters: dict[str, Any]
    template: NDArray[np.float64]
    affine: NDArray[np.float64]
    cluster_maps: list[ClusterMapReport]
    clusters: pd.DataFrame
    roi_values: pd.DataFrame
    roi_stats: pd.DataFrame
    participant_measures: pd.DataFrame
    behavior_effects: pd.DataFrame | None
    correlations: pd.DataFrame | None
    aversion_explained_variance: float | None
    warnings: list[str]
    provenance: Provenance
    qc_checks: pd.DataFrame | None = None
    participant_status: pd.DataFrame | None = None
    cluster_peaks: pd.DataFrame | None = None
    net_change_stats: pd.DataFrame | None = None
    behavior_data: pd.DataFrame | None = None
    session_comparisons: pd.DataFrame | None = None
    session_notes: list[str] = field(default_factory=list)
    behavior_descriptives: pd.DataFrame | None = None
    aversion_loadings: pd.DataFrame | None = None
