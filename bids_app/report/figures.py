"""Report figures: pure functions from arrays to embeddable strings.

Brain images become size-capped base64 PNG data URIs (``data:image/png;base64,...``); line plots
become inline SVG text (``<svg ...>...</svg>``) with matplotlib's metadata and dates removed and
element ids made unique per figure, so the same input always gives the same bytes and several SVGs
can share one HTML page.

Figures are built on :class:`matplotlib.figure.Figure` directly (Agg canvas, no pyplot), so no
global figure registry is touched and nothing needs closing. Styling uses a scoped
:func:`matplotlib.rc_context`.

Images are reoriented to RAS once (nibabel orientation utilities); slices are shown in the
neurological convention (left hemisphere on the left), with coordinates in MNI mm.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import StrMethodFormatter
from nibabel.orientations import apply_orientation, inv_ornt_aff, io_orientation
from numpy.typing import NDArray
from PIL import Image

from bids_app.errors import InputError

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

logger = logging.getLogger(__name__)

#: The scalar type of a volume, kept by the functions that only slice or reorder its voxels.
_ScalarT = TypeVar("_ScalarT", bound=np.generic)

__all__ = [
    "CHANGE_COLOURS",
    "MAX_DPI",
    "MAX_PNG_WIDTH_PX",
    "SESSION_COLOURS",
    "StripSpec",
    "behaviour_svg",
    "borrowed_frames",
    "distinct_series",
    "edge_levels",
    "format_p",
    "map_slices_png",
    "motion_svg",
    "paired_plot_svg",
    "reference_tacs_svg",
    "scatter_svg",
    "strip_plot_svg",
    "tac_fit_svg",
]

MAX_DPI = 100
"""Upper bound on the resolution of every PNG (dots per inch)."""
MAX_PNG_WIDTH_PX = 1400
"""Upper bound on the width of every PNG (pixels)."""

#: Width of the brain-image PNGs, inches: at :data:`MAX_DPI` about 900 px, the width of a
#: report's content column at a 1024 px window, so the PNGs are shown unscaled and their
#: 11 pt labels stay at least 11 px high.
FIG_WIDTH_IN = 9.2
#: Width of the line plots (SVG), inches; shown at most at their natural size (4/3 px per pt).
LINE_WIDTH_IN = 8.4
_SVG_SALT = "bids_app-report"
#: Ten well-separated colours for curves of different ROIs (no grey: grey is the reference).
_PALETTE = (
    "#1f77b4",
    "#d95f02",
    "#1b9e77",
    "#7570b3",
    "#e7298a",
    "#66a61e",
    "#a6761d",
    "#e6ab02",
    "#17becf",
    "#8c564b",
)
_REFERENCE_COLOUR = "#555555"
#: One colour meaning in every figure of both reports.
SESSION_COLOURS = {"baseline": "#555555", "challenge": "#e08214"}
"""Sessions: grey = baseline, orange = challenge."""
CHANGE_COLOURS = {"decrease": "#2166ac", "increase": "#b2182b"}
"""Changes (challenge - baseline): blue = lower under the challenge, red = higher (as RdBu_r)."""
_STYLE: dict[RcKeyType, Any] = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 10.0,
    "axes.titlesize": 11.0,
    "axes.labelsize": 10.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e3e6ea",
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "legend.fontsize": 9.0,
    "xtick.labelsize": 9.0,
    "ytick.labelsize": 9.0,
    "svg.hashsalt": _SVG_SALT,
    "svg.fonttype": "none",
    "path.simplify": True,
}

View = Literal["x", "y", "z"]
_VIEWS: tuple[View, View, View] = ("x", "y", "z")


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------
@contextmanager
def _style() -> Iterator[None]:
    """Apply the report style for the duration of one figure (restored afterwards)."""
    with mpl.rc_context(_STYLE):
        yield


def _png_data_uri(fig: Figure, dpi: float = MAX_DPI) -> str:
    """Encode ``fig`` as a palette PNG data URI, capping DPI and pixel width.

    The image is reduced to an adaptive 256-colour palette (median cut, no dithering): brain
    slices use few distinct colours, and the palette PNG is 2-3x smaller than RGBA, which keeps
    reports far below their size budget.

    Parameters
    ----------
    fig : Figure
        The figure (its size in inches decides the pixel size).
    dpi : float
        Requested resolution; capped at :data:`MAX_DPI` and at ``MAX_PNG_WIDTH_PX / width``.

    Returns
    -------
    str
        ``data:image/png;base64,...``.
    """
    width_in = float(fig.get_figwidth())
    dpi_used = min(float(dpi), MAX_DPI, MAX_PNG_WIDTH_PX / width_in)
    fig.set_dpi(dpi_used)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[..., :3]
    image = Image.fromarray(np.ascontiguousarray(rgb)).quantize(
        colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )
    buf = io.BytesIO()
    image.save(buf, format="png", dpi=(dpi_used, dpi_used))
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _svg_text(fig: Figure, label: str = "") -> str:
    """Serialise ``fig`` as inline SVG: no XML prolog, metadata or fixed size; unique ids.

    Parameters
    ----------
    fig : Figure
        The figure.
    label : str
        Accessible label (``aria-label``) of the SVG element.

    Returns
    -------
    str
        ``<svg ...>...</svg>`` scaled by its ``viewBox`` to the width of its container.
    """
    buf = io.StringIO()
    with _style():
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.find("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.DOTALL)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)
    root_end = text.find(">")
    width = re.search(r'\swidth="([\d.]+)pt"', text[:root_end])
    natural_px = float(width.group(1)) * 4.0 / 3.0 if width else 800.0
    root = re.sub(r'\s(width|height)="[^"]*"', "", text[:root_end])
    aria = label.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    # Never scale above the natural size, so text sizes match across figures.
    root += (
        f' class="svg-figure" role="img" aria-label="{aria}" style="max-width: {natural_px:.0f}px"'
    )
    text = root + text[root_end:]
    return _uniquify_svg_ids(text).strip()


def _uniquify_svg_ids(svg: str) -> str:
    """Prefix every ``id`` (and its ``#id`` references) with a hash of the SVG content.

    Matplotlib derives ids from the path data and a salt, so two figures on one page could
    repeat an id; the content hash keeps ids deterministic yet distinct between figures.
    """
    ids = set(re.findall(r'\sid="([^"]+)"', svg))
    if not ids:
        return svg
    prefix = "f" + hashlib.sha1(svg.encode("utf-8"), usedforsecurity=False).hexdigest()[:8] + "-"
    svg = re.sub(
        r'(\sid=")([^"]+)(")', lambda m: m.group(1) + prefix + m.group(2) + m.group(3), svg
    )

    def _ref(match: re.Match[str]) -> str:
        name = match.group(1)
        return "#" + prefix + name if name in ids else match.group(0)

    return re.sub(r"#([A-Za-z_][\w.\-]*)", _ref, svg)


def format_p(p: float | None) -> str:
    """Format a p value with 2 significant digits (``"p = 0.012"``, ``"p = 3.1e-05"``)."""
    if p is None or not np.isfinite(p):
        return "p = n/a"
    return f"p = {p:.2g}"


# --------------------------------------------------------------------------------------------
# Geometry of brain images
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Grid:
    """RAS-reoriented voxel grid: per-axis voxel size and origin, in mm."""

    shape: tuple[int, int, int]
    origin_mm: NDArray[np.float64]
    step_mm: NDArray[np.float64]
    ornt: NDArray[np.float64] = field(repr=False)

    def centres(self, axis: int) -> NDArray[np.float64]:
        """Voxel-centre coordinates along ``axis`` (mm), shape ``(shape[axis],)``."""
        return self.origin_mm[axis] + self.step_mm[axis] * np.arange(self.shape[axis])

    def bounds(self, axis: int) -> tuple[float, float]:
        """Outer edges of the grid along ``axis`` (mm)."""
        c = self.centres(axis)
        half = 0.5 * self.step_mm[axis]
        return float(c[0] - half), float(c[-1] + half)

    def extent_mm(self, axis: int) -> float:
        """Length of the grid along ``axis`` (mm)."""
        lo, hi = self.bounds(axis)
        return hi - lo

    def index(self, axis: int, coord_mm: float) -> int:
        """Nearest voxel index along ``axis`` for ``coord_mm``, clipped to the grid."""
        i = round((coord_mm - self.origin_mm[axis]) / self.step_mm[axis])
        return int(np.clip(i, 0, self.shape[axis] - 1))

    def coord(self, axis: int, index: int) -> float:
        """Coordinate (mm) of voxel ``index`` along ``axis``."""
        return float(self.origin_mm[axis] + self.step_mm[axis] * index)

    def reorient(self, volume: NDArray[_ScalarT]) -> NDArray[_ScalarT]:
        """Return ``volume`` in RAS voxel order."""
        return np.asarray(apply_orientation(np.asarray(volume), self.ornt))


def _make_grid(shape: Sequence[int], affine: NDArray[np.float64]) -> _Grid:
    """Build the RAS grid of an image of ``shape`` with ``affine``.

    Raises
    ------
    InputError
        If the shape is not 3-D or the affine is not 4x4 and finite.
    """
    aff = np.asarray(affine, dtype=float)
    if len(shape) != 3:
        msg = f"Report images must be 3-D; got shape {tuple(shape)}."
        raise InputError(msg)
    if aff.shape != (4, 4) or not np.all(np.isfinite(aff)):
        msg = f"Report images need a finite 4x4 affine; got shape {aff.shape}."
        raise InputError(msg)
    ornt = io_orientation(aff)
    shape3 = (int(shape[0]), int(shape[1]), int(shape[2]))
    ras_aff = aff @ inv_ornt_aff(ornt, shape3)
    new_shape = apply_orientation(np.empty(shape3, dtype=bool), ornt).shape
    # Oblique affines are displayed approximately (axis-aligned); MNI grids are not oblique.
    step = np.array([np.linalg.norm(ras_aff[:3, k]) for k in range(3)])
    step = np.where(step > 0, step, 1.0)
    return _Grid(
        shape=(int(new_shape[0]), int(new_shape[1]), int(new_shape[2])),
        origin_mm=ras_aff[:3, 3].copy(),
        step_mm=step,
        ornt=ornt,
    )


def _check_same_shape(
    reference: NDArray[np.generic], name: str, other: NDArray[np.generic]
) -> None:
    """Raise :class:`InputError` when ``other`` is not on the grid of ``reference``."""
    if np.shape(other) != np.shape(reference):
        msg = (
            f"Report figure: {name} has shape {np.shape(other)} but the background has "
            f"{np.shape(reference)}; resample it to the analysis grid first."
        )
        raise InputError(msg)


def _take(volume: NDArray[_ScalarT], view: View, index: int) -> NDArray[_ScalarT]:
    """Slice a RAS volume; rows of the result run bottom→top of the displayed panel."""
    if view == "x":
        return np.asarray(volume[index, :, :]).T
    if view == "y":
        return np.asarray(volume[:, index, :]).T
    return np.asarray(volume[:, :, index]).T


def _axes_of(view: View) -> tuple[int, int]:
    """Grid axes shown horizontally and vertically in ``view``."""
    return {"x": (1, 2), "y": (0, 2), "z": (0, 1)}[view]


def _extent(grid: _Grid, view: View) -> tuple[float, float, float, float]:
    """``imshow`` extent (left, right, bottom, top) in mm for ``view``."""
    h, v = _axes_of(view)
    return (*grid.bounds(h), *grid.bounds(v))


def _robust_limits(
    volume: NDArray[np.floating], lower: float = 2.0, upper: float = 99.5
) -> tuple[float, float]:
    """Percentile display limits of the finite, non-zero voxels; ``(0, 1)`` when there are none."""
    values = np.asarray(volume, dtype=float)
    values = values[np.isfinite(values) & (values != 0)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(values, [lower, upper])
    if not hi > lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def _centre_of_mass_mm(volume: NDArray[np.generic], grid: _Grid) -> tuple[float, float, float]:
    """Centre of mass (mm) of the positive finite voxels of a RAS volume, else the grid centre."""
    weights = np.asarray(volume, dtype=float)
    weights = np.where(np.isfinite(weights) & (weights > 0), weights, 0.0)
    total = weights.sum()
    coords = []
    for axis in range(3):
        c = grid.centres(axis)
        if total > 0:
            other = tuple(a for a in range(3) if a != axis)
            coords.append(float(np.dot(weights.sum(axis=other), c) / total))
        else:
            coords.append(float(c.mean()))
    return coords[0], coords[1], coords[2]


def _otsu_threshold(values: NDArray[np.float64], bins: int = 256) -> float:
    """Otsu's threshold of a 1-D sample (maximises the between-class variance)."""
    hist, edges = np.histogram(values, bins=bins)
    centres = 0.5 * (edges[:-1] + edges[1:])
    weight_low = np.cumsum(hist).astype(float)
    weight_high = weight_low[-1] - weight_low
    sum_low = np.cumsum(hist * centres)
    mean_low = sum_low / np.maximum(weight_low, 1.0)
    mean_high = (sum_low[-1] - sum_low) / np.maximum(weight_high, 1.0)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(centres[int(np.argmax(between[:-1]))]) if bins > 1 else float(centres[0])


def edge_levels(volume: NDArray[np.floating]) -> list[float]:
    """Two contour levels of an image: its outer edge and its main internal boundary.

    Otsu's threshold of the positive voxels separates tissue from background (outer edge); a
    second Otsu threshold among the tissue voxels separates grey from white matter on a T1w
    template (or high- from low-uptake tissue on PET).
    """
    values = np.asarray(volume, dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    if values.size < 2 or np.ptp(values) == 0:
        return []
    outer = _otsu_threshold(values)
    inner_values = values[values > outer]
    levels = {outer}
    if inner_values.size > 1 and np.ptp(inner_values) > 0:
        levels.add(_otsu_threshold(inner_values))
    return sorted(levels)


# --------------------------------------------------------------------------------------------
# Orthogonal slices (PNG)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Row:
    """One row of three orthogonal panels (RAS volumes)."""

    label: str
    background: NDArray[np.floating]
    overlay: NDArray[np.floating] | None = None


@dataclass(frozen=True)
class _Colour:
    """Colour scale of the overlays."""

    cmap: str
    vmin: float
    vmax: float
    threshold: float | None = None
    label: str = ""
    alpha: float = 0.9


def _panel_ratios(grid: _Grid) -> list[float]:
    """Width/height ratio of the sagittal, coronal and axial panels."""
    ex, ey, ez = (grid.extent_mm(a) for a in range(3))
    return [ey / ez, ex / ez, ex / ey]


def _masked_overlay(overlay: NDArray[np.floating], threshold: float | None) -> np.ma.MaskedArray:
    """Mask non-finite voxels and, with a threshold, voxels with ``|value| < threshold``."""
    values = np.asarray(overlay, dtype=float)
    hide = ~np.isfinite(values)
    if threshold is not None:
        hide |= np.abs(np.nan_to_num(values)) < threshold
    return np.ma.masked_array(np.nan_to_num(values), mask=hide)


def _draw_panel(
    ax: Axes,
    grid: _Grid,
    view: View,
    index: int,
    row: _Row,
    colour: _Colour | None,
) -> None:
    """Draw background and overlay of one slice, with its coordinate."""
    extent = _extent(grid, view)
    bg_lo, bg_hi = _robust_limits(row.background)
    bg = np.nan_to_num(np.asarray(_take(row.background, view, index), dtype=float), nan=bg_lo)
    ax.imshow(
        bg,
        cmap="gray",
        vmin=bg_lo,
        vmax=bg_hi,
        origin="lower",
        extent=extent,
        interpolation="bilinear",
    )
    if row.overlay is not None and colour is not None:
        plane = _masked_overlay(_take(row.overlay, view, index), colour.threshold)
        ax.imshow(
            plane,
            cmap=colour.cmap,
            vmin=colour.vmin,
            vmax=colour.vmax,
            origin="lower",
            extent=extent,
            interpolation="nearest",
            alpha=colour.alpha,
        )
    axis = {"x": 0, "y": 1, "z": 2}[view]
    ax.text(
        0.03,
        0.03,
        f"{view} = {grid.coord(axis, index):.0f}",
        transform=ax.transAxes,
        color="white",
        fontsize=11,
        va="bottom",
    )
    if view in ("y", "z"):
        ax.text(0.03, 0.97, "L", transform=ax.transAxes, color="white", fontsize=11, va="top")
        ax.text(
            0.97,
            0.97,
            "R",
            transform=ax.transAxes,
            color="white",
            fontsize=11,
            va="top",
            ha="right",
        )
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_axis_off()


def _ortho_figure(
    rows: Sequence[_Row],
    grid: _Grid,
    cut_index: tuple[int, int, int],
    colour: _Colour | None = None,
    title: str = "",
) -> str:
    """Lay out ``rows`` x 3 orthogonal panels on a black canvas and encode as PNG."""
    ratios = _panel_ratios(grid)
    label_w = 0.35 if any(r.label for r in rows) else 0.05
    cbar_w = 0.9 if colour is not None else 0.05
    gap = 0.05
    top_h = 0.35 if title else 0.05
    bottom_h = 0.05
    row_h = (FIG_WIDTH_IN - label_w - cbar_w - 2 * gap) / sum(ratios)
    fig_h = top_h + bottom_h + row_h * len(rows) + gap * (len(rows) - 1)
    fig = Figure(figsize=(FIG_WIDTH_IN, fig_h), facecolor="black")
    for r, row in enumerate(rows):
        bottom = fig_h - top_h - (r + 1) * row_h - r * gap
        left = label_w
        for view, ratio, index in zip(_VIEWS, ratios, cut_index, strict=True):
            width = ratio * row_h
            ax = fig.add_axes(
                (left / FIG_WIDTH_IN, bottom / fig_h, width / FIG_WIDTH_IN, row_h / fig_h)
            )
            ax.set_facecolor("black")
            _draw_panel(ax, grid, view, index, row, colour)
            left += width + gap / 2
        if row.label:
            fig.text(
                0.5 * label_w / FIG_WIDTH_IN,
                (bottom + row_h / 2) / fig_h,
                row.label,
                color="white",
                rotation=90,
                ha="center",
                va="center",
                fontsize=11,
            )
    if colour is not None:
        _add_colourbar(fig, colour, fig_h, top_h, bottom_h)
    if title:
        fig.text(0.01, 1 - 0.5 * top_h / fig_h, title, color="white", fontsize=12, va="center")
    return _png_data_uri(fig)


def _add_colourbar(
    fig: Figure, colour: _Colour, fig_h: float, top_h: float, bottom_h: float
) -> None:
    """Add a vertical colour bar at the right edge of an orthogonal-slice figure."""
    span = fig_h - top_h - bottom_h
    height = min(span * 0.8, 3.0)
    bottom = bottom_h + (span - height) / 2
    cax = fig.add_axes(
        (1 - 0.6 / FIG_WIDTH_IN, bottom / fig_h, 0.15 / FIG_WIDTH_IN, height / fig_h)
    )
    mappable = ScalarMappable(norm=Normalize(colour.vmin, colour.vmax), cmap=colour.cmap)
    bar = fig.colorbar(mappable, cax=cax)
    bar.outline.set_edgecolor("white")
    bar.ax.tick_params(colors="white", labelsize=10)
    if colour.label:
        bar.ax.set_title(colour.label, color="white", fontsize=11, loc="left")


def _cut_indices(
    grid: _Grid, cut_coords_mm: Sequence[float] | None, fallback_volume: NDArray[np.generic]
) -> tuple[int, int, int]:
    """Voxel indices of the cuts: the given mm coordinates, else the centre of mass."""
    if cut_coords_mm is None:
        cut_coords_mm = _centre_of_mass_mm(fallback_volume, grid)
    if len(cut_coords_mm) != 3:
        msg = f"cut_coords_mm must hold 3 values (x, y, z in mm); got {list(cut_coords_mm)}."
        raise InputError(msg)
    return (
        grid.index(0, float(cut_coords_mm[0])),
        grid.index(1, float(cut_coords_mm[1])),
        grid.index(2, float(cut_coords_mm[2])),
    )


def map_slices_png(
    maps: Mapping[str, NDArray[np.floating]],
    background: NDArray[np.floating],
    affine: NDArray[np.float64],
    vmin: float,
    vmax: float,
    cmap: str = "inferno",
    cut_coords_mm: Sequence[float] | None = None,
    *,
    colourbar_label: str = "",
    title: str = "",
) -> str:
    """Orthogonal slices of several maps on one colour scale, one row per map.

    Parameters
    ----------
    maps : dict of str to (X, Y, Z) ndarray
        Row label -> parametric map (NaN = not fitted, shown transparent).
    background : (X, Y, Z) ndarray
        Grey-scale anatomy behind the maps (template).
    affine : (4, 4) ndarray
        Voxel -> mm affine shared by every volume.
    vmin, vmax : float
        Common colour limits (the same for every row, so sessions compare directly).
    cmap : str, optional
        Matplotlib colour map name.
    cut_coords_mm : (3,) sequence of float, optional
        Cut position; by default the centre of mass of the first map's positive values.
    colourbar_label, title : str, optional
        Colour-bar label and figure title.

    Returns
    -------
    str
        ``data:image/png;base64,...``.
    """
    if not maps:
        msg = "map_slices_png needs at least one map; got none."
        raise InputError(msg)
    background = np.asarray(background, dtype=float)
    grid = _make_grid(background.shape, affine)
    bg = grid.reorient(background)
    rows = []
    for name, volume in maps.items():
        _check_same_shape(background, f"map {name!r}", volume)
        rows.append(
            _Row(label=name, background=bg, overlay=grid.reorient(np.asarray(volume, dtype=float)))
        )
    if cut_coords_mm is None:
        first = rows[0].overlay
        focus = first if first is not None and np.nansum(np.abs(first)) > 0 else bg
        cut = _cut_indices(grid, None, np.nan_to_num(focus))
    else:
        cut = _cut_indices(grid, cut_coords_mm, bg)
    hi = float(vmax) if vmax > vmin else float(vmin) + 1.0
    colour = _Colour(cmap=cmap, vmin=float(vmin), vmax=hi, label=colourbar_label, alpha=1.0)
    with _style():
        return _ortho_figure(rows, grid, cut, colour=colour, title=title)


# --------------------------------------------------------------------------------------------
# Line plots (SVG)
# --------------------------------------------------------------------------------------------
def borrowed_frames(confounds: pd.DataFrame) -> NDArray[np.bool_]:
    """Frames that borrowed a neighbour's transform (``usable == False``)."""
    if "usable" not in confounds.columns:
        return np.zeros(len(confounds), dtype=bool)
    usable = confounds["usable"].astype("boolean").fillna(True).to_numpy(dtype=bool)
    return ~usable


def motion_svg(
    confounds: pd.DataFrame,
    time_mid_min: NDArray[np.float64] | None = None,
    title: str = "",
    fd_thresholds_mm: tuple[float | None, float | None] = (None, None),
) -> str:
    """Motion traces: translations (mm), rotations (degrees) and framewise displacement (mm).

    Parameters
    ----------
    confounds : DataFrame, (n_frames, k)
        Columns ``trans_x/y/z`` (mm), ``rot_x/y/z`` (rad), ``framewise_displacement`` (mm) and
        optionally ``usable`` (False = the frame borrowed a neighbour's transform; shaded).
        Missing columns are skipped.
    time_mid_min : (n_frames,) ndarray, min, optional
        Frame mid-times for the x axis; frame numbers when omitted.
    title : str, optional
        Figure title.
    fd_thresholds_mm : (float or None, float or None), optional
        Warn and fail thresholds of the maximum FD (mm), drawn as amber and red lines.

    Returns
    -------
    str
        Inline ``<svg>`` text.
    """
    n = len(confounds)
    if time_mid_min is not None and len(time_mid_min) != n:
        msg = f"motion_svg: {len(time_mid_min)} frame times for {n} confound rows."
        raise InputError(msg)
    x = np.arange(1, n + 1, dtype=float) if time_mid_min is None else np.asarray(time_mid_min)
    x_label = "frame" if time_mid_min is None else "time since injection (min)"
    panels = []
    trans = [c for c in ("trans_x", "trans_y", "trans_z") if c in confounds.columns]
    rots = [c for c in ("rot_x", "rot_y", "rot_z") if c in confounds.columns]
    if trans:
        panels.append(("translation (mm)", {c: confounds[c].to_numpy(float) for c in trans}))
    if rots:
        panels.append(
            ("rotation (deg)", {c: np.degrees(confounds[c].to_numpy(float)) for c in rots})
        )
    if "framewise_displacement" in confounds.columns:
        fd = confounds["framewise_displacement"].to_numpy(float)
        panels.append(("FD (mm)", {"framewise_displacement": fd}))
    if not panels:
        msg = "motion_svg: confounds hold none of trans_*, rot_*, framewise_displacement."
        raise InputError(msg)
    borrowed = borrowed_frames(confounds)
    half = _half_widths(x)
    with _style():
        fig = Figure(figsize=(LINE_WIDTH_IN, 1.7 * len(panels) + 0.8), facecolor="white")
        axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
        for ax, (ylabel, series) in zip(axes, panels, strict=True):
            for k, (name, values) in enumerate(series.items()):
                colour = _PALETTE[k % 3] if name != "framewise_displacement" else "#333333"
                ax.plot(x, values, color=colour, lw=1.3, marker="o", ms=3, label=name)
            for i in np.flatnonzero(borrowed):
                ax.axvspan(x[i] - half[i], x[i] + half[i], color="#f4b400", alpha=0.25, lw=0)
            if ylabel.startswith("FD"):
                _threshold_lines(ax, fd_thresholds_mm, "mm")
            ax.set_ylabel(ylabel)
            handles, labels = ax.get_legend_handles_labels()
            if ax is axes[0] and borrowed.any():
                handles.append(Patch(color="#f4b400", alpha=0.35, label="borrowed transform"))
                labels.append("borrowed transform")
            if len(handles) > 1:
                ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        axes[-1].set_xlabel(x_label)
        if title:
            axes[0].set_title(title, loc="left")
        fig.align_ylabels(axes)
        fig.tight_layout(h_pad=0.4)
        return _svg_text(fig, label=title or "motion parameters")


def _threshold_lines(
    ax: Axes, thresholds: tuple[float | None, float | None], unit: str, vertical: bool = False
) -> None:
    """Draw warn (amber, dashed) and fail (red, solid) thresholds with their values."""
    for value, colour, style, name in zip(
        thresholds, ("#c77c02", "#b42318"), ("--", "-"), ("warn", "fail"), strict=True
    ):
        if value is None or not np.isfinite(value):
            continue
        label = f"{name} {value:g} {unit}".strip()
        if vertical:
            ax.axvline(value, color=colour, ls=style, lw=1.1, label=label)
        else:
            ax.axhline(value, color=colour, ls=style, lw=1.1, label=label)


def _half_widths(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Half the spacing around each sample (for shading a frame)."""
    if x.size < 2:
        return np.full(x.shape, 0.5)
    d = np.diff(x)
    left = np.concatenate([[d[0]], d])
    right = np.concatenate([d, [d[-1]]])
    return 0.5 * np.minimum(left, right)


def distinct_series(
    series: Mapping[str, NDArray[np.float64]],
) -> tuple[dict[str, NDArray[np.float64]], dict[str, str]]:
    """Drop curves identical to an earlier one (e.g. an ROI defined as another's voxels).

    Returns
    -------
    kept : dict
        The first of every group of identical curves, in input order.
    aliases : dict
        Dropped name -> the kept name it equals.
    """
    kept: dict[str, NDArray[np.float64]] = {}
    aliases: dict[str, str] = {}
    for name, values in series.items():
        twin = next(
            (k for k, v in kept.items() if v.shape == values.shape and np.array_equal(v, values)),
            None,
        )
        if twin is None:
            kept[name] = values
        else:
            aliases[name] = twin
    return kept, aliases


def tac_fit_svg(
    time_mid_min: NDArray[np.float64],
    tacs: Mapping[str, NDArray[np.float64]] | pd.DataFrame,
    fitted: Mapping[str, NDArray[np.float64]],
    reference: str = "cerebellum",
    units: str = "kBq/mL",
    title: str = "",
    separate: Sequence[str] = ("carotid",),
) -> str:
    """Measured TACs with the model fits, blood-like curves on their own axis, and residuals.

    Parameters
    ----------
    time_mid_min : (n_frames,) ndarray, min
        Frame mid-times.
    tacs : dict of str to (n_frames,) ndarray, or DataFrame
        Measured TACs per ROI (a DataFrame's ``frame_start``/``frame_end`` columns are ignored).
        Curves identical to an earlier one are drawn once (named in the legend).
    fitted : dict of str to (n_frames,) ndarray
        Model TACs of the target ROIs (ROIs without a fit are drawn without residuals).
    reference : str, optional
        Name of the reference region (drawn grey, no fit).
    units : str, optional
        Activity units for the axis label.
    title : str, optional
        Figure title.
    separate : sequence of str, optional
        ROIs drawn on their own axis below the tissue curves: the carotid's early blood peak
        is several times the tissue activity and would flatten every other curve.

    Returns
    -------
    str
        Inline ``<svg>`` text.
    """
    t = np.asarray(time_mid_min, dtype=float)
    if isinstance(tacs, pd.DataFrame):
        series = {
            str(c): tacs[c].to_numpy(float)
            for c in tacs.columns
            if c not in ("frame_start", "frame_end")
        }
    else:
        series = {str(k): np.asarray(v, dtype=float) for k, v in tacs.items()}
    for name, values in [*series.items(), *fitted.items()]:
        if len(values) != t.size:
            msg = f"tac_fit_svg: {name!r} has {len(values)} values for {t.size} frames."
            raise InputError(msg)
    series, aliases = distinct_series(series)
    own_axis = [n for n in separate if n in series]
    order = [reference] if reference in series else []
    order += [n for n in series if n != reference and n not in own_axis]
    colours = {name: _PALETTE[k % len(_PALETTE)] for k, name in enumerate(order[1:] + own_axis)}
    heights = [2.6, *([1.2] if own_axis else []), 1.1]
    with _style():
        fig = Figure(figsize=(LINE_WIDTH_IN, 1.6 * len(heights) + 2.2), facecolor="white")
        axes = fig.subplots(len(heights), 1, sharex=True, gridspec_kw={"height_ratios": heights})
        top, residual_ax = axes[0], axes[-1]
        for name in order + own_axis:
            ax = axes[1] if name in own_axis else top
            measured = series[name]
            label = name + "".join(f" = {a}" for a, twin in aliases.items() if twin == name)
            if name == reference:
                ax.plot(
                    t,
                    measured,
                    color=_REFERENCE_COLOUR,
                    marker="s",
                    ms=4,
                    lw=0.9,
                    mfc="white",
                    label=f"{label} (reference)",
                )
                continue
            colour = colours[name]
            ax.plot(t, measured, ls="none", marker="o", ms=4, color=colour, label=label)
            if name in fitted:
                model = np.asarray(fitted[name], dtype=float)
                ax.plot(t, model, color=colour, lw=1.5)
                if name not in own_axis:  # a blood curve's residuals would dwarf the others
                    residual_ax.plot(t, measured - model, color=colour, marker="o", ms=3, lw=0.8)
        residual_ax.axhline(0.0, color="#888888", lw=0.8)
        top.set_ylabel(f"tissue ({units})")
        if own_axis:
            axes[1].set_ylabel(f"{'/'.join(own_axis)} ({units})")
        residual_ax.set_ylabel(f"tissue residual ({units})")
        residual_ax.set_xlabel("time since injection (min)")
        handles: list[Artist] = []
        labels: list[str] = []
        for ax in axes[:-1]:
            h, lab = ax.get_legend_handles_labels()
            handles += h
            labels += lab
        handles.append(Line2D([0], [0], color="#444444", lw=1.5))
        labels.append("SRTM2 fit (lines)")
        top.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        if title:
            top.set_title(title, loc="left")
        fig.align_ylabels(axes)
        fig.tight_layout(h_pad=0.3)
        return _svg_text(fig, label=title or "time-activity curves")


def reference_tacs_svg(
    curves: Mapping[str, tuple[NDArray[np.float64], NDArray[np.float64], str]],
    units: str = "kBq/mL",
    title: str = "",
) -> str:
    """The reference-region TAC of every session on one axis.

    Parameters
    ----------
    curves : dict
        Legend label -> (frame mid-times in min, reference TAC, role); the role
        (``baseline``/``challenge``) picks the colour (:data:`SESSION_COLOURS`).
    units : str, optional
        Activity units.
    title : str, optional
        Figure title.

    Returns
    -------
    str
        Inline ``<svg>`` text.
    """
    if not curves:
        msg = "reference_tacs_svg needs at least one curve; got none."
        raise InputError(msg)
    with _style():
        fig = Figure(figsize=(LINE_WIDTH_IN * 0.75, 3.4), facecolor="white")
        ax = fig.subplots()
        for label, (t, ref, role) in curves.items():
            if len(t) != len(ref):
                msg = f"reference_tacs_svg: {label!r} has {len(ref)} values for {len(t)} times."
                raise InputError(msg)
            colour = SESSION_COLOURS.get(role, _PALETTE[0])
            ax.plot(t, ref, color=colour, marker="s", ms=4, lw=1.3, label=label)
        ax.set_xlabel("time since injection (min)")
        ax.set_ylabel(f"reference region ({units})")
        ax.legend(loc="upper right")
        if title:
            ax.set_title(title, loc="left")
        fig.tight_layout()
        return _svg_text(fig, label=title or "reference-region TACs")


def _require_columns(frame: pd.DataFrame, required: set[str], what: str) -> None:
    """Raise :class:`InputError` naming ``what`` when ``frame`` lacks a required column."""
    missing = required - set(frame.columns)
    if missing:
        msg = f"{what} lacks column(s) {sorted(missing)}."
        raise InputError(msg)


def paired_plot_svg(
    roi_values: pd.DataFrame,
    measure: str,
    rois: Sequence[str],
    title: str = "",
    labels: tuple[str, str] = ("baseline", "challenge"),
    decimals: int = 3,
) -> str:
    """Paired plots: one panel per ROI, one line per participant from baseline to challenge.

    Lines are blue when the participant's value is lower under the challenge and red when it is
    higher (:data:`CHANGE_COLOURS`); black diamonds are the mean ± SD of each session.

    Parameters
    ----------
    roi_values : DataFrame
        Long table with ``participant_id, measure, roi, baseline, challenge``.
    measure : str
        Which ``measure`` rows to draw (e.g. ``"BPND"``).
    rois : sequence of str
        ROIs to draw, one panel each; ROIs without rows show an empty panel with a note.
    title : str, optional
        Figure title.
    labels : (str, str), optional
        Tick labels of the two conditions.
    decimals : int, optional
        Decimals of the y tick labels.

    Returns
    -------
    str
        Inline ``<svg>`` text.
    """
    _require_columns(
        roi_values,
        {"participant_id", "measure", "roi", "baseline", "challenge"},
        "paired_plot_svg: roi_values",
    )
    if not rois:
        msg = "paired_plot_svg needs at least one ROI; got none."
        raise InputError(msg)
    subset = roi_values[roi_values["measure"] == measure]
    ncols = min(len(rois), 4)
    nrows = int(np.ceil(len(rois) / ncols))
    with _style():
        fig = Figure(figsize=(2.1 * ncols + 0.7, 2.9 * nrows + 0.5), facecolor="white")
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax, roi in zip(axes, rois, strict=False):
            _paired_panel(ax, subset[subset["roi"] == roi], roi, labels)
            ax.yaxis.set_major_formatter(StrMethodFormatter(f"{{x:.{decimals}f}}"))
        for ax in axes[len(rois) :]:
            ax.set_visible(False)
        axes[0].set_ylabel(measure)
        if title:
            fig.suptitle(title, x=0.01, ha="left", fontsize=11)
        fig.tight_layout()
        return _svg_text(fig, label=title or f"paired {measure} plots")


def _paired_panel(ax: Axes, rows: pd.DataFrame, roi: str, labels: tuple[str, str]) -> None:
    """One paired panel: participant lines coloured by direction, mean ± SD in black."""
    base = rows["baseline"].to_numpy(float)
    chal = rows["challenge"].to_numpy(float)
    ok = np.isfinite(base) & np.isfinite(chal)
    for b, c in zip(base[ok], chal[ok], strict=True):
        colour = CHANGE_COLOURS["decrease"] if c < b else CHANGE_COLOURS["increase"]
        ax.plot([0, 1], [b, c], color=colour, alpha=0.6, lw=1.0, marker="o", ms=3)
    if ok.any():
        means = [base[ok].mean(), chal[ok].mean()]
        sds = [base[ok].std(ddof=1), chal[ok].std(ddof=1)] if ok.sum() > 1 else [0.0, 0.0]
        ax.errorbar(
            [-0.12, 1.12], means, yerr=sds, color="black", lw=2.0, capsize=3, marker="D", ms=5
        )
    else:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", color="#777777")
    ax.set_xticks([0, 1], list(labels))
    ax.set_xlim(-0.4, 1.4)
    ax.set_title(f"{roi} (n = {int(ok.sum())})", fontsize=10)
    ax.grid(axis="x", visible=False)


def scatter_svg(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    x_label: str,
    y_label: str,
    r: float,
    df: float,
    p: float,
) -> str:
    """Scatter plot with a least-squares line; ``r(df) = …, p = …`` in the title.

    Parameters
    ----------
    x, y : (n,) ndarray
        Paired values (non-finite pairs are left out).
    x_label, y_label : str
        Axis labels.
    r, df, p : float
        The correlation statistics to print (as computed by the statistics step).

    Returns
    -------
    str
        Inline ``<svg>`` text.
    """
    xv = np.asarray(x, dtype=float)
    yv = np.asarray(y, dtype=float)
    if xv.shape != yv.shape:
        msg = f"scatter_svg: x has shape {xv.shape} but y has {yv.shape}."
        raise InputError(msg)
    ok = np.isfinite(xv) & np.isfinite(yv)
    r_text = "n/a" if r is None or not np.isfinite(r) else f"{r:.2f}"
    df_text = "n/a" if df is None or not np.isfinite(df) else f"{df:g}"
    title = f"r({df_text}) = {r_text}, {format_p(p)}"
    with _style():
        fig = Figure(figsize=(4.4, 3.8), facecolor="white")
        ax = fig.subplots()
        ax.scatter(xv[ok], yv[ok], s=30, color=_PALETTE[0], edgecolor="white", lw=0.6, zorder=3)
        if ok.sum() >= 2 and np.ptp(xv[ok]) > 0:
            slope, intercept = np.polyfit(xv[ok], yv[ok], 1)
            xs = np.linspace(xv[ok].min(), xv[ok].max(), 2)
            ax.plot(xs, slope * xs + intercept, color=_PALETTE[1], lw=1.5)
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.set_title(title, fontsize=10.5)
        fig.tight_layout()
        return _svg_text(fig, label=f"{y_label} vs {x_label}: {title}")


@dataclass(frozen=True)
class StripSpec:
    """One QC metric across participants (one strip of :func:`strip_plot_svg`).

    Attributes
    ----------
    label : str
        What was measured, with its scope (``"max FD, ses-sal"``).
    unit : str
        Unit of the values.
    values : dict of str to float
        Participant label -> value (NaN values are left out).
    warn, fail : float or None
        Thresholds (drawn as amber and red lines).
    bad : {"above", "below"}
        Which side of the thresholds is bad.
    """

    label: str
    unit: str
    values: Mapping[str, float]
    warn: float | None = None
    fail: float | None = None
    bad: str = "above"


def strip_plot_svg(strips: Sequence[StripSpec], title: str = "") -> str:
    """MRIQC-style strip plots: one row per QC metric, one dot per participant.

    Dots beyond a threshold are coloured (amber: warn, red: fail) and labelled with the
    participant; every dot carries a tooltip with the participant and value.

    Parameters
    ----------
    strips : sequence of StripSpec
        The metrics, drawn top to bottom.
    title : str, optional
        Figure title.

    Returns
    -------
    str
        Inline ``<svg>`` text.
    """
    if not strips:
        msg = "strip_plot_svg needs at least one metric; got none."
        raise InputError(msg)
    rng = np.random.default_rng(0)  # fixed jitter: the same input gives the same figure
    tooltips: dict[str, str] = {}
    with _style():
        fig = Figure(figsize=(LINE_WIDTH_IN, 1.05 * len(strips) + 0.6), facecolor="white")
        axes = fig.subplots(len(strips), 1, squeeze=False)[:, 0]
        for row, (ax, strip) in enumerate(zip(axes, strips, strict=True)):
            names = [n for n, v in strip.values.items() if np.isfinite(v)]
            values = np.array([strip.values[n] for n in names], dtype=float)
            jitter = rng.uniform(-0.25, 0.25, values.size)
            for k, (name, value) in enumerate(zip(names, values, strict=True)):
                status = _strip_status(value, strip)
                colour = {"pass": "#4a6fa5", "warn": "#c77c02", "fail": "#b42318"}[status]
                gid = f"strip{row}-{k}"
                ax.scatter([value], [jitter[k]], s=34, color=colour, zorder=3, gid=gid)
                tooltips[gid] = f"{name}: {value:.3g} {strip.unit}".strip()
                if status != "pass":
                    ax.annotate(
                        name,
                        (value, jitter[k]),
                        xytext=(4, 4),
                        textcoords="offset points",
                        fontsize=9,
                        color=colour,
                    )
            _threshold_lines(ax, (strip.warn, strip.fail), strip.unit, vertical=True)
            ax.set_ylim(-0.6, 0.6)
            ax.set_yticks([])
            ax.grid(axis="y", visible=False)
            ax.set_title(
                strip.label + (f" ({strip.unit})" if strip.unit else ""), loc="left", fontsize=10
            )
            if strip.warn is not None or strip.fail is not None:
                ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9)
        if title:
            fig.suptitle(title, x=0.01, ha="left", fontsize=11)
        fig.tight_layout(h_pad=0.6)
        svg = _svg_text(fig, label=title or "QC metrics across participants")
    return _add_tooltips(svg, tooltips)


def _strip_status(value: float, strip: StripSpec) -> str:
    """pass / warn / fail of one value against a strip's thresholds."""

    def beyond(limit: float | None) -> bool:
        if limit is None:
            return False
        return value > limit if strip.bad == "above" else value < limit

    if beyond(strip.fail):
        return "fail"
    return "warn" if beyond(strip.warn) else "pass"


def _add_tooltips(svg: str, tooltips: Mapping[str, str]) -> str:
    """Put a ``<title>`` (browser tooltip) into the SVG group of each ``gid``."""
    for gid, text in tooltips.items():
        safe = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

        def with_title(m: re.Match[str], safe: str = safe) -> str:
            return m.group(1) + f"<title>{safe}</title>"

        svg = re.sub(rf'(<g id="(?:[^"]*-)?{re.escape(gid)}"[^>]*>)', with_title, svg, count=1)
    return svg


def behaviour_svg(
    data: pd.DataFrame,
    measures: Sequence[str],
    title: str = "",
    units: Mapping[str, str] | None = None,
) -> str:
    """Time courses of phenotype measures: mean ± SEM over participants per session.

    Parameters
    ----------
    data : DataFrame
        Long table ``participant_id, role, time_min, measure, value`` (role ``baseline`` or
        ``challenge``).
    measures : sequence of str
        Measures to draw, one panel each (at most 4 per row).
    title : str, optional
        Figure title.
    units : mapping, optional
        Measure -> unit for the y labels.

    Returns
    -------
    str
        Inline ``<svg>`` text.
    """
    _require_columns(
        data, {"participant_id", "role", "time_min", "measure", "value"}, "behaviour_svg: data"
    )
    if not measures:
        msg = "behaviour_svg needs at least one measure; got none."
        raise InputError(msg)
    ncols = min(len(measures), 4)
    nrows = int(np.ceil(len(measures) / ncols))
    with _style():
        fig = Figure(figsize=(LINE_WIDTH_IN, 2.3 * nrows + 0.7), facecolor="white")
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax, measure in zip(axes, measures, strict=False):
            rows = data[data["measure"] == measure]
            for role, colour in SESSION_COLOURS.items():
                per_time = (
                    rows[rows["role"] == role]
                    .groupby("time_min")["value"]
                    .agg(["mean", "std", "count"])
                    .sort_index()
                )
                if per_time.empty:
                    continue
                sem = per_time["std"] / np.sqrt(per_time["count"].clip(lower=1))
                ax.errorbar(
                    per_time.index.to_numpy(float),
                    per_time["mean"].to_numpy(float),
                    yerr=sem.fillna(0.0).to_numpy(float),
                    color=colour,
                    marker="o",
                    ms=4,
                    lw=1.4,
                    capsize=2,
                    label=role,
                )
            ax.axvline(0.0, color="#999999", lw=0.8, ls=":")
            unit = (units or {}).get(measure, "")
            ax.set_title(measure + (f" ({unit})" if unit else ""), fontsize=10)
        for ax in axes[len(measures) :]:
            ax.set_visible(False)
        for ax in axes[(nrows - 1) * ncols :]:
            ax.set_xlabel("min from injection")
        axes[0].legend(loc="best")
        if title:
            fig.suptitle(title, x=0.01, ha="left", fontsize=11)
        fig.tight_layout()
        return _svg_text(fig, label=title or "behaviour time courses")
