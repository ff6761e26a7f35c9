"""Render the participant and group HTML reports (Jinja2, self-contained, size-capped).

The renderers turn the input dataclasses of :mod:`bids_app.report.data` into a plain "view"
(strings, lists, dicts and pre-built figures; :mod:`~bids_app.report.participant_views`,
:mod:`~bids_app.report.group_views`) and pass it to the templates. The Jinja environment
autoescapes everything; the only values marked :class:`~markupsafe.Markup` are the SVG figures
built by :mod:`~bids_app.report.figures` and the package's own stylesheet.

A figure that cannot be drawn does not sink the report: the section shows "not available
because ..." and the cause is logged.
"""

from __future__ import annotations

import json
import logging
from importlib.resources import files
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from bids_app import __version__
from bids_app.errors import InputError
from bids_app.report import group_views as gv
from bids_app.report import participant_views as pv
from bids_app.report.data import GroupReport, ParticipantReport, Provenance
from bids_app.report.views import kv_table, significant, table

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_REPORT_BYTES",
    "build_environment",
    "render_group",
    "render_participant",
]

MAX_REPORT_BYTES = 5 * 1024 * 1024
"""Size budget of one report (bytes); exceeding it logs a warning."""

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


def _provenance_view(prov: Provenance) -> dict[str, Any]:
    """Provenance as strings and tables."""
    config_json = json.dumps(prov.config, indent=2, sort_keys=True, default=str)
    return {
        "version": prov.version,
        "command_line": prov.command_line,
        "started": prov.started,
        "finished": prov.finished,
        "software": kv_table(dict(sorted(prov.software.items()))),
        "config_json": config_json,
        "stage_timings": table(prov.stage_timings),
    }


def _log_size(html: str, what: str) -> None:
    """Log the size of a report, warning above the budget."""
    size = len(html.encode("utf-8"))
    if size > MAX_REPORT_BYTES:
        logger.warning("%s report is %.1f MB, above the 5 MB budget.", what, size / 2**20)
    else:
        logger.debug("%s report: %.0f kB", what, size / 1024)


# --------------------------------------------------------------------------------------------
# Participant report
# --------------------------------------------------------------------------------------------
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
    errors, warnings = pv.alerts(report)
    context = {
        "page_title": f"sub-{report.participant_id}",
        "css": _stylesheet(),
        "version": __version__,
        "participant_id": report.participant_id,
        "conventions": pv.CONVENTIONS,
        "summary": {
            "sessions": pv.sessions_table(sessions),
            "normalisation": report.normalisation,
            "template_name": report.template_name,
            "atlas_name": report.atlas_name,
            "roles": ", ".join(sorted({s.role for s in sessions})),
        },
        "qc": pv.qc_view(report),
        "errors": errors,
        "warnings": warnings,
        "motion": [pv.motion_view(s, report) for s in sessions],
        "registration_checks": pv.registration_checks_view(report.registrations),
        "registration": [pv.registration_view(s) for s in sessions],
        "rois": [pv.roi_view(s) for s in sessions],
        "tacs": [pv.tac_view(s) for s in sessions],
        "reference": pv.reference_view(sessions),
        "maps": pv.maps_view(report),
        "fit_status": pv.fit_status_view(sessions),
        "outputs": list(report.outputs),
        "methods": pv.methods(report),
        "citations": list(PARTICIPANT_CITATIONS),
        "provenance": _provenance_view(report.provenance),
        "sections": [
            ("summary", "Summary"),
            ("qc", "Quality control"),
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


# --------------------------------------------------------------------------------------------
# Group report
# --------------------------------------------------------------------------------------------
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
    correlation_figs, correlation_notes = gv.correlation_views(report)
    aversion = report.aversion_explained_variance
    context = {
        "page_title": "Group report",
        "css": _stylesheet(),
        "version": __version__,
        "conventions": gv.CONVENTIONS,
        "n_participants": len(report.participants),
        "participants": [f"sub-{p}" for p in report.participants],
        "excluded": table(excluded),
        "warnings": gv.group_warnings(report),
        "participant_qc": gv.participant_qc_view(report),
        "net_change": gv.net_change_view(report),
        "session_checks": gv.session_checks_view(report),
        "methods": gv.methods(report),
        "search_volume": gv.search_volume_lines(report.parameters),
        "parameters": kv_table(dict(sorted(report.parameters.items()))),
        "stat_maps": [gv.stat_map_view(c, report) for c in report.cluster_maps],
        "clusters": gv.clusters_view(report),
        "paired": gv.paired_views(report.roi_values),
        "roi_stats": table(report.roi_stats, highlight=significant("p_corrected")),
        "participant_measures": table(report.participant_measures),
        "correlations": table(report.correlations),
        "correlation_figures": correlation_figs,
        "correlation_notes": correlation_notes,
        "behaviour": gv.behaviour_view(report),
        "aversion": None if aversion is None else f"{100.0 * float(aversion):.1f} %",
        "citations": list(GROUP_CITATIONS),
        "provenance": _provenance_view(report.provenance),
        "sections": [
            ("summary", "Summary"),
            ("participant-qc", "Participant QC"),
            ("net-change", "Net DA release"),
            ("session-checks", "k2' and injection"),
            ("stat-maps", "Statistic maps"),
            ("clusters", "Clusters"),
            ("roi-plots", "ROI plots"),
            ("roi-stats", "ROI statistics"),
            ("measures", "Participant measures"),
            ("correlations", "Correlations"),
            ("behaviour", "Behaviour"),
            ("methods", "Methods"),
            ("provenance", "Provenance"),
        ],
    }
    html = build_environment().get_template("group.html.j2").render(**context)
    _log_size(html, "group")
    return html
