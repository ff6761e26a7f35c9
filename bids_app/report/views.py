"""Shared view helpers of both reports: figures, numbers formatted by meaning, tables, badges.

A "view" is what the templates receive: strings, lists, dicts and pre-built figures. Numbers are
formatted by what they mean, through :func:`fmt` and the column name: binding potentials and
other ratios with 3 decimals, p values with 2 significant digits, t and effect sizes with 2
decimals, rate constants with 4, percentages with 1, coordinates as whole mm, volumes in mL.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup

from bids_app.errors import InputError
from bids_app.qc import QcCheck, QcVerdict

logger = logging.getLogger(__name__)

#: Significance level of the highlights.
ALPHA = 0.05

_P_COLUMN = re.compile(r"^(p|p_.*|.*_p|pfwe.*|p\(.*\))$")
_TWO_DECIMALS = re.compile(r"^(t|cohen_d|r|r_loo_.*|spearman_rho|z_equivalent|peak_t|.*_t)$")
_RATE = re.compile(r"(k2a|k2prime|k2'|1/min)")
_COORDINATE = re.compile(r"^(peak_[xyz]|[xyz]_mm)$")
_PERCENT = re.compile(r"(_pct|\(%\))$")


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Figure:
    """A pre-built figure, or a note saying why it is missing.

    Attributes
    ----------
    kind : {"img", "svg", "missing"}
        PNG data URI, inline SVG, or a note.
    content : str or Markup
        The data URI, the SVG markup or the note.
    caption, alt : str
        Caption and alternative text.
    width, height : int
        Pixel size of a PNG (0 otherwise): written on the ``<img>`` so that the browser
        reserves the space before a lazy image loads and in-page links land where they should.
    """

    kind: str
    content: str | Markup
    caption: str
    alt: str
    width: int = 0
    height: int = 0


def png_size(data_uri: str) -> tuple[int, int]:
    """Width and height (px) of a PNG data URI, from its IHDR chunk."""
    head = base64.b64decode(data_uri.split(",", 1)[1][:64])
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        msg = "not a PNG data URI"
        raise InputError(msg)
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


def figure(builder: Callable[[], str], caption: str, alt: str) -> Figure:
    """Build one figure; on failure return a "not available" note and log the cause.

    The report must be written even when one figure cannot be drawn (bad inputs to one plot
    should not hide the rest of the QC), so errors of the plotting stack are caught here.
    """
    try:
        content = builder()
    except (InputError, ValueError, TypeError, IndexError, KeyError, RuntimeError) as exc:
        logger.warning("Report figure %r not drawn: %s", alt, exc, exc_info=True)
        return Figure("missing", f"not available because the figure failed: {exc}", caption, alt)
    if content.startswith("data:image/png;base64,"):
        width, height = png_size(content)
        return Figure("img", content, caption, alt, width, height)
    return Figure("svg", Markup(content), caption, alt)  # trusted: built by figures.py


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------
def fmt_p(value: float) -> str:
    """A p value with 2 significant digits (``0.012``, ``0.00031``, ``2.1e-07``)."""
    if not np.isfinite(value):
        return "n/a"
    return f"{value:.2g}"


def fmt(value: Any, column: str = "") -> str:
    """Format one value by the meaning of its column (see the module docstring).

    Parameters
    ----------
    value : object
        The cell; None and non-finite floats are ``n/a``, booleans ``yes``/``no``.
    column : str
        Column (or key) name that says what the number is.
    """
    if value is None:
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return _fmt_float(float(value), column)
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(fmt(v, column) for v in np.ravel(np.asarray(value, dtype=object)))
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    if pd.isna(value):
        return "n/a"
    return str(value)


def _fmt_float(v: float, column: str) -> str:
    if not np.isfinite(v):
        return "n/a"
    name = column.strip().lower()
    if _P_COLUMN.match(name):
        return fmt_p(v)
    if name in ("df", "n", "time_min", "rank") or name.startswith("n_"):
        return f"{v:g}"
    if _COORDINATE.match(name):
        return f"{v:.0f}"
    if _PERCENT.search(name):
        return f"{v:.1f}"
    if _TWO_DECIMALS.match(name):
        return f"{v:.2f}"
    if _RATE.search(name):
        return f"{v:.4f}"
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.2e}"
    if "(ml)" in name or name.endswith("_ml"):
        return f"{v:.2f}"
    return f"{v:.3f}"


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------
def _is_numeric(series: pd.Series) -> bool:
    """Whether a column should be right-aligned."""
    return bool(pd.api.types.is_numeric_dtype(series)) and not pd.api.types.is_bool_dtype(series)


def table(
    frame: pd.DataFrame | None,
    columns: Sequence[str] | None = None,
    highlight: Callable[[pd.Series], bool] | None = None,
    links: Mapping[str, str] | None = None,
) -> dict[str, Any] | None:
    """Turn a DataFrame into ``{"columns": [...], "rows": [{"cells", "cls"}]}`` of strings.

    Parameters
    ----------
    frame : DataFrame or None
        The table; None or empty gives None (the template then prints a note).
    columns : sequence of str, optional
        Columns to show, in order (default: all).
    highlight : callable, optional
        Row -> whether to highlight it.
    links : mapping of str to str, optional
        Column -> column holding a relative link for its cells (e.g. the participant report).
    """
    if frame is None or len(frame) == 0:
        return None
    cols = [c for c in (columns or list(frame.columns)) if c in frame.columns]
    numeric = [_is_numeric(frame[c]) for c in cols]
    rows = []
    for _, record in frame.iterrows():
        cells = []
        for c, num in zip(cols, numeric, strict=True):
            href = ""
            if links and c in links:
                target = record.get(links[c])
                href = str(target) if isinstance(target, str) else ""
            cells.append({"text": fmt(record[c], str(c)), "num": num, "href": href})
        cls = "highlight" if highlight is not None and highlight(record) else ""
        rows.append({"cells": cells, "cls": cls})
    header = [{"name": str(c), "num": num} for c, num in zip(cols, numeric, strict=True)]
    return {"columns": header, "rows": rows}


def kv_table(pairs: Mapping[str, Any]) -> dict[str, Any] | None:
    """A two-column key/value table (values formatted by their key)."""
    if not pairs:
        return None
    frame = pd.DataFrame(
        {"item": list(pairs.keys()), "value": [fmt(v, str(k)) for k, v in pairs.items()]}
    )
    return table(frame)


def significant(column: str, alpha: float = ALPHA) -> Callable[[pd.Series], bool]:
    """Row predicate: ``column`` (a corrected p) is below ``alpha``."""

    def check(row: pd.Series) -> bool:
        value = as_float(row.get(column))
        return bool(np.isfinite(value) and value < alpha)

    return check


def as_float(value: Any) -> float:
    """``value`` as a float; NaN when it is missing or not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


# --------------------------------------------------------------------------------------------
# Quality control
# --------------------------------------------------------------------------------------------
#: Badge text of each status.
STATUS_TEXT = {"pass": "pass", "warn": "warn", "fail": "fail", "info": "info"}


def qc_rows(verdict: QcVerdict) -> list[dict[str, str]]:
    """One row of strings per check: what, where, value, thresholds, status, reason."""
    rows = []
    for check in verdict.checks:
        rows.append(
            {
                "key": check.key,
                "label": check.label,
                "scope": check.scope,
                "value": _check_value(check),
                "unit": check.unit,
                "thresholds": _thresholds(check),
                "status": check.status,
                "reason": check.reason,
            }
        )
    return rows


def _check_value(check: QcCheck) -> str:
    if not np.isfinite(check.value):
        return "not measurable"
    return f"{check.value:.3g}"


def _thresholds(check: QcCheck) -> str:
    sign = ">" if check.bad == "above" else "<"
    parts = []
    if check.warn is not None:
        parts.append(f"warn {sign} {check.warn:g}")
    if check.fail is not None:
        parts.append(f"fail {sign} {check.fail:g}")
    return "; ".join(parts) or "none"


def fd_thresholds(verdict: QcVerdict, scope: str) -> tuple[float | None, float | None]:
    """Warn and fail thresholds of the maximum framewise displacement check of ``scope``."""
    for check in verdict.checks:
        if check.key == "max_fd_mm" and check.scope == scope:
            return check.warn, check.fail
    return None, None
