"""Render the participant and group HTML reports (Jinja2, self-contained, size-capped).

The renderers turn the input dataclasses of :mod:`bids_app.report.data` into a plain "view"
(strings, lists, dicts and pre-built figures) and pass it to the templates. The Jinja environment
autoescapes everything; the only values marked :class:`~markupsafe.Markup` are the SVG figures
built here and the package's own stylesheet.

A figure that cannot be drawn does not sink the report: the section shows "not available
because ..." and the cause is logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from numpy.typing import NDArray

from bids_app import __version__
from bids_app.errors import InputError
from bids_app.report import figures
from bids_app.report.data import (
    ClusterMapReport,
    GroupReport,
    ParticipantReport,
    Provenance,
    SessionReport,
)

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_REPORT_BYTES",
    "build_environment",
    "render_group",
    "render_participant",
]

MAX_REPORT_BYTES = 5 * 1024 * 1024
"""Size budget of one report (bytes); exceeding it logs a warning."""

_STRIATAL_ROIS = ("dorsal_striatum", "ventral_striatum", "striatum")
_EXPLORATORY_ROIS = ("pituitary", "carotid", "habenula", "habenula_control")

PARTICIPANT_CITATIONS = (
    "Lammertsma AA, Hume SP. Simplified reference tissue model for PET receptor studies. "
    "NeuroImage. 1996;4(3):153-158.",
    "Wu Y, Carson RE. Noise reduction in the simplified reference tissue model for "
    "neuroreceptor functional imaging. J Cereb Blood Flow Metab. 2002;22(12):1440-1452.",
    "Gunn RN, Lammertsma AA, Hume SP, Cunningham VJ. Parametric imaging of ligand-receptor "
    "binding in PET using a simplified reference region model. NeuroImage. 1997;6(4):279-287.",
    "Avants BB, Epstein CL, Grossman M, Gee JC. Symmetric diffeomorphic image registration with "
    "cross-correlation: evaluating automated labeling of elderly and neurodegenerative brain. "
    "Med Image Anal. 2008;12(1):26-41.",
)
GROUP_CITATIONS = (
    "Friston KJ, Worsley KJ, Frackowiak RSJ, Mazziotta JC, Evans AC. Assessing the significance "
    "of focal activations using their spatial extent. Hum Brain Mapp. 1994;1(3):210-220.",
    "Worsley KJ, Marrett S, Neelin P, Vandal AC, Friston KJ, Evans AC. A unified statistical "
    "approach for determining significant signals in images of cerebral activation. "
    "Hum Brain Mapp. 1996;4(1):58-73.",
    "Nichols TE, Holmes AP. Nonparametric permutation tests for functional neuroimaging: "
    "a primer with examples. Hum Brain Mapp. 2002;15(1):1-25.",
    "Benjamini Y, Hochberg Y. Controlling the false discovery rate: a practical and powerful "
    "approach to multiple testing. J R Stat Soc B. 1995;57(1):289-300.",
    "Wu Y, Carson RE. Noise reduction in the simplified reference tissue model for "
    "neuroreceptor functional imaging. J Cereb Blood Flow Metab. 2002;22(12):1440-1452.",
)


# --------------------------------------------------------------------------------------------
# Environment and output
# --------------------------------------------------------------------------------------------
def build_environment() -> Environment:
    """Return the Jinja2 environment of the reports.

    Autoescaping is switched on explicitly (``select_autoescape`` would skip ``*.j2`` names) and
    undefined variables raise (:class:`jinja2.StrictUndefined`).

    Returns
    -------
    jinja2.Environment
        Loader on ``bids_app/report/templates``.
    """
    return Environment(
        loader=PackageLoader("bids_app", "report/templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _stylesheet() -> Markup:
    """The package's own CSS, inlined verbatim (trusted static file, hence ``Markup``)."""
    text = files("bids_app.report").joinpath("static", "report.css").read_text(encoding="utf-8")
    return Markup(text)  # trusted: packaged static file


# --------------------------------------------------------------------------------------------
# Small view helpers
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Figure:
    """A pre-built figure: PNG data URI or inline SVG, or a note saying why it is missing."""

    kind: str  # "img", "svg" or "missing"
    content: str | Markup
    caption: str
    alt: str


def _figure(builder: Callable[[], str], caption: str, alt: str) -> _Figure:
    """Build one figure; on failure return a "not available" placeholder and log the cause.

    The report must be written even when one figure cannot be drawn (bad inputs to one plot
    should not hide the rest of the QC), so errors of the plotting stack are caught here.
    """
    try:
        content = builder()
    except (InputError, ValueError, TypeError, IndexError, KeyError, RuntimeError) as exc:
        logger.warning("Report figure %r not drawn: %s", alt, exc, exc_info=True)
        return _Figure("missing", f"not available because the figure failed: {exc}", caption, alt)
    if content.startswith("data:image/png;base64,"):
        return _Figure("img", content, caption, alt)
    return _Figure("svg", Markup(content), caption, alt)  # trusted: built by figures.py


def _fmt(value: Any, column: str = "") -> str:
    """Format one table cell: NaN as ``n/a``, p values with 3 decimals, floats with 4 digits."""
    if value is None:
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not np.isfinite(v):
            return "n/a"
        if column.startswith("p") and (column == "p" or column.startswith("p_")):
            return "<0.001" if v < 0.001 else f"{v:.3f}"
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.3e}"
        return f"{v:.4g}"
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(_fmt(v, column) for v in np.ravel(np.asarray(value, dtype=object)))
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    if pd.isna(value):
        return "n/a"
    return str(value)


def _is_numeric(series: pd.Series) -> bool:
    """Whether a column should be right-aligned."""
    return bool(pd.api.types.is_numeric_dtype(series)) and not pd.api.types.is_bool_dtype(series)


def _table(
    frame: pd.DataFrame | None,
    columns: Sequence[str] | None = None,
    highlight: Callable[[pd.Series], bool] | None = None,
) -> dict[str, Any] | None:
    """Turn a DataFrame into ``{"columns": [...], "rows": [{"cells", "cls"}]}`` of strings.

    Returns ``None`` for a missing or empty table (the template then prints a note).
    """
    if frame is None or len(frame) == 0:
        return None
    cols = [c for c in (columns or list(frame.columns)) if c in frame.columns]
    numeric = [_is_numeric(frame[c]) for c in cols]
    rows = []
    for _, record in frame.iterrows():
        cells = [
            {"text": _fmt(record[c], str(c)), "num": num}
            for c, num in zip(cols, numeric, strict=True)
        ]
        cls = "highlight" if highlight is not None and highlight(record) else ""
        rows.append({"cells": cells, "cls": cls})
    columns = [{"name": str(c), "num": num} for c, num in zip(cols, numeric, strict=True)]
    return {"columns": columns, "rows": rows}


def _kv_table(pairs: Mapping[str, Any]) -> dict[str, Any] | None:
    """A two-column key/value table (values formatted like cells)."""
    if not pairs:
        return None
    frame = pd.DataFrame({"item": list(pairs.keys()), "value": [_fmt(v) for v in pairs.values()]})
    return _table(frame)


def _world_coords(mask: NDArray[np.bool_], affine: NDArray[np.float64]) -> NDArray[np.float64]:
    """MNI coordinates (mm) of the voxels of ``mask``, shape ``(n, 3)``."""
    ijk = np.argwhere(mask)
    if ijk.size == 0:
        return np.zeros((0, 3))
    return ijk @ np.asarray(affine)[:3, :3].T + np.asarray(affine)[:3, 3]


def _centroid_mm(
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
    xyz = _world_coords(union, affine)
    if xyz.shape[0] == 0:
        return None
    if right_only and (xyz[:, 0] > 0).any():
        xyz = xyz[xyz[:, 0] > 0]
    centre = xyz.mean(axis=0)
    return float(centre[0]), float(centre[1]), float(centre[2])


def _finite_percentiles(
    volumes: Sequence[NDArray[np.floating]], q: tuple[float, float]
) -> tuple[float, float] | None:
    """Percentiles ``q`` of the finite voxels pooled over ``volumes``; ``None`` when none."""
    pooled = [np.asarray(v, dtype=float)[np.isfinite(v)] for v in volumes]
    values = np.concatenate(pooled) if pooled else np.zeros(0)
    if values.size == 0:
        return None
    lo, hi = np.percentile(values, q)
    return float(lo), float(hi)


def _provenance_view(prov: Provenance) -> dict[str, Any]:
    """Provenance as strings and tables."""
    config_json = json.dumps(prov.config, indent=2, sort_keys=True, default=str)
    return {
        "version": prov.version,
        "command_line": prov.command_line,
        "started": prov.started,
        "finished": prov.finished,
        "software": _kv_table(dict(sorted(prov.software.items()))),
        "config_json": config_json,
    }


# --------------------------------------------------------------------------------------------
# Participant report
# --------------------------------------------------------------------------------------------
def _session_title(ses: SessionReport) -> str:
    """``ses-<label> (role)``."""
    return f"ses-{ses.session} ({ses.role})"


def _time_mid_min(ses: SessionReport) -> NDArray[np.float64]:
    """Frame mid-times in minutes from the frame bounds in seconds."""
    start = np.asarray(ses.frame_start_s, dtype=float)
    end = np.asarray(ses.frame_end_s, dtype=float)
    return (start + end) / 2.0 / 60.0


def _motion_view(ses: SessionReport) -> dict[str, Any]:
    """Motion figure and summary numbers of one session."""
    conf = ses.confounds
    title = _session_title(ses)
    if conf is None or len(conf) == 0:
        return {"title": title, "figure": None, "note": "no confounds table was produced"}
    t = _time_mid_min(ses)
    times = t if t.size == len(conf) else None
    fig = _figure(
        lambda: figures.motion_svg(conf, times, title=title),
        caption=(
            "Rigid realignment parameters per frame: translations (mm), rotations (degrees) "
            "and framewise displacement (mm). Shaded frames borrowed the transform of the "
            "nearest reliable frame."
        ),
        alt=f"motion {title}",
    )
    stats: dict[str, Any] = {}
    if "framewise_displacement" in conf.columns:
        fd = conf["framewise_displacement"].to_numpy(float)
        finite = fd[np.isfinite(fd)]
        stats["mean FD (mm)"] = float(finite.mean()) if finite.size else float("nan")
        stats["max FD (mm)"] = float(finite.max()) if finite.size else float("nan")
    stats["frames with borrowed transform"] = int(figures.borrowed_frames(conf).sum())
    return {"title": title, "figure": fig, "note": "", "stats": _kv_table(stats)}


def _registration_view(ses: SessionReport) -> dict[str, Any]:
    """Mean PET with template contours (and T1w with PET contours when available)."""
    title = _session_title(ses)
    figs = [
        _figure(
            lambda: figures.overlay_png(
                ses.mean_pet_mni,
                ses.affine,
                contours={"template edges": ses.template},
                title=f"{title}: mean PET in MNI space, template edges",
            ),
            caption="Mean PET after normalisation; lines trace the template's outer and "
            "grey/white edges.",
            alt=f"registration {title}",
        )
    ]
    if ses.t1w_mni is not None:
        t1w = ses.t1w_mni
        figs.append(
            _figure(
                lambda: figures.overlay_png(
                    t1w,
                    ses.affine,
                    contours={"PET edges": ses.mean_pet_mni},
                    title=f"{title}: T1w in MNI space, PET edges",
                ),
                caption="Normalised T1w with the edges of the mean PET (PET-on-T1w check).",
                alt=f"PET on T1w {title}",
            )
        )
    quality = {k: float(v) for k, v in ses.registration_quality.items()}
    return {"title": title, "figures": figs, "quality": _kv_table(quality)}


def _roi_view(ses: SessionReport) -> dict[str, Any]:
    """ROI contours on the mean PET: striatal cut and reference-region cut."""
    title = _session_title(ses)
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
    table = (
        _table(pd.DataFrame(rows), ["roi", "voxels", "volume (mL)", "mean PET"]) if rows else None
    )
    empty = [r["roi"] for r in rows if r["empty"]]
    striatal = [m for k, m in masks.items() if "striatum" in k]
    figs = []
    if masks:
        figs.append(
            _figure(
                lambda: figures.overlay_png(
                    pet,
                    ses.affine,
                    contours={k: v for k, v in masks.items() if k != ses.reference_roi},
                    cut_coords_mm=_centroid_mm(striatal, ses.affine),
                    title=f"{title}: target ROIs on the mean PET",
                ),
                caption="Striatal (and other target) ROIs, cut through the right striatum.",
                alt=f"target ROIs {title}",
            )
        )
    if ses.reference_roi in masks:
        ref = masks[ses.reference_roi]
        figs.append(
            _figure(
                lambda: figures.overlay_png(
                    pet,
                    ses.affine,
                    contours={ses.reference_roi: ref},
                    cut_coords_mm=_centroid_mm([ref], ses.affine),
                    title=f"{title}: reference region ({ses.reference_roi}) on the mean PET",
                ),
                caption="Reference region, cut through its right-hemisphere centroid.",
                alt=f"reference region {title}",
            )
        )
    return {"title": title, "figures": figs, "table": table, "empty": empty}


def _tac_view(ses: SessionReport) -> dict[str, Any]:
    """TAC + fit + residual figure and the parameter table of one session."""
    title = _session_title(ses)
    tacs = ses.tacs
    fig = None
    if tacs is not None and len(tacs) > 0:
        fig = _figure(
            lambda: figures.tac_fit_svg(
                _time_mid_min(ses),
                tacs,
                ses.fitted,
                reference=ses.reference_roi,
                units=ses.tac_units,
                title=title,
            ),
            caption=(
                "Regional TACs (markers), SRTM2 fits (lines) and residuals (measured - fitted), "
                f"in {ses.tac_units}; the reference region ({ses.reference_roi}) is the model "
                "input."
            ),
            alt=f"TACs {title}",
        )
    return {
        "title": title,
        "figure": fig,
        "kinpar": _table(ses.kinpar, ["roi", "BPND", "R1", "k2a", "k2prime"]),
        "k2prime": _fmt(float(ses.k2prime)),
        "k2prime_method": ses.k2prime_method,
    }


def _maps_view(report: ParticipantReport) -> dict[str, Any]:
    """BPND and R1 slices of all sessions on shared colour scales."""
    sessions = report.sessions
    first = sessions[0]
    striatal = [m for k, m in first.roi_masks.items() if "striatum" in k]
    cut = _centroid_mm(striatal, first.affine)
    out: dict[str, Any] = {"figures": [], "notes": []}
    # BPND: the striatum is ~1 % of brain voxels, so the upper limit is the 99.9th percentile.
    specs = (
        ("BPND", "bp_map", "inferno", "BPND", True, 99.9),
        ("R1", "r1_map", "viridis", "R1", False, 99.0),
    )
    for label, attr, cmap, bar_label, from_zero, upper in specs:
        maps = {f"{_session_title(s)}": getattr(s, attr) for s in sessions}
        limits = _finite_percentiles(list(maps.values()), (1.0, upper))
        if limits is None:
            out["notes"].append(f"{label} maps hold no finite voxel (every fit failed or no map).")
            limits = (0.0, 1.0)
        vmin = 0.0 if from_zero else limits[0]
        vmax = max(limits[1], vmin + 1e-6)
        out["figures"].append(
            _figure(
                lambda maps=maps, vmin=vmin, vmax=vmax, cmap=cmap, bar_label=bar_label: (
                    figures.map_slices_png(
                        maps,
                        first.template,
                        first.affine,
                        vmin=vmin,
                        vmax=vmax,
                        cmap=cmap,
                        cut_coords_mm=cut,
                        colourbar_label=bar_label,
                        title=f"{bar_label} (SRTM2), all sessions on one colour scale",
                    )
                ),
                caption=(
                    f"{label} maps on the template, same colour scale for every session "
                    f"({_fmt(vmin)} to {_fmt(vmax)}); voxels without a valid fit are transparent."
                ),
                alt=f"{label} maps",
            )
        )
    return out


def _fit_status_view(sessions: Sequence[SessionReport]) -> dict[str, Any] | None:
    """Voxelwise fit counts per session; rows with > 5 % failures are highlighted."""
    rows = []
    for ses in sessions:
        n = int(ses.n_fit_voxels)
        pct = 100.0 / n if n > 0 else float("nan")
        finite = int(np.isfinite(np.asarray(ses.bp_map, dtype=float)).sum())
        rows.append(
            {
                "session": _session_title(ses),
                "voxels fitted": n,
                "failed": int(ses.n_failed),
                "failed (%)": _fmt_percent(ses.n_failed * pct),
                "at k2a bound": int(ses.n_at_bound),
                "at bound (%)": _fmt_percent(ses.n_at_bound * pct),
                "finite BPND voxels": finite,
            }
        )
    frame = pd.DataFrame(rows)
    failed_fraction = {
        _session_title(s): s.n_failed / s.n_fit_voxels if s.n_fit_voxels > 0 else 0.0
        for s in sessions
    }
    return _table(frame, highlight=lambda r: failed_fraction[r["session"]] > 0.05)


def _fmt_percent(value: float) -> str:
    """Percentages with 2 decimals; tiny non-zero values as ``<0.01``."""
    if not np.isfinite(value):
        return "n/a"
    if 0 < value < 0.01:
        return "<0.01"
    return f"{value:.2f}"


def _participant_methods(report: ParticipantReport) -> str:
    """Methods paragraph generated from the report contents."""
    n_frames = sorted({int(s.n_frames) for s in report.sessions})
    durations = sorted(
        {float(np.max(s.frame_end_s)) / 60.0 for s in report.sessions if s.n_frames}
    )
    frames_text = " or ".join(str(n) for n in n_frames)
    dur_text = " / ".join(f"{d:.0f}" for d in durations) or "n/a"
    methods = sorted({s.k2prime_method for s in report.sessions})
    refs = " / ".join(sorted({s.reference_roi for s in report.sessions}))
    return (
        f"Each dynamic PET session ({frames_text} frames, {dur_text} min) was realigned to a "
        f"reference frame with rigid registrations in ANTs (Avants et al. 2008); frames with too "
        f"few counts took the transform of the nearest reliable frame. Images were normalised "
        f"to the {report.template_name} template ({report.normalisation}) and regional "
        f"time-activity curves were extracted with the {report.atlas_name} atlas, with the "
        f"{refs} as reference region. The reference efflux rate k2' was estimated "
        f"once per session ({'; '.join(methods)}) with the simplified reference tissue model "
        f"(SRTM; Lammertsma & Hume 1996) and then fixed in SRTM2 (Wu & Carson 2002) to estimate "
        f"BPND and R1 for each ROI (nonlinear least squares) and each voxel (basis-function "
        f"method; Gunn et al. 1997). Voxels whose fit failed are NaN in the maps and counted in "
        f"the fit status; voxels whose best basis function lies at the edge of the k2a range are "
        f"flagged."
    )


def render_participant(report: ParticipantReport) -> str:
    """Render the participant report ``sub-<label>.html``.

    Parameters
    ----------
    report : ParticipantReport
        Everything the report shows (arrays on the analysis grid, tables, provenance).

    Returns
    -------
    str
        A self-contained HTML document (inline CSS, PNG data URIs, inline SVG).

    Raises
    ------
    InputError
        If the report has no session.
    jinja2.UndefinedError
        If a template variable is missing (a programming error; StrictUndefined).
    """
    if not report.sessions:
        msg = f"sub-{report.participant_id}: the participant report needs at least one session."
        raise InputError(msg)
    sessions = report.sessions
    session_rows = pd.DataFrame(
        [
            {
                "session": f"ses-{s.session}",
                "role": s.role,
                "PET file": s.pet_file,
                "frames": int(s.n_frames),
                "scan (min)": float(np.max(s.frame_end_s)) / 60.0 if s.n_frames else np.nan,
                "k2' (1/min)": float(s.k2prime),
            }
            for s in sessions
        ]
    )
    warnings = [*report.warnings]
    for s in sessions:
        warnings += [f"ses-{s.session}: {w}" for w in s.warnings]
    warnings += [f"QC warning: {c.describe()}" for c in report.qc.flagged("warn")]
    errors = [*report.errors, *(f"QC fail: {c.describe()}" for c in report.qc.flagged("fail"))]
    roles = {s.role for s in sessions}
    if len(sessions) == 1:
        warnings.append(
            f"Only one session (ses-{sessions[0].session}, {sessions[0].role}) is available; "
            "no baseline/challenge comparison is possible for this participant."
        )
    context = {
        "page_title": f"sub-{report.participant_id}",
        "css": _stylesheet(),
        "version": __version__,
        "participant_id": report.participant_id,
        "summary": {
            "sessions": _table(session_rows),
            "normalisation": report.normalisation,
            "template_name": report.template_name,
            "atlas_name": report.atlas_name,
            "roles": ", ".join(sorted(roles)),
        },
        "errors": errors,
        "warnings": warnings,
        "motion": [_motion_view(s) for s in sessions],
        "registration": [_registration_view(s) for s in sessions],
        "rois": [_roi_view(s) for s in sessions],
        "tacs": [_tac_view(s) for s in sessions],
        "maps": _maps_view(report),
        "fit_status": _fit_status_view(sessions),
        "outputs": list(report.outputs),
        "methods": _participant_methods(report),
        "citations": list(PARTICIPANT_CITATIONS),
        "provenance": _provenance_view(report.provenance),
        "sections": [
            ("summary", "Summary"),
            ("motion", "Motion"),
            ("registration", "Registration"),
            ("rois", "Regions of interest"),
            ("tacs", "TACs and fits"),
            ("parameters", "Parameters"),
            ("maps", "Parametric maps"),
            ("fit-status", "Fit status"),
            ("outputs", "Outputs"),
            ("methods", "Methods"),
            ("provenance", "Provenance"),
        ],
    }
    html = build_environment().get_template("participant.html.j2").render(**context)
    _log_size(html, f"sub-{report.participant_id}")
    return html


def _log_size(html: str, what: str) -> None:
    """Log the size of a report, warning above the budget."""
    size = len(html.encode("utf-8"))
    if size > MAX_REPORT_BYTES:
        logger.warning("%s report is %.1f MB, above the 5 MB budget.", what, size / 2**20)
    else:
        logger.debug("%s report: %.0f kB", what, size / 1024)


# --------------------------------------------------------------------------------------------
# Group report
# --------------------------------------------------------------------------------------------
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
        text = " x ".join(_fmt(v) for v in np.ravel(value))
    else:
        text = _fmt(value)
    return f"{text} {unit}".strip()


def _group_methods(report: GroupReport) -> list[str]:
    """Methods paragraphs generated from ``report.parameters``."""
    par = report.parameters
    n = len(report.participants)
    n_perm = par.get("n_permutations")
    alpha = par.get("alpha", 0.05)
    cft = par.get("cluster_forming_t")
    cft_text = f" (|t| > {_fmt(cft)})" if cft is not None else ""
    paragraphs = [
        f"Participant BPND and R1 maps in MNI space of {n} participant(s) were smoothed with a "
        f"Gaussian kernel of {_param(par, 'smoothing_fwhm_mm', 'mm')} FWHM and compared between "
        f"the challenge and the baseline session with voxelwise paired t-tests "
        f"(df = {_param(par, 'df')}), separately for decreases and increases.",
        "Clusters were formed at an uncorrected "
        f"p < {_param(par, 'cluster_forming_p')}{cft_text}. "
        f"The smoothness estimated from the residuals was FWHM = {_param(par, 'fwhm_mm', 'mm')} "
        f"(search volume: {_param(par, 'resels')} resels). Cluster-level family-wise error rates "
        f"were computed with random field theory (Friston et al. 1994; Worsley et al. 1996); "
        f"clusters with p(FWE) < {_fmt(alpha)} are reported.",
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
    return paragraphs


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


def _stat_map_view(cmap: ClusterMapReport, report: GroupReport) -> dict[str, Any]:
    """MIP and peak slices of one statistic map."""
    title = f"{cmap.measure}: challenge {cmap.direction} (|t| ≥ {_fmt(cmap.threshold_t)})"
    labels = np.asarray(cmap.cluster_labels)
    n_clusters = len(np.setdiff1d(np.unique(labels), [0]))
    t = np.asarray(cmap.t_map, dtype=float)
    finite = np.abs(t[np.isfinite(t)])
    limit = float(max(finite.max() if finite.size else 0.0, 1.5 * cmap.threshold_t))
    figs = [
        _figure(
            lambda: figures.mip_png(
                t,
                report.affine,
                cmap.threshold_t,
                cluster_labels=labels if n_clusters else None,
                background=report.template,
                vmax=limit,
                title=f"{title}: maximum-intensity projections",
            ),
            caption=(
                "Glass-brain maximum-intensity projections of the paired t map "
                "(challenge - baseline), "
                + (
                    "restricted to the reported clusters."
                    if n_clusters
                    else "all supra-threshold voxels (no cluster reported)."
                )
            ),
            alt=f"MIP {title}",
        )
    ]
    peak = _peak_mm(cmap, report.affine)
    if peak is not None:
        shown = np.where(labels > 0, t, np.nan)
        figs.append(
            _figure(
                lambda: figures.overlay_png(
                    report.template,
                    report.affine,
                    overlay=shown,
                    cut_coords_mm=peak,
                    cmap="RdBu_r",
                    vmin=-limit,
                    vmax=limit,
                    threshold=cmap.threshold_t,
                    colourbar_label="t",
                    title=f"{title}: slices through the peak "
                    f"({peak[0]:.0f}, {peak[1]:.0f}, {peak[2]:.0f}) mm",
                ),
                caption="Clusters over the template, cut through the peak voxel.",
                alt=f"peak slices {title}",
            )
        )
    return {
        "title": title,
        "n_clusters": n_clusters,
        "figures": figs,
        "note": "" if n_clusters else "No cluster survived the threshold for this contrast.",
    }


def _paired_views(roi_values: pd.DataFrame) -> list[_Figure]:
    """Paired BPND plots (striatal ROIs) and R1 plots (exploratory ROIs) that have data."""
    figs = []
    if roi_values is None or len(roi_values) == 0 or "roi" not in roi_values.columns:
        return figs
    present = set(roi_values["roi"].astype(str))
    specs = (
        ("BPND", _STRIATAL_ROIS, "BPND in the striatal ROIs"),
        ("R1", _EXPLORATORY_ROIS, "R1 in the exploratory ROIs"),
    )
    for measure, rois, caption in specs:
        has = roi_values["measure"].astype(str) == measure
        wanted = [r for r in rois if r in present and (has & (roi_values["roi"] == r)).any()]
        if not wanted:
            continue
        figs.append(
            _figure(
                lambda measure=measure, wanted=wanted, caption=caption: figures.paired_plot_svg(
                    roi_values, measure, wanted, title=caption
                ),
                caption=f"{caption}: one line per participant (red: decrease, blue: increase); "
                "black: mean ± SD.",
                alt=caption,
            )
        )
    return figs


def _correlation_views(report: GroupReport) -> tuple[list[_Figure], list[str]]:
    """Scatter plots for each row of the correlations table, plus notes for missing data."""
    figs: list[_Figure] = []
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
        r, df, p = (float(row.get(k, np.nan)) for k in ("r", "df", "p"))
        figs.append(
            _figure(
                lambda xv=xv, yv=yv, x=x_name, y=y_name, r=r, df=df, p=p: figures.scatter_svg(
                    xv, yv, x, y, r, df, p
                ),
                caption=f"{y_name} vs {x_name}",
                alt=f"{y_name} vs {x_name}",
            )
        )
    return figs, notes


def _group_warnings(report: GroupReport) -> list[str]:
    """Group warnings, plus one for a small sample."""
    warnings = list(report.warnings)
    if len(report.participants) < 3:
        warnings.append(
            f"Only {len(report.participants)} participant(s) were included; group statistics "
            "are not meaningful."
        )
    return warnings


def render_group(report: GroupReport) -> str:
    """Render the group report ``group.html``.

    Parameters
    ----------
    report : GroupReport
        Statistic maps, tables and provenance of the group analysis.

    Returns
    -------
    str
        A self-contained HTML document (inline CSS, PNG data URIs, inline SVG).

    Raises
    ------
    jinja2.UndefinedError
        If a template variable is missing (a programming error; StrictUndefined).
    """
    excluded = pd.DataFrame(
        [(f"sub-{label}", status, reason) for label, status, reason in report.excluded],
        columns=["participant", "status", "reason"],
    )
    correlation_figs, correlation_notes = _correlation_views(report)
    behaviour = report.behavior_effects
    aversion = report.aversion_explained_variance
    context = {
        "page_title": "Group report",
        "css": _stylesheet(),
        "version": __version__,
        "n_participants": len(report.participants),
        "participants": [f"sub-{p}" for p in report.participants],
        "excluded": _table(excluded),
        "warnings": _group_warnings(report),
        "methods": _group_methods(report),
        "parameters": _kv_table(dict(sorted(report.parameters.items()))),
        "stat_maps": [_stat_map_view(c, report) for c in report.cluster_maps],
        "clusters": _table(report.clusters),
        "paired": _paired_views(report.roi_values),
        "roi_stats": _table(
            report.roi_stats,
            highlight=lambda r: bool(pd.notna(r.get("p")) and float(r.get("p")) < 0.05),
        ),
        "participant_measures": _table(report.participant_measures),
        "correlations": _table(report.correlations),
        "correlation_figures": correlation_figs,
        "correlation_notes": correlation_notes,
        "behavior": _table(
            behaviour,
            highlight=lambda r: bool(r.get("selected") is True or r.get("selected") == 1),
        ),
        "aversion": None if aversion is None else f"{100.0 * float(aversion):.1f} %",
        "citations": list(GROUP_CITATIONS),
        "provenance": _provenance_view(report.provenance),
        "sections": [
            ("summary", "Summary"),
            ("methods", "Methods"),
            ("stat-maps", "Statistic maps"),
            ("clusters", "Clusters"),
            ("roi-plots", "ROI plots"),
            ("roi-stats", "ROI statistics"),
            ("measures", "Participant measures"),
            ("correlations", "Correlations"),
            ("behaviour", "Behaviour"),
            ("provenance", "Provenance"),
        ],
    }
    html = build_environment().get_template("group.html.j2").render(**context)
    _log_size(html, "group")
    return html
