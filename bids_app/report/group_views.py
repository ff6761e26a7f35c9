"""The group report's views: participant QC, net DA release, statistic maps, tables, behaviour.

Conventions stated in the report: differences and t values are challenge - baseline (negative:
lower under the challenge); the DA release measures are relative decreases of BPND (positive:
release); blue = lower under the challenge, red = higher; grey = baseline, orange = challenge.
Only rows significant after correction are highlighted.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from bids_app.report import brain_figures, figures
from bids_app.report.data import ClusterMapReport, GroupReport
from bids_app.report.figures import StripSpec
from bids_app.report.views import (
    ALPHA,
    Figure,
    as_float,
    figure,
    fmt,
    fmt_p,
    significant,
    table,
)

STRIATAL_ROIS = ("dorsal_striatum", "ventral_striatum", "striatum")
EXPLORATORY_ROIS = ("pituitary", "carotid", "habenula", "habenula_control")

CONVENTIONS = (
    "Sign convention: every difference, t value and effect size is challenge - baseline "
    "(negative: lower under the challenge). The DA release measures (net_da_release, "
    "dorsal/ventral_da_release) are the relative decrease of BPND, (baseline - challenge) / "
    "baseline, so that a positive value is dopamine release. Colours: blue = lower under the "
    "challenge, red = higher, in every figure; grey = baseline session, orange = challenge "
    "session. Highlighted rows are significant after the correction named in the table."
)

#: Shown columns of the cluster table (volumes in mL).
CLUSTER_COLUMNS = (
    "measure",
    "direction",
    "cluster_id",
    "size_voxels",
    "volume (mL)",
    "peak_x",
    "peak_y",
    "peak_z",
    "peak_t",
    "p_fwe_rft",
    "p_fwe_perm",
    "mean_change_pct",
    "label",
)
PEAK_COLUMNS = (
    "measure",
    "direction",
    "cluster_id",
    "rank",
    "x_mm",
    "y_mm",
    "z_mm",
    "t",
    "z_equivalent",
    "p_unc",
    "p_fwe_rft_peak",
    "label",
)


# --------------------------------------------------------------------------------------------
# Participants and their QC
# --------------------------------------------------------------------------------------------
def _metric_columns(checks: pd.DataFrame) -> list[tuple[str, str]]:
    """(key, scope) of every metric, in the order they first appear."""
    pairs = list(dict.fromkeys(zip(checks["key"], checks["scope"], strict=True)))
    return [(str(k), str(s)) for k, s in pairs]


def _scope_label(scope: str) -> str:
    return "" if scope == "participant" else f" {scope}"


def participant_qc_view(report: GroupReport) -> dict[str, Any] | None:
    """One row per participant: link to its report, inclusion, QC status and every metric."""
    status = report.participant_status
    if status is None or len(status) == 0:
        return None
    checks = report.qc_checks if report.qc_checks is not None else pd.DataFrame()
    metrics = _metric_columns(checks) if len(checks) else []
    header = ["participant", "group analysis", "QC"]
    for key, scope in metrics:
        first = checks[(checks["key"] == key) & (checks["scope"] == scope)].iloc[0]
        unit = f" ({first['unit']})" if str(first["unit"]) else ""
        header.append(f"{first['label']}{_scope_label(scope)}{unit}")
    rows = []
    for _, participant in status.iterrows():
        pid = str(participant["participant_id"])
        included = bool(participant["included"])
        reason = str(participant.get("reason") or "")
        cells = [
            _cell(pid, href=str(participant.get("report") or "")),
            _cell(
                "included" if included else f"excluded: {reason}",
                cls="" if included else "cell-fail",
            ),
            _cell(str(participant.get("qc") or "n/a"), badge=True),
        ]
        mine = checks[checks["participant_id"] == pid] if len(checks) else checks
        for key, scope in metrics:
            found = mine[(mine["key"] == key) & (mine["scope"] == scope)] if len(mine) else mine
            if len(found) == 0:
                cells.append(_cell("n/a"))
                continue
            row = found.iloc[0]
            value = float(row["value"])
            text = f"{value:.3g}" if np.isfinite(value) else "n/a"
            cells.append(_cell(text, cls=f"cell-{row['status']}", num=True))
        rows.append({"cells": cells})
    return {"header": header, "rows": rows, "strips": strip_figures(checks)}


def _cell(
    text: str, href: str = "", cls: str = "", num: bool = False, badge: bool = False
) -> dict[str, Any]:
    """One cell of the participant QC table."""
    return {"text": text, "href": href, "cls": cls, "num": num, "badge": badge}


def strip_figures(checks: pd.DataFrame) -> list[Figure]:
    """MRIQC-style strip plots of every QC metric across participants (thresholds drawn)."""
    if checks is None or len(checks) == 0:
        return []
    strips = []
    for key, scope in _metric_columns(checks):
        rows = checks[(checks["key"] == key) & (checks["scope"] == scope)]
        first = rows.iloc[0]
        strips.append(
            StripSpec(
                label=f"{first['label']}{_scope_label(scope)}",
                unit=str(first["unit"]),
                values={str(r["participant_id"]): float(r["value"]) for _, r in rows.iterrows()},
                warn=_threshold(first.get("warn")),
                fail=_threshold(first.get("fail")),
                bad=str(first.get("bad") or "above"),
            )
        )
    return [
        figure(
            lambda: figures.strip_plot_svg(strips, title="QC metrics, one dot per participant"),
            caption="One dot per participant (hover for its label and value); amber and red "
            "dots cross the warn and fail thresholds (dashed amber and solid red lines) and are "
            "labelled. Metrics without thresholds are shown for comparison between "
            "participants.",
            alt="QC strip plots",
        )
    ]


def _threshold(value: Any) -> float | None:
    number = pd.to_numeric(value, errors="coerce")
    return None if pd.isna(number) else float(number)


# --------------------------------------------------------------------------------------------
# Net DA release
# --------------------------------------------------------------------------------------------
def net_change_view(report: GroupReport) -> dict[str, Any]:
    """The net-change group tests with the definition of each estimator."""
    estimators = report.parameters.get("net_change_estimators") or {}
    definitions = [
        {"measure": name, "method": spec.get("method", ""), "definition": spec.get("definition")}
        for name, spec in estimators.items()
        if isinstance(spec, Mapping)
    ]
    return {
        "table": table(report.net_change_stats),
        "definitions": definitions,
    }


#: Why the group report compares k2' and the injection between sessions.
SESSION_CHECKS_RATIONALE = (
    "k2' is fitted per session; a systematic k2' change between sessions would bias R1 "
    "(about 2.5-5 % per 10 % of k2' where BPND is 2-3) and BPND (about 1 % per 10 %) in every "
    "participant alike, so it should not differ. A larger injected mass of raclopride (or a "
    "lower molar activity) in one session occupies more D2/3 receptors and lowers BPND by "
    "itself (a mass effect), and injected radioactivity sets the counts and hence the noise: "
    "neither should differ between the sessions."
)


def session_checks_view(report: GroupReport) -> dict[str, Any]:
    """The paired baseline-vs-challenge tests of k2' and the injection, with their reason."""
    return {
        "table": table(report.session_comparisons),
        "rationale": SESSION_CHECKS_RATIONALE,
        "notes": list(report.session_notes),
    }


# --------------------------------------------------------------------------------------------
# Statistic maps and clusters
# --------------------------------------------------------------------------------------------
def _peak_mm(cmap: ClusterMapReport, affine: NDArray[np.float64]) -> tuple[float, ...] | None:
    """MNI mm of the largest |t| inside the clusters; ``None`` without clusters."""
    labels = np.asarray(cmap.cluster_labels)
    t = np.asarray(cmap.t_map, dtype=float)
    inside = (labels > 0) & np.isfinite(t)
    if not inside.any():
        return None
    scores = np.where(inside, np.abs(np.nan_to_num(t)), -1.0)
    ijk = np.unravel_index(int(np.argmax(scores)), t.shape)
    xyz = np.asarray(affine)[:3, :3] @ np.asarray(ijk, dtype=float) + np.asarray(affine)[:3, 3]
    return tuple(float(v) for v in xyz)


def stat_map_view(cmap: ClusterMapReport, report: GroupReport) -> dict[str, Any]:
    """Glass brain of the reported clusters and slices through the peak."""
    title = f"{cmap.measure}: challenge {cmap.direction} (|t| ≥ {cmap.threshold_t:.2f})"
    labels = np.asarray(cmap.cluster_labels)
    n_clusters = len(np.setdiff1d(np.unique(labels), [0]))
    t = np.asarray(cmap.t_map, dtype=float)
    finite = np.abs(t[np.isfinite(t)])
    limit = float(max(finite.max() if finite.size else 0.0, 1.5 * cmap.threshold_t))
    figs = [
        figure(
            lambda: brain_figures.glass_brain_png(
                t,
                report.affine,
                cmap.threshold_t,
                limit,
                cluster_labels=labels if n_clusters else None,
                title=f"{title}: glass brain",
            ),
            caption=(
                "Glass-brain projections of the paired t map (challenge - baseline; blue: "
                "lower under the challenge), "
                + (
                    "restricted to the significant clusters."
                    if n_clusters
                    else "every supra-threshold voxel (no significant cluster)."
                )
            ),
            alt=f"glass brain {title}",
        )
    ]
    peak = _peak_mm(cmap, report.affine)
    if peak is not None:
        shown = np.where(labels > 0, t, np.nan)
        figs.append(
            figure(
                lambda: brain_figures.stat_slices_png(
                    shown,
                    report.template,
                    report.affine,
                    peak,
                    cmap.threshold_t,
                    limit,
                    title=f"{title}: peak ({peak[0]:.0f}, {peak[1]:.0f}, {peak[2]:.0f}) mm",
                ),
                caption="Significant clusters over the template, cut through the peak voxel.",
                alt=f"peak slices {title}",
            )
        )
    return {
        "title": title,
        "n_clusters": n_clusters,
        "figures": figs,
        "note": "" if n_clusters else "No cluster reached significance for this contrast.",
    }


def clusters_view(report: GroupReport) -> dict[str, Any]:
    """Significant clusters and their peaks (every cluster stays in clusters.tsv)."""
    clusters = report.clusters
    if clusters is None or len(clusters) == 0:
        return {"table": None, "peaks": None, "note": "No cluster above the threshold."}
    shown = clusters.copy()
    if "significant" in shown.columns:
        keep = shown["significant"].astype("boolean").fillna(False).to_numpy(bool)
    else:
        keep = pd.to_numeric(shown["p_fwe_rft"], errors="coerce").lt(ALPHA).to_numpy(bool)
    if "size_mm3" in shown.columns:
        shown["volume (mL)"] = pd.to_numeric(shown["size_mm3"], errors="coerce") / 1000.0
    n_all = len(shown)
    shown = shown[keep]
    peaks = report.cluster_peaks
    if peaks is not None and len(peaks) and "cluster_significant" in peaks.columns:
        peaks = peaks[peaks["cluster_significant"].astype("boolean").fillna(False)]
    note = (
        f"{len(shown)} of the {n_all} clusters above the cluster-forming threshold are "
        f"significant (RFT cluster-level p(FWE) < {ALPHA}) and shown; clusters.tsv lists them "
        "all."
    )
    return {
        "table": table(shown, list(CLUSTER_COLUMNS)),
        "peaks": table(peaks, list(PEAK_COLUMNS)),
        "note": note,
    }


def search_volume_lines(parameters: Mapping[str, Any]) -> list[str]:
    """One line per measure: the search volume in voxels and mL, and how it was defined."""
    volumes = parameters.get("search_volume") or {}
    lines = []
    for measure, spec in volumes.items():
        if not isinstance(spec, Mapping):
            continue
        voxels = spec.get("voxels")
        ml = spec.get("ml")
        size = f"{int(voxels):,} voxels" if voxels is not None else "size not recorded"
        if ml is not None:
            size += f" ({float(ml):.1f} mL)"
        lines.append(f"{measure}: {size}; {spec.get('definition', 'definition not recorded')}")
    return lines


# --------------------------------------------------------------------------------------------
# ROI plots, correlations, behaviour
# --------------------------------------------------------------------------------------------
def paired_views(roi_values: pd.DataFrame | None) -> list[Figure]:
    """Paired BPND plots (striatal ROIs) and R1 plots (exploratory ROIs) that have data."""
    figs: list[Figure] = []
    if roi_values is None or len(roi_values) == 0 or "roi" not in roi_values.columns:
        return figs
    present = set(roi_values["roi"].astype(str))
    specs = (
        ("BPND", STRIATAL_ROIS, "BPND in the striatal ROIs"),
        ("R1", EXPLORATORY_ROIS, "R1 in the exploratory ROIs"),
    )
    for measure, rois, caption in specs:
        has = roi_values["measure"].astype(str) == measure
        wanted = [r for r in rois if r in present and (has & (roi_values["roi"] == r)).any()]
        if not wanted:
            continue
        figs.append(
            figure(
                partial(figures.paired_plot_svg, roi_values, measure, wanted, title=caption),
                caption=f"{caption}: one line per participant (blue: lower under the "
                "challenge, red: higher); black: mean ± SD.",
                alt=caption,
            )
        )
    return figs


def correlation_views(report: GroupReport) -> tuple[list[Figure], list[str]]:
    """Scatter plots for each row of the correlations table, plus notes for missing data."""
    figs: list[Figure] = []
    notes: list[str] = []
    corr = report.correlations
    if corr is None or len(corr) == 0:
        return figs, notes
    measures = report.participant_measures
    for _, row in corr.iterrows():
        x_name, y_name = str(row.get("x")), str(row.get("y"))
        if measures is None or x_name not in measures.columns or y_name not in measures.columns:
            notes.append(
                f"{y_name} vs {x_name}: not plotted because participant_measures lacks the column."
            )
            continue
        xv = pd.to_numeric(measures[x_name], errors="coerce").to_numpy(float)
        yv = pd.to_numeric(measures[y_name], errors="coerce").to_numpy(float)
        if int((np.isfinite(xv) & np.isfinite(yv)).sum()) < 3:
            notes.append(f"{y_name} vs {x_name}: not plotted (fewer than 3 participants).")
            continue
        r, df, p = (as_float(row.get(k)) for k in ("r", "df", "p"))
        loo = [as_float(row.get(k)) for k in ("r_loo_min", "r_loo_max")]
        loo_text = (
            f" (leaving one participant out: {fmt(loo[0], 'r')} to {fmt(loo[1], 'r')})"
            if all(np.isfinite(loo))
            else ""
        )
        figs.append(
            figure(
                partial(figures.scatter_svg, xv, yv, x_name, y_name, r, df, p),
                caption=f"{y_name} vs {x_name}: r = {fmt(r, 'r')}, p = {fmt_p(p)}{loo_text}",
                alt=f"{y_name} vs {x_name}",
            )
        )
    return figs, notes


def behaviour_view(report: GroupReport) -> dict[str, Any]:
    """The behavioural/physiological tests and time courses of every measure."""
    effects = report.behavior_effects
    data = report.behavior_data
    figs: list[Figure] = []
    if data is not None and len(data):
        for kind, label in (("subjective", "Subjective ratings"), ("physiology", "Physiology")):
            rows = data[data["kind"] == kind] if "kind" in data.columns else data
            measures = list(dict.fromkeys(rows["measure"].astype(str)))
            if not measures:
                continue
            figs.append(
                figure(
                    partial(
                        figures.behaviour_svg,
                        rows,
                        measures,
                        title=f"{label}: mean ± SEM per session",
                    ),
                    caption=f"{label} over time (minutes from the drug injection; dotted line: "
                    "injection), mean ± SEM over participants; grey: baseline session, orange: "
                    "challenge session.",
                    alt=f"{label} time courses",
                )
            )
    return {
        "table": table(effects, highlight=significant("p_fdr")),
        "figures": figs,
        "descriptives": table(descriptives_wide(report.behavior_descriptives)),
        "loadings": table(
            report.aversion_loadings,
            columns=["column", "measure", "time_min", "aversive_sign", "loading"],
        ),
        "pc1": _pc1_sentence(report.aversion_loadings),
    }


def descriptives_wide(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    """``behavior_descriptives.tsv`` as the paper's Supplementary Table 1.

    Parameters
    ----------
    frame : DataFrame or None
        Long descriptives (``measure, kind, condition, time_min, n, mean, sd``).

    Returns
    -------
    DataFrame or None
        One row per measure (``measure``, ``kind``), one column per session and time point
        (``baseline -10 min``, ...) holding ``mean ± SD (n)``; None without rows.
    """
    if frame is None or len(frame) == 0:
        return None
    cells: dict[tuple[bool, float], dict[tuple[str, str], str]] = {}
    for rec in frame.itertuples(index=False):
        mean, sd = as_float(rec.mean), as_float(rec.sd)
        text = "n/a" if not np.isfinite(mean) else f"{mean:.3g}"
        if np.isfinite(sd):
            text += f" ± {sd:.2g}"
        column = (str(rec.condition) != "baseline", as_float(rec.time_min))
        cells.setdefault(column, {})[(str(rec.measure), str(rec.kind))] = f"{text} ({rec.n})"
    keys = list(
        dict.fromkeys(zip(frame["measure"].astype(str), frame["kind"].astype(str), strict=True))
    )
    columns = {
        f"{'challenge' if c[0] else 'baseline'} {c[1]:g} min": [cells[c].get(k, "") for k in keys]
        for c in sorted(cells)
    }
    return pd.DataFrame({"measure": [k[0] for k in keys], "kind": [k[1] for k in keys], **columns})


def _pc1_sentence(loadings: pd.DataFrame | None) -> str:
    """One sentence on PC1: the explained variance, n and status."""
    if loadings is None or len(loadings) == 0:
        return "No aversion index was computed (no subjective change was selected)."
    first = loadings.iloc[0]
    ev = as_float(first["explained_variance_ratio"])
    ev_text = f"{100.0 * ev:.1f} %" if np.isfinite(ev) else "n/a"
    return (
        f"PC1 of the {len(loadings)} selected z-scored change(s) explains {ev_text} of their "
        f"variance (n = {int(first['n'])}, status {first['status']}); loadings are oriented "
        "so that a positive loading means the change moves with aversion."
    )


def group_warnings(report: GroupReport) -> list[str]:
    """Group warnings, plus one for a small sample."""
    warnings = list(report.warnings)
    if len(report.participants) < 3:
        warnings.append(
            f"Only {len(report.participants)} participant(s) were included; group statistics "
            "are not meaningful."
        )
    return warnings


def _param(parameters: Mapping[str, Any], key: str, unit: str = "") -> str:
    """Format one analysis parameter, or ``not recorded``."""
    value = parameters.get(key)
    if value is None:
        return "not recorded"
    if isinstance(value, Mapping):  # one value per measure, e.g. {"BPND": [...], "R1": [...]}
        return "; ".join(
            f"{name} {_param({key: item}, key, unit)}" for name, item in value.items()
        )
    if isinstance(value, (list, tuple, np.ndarray)):
        text = " x ".join(f"{float(v):.3g}" for v in np.ravel(value))
    elif isinstance(value, float):
        text = f"{value:.3g}"
    else:
        text = fmt(value, key)
    return f"{text} {unit}".strip()


def methods(report: GroupReport) -> list[str]:
    """Methods paragraphs generated from ``report.parameters``."""
    par = report.parameters
    n = len(report.participants)
    n_perm = par.get("n_permutations")
    alpha = par.get("alpha", ALPHA)
    cft = par.get("cluster_forming_t")
    cft_text = f" (|t| > {float(cft):.2f})" if cft is not None else ""
    paragraphs = [
        f"Participant BPND and R1 maps in MNI space of {n} participant(s) were smoothed with a "
        f"Gaussian kernel of {_param(par, 'smoothing_fwhm_mm', 'mm')} FWHM and compared between "
        f"the challenge and the baseline session with voxelwise paired t-tests "
        f"(df = {_param(par, 'df')}), separately for decreases and increases.",
        "Clusters were formed at an uncorrected "
        f"p < {_param(par, 'cluster_forming_p')}{cft_text}. "
        f"The smoothness estimated from the residuals was FWHM = {_param(par, 'fwhm_mm', 'mm')} "
        f"(resel counts R0-R3: {_param(par, 'resels')}). Cluster-level family-wise error rates "
        f"were computed with random field theory (Friston et al. 1994; Worsley et al. 1996); "
        f"clusters with p(FWE) < {alpha:g} are reported.",
    ]
    if isinstance(n_perm, (int, np.integer)) and n_perm > 0:
        paragraphs.append(
            f"As a check that does not rely on smoothness assumptions, cluster-size FWE was also "
            f"assessed with a sign-flip permutation test of the maximum cluster size "
            f"({int(n_perm)} permutations; Nichols & Holmes 2002)."
        )
    else:
        paragraphs.append("No permutation test was run.")
    paragraphs.append(
        "ROI values were compared with paired t-tests; behavioural and physiological challenge "
        "effects were corrected with the false discovery rate (Benjamini & Hochberg 1995)."
    )
    if report.behavior_effects is not None:
        paragraphs.append(_behaviour_methods(par.get("behavior_challenge_effect")))
    if report.roi_stats is not None and "definition" in report.roi_stats.columns:
        paragraphs.append(
            "The relative BPND changes of the dorsal and the ventral striatum were compared on "
            "two definitions: AAL3 (caudate + putamen vs nucleus accumbens) and the subdivisions "
            "of Mawlawi et al. (2001) as used by Martinez et al. (2003), cut from AAL3 at the "
            "anterior commissure (ventral striatum below the line from the caudate centre to "
            "the putamen's ventral edge under the internal capsule, plus the accumbens)."
        )
    if report.session_comparisons is not None:
        paragraphs.append(
            "Each session's k2' and injected radioactivity, mass and molar activity (PET "
            "sidecars) were compared between the sessions with paired t-tests."
        )
    return paragraphs


def _behaviour_methods(effect: object) -> str:
    """Methods paragraph of the behavioural analysis for a challenge-effect definition."""
    if effect == "post_minus_pre":
        subjective = (
            "the challenge effect on each subjective item was a paired t-test of each "
            "post-injection rating against the pre-injection rating within the challenge "
            "session (post - pre; the paper's wording)"
        )
    else:
        subjective = (
            "the challenge effect on each subjective item was a paired t-test of the change "
            "from the pre-injection rating in the challenge session against the same change "
            "in the baseline session ((challenge post - pre) - (baseline post - pre), "
            "config challenge_effect = difference_of_differences; the paper's wording reads "
            "as post - pre within the challenge session, config post_minus_pre)"
        )
    return (
        f"Behaviour: {subjective}, at each post-injection time point. Hormones were "
        "compared as the mean of the configured post-injection samples and cardiovascular "
        "measures as the session mean, challenge vs baseline (paired t). Item/time changes "
        "with uncorrected p < 0.05 entered the aversion index, PC1 of their z-scores "
        "oriented so that higher scores are more aversive. Correlations are Pearson's, with "
        "Spearman's rank correlation and the range of r when each participant is left out "
        "in turn as checks for n of about 10."
    )
