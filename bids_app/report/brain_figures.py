"""Brain-image figures drawn with :mod:`nilearn.plotting` (issue 10), as size-capped PNG URIs.

nilearn draws the slices, contours, glass brains and statistic maps (its own slicers, MNI
glass-brain outlines and colour bars); this module chooses what to show (the cuts, contour
levels and colour scales), lays several nilearn displays out on one
:class:`matplotlib.figure.Figure` (no pyplot figure registry is touched: every display gets the
figure and an axes rectangle) and encodes it with :func:`bids_app.report.figures` helpers.

Conventions shared with :mod:`bids_app.report.figures`: neurological orientation (left on the
left), MNI mm coordinates, ``RdBu_r`` for signed changes (blue: lower under the challenge, red:
higher), NaN voxels transparent. Inputs are arrays plus a voxel-to-mm affine; NaN is replaced
before nilearn sees the data (nilearn warns on non-finite values).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import nibabel as nib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from numpy.typing import NDArray

from bids_app.errors import InputError
from bids_app.report.figures import FIG_WIDTH_IN, _png_data_uri, _style, edge_levels

__all__ = [
    "CONTOUR_COLOURS",
    "Contour",
    "delta_map_png",
    "glass_brain_png",
    "mosaic_cuts",
    "mosaic_png",
    "roi_rows_png",
    "stat_slices_png",
]

Plane = Literal["x", "y", "z"]
PLANES: tuple[Plane, Plane, Plane] = ("x", "y", "z")
#: Slices per plane in the registration mosaics (as fMRIPrep's reportlets).
N_CUTS = 7
#: Contour colours that stay visible on grey-scale PET and MRI backgrounds.
CONTOUR_COLOURS = ("#ff3b3b", "#36d1ff", "#ffd23f", "#7CFC00", "#ff8cf0", "#ffa64d", "#b28dff")
_ROW_HEIGHT_IN = 1.45
_LABEL_SIZE = 11.0


@dataclass(frozen=True)
class Contour:
    """Edges of one image (or the outline of one mask) drawn on a brain figure.

    Attributes
    ----------
    name : str
        Legend label.
    volume : (X, Y, Z) ndarray
        On the figure's grid. Boolean/0-1 masks are outlined at 0.5; other images at their
        outer edge and main internal boundary (:func:`~bids_app.report.figures.edge_levels`).
    colour : str
        Line colour.
    """

    name: str
    volume: NDArray[np.generic]
    colour: str


def _image(volume: NDArray[np.generic], affine: NDArray[np.float64]) -> nib.Nifti1Image:
    """A float32 NIfTI of ``volume`` with NaN/inf set to 0 (nilearn warns on non-finite data)."""
    data = np.nan_to_num(np.asarray(volume, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    return nib.Nifti1Image(data, np.asarray(affine, dtype=np.float64))


def _check_grid(reference: NDArray[np.generic], name: str, other: NDArray[np.generic]) -> None:
    if np.shape(other) != np.shape(reference):
        msg = (
            f"Report figure: {name} has shape {np.shape(other)} but the background has "
            f"{np.shape(reference)}; resample it to the same grid first."
        )
        raise InputError(msg)


def _levels(volume: NDArray[np.generic]) -> list[float]:
    values = np.asarray(volume)
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values.ravel()
    if values.dtype == bool or np.isin(finite, (0, 1)).all():
        return [0.5]
    return edge_levels(np.asarray(values, dtype=float))


def _display_limits(volume: NDArray[np.generic]) -> tuple[float, float]:
    """2nd-99.5th percentiles of the finite non-zero voxels (a PET or MRI background)."""
    values = np.asarray(volume, dtype=float)
    values = values[np.isfinite(values) & (values != 0)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(values, [2.0, 99.5])
    return float(lo), float(hi) if hi > lo else float(lo) + 1.0


@contextmanager
def _plotting() -> Iterator[Any]:
    """nilearn.plotting in the report style, without the warnings of expected empty plots.

    A contour level that does not occur in one slice (an ROI outside that cut) makes
    matplotlib warn, and a statistic map without a supra-threshold voxel makes nilearn warn
    "empty mask" (an empty glass brain is the right figure then); every other warning still
    reaches the caller.
    """
    from nilearn import plotting  # heavy import, only when a brain figure is drawn

    with _style(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No contour levels were found")
        warnings.filterwarnings("ignore", message="empty mask", category=UserWarning)
        yield plotting


def mosaic_cuts(
    volume: NDArray[np.generic], affine: NDArray[np.float64], n_cuts: int = N_CUTS
) -> dict[Plane, list[float]]:
    """Evenly spaced cuts (mm) through the extent of an image's signal, per plane.

    Parameters
    ----------
    volume : (X, Y, Z) ndarray
        The image (e.g. the registration target); its voxels above the outer edge level (or
        its non-zero voxels) define the extent.
    affine : (4, 4) ndarray
        Voxel -> mm affine.
    n_cuts : int
        Cuts per plane; they span the central 80 % of the extent.

    Returns
    -------
    dict
        ``{"x": [...], "y": [...], "z": [...]}`` in mm.
    """
    values = np.nan_to_num(np.asarray(volume, dtype=float))
    levels = _levels(values)
    inside = values > (levels[0] if levels else 0.0)
    if not inside.any():
        inside = np.ones(values.shape, dtype=bool)
    ijk = np.argwhere(inside)
    xyz = ijk @ np.asarray(affine)[:3, :3].T + np.asarray(affine)[:3, 3]
    cuts: dict[Plane, list[float]] = {}
    for axis, plane in enumerate(PLANES):
        lo, hi = np.percentile(xyz[:, axis], [5.0, 95.0])
        cuts[plane] = [float(round(c)) for c in np.linspace(lo, hi, n_cuts)]
    return cuts


def _legend(fig: Figure, contours: Sequence[Contour], dark: bool) -> None:
    if not contours:
        return
    handles = [Line2D([0], [0], color=c.colour, lw=2, label=c.name) for c in contours]
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=min(len(handles), 4),
        frameon=False,
        labelcolor="white" if dark else "black",
        fontsize=_LABEL_SIZE,
        bbox_to_anchor=(0.5, 0.0),
    )


def _title(fig: Figure, title: str, fig_h: float, dark: bool) -> None:
    if title:
        fig.text(
            0.01,
            1 - 0.2 / fig_h,
            title,
            color="white" if dark else "black",
            fontsize=12,
            va="center",
        )


def mosaic_png(
    background: NDArray[np.floating],
    affine: NDArray[np.float64],
    contours: Sequence[Contour] = (),
    cuts: Mapping[Plane, Sequence[float]] | None = None,
    title: str = "",
    planes: Sequence[Plane] = PLANES,
) -> str:
    """Rows of slices (one row per plane) of a grey-scale image with contours on top.

    Parameters
    ----------
    background : (X, Y, Z) ndarray
        The image shown (e.g. a normalised mean PET); NaN shown as 0.
    affine : (4, 4) ndarray
        Voxel -> mm affine shared by every volume.
    contours : sequence of Contour
        Edges drawn on every slice.
    cuts : mapping, optional
        Plane -> cut coordinates (mm); default :func:`mosaic_cuts` of the first contour (or of
        the background).
    title : str, optional
        Title above the rows.
    planes : sequence of {"x", "y", "z"}
        Which planes to show, one row each.

    Returns
    -------
    str
        ``data:image/png;base64,...``.
    """
    bg = np.asarray(background, dtype=float)
    for c in contours:
        _check_grid(bg, f"contour {c.name!r}", c.volume)
    if cuts is None:
        cuts = mosaic_cuts(contours[0].volume if contours else bg, affine)
    vmin, vmax = _display_limits(bg)
    top_h = 0.4 if title else 0.05
    bottom_h = 0.35 if contours else 0.05
    fig_h = top_h + bottom_h + _ROW_HEIGHT_IN * len(planes)
    with _plotting() as plotting:
        fig = Figure(figsize=(FIG_WIDTH_IN, fig_h), facecolor="black")
        for row, plane in enumerate(planes):
            bottom = (bottom_h + (len(planes) - 1 - row) * _ROW_HEIGHT_IN) / fig_h
            display = plotting.plot_anat(
                _image(bg, affine),
                display_mode=plane,
                cut_coords=list(cuts[plane]),
                figure=fig,
                axes=(0.0, bottom, 1.0, _ROW_HEIGHT_IN / fig_h),
                annotate=True,
                draw_cross=False,
                black_bg=True,
                dim=0,
                colorbar=False,
                vmin=vmin,
                vmax=vmax,
            )
            for c in contours:
                levels = _levels(c.volume)
                if levels:
                    display.add_contours(
                        _image(c.volume, affine), levels=levels, colors=[c.colour], linewidths=1.0
                    )
        _title(fig, title, fig_h, dark=True)
        _legend(fig, contours, dark=True)
        return _png_data_uri(fig)


def roi_rows_png(
    background: NDArray[np.floating],
    affine: NDArray[np.float64],
    rows: Sequence[tuple[str, Sequence[Contour], Sequence[float]]],
    title: str = "",
) -> str:
    """Orthogonal slices through given points, one row per group of ROI outlines.

    Parameters
    ----------
    background : (X, Y, Z) ndarray
        Grey-scale image (mean PET or template).
    affine : (4, 4) ndarray
        Voxel -> mm affine.
    rows : sequence of (str, sequence of Contour, (x, y, z))
        Row label, the ROI outlines of the row and the cut point (mm), e.g. the centroid of
        the row's ROI.
    title : str, optional
        Figure title.

    Returns
    -------
    str
        ``data:image/png;base64,...``.
    """
    if not rows:
        msg = "roi_rows_png needs at least one row; got none."
        raise InputError(msg)
    bg = np.asarray(background, dtype=float)
    vmin, vmax = _display_limits(bg)
    row_h = 2.3
    top_h = 0.4 if title else 0.05
    all_contours = {c.name: c for _, contours, _ in rows for c in contours}
    bottom_h = 0.35
    fig_h = top_h + bottom_h + row_h * len(rows)
    with _plotting() as plotting:
        fig = Figure(figsize=(FIG_WIDTH_IN, fig_h), facecolor="black")
        for r, (label, contours, point) in enumerate(rows):
            if len(point) != 3:
                msg = f"roi_rows_png: row {label!r} needs an (x, y, z) cut; got {list(point)}."
                raise InputError(msg)
            bottom = (bottom_h + (len(rows) - 1 - r) * row_h) / fig_h
            display = plotting.plot_anat(
                _image(bg, affine),
                display_mode="ortho",
                cut_coords=[float(v) for v in point],
                figure=fig,
                axes=(0.12, bottom, 0.88, row_h / fig_h),
                annotate=True,
                draw_cross=False,
                black_bg=True,
                dim=0,
                colorbar=False,
                vmin=vmin,
                vmax=vmax,
            )
            for c in contours:
                _check_grid(bg, f"ROI {c.name!r}", c.volume)
                display.add_contours(
                    _image(c.volume, affine), levels=[0.5], colors=[c.colour], linewidths=1.6
                )
            fig.text(
                0.01,
                bottom + 0.5 * row_h / fig_h,
                label,
                color="white",
                fontsize=_LABEL_SIZE,
                va="center",
            )
        _title(fig, title, fig_h, dark=True)
        _legend(fig, list(all_contours.values()), dark=True)
        return _png_data_uri(fig)


def glass_brain_png(
    stat_map: NDArray[np.floating],
    affine: NDArray[np.float64],
    threshold: float,
    vmax: float,
    cluster_labels: NDArray[np.integer] | None = None,
    title: str = "",
    colourbar_label: str = "t",
) -> str:
    """Glass-brain projections (left, right, coronal, axial) of a signed statistic map.

    Parameters
    ----------
    stat_map : (X, Y, Z) ndarray
        Signed statistic (challenge - baseline); NaN outside the search volume.
    affine : (4, 4) ndarray
        Voxel -> mm affine.
    threshold : float
        Voxels with ``|stat| < threshold`` are not drawn.
    vmax : float
        Symmetric colour limit.
    cluster_labels : (X, Y, Z) int ndarray, optional
        When given, only voxels with a label > 0 are drawn (the reported clusters).
    title, colourbar_label : str, optional
        Title and colour-bar label.

    Returns
    -------
    str
        ``data:image/png;base64,...``.
    """
    stat = np.asarray(stat_map, dtype=float)
    shown = np.where(np.isfinite(stat), stat, 0.0)
    if cluster_labels is not None:
        _check_grid(stat, "cluster_labels", cluster_labels)
        shown = np.where(np.asarray(cluster_labels) > 0, shown, 0.0)
    fig_h = 2.9
    with _plotting() as plotting:
        fig = Figure(figsize=(FIG_WIDTH_IN, fig_h), facecolor="white")
        plotting.plot_glass_brain(
            _image(shown, affine),
            display_mode="lyrz",
            figure=fig,
            axes=(0.0, 0.0, 1.0, 0.88),
            threshold=float(threshold),
            plot_abs=False,
            cmap="RdBu_r",
            vmin=-float(vmax),
            vmax=float(vmax),
            colorbar=True,
            black_bg=False,
            annotate=True,
        )
        _title(fig, title, fig_h, dark=False)
        fig.text(0.985, 0.9, colourbar_label, fontsize=_LABEL_SIZE, ha="right")
        return _png_data_uri(fig)


def stat_slices_png(
    stat_map: NDArray[np.floating],
    background: NDArray[np.floating],
    affine: NDArray[np.float64],
    cut_coords_mm: Sequence[float],
    threshold: float,
    vmax: float,
    title: str = "",
    colourbar_label: str = "t",
) -> str:
    """Orthogonal slices of a signed statistic map over the template, through one point.

    Parameters
    ----------
    stat_map : (X, Y, Z) ndarray
        Signed statistic; NaN or ``|stat| < threshold`` transparent.
    background : (X, Y, Z) ndarray
        Template on the same grid.
    affine : (4, 4) ndarray
        Voxel -> mm affine.
    cut_coords_mm : (3,) sequence of float
        The cut point (e.g. a cluster peak).
    threshold, vmax : float
        Display threshold and symmetric colour limit.
    title, colourbar_label : str, optional
        Title and colour-bar label.

    Returns
    -------
    str
        ``data:image/png;base64,...``.
    """
    stat = np.asarray(stat_map, dtype=float)
    _check_grid(stat, "background", background)
    if len(cut_coords_mm) != 3:
        msg = f"cut_coords_mm must hold 3 values (x, y, z in mm); got {list(cut_coords_mm)}."
        raise InputError(msg)
    fig_h = 3.2
    with _plotting() as plotting:
        fig = Figure(figsize=(FIG_WIDTH_IN, fig_h), facecolor="black")
        plotting.plot_stat_map(
            _image(stat, affine),
            bg_img=_image(background, affine),
            display_mode="ortho",
            cut_coords=[float(v) for v in cut_coords_mm],
            figure=fig,
            axes=(0.0, 0.0, 1.0, 0.88),
            threshold=float(threshold),
            vmin=-float(vmax),
            vmax=float(vmax),
            cmap="RdBu_r",
            symmetric_cbar=True,
            colorbar=True,
            black_bg=True,
            draw_cross=True,
            dim=0,
        )
        _title(fig, title, fig_h, dark=True)
        fig.text(0.985, 0.9, colourbar_label, color="white", fontsize=_LABEL_SIZE, ha="right")
        return _png_data_uri(fig)


def delta_map_png(
    delta: NDArray[np.floating],
    background: NDArray[np.floating],
    affine: NDArray[np.float64],
    vmax: float,
    z_cuts_mm: Sequence[float],
    title: str = "",
    colourbar_label: str = "ΔBPND",
) -> str:
    """Axial slices of a signed change map (challenge - baseline) over the template.

    Parameters
    ----------
    delta : (X, Y, Z) ndarray
        Change map; NaN transparent. Blue: lower under the challenge, red: higher.
    background : (X, Y, Z) ndarray
        Template on the same grid.
    affine : (4, 4) ndarray
        Voxel -> mm affine.
    vmax : float
        Symmetric colour limit.
    z_cuts_mm : sequence of float
        Axial cut levels (mm).
    title, colourbar_label : str, optional
        Title and colour-bar label.

    Returns
    -------
    str
        ``data:image/png;base64,...``.
    """
    change = np.asarray(delta, dtype=float)
    _check_grid(change, "background", background)
    fig_h = 2.2
    with _plotting() as plotting:
        fig = Figure(figsize=(FIG_WIDTH_IN, fig_h), facecolor="black")
        plotting.plot_stat_map(
            _image(change, affine),
            bg_img=_image(background, affine),
            display_mode="z",
            cut_coords=[float(z) for z in z_cuts_mm],
            figure=fig,
            axes=(0.0, 0.0, 1.0, 0.84),
            threshold=1e-6,
            vmin=-float(vmax),
            vmax=float(vmax),
            cmap="RdBu_r",
            symmetric_cbar=True,
            colorbar=True,
            black_bg=True,
            draw_cross=False,
            dim=0,
        )
        _title(fig, title, fig_h, dark=True)
        fig.text(0.985, 0.9, colourbar_label, color="white", fontsize=_LABEL_SIZE, ha="right")
        return _png_data_uri(fig)
