"""The participant report's views: QC verdict, motion, registrations, ROIs, TACs, maps, fits.

Every function turns part of a :class:`~bids_app.report.data.ParticipantReport` into strings,
tables and pre-built figures for ``participant.html.j2``. Conventions stated in the report:
differences are challenge - baseline; blue = lower under the challenge, red = higher; grey =
baseline session, orange = challenge session.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from bids_app.report import brain_figures, figures
from bids_app.report.brain_figures import CONTOUR_COLOURS, Contour
from bids_app.report.data import ParticipantReport, RegistrationCheck, SessionReport
from bids_app.report.views import (
    fd_thresholds,
    figure,
    kv_table,
    qc_rows,
    table,
)

#: ROIs drawn as the targets of the striatal cut (when present).
TARGET_ROIS = ("caudate", "putamen", "ventral_striatum", "dorsal_striatum")
#: Small exploratory ROIs below or deep in the brain, each drawn through its own centroid.
EXPLORATORY_ROIS = ("pituitary", "carotid", "habenula")
#: Axial levels (MNI mm) of the ΔBPND map: the striatum from the accumbens to the dorsal caudate.
DELTA_Z_MM = (-12.0, -6.0, 0.0, 6.0, 12.0, 18.0, 24.0)
#: A voxel fit-failure share above this is highlighted in the fit-status table.
FAILED_HIGHLIGHT = 0.05

CONVENTIONS = (
    "Differences are challenge - baseline. Colours mean the same in every figure: blue = lower "
    "under the challenge, red = higher; grey = baseline session, orange = challenge session. "
    "QC badges: green = pass, amber = warn (worth a look; results kept), red = fail (results "
    "likely wrong)."
)


def session_title(ses: SessionReport) -> str:
    """``ses-<label> (role)``."""
    return f"ses-{ses.session} ({ses.role})"


def time_mid_min(ses: SessionReport) -> NDArray[np.float64]:
    """Frame mid-times in minutes from the frame bounds in seconds."""
    start = np.asarray(ses.frame_start_s, dtype=float)
    end = np.asarray(ses.frame_end_s, dtype=float)
    return (start + end) / 2.0 / 60.0


def world_coords(mask: NDArray[np.bool_], affine: NDArray[np.float64]) -> NDArray[np.float64]:
    """MNI coordinates (mm) of the voxels of ``mask``, shape ``(n, 3)``."""
    ijk = np.argwhere(mask)
    if ijk.size == 0:
        return np.zeros((0, 3))
    return ijk @ np.asarray(affine)[:3, :3].T + np.asarray(affine)[:3, 3]


def centroid_mm(
    masks: Sequence[NDArray[np.bool_]], affine: NDArray[np.float64], right_only: bool = True
) -> tuple[float, float, float] | None:
    """Centroid (mm) of the union of masks; the right hemisphere only when it has voxels.

    A bilateral structure's centroid lies on the midline, where a sagittal cut would miss it.
    """
    if not masks:
        return None
    union = np.zeros(np.shape(masks[0]), dtype=bool)
    for mask in masks:
        union |= np.asarray(mask, dtype=bool)
    xyz = world_coords(union, affine)
    if xyz.shape[0] == 0:
        return None
    if right_only and (xyz[:, 0] > 0).any():
        xyz = xyz[xyz[:, 0] > 0]
    centre = xyz.mean(axis=0)
    return float(centre[0]), float(centre[1]), float(centre[2])


def finite_percentiles(
    volumes: Sequence[NDArray[np.floating]], q: tuple[float, float]
) -> tuple[float, float] | None:
    """Percentiles ``q`` of the finite voxels pooled over ``volumes``; ``None`` when none."""
    pooled = [np.asarray(v, dtype=float)[np.isfinite(v)] for v in volumes]
    values = np.concatenate(pooled) if pooled else np.zeros(0)
    if values.size == 0:
        return None
    lo, hi = np.percentile(values, q)
    return float(lo), float(hi)


# --------------------------------------------------------------------------------------------
# Summary and QC
# --------------------------------------------------------------------------------------------
def sessions_table(sessions: Sequence[SessionReport]) -> dict[str, Any] | None:
    """One row per session: file, frames, duration, k2' and what was injected (with units)."""
    rows = []
    for s in sessions:
        row: dict[str, Any] = {
            "session": f"ses-{s.session}",
            "role": s.role,
            "PET file": s.pet_file,
            "frames": int(s.n_frames),
            "scan (min)": f"{float(np.max(s.frame_end_s)) / 60.0:.0f}" if s.n_frames else "n/a",
            "k2' (1/min)": float(s.k2prime),
        }
        for label, (value, unit) in s.injection.items():
            row[label] = f"{value:.4g} {unit}".strip() if np.isfinite(value) else "not recorded"
        rows.append(row)
    return table(pd.DataFrame(rows))


def qc_view(report: ParticipantReport) -> dict[str, Any]:
    """The verdict (overall status, banner text) and one row per check."""
    verdict = report.qc
    return {
        "status": verdict.status,
        "rows": qc_rows(verdict),
        "reasons": verdict.reasons,
        "n_checks": len(verdict.checks),
    }


def alerts(report: ParticipantReport) -> tuple[list[str], list[str]]:
    """Errors and warnings of the summary: pipeline messages, then QC fails and warns."""
    warnings = [*report.warnings]
    for s in report.sessions:
        warnings += [f"ses-{s.session}: {w}" for w in s.warnings]
    warnings += [f"QC warning: {c.describe()}" for c in report.qc.flagged("warn")]
    errors = [*report.errors, *(f"QC fail: {c.describe()}" for c in report.qc.flagged("fail"))]
    if len(report.sessions) == 1:
        only = report.sessions[0]
        warnings.append(
            f"Only one session (ses-{only.session}, {only.role}) is available; "
            "no baseline/challenge comparison is possible for this participant."
        )
    return errors, warnings


# --------------------------------------------------------------------------------------------
# Motion
# --------------------------------------------------------------------------------------------
def motion_view(ses: SessionReport, report: ParticipantReport) -> dict[str, Any]:
    """Motion figure (with the FD thresholds of the QC) and summary numbers of one session."""
    conf = ses.confounds
    title = session_title(ses)
    if conf is None or len(conf) == 0:
        return {"title": title, "figure": None, "note": "no confounds table was produced"}
    t = time_mid_min(ses)
    times = t if t.size == len(conf) else None
    thresholds = fd_thresholds(report.qc, f"ses-{ses.session}")
    fig = figure(
        lambda: figures.motion_svg(conf, times, title=title, fd_thresholds_mm=thresholds),
        caption=(
            "Rigid realignment parameters per frame: translations (mm), rotations (degrees) "
            "and framewise displacement (mm) with the QC thresholds of the maximum FD (amber "
            "dashed: warn, red: fail). Shaded frames had too few counts and borrowed the "
            "transform of the nearest reliable frame."
        ),
        alt=f"motion {title}",
    )
    stats: dict[str, Any] = {}
    if "framewise_displacement" in conf.columns:
        fd = conf["framewise_displacement"].to_numpy(float)
        finite = fd[np.isfinite(fd)]
        stats["mean FD (mm)"] = f"{finite.mean():.2f}" if finite.size else "n/a"
        stats["max FD (mm)"] = f"{finite.max():.2f}" if finite.size else "n/a"
    stats["frames with borrowed transform"] = int(figures.borrowed_frames(conf).sum())
    return {"title": title, "figure": fig, "note": "", "stats": kv_table(stats)}


# --------------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------------
def registration_checks_view(checks: Sequence[RegistrationCheck]) -> list[dict[str, Any]]:
    """Before/after mosaics of each registration (same cuts, the target's edges on both)."""
    out = []
    for check in checks:
        edges = [Contour(check.target_label, check.target, CONTOUR_COLOURS[0])]
        cuts = brain_figures.mosaic_cuts(check.target, check.affine)
        views = {
            stage: figure(
                partial(
                    brain_figures.mosaic_png,
                    image,
                    check.affine,
                    edges,
                    cuts,
                    title=f"{stage}: {check.name}",
                ),
                caption=check.caption,
                alt=f"{check.name}, {stage}",
            )
            for stage, image in (("before", check.before), ("after", check.after))
        }
        out.append({"name": check.name, "caption": check.caption, **views})
    return out


def registration_view(ses: SessionReport) -> dict[str, Any]:
    """This session's normalised mean PET with the template's edges, and its own metrics."""
    title = session_title(ses)
    edges = Contour("template edges", ses.template, CONTOUR_COLOURS[0])
    figs = [
        figure(
            lambda: brain_figures.mosaic_png(
                ses.mean_pet_mni,
                ses.affine,
                [edges],
                title=f"{title}: mean PET on the template grid",
            ),
            caption="This session's mean PET after motion correction and normalisation; the "
            "lines trace the template's outer and grey/white edges.",
            alt=f"registration {title}",
        )
    ]
    if ses.t1w_mni is not None:
        t1w = ses.t1w_mni
        pet_edges = Contour("PET edges", ses.mean_pet_mni, CONTOUR_COLOURS[1])
        figs.append(
            figure(
                lambda: brain_figures.mosaic_png(
                    t1w, ses.affine, [pet_edges], title=f"{title}: T1w on the template grid"
                ),
                caption="Normalised T1w with the edges of the mean PET (PET-on-T1w check).",
                alt=f"PET on T1w {title}",
            )
        )
    quality = {k: f"{float(v):.3f}" for k, v in ses.registration_quality.items()}
    return {"title": title, "figures": figs, "quality": kv_table(quality)}


# --------------------------------------------------------------------------------------------
# Regions of interest
# --------------------------------------------------------------------------------------------
def roi_view(ses: SessionReport) -> dict[str, Any]:
    """ROI outlines on the session's mean PET and a table of their sizes and mean uptake."""
    title = session_title(ses)
    masks = {k: np.asarray(v, dtype=bool) for k, v in ses.roi_masks.items()}
    voxel_ml = abs(float(np.linalg.det(np.asarray(ses.affine)[:3, :3]))) / 1000.0
    pet = np.asarray(ses.mean_pet_mni, dtype=float)
    rows = []
    for name, mask in masks.items():
        n = int(mask.sum())
        values = pet[mask & np.isfinite(pet)] if mask.shape == pet.shape else np.zeros(0)
        rows.append(
            {
                "roi": name,
                "voxels": n,
                "volume (mL)": n * voxel_ml,
                "mean PET": float(values.mean()) if values.size else float("nan"),
                "empty": n == 0,
            }
        )
    frame = pd.DataFrame(rows)
    shown = table(frame, ["roi", "voxels", "volume (mL)", "mean PET"]) if rows else None
    empty = [r["roi"] for r in rows if r["empty"]]
    groups = roi_groups(ses, {k: m for k, m in masks.items() if m.any()})
    figs = []
    if groups:
        figs.append(
            figure(
                lambda: brain_figures.roi_rows_png(
                    pet, ses.affine, groups, title=f"{title}: ROIs on the mean PET"
                ),
                caption="Each row is cut through the centroid of its ROIs (right hemisphere for "
                "bilateral ones): the striatal targets, the reference region, and the small "
                "exploratory ROIs below or deep in the brain (pituitary, internal carotid "
                "arteries, habenula).",
                alt=f"ROIs {title}",
            )
        )
    return {"title": title, "figures": figs, "table": shown, "empty": empty}


def roi_groups(
    ses: SessionReport, masks: dict[str, NDArray[np.bool_]]
) -> list[tuple[str, list[Contour], tuple[float, float, float]]]:
    """Rows of the ROI figure: targets, reference, then each exploratory ROI."""
    colour = iter(CONTOUR_COLOURS * 3)
    rows: list[tuple[str, list[Contour], tuple[float, float, float]]] = []
    targets = [r for r in TARGET_ROIS if r in masks]
    if {"caudate", "putamen"} <= set(targets) and "dorsal_striatum" in targets:
        targets.remove("dorsal_striatum")  # caudate + putamen: the same outline twice
    specs = [("striatum", targets)]
    if ses.reference_roi in masks:
        specs.append((f"reference ({ses.reference_roi})", [ses.reference_roi]))
    specs += [(roi, [roi]) for roi in EXPLORATORY_ROIS if roi in masks]
    for label, names in specs:
        if not names:
            continue
        cut = centroid_mm([masks[n] for n in names], ses.affine)
        if cut is None:
            continue
        rows.append((label, [Contour(n, masks[n], next(colour)) for n in names], cut))
    return rows


# --------------------------------------------------------------------------------------------
# TACs, parameters, maps
# --------------------------------------------------------------------------------------------
def tac_view(ses: SessionReport) -> dict[str, Any]:
    """TAC + fit + residual figure and the parameter table of one session."""
    title = session_title(ses)
    tacs = ses.tacs
    fig = None
    if tacs is not None and len(tacs) > 0:
        fig = figure(
            lambda: figures.tac_fit_svg(
                time_mid_min(ses),
                tacs,
                ses.fitted,
                reference=ses.reference_roi,
                units=ses.tac_units,
                title=title,
            ),
            caption=(
                "Regional TACs (markers) and SRTM2 fits (lines), one colour per ROI; ROIs with "
                "the same voxels are drawn once (legend: a = b). The carotid's blood curve has "
                "its own axis. Bottom: residuals (measured - fitted). Units: "
                f"{ses.tac_units}; the reference region ({ses.reference_roi}) is the model input."
            ),
            alt=f"TACs {title}",
        )
    kinpar = ses.kinpar.copy() if ses.kinpar is not None else None
    return {
        "title": title,
        "figure": fig,
        "kinpar": table(kinpar, ["roi", "BPND", "R1", "k2a", "k2prime"]),
        "k2prime": f"{float(ses.k2prime):.4f}",
        "k2prime_method": ses.k2prime_method,
    }


def reference_view(sessions: Sequence[SessionReport]) -> Any:
    """The reference-region TACs of every session on one axis (or None without TACs)."""
    curves = {}
    for s in sessions:
        if s.tacs is not None and s.reference_roi in s.tacs.columns:
            curves[session_title(s)] = (
                time_mid_min(s),
                s.tacs[s.reference_roi].to_numpy(float),
                s.role,
            )
    if not curves:
        return None
    units = sessions[0].tac_units
    return figure(
        lambda: figures.reference_tacs_svg(curves, units, title="Reference region, both sessions"),
        caption="The reference-region TAC of each session (grey: baseline, orange: challenge). "
        "The reference tissue should not change with the challenge: a different shape or "
        "height points to a problem with the injection, the field of view or the "
        "normalisation of one session.",
        alt="reference TACs of both sessions",
    )


def maps_view(report: ParticipantReport) -> dict[str, Any]:
    """BPND and R1 slices of all sessions on shared colour scales, and the ΔBPND map."""
    sessions = report.sessions
    first = sessions[0]
    striatal = [m for k, m in first.roi_masks.items() if "striatum" in k]
    cut = centroid_mm(striatal, first.affine)
    out: dict[str, Any] = {"figures": [], "notes": [], "delta": None}
    # BPND: the striatum is ~1 % of brain voxels, so the upper limit is the 99.9th percentile.
    specs = (
        ("BPND", "bp_map", "inferno", True, 99.9),
        ("R1", "r1_map", "viridis", False, 99.0),
    )
    for label, attr, cmap, from_zero, upper in specs:
        maps = {session_title(s): getattr(s, attr) for s in sessions}
        limits = finite_percentiles(list(maps.values()), (1.0, upper))
        if limits is None:
            out["notes"].append(f"{label} maps hold no finite voxel (every fit failed or no map).")
            limits = (0.0, 1.0)
        vmin = 0.0 if from_zero else limits[0]
        vmax = max(limits[1], vmin + 1e-6)
        out["figures"].append(
            figure(
                partial(
                    figures.map_slices_png,
                    maps,
                    first.template,
                    first.affine,
                    vmin=vmin,
                    vmax=vmax,
                    cmap=cmap,
                    cut_coords_mm=cut,
                    colourbar_label=label,
                    title=f"{label} (SRTM2), all sessions on one colour scale",
                ),
                caption=(
                    f"{label} maps on the template, same colour scale for every session "
                    f"({vmin:.3f} to {vmax:.3f}); voxels without a valid fit are transparent."
                ),
                alt=f"{label} maps",
            )
        )
    roles = {s.role: s for s in sessions}
    if {"baseline", "challenge"} <= set(roles):
        base, chal = roles["baseline"].bp_map, roles["challenge"].bp_map
        delta = np.asarray(chal, dtype=float) - np.asarray(base, dtype=float)
        in_striatum = np.zeros(delta.shape, dtype=bool)
        for mask in striatal:
            in_striatum |= np.asarray(mask, dtype=bool)
        values = np.abs(delta[in_striatum & np.isfinite(delta)])
        vmax = float(np.percentile(values, 99.0)) if values.size else 0.5
        out["delta"] = figure(
            lambda: brain_figures.delta_map_png(
                delta,
                first.template,
                first.affine,
                max(vmax, 1e-3),
                DELTA_Z_MM,
                title="ΔBPND = BPND challenge - BPND baseline",
            ),
            caption=(
                "Voxelwise change of BPND, challenge - baseline, unsmoothed (voxel noise is "
                "large; the group level smooths). Blue: lower BPND under the challenge "
                "(dopamine release for a D2/3 antagonist tracer); red: higher. Colour limit: "
                f"±{vmax:.2f}, the 99th percentile of |ΔBPND| in the striatum."
            ),
            alt="ΔBPND map",
        )
    return out


def fit_status_view(sessions: Sequence[SessionReport]) -> dict[str, Any] | None:
    """Voxelwise fit counts per session; sessions with > 5 % failures are highlighted."""
    rows = []
    for ses in sessions:
        n = int(ses.n_fit_voxels)
        pct = 100.0 / n if n > 0 else float("nan")
        rows.append(
            {
                "session": session_title(ses),
                "voxels fitted": n,
                "failed": int(ses.n_failed),
                "failed (%)": _percent(ses.n_failed * pct),
                "at k2a bound": int(ses.n_at_bound),
                "at bound (%)": _percent(ses.n_at_bound * pct),
                "finite BPND voxels": int(np.isfinite(np.asarray(ses.bp_map, float)).sum()),
            }
        )
    failed = {
        session_title(s): s.n_failed / s.n_fit_voxels if s.n_fit_voxels > 0 else 0.0
        for s in sessions
    }
    return table(pd.DataFrame(rows), highlight=lambda r: failed[r["session"]] > FAILED_HIGHLIGHT)


def _percent(value: float) -> str:
    """Percentages with 2 decimals; tiny non-zero values as ``<0.01``."""
    if not np.isfinite(value):
        return "n/a"
    if 0 < value < 0.01:
        return "<0.01"
    return f"{value:.2f}"


def methods(report: ParticipantReport) -> str:
    """Methods paragraph generated from the report contents."""
    n_frames = sorted({int(s.n_frames) for s in report.sessions})
    durations = sorted(
        {float(np.max(s.frame_end_s)) / 60.0 for s in report.sessions if s.n_frames}
    )
    frames_text = " or ".join(str(n) for n in n_frames)
    dur_text = " / ".join(f"{d:.0f}" for d in durations) or "n/a"
    k2_methods = sorted({s.k2prime_method for s in report.sessions})
    refs = " / ".join(sorted({s.reference_roi for s in report.sessions}))
    return (
        f"Each dynamic PET session ({frames_text} frames, {dur_text} min) was realigned to a "
        f"reference frame with rigid registrations in ANTs (Avants et al. 2008); frames with too "
        f"few counts took the transform of the nearest reliable frame. Images were normalised "
        f"to the {report.template_name} template ({report.normalisation}) and regional "
        f"time-activity curves were extracted with the {report.atlas_name} atlas, with the "
        f"{refs} as reference region. The reference efflux rate k2' was estimated "
        f"once per session ({'; '.join(k2_methods)}) with the simplified reference tissue model "
        f"(SRTM; Lammertsma & Hume 1996) and then fixed in SRTM2 (Wu & Carson 2002) to estimate "
        f"BPND and R1 for each ROI (nonlinear least squares) and each voxel (basis-function "
        f"method; Gunn et al. 1997). Voxels whose fit failed are NaN in the maps and counted in "
        f"the fit status; voxels whose best basis function lies at the edge of the k2a range are "
        f"flagged."
    )
