"""Participant and group HTML reports (Jinja2, self-contained, size-capped).

The pipelines fill the dataclasses of :mod:`bids_app.report.data` and call
:func:`render_participant` / :func:`render_group` (the pipelines write the HTML).
"""

from __future__ import annotations

from bids_app.report.data import (
    ClusterMapReport,
    GroupReport,
    ParticipantReport,
    Provenance,
    SessionReport,
)
from bids_app.report.render import render_group, render_participant

__all__ = [
    "ClusterMapReport",
    "GroupReport",
    "ParticipantReport",
    "Provenance",
    "SessionReport",
    "render_group",
    "render_participant",
]
