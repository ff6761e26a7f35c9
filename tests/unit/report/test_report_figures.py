"""Report figures: encodings, caps, determinism, orientation, edge cases."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from _report_factories import grid_affine, synthetic_anatomy
from _report_html_checks import check_html, png_info

from bids_app.errors import InputError
from bids_app.report import figures
from bids_app.report.figures import (
    format_p,
    map_slices_png,
    mip_png,
    motion_svg,
    overlay_png,
    paired_plot_svg,
    scatter_svg,
    tac_fit_svg,
)

SHAPE = (20, 24, 18)


@pytest.fixture(scope="module")
def anatomy() -> dict:
    """Small synthetic template, masks and PET."""
    return synthetic_anatomy(SHAPE, np.random.default_rng(0))


def _confounds(n: int, usable: bool = True) -> pd.DataFrame:
    t = np.linspace(0, 1, n)
    frame = pd.DataFrame(
        {
            "trans_x": t,
            "trans_y": -t,
            "trans_z": 0.5 * t,
            "rot_x": 0.01 * t,
            "rot_y": 0.0 * t,
            "rot_z": -0.01 * t,
            "framewise_displacement": np.full(n, 0.2),
        }
    )
    if not usable:
        frame["usable"] = [False] + [True] * (n - 1)
    return frame


def _svg_ids_resolve(svg: str) -> None:
    ids = set(re.findall(r'\sid="([^"]+)"', svg))
    refs = set(re.findall(r'(?:href="|url\()#([^")]+)', svg))
    assert refs <= ids


def test_overlay_png_is_capped_png(anatomy: dict) -> None:
    uri = overlay_png(
        anatomy["pet"], anatomy["affine"], contours={"template": anatomy["template"]}
    )
    assert uri.startswith("data:image/png;base64,")
    width, height, dpi = png_info(uri)
    assert width == 1200  # 12 in at 100 dpi
    assert 200 < height < width
    assert dpi == pytest.approx(100.0, abs=0.5)


def test_png_width_cap_lowers_dpi() -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(20.0, 2.0))
    width, _h, dpi = png_info(figures._png_data_uri(fig, dpi=300))
    assert width == figures.MAX_PNG_WIDTH_PX
    assert dpi == pytest.approx(figures.MAX_PNG_WIDTH_PX / 20.0, abs=0.5)


def test_png_output_is_deterministic(anatomy: dict) -> None:
    masks = anatomy["masks"]
    one = overlay_png(anatomy["pet"], anatomy["affine"], contours=masks)
    two = overlay_png(anatomy["pet"], anatomy["affine"], contours=masks)
    assert one == two


def test_reorientation_gives_the_same_picture() -> None:
    """A volume stored left-to-right (LAS) renders like its RAS twin."""
    rng = np.random.default_rng(3)
    volume = rng.random(SHAPE)
    volume[3:6, 10:14, 8:12] = 3.0  # asymmetric blob, left hemisphere
    ras = grid_affine(SHAPE)
    las = ras.copy()
    las[0, 0] = -ras[0, 0]
    las[0, 3] = ras[0, 3] + ras[0, 0] * (SHAPE[0] - 1)
    cut = (-40.0, 0.0, 0.0)
    assert overlay_png(volume, ras, cut_coords_mm=cut) == overlay_png(
        volume[::-1], las, cut_coords_mm=cut
    )
    assert overlay_png(volume, ras, cut_coords_mm=cut) != overlay_png(
        volume[::-1], ras, cut_coords_mm=cut
    )


def test_grid_maps_mm_to_voxels() -> None:
    affine = grid_affine(SHAPE)  # 8 mm voxels centred on the origin
    grid = figures._make_grid(SHAPE, affine)
    assert grid.index(0, affine[0, 3]) == 0
    assert grid.index(0, 0.0) in (9, 10)
    assert grid.index(2, 1e6) == SHAPE[2] - 1
    assert grid.coord(1, 0) == pytest.approx(affine[1, 3])
    assert grid.extent_mm(0) == pytest.approx(SHAPE[0] * 8.0)


def test_nan_maps_and_empty_masks_render(anatomy: dict) -> None:
    nan = np.full(SHAPE, np.nan)
    uri = map_slices_png({"a": nan, "b": nan}, anatomy["template"], anatomy["affine"], 0.0, 3.0)
    assert png_info(uri)[0] == 1200
    empty = {"empty": np.zeros(SHAPE, bool)}
    assert overlay_png(nan, anatomy["affine"], overlay=nan, contours=empty).startswith("data:")
    assert mip_png(nan, anatomy["affine"], threshold=3.0).startswith("data:")


def test_shape_mismatch_is_an_input_error(anatomy: dict) -> None:
    with pytest.raises(InputError, match="resample it to the analysis grid"):
        overlay_png(anatomy["pet"], anatomy["affine"], overlay=np.zeros((3, 3, 3)))
    with pytest.raises(InputError, match="must be 3-D"):
        overlay_png(np.zeros((3, 3)), anatomy["affine"])
    with pytest.raises(InputError, match="3 values"):
        overlay_png(anatomy["pet"], anatomy["affine"], cut_coords_mm=(1.0, 2.0))


def test_signed_mip_keeps_the_largest_magnitude() -> None:
    volume = np.zeros((3, 2, 1))
    volume[:, 0, 0] = [1.0, -4.0, 2.0]
    volume[:, 1, 0] = [np.nan, 0.5, 0.2]
    assert figures._signed_mip(volume, 0).tolist() == [[-4.0], [0.5]]


def test_otsu_separates_two_classes() -> None:
    values = np.concatenate([np.full(500, 10.0), np.full(500, 30.0)])
    assert 10.0 < figures._otsu_threshold(values) < 30.0
    assert figures._edge_levels(np.zeros(SHAPE)) == []


def test_motion_svg_marks_borrowed_frames() -> None:
    with_borrowed = motion_svg(_confounds(8, usable=False), np.arange(8.0) + 0.5, title="s1")
    plain = motion_svg(_confounds(8), None)
    assert "borrowed transform" in with_borrowed
    assert "borrowed transform" not in plain
    assert "frame" in plain
    for svg in (with_borrowed, plain):
        assert svg.startswith("<svg")
        assert svg.rstrip().endswith("</svg>")
        assert "<?xml" not in svg
        assert "<metadata" not in svg
        assert "dc:date" not in svg
        assert "Matplotlib v" not in svg
        assert check_html(svg).problems == []
        _svg_ids_resolve(svg)
    with pytest.raises(InputError, match="none of trans_"):
        motion_svg(pd.DataFrame({"x": [1.0]}))


def test_svgs_are_deterministic_and_ids_unique_across_figures() -> None:
    t = np.linspace(0.5, 60, 12)
    ref = 10 * t * np.exp(-t / 8)
    tacs = {"cerebellum": ref, "dorsal_striatum": 2 * ref}
    fitted = {"dorsal_striatum": 2 * ref * 1.01}
    one = tac_fit_svg(t, tacs, fitted, title="ses-a")
    assert one == tac_fit_svg(t, tacs, fitted, title="ses-a")
    other = tac_fit_svg(t, tacs, {"dorsal_striatum": 2 * ref * 0.99}, title="ses-b")
    ids_one = set(re.findall(r'\sid="([^"]+)"', one))
    ids_other = set(re.findall(r'\sid="([^"]+)"', other))
    assert ids_one
    assert ids_one.isdisjoint(ids_other)
    _svg_ids_resolve(one)
    assert "cerebellum (reference)" in one
    assert "SRTM2 fit" in one


def test_tac_fit_svg_checks_lengths() -> None:
    t = np.linspace(0.5, 60, 12)
    with pytest.raises(InputError, match="has 3 values for 12 frames"):
        tac_fit_svg(t, {"cerebellum": t}, {"putamen": np.ones(3)})


def test_scatter_title_reports_r_df_p() -> None:
    x = np.array([0.1, 0.2, 0.3, 0.4, np.nan])
    svg = scatter_svg(x, 2 * x, "net_da_release", "aversion_index", r=-0.71, df=8, p=0.021)
    assert "r(8) = -0.71, p = 0.021" in svg
    svg = scatter_svg(x, x, "a", "b", r=0.9, df=2, p=0.0004)
    assert "r(2) = 0.90, p &lt; 0.001" in svg or "r(2) = 0.90, p < 0.001" in svg
    with pytest.raises(InputError, match="shape"):
        scatter_svg(np.ones(3), np.ones(4), "a", "b", 0.0, 1, 1.0)


def test_paired_plot_svg() -> None:
    values = pd.DataFrame(
        {
            "participant_id": ["01", "02", "01"],
            "measure": ["BPND", "BPND", "R1"],
            "roi": ["dorsal_striatum", "dorsal_striatum", "pituitary"],
            "baseline": [2.5, 2.4, 1.0],
            "challenge": [2.2, 2.5, 1.1],
        }
    )
    svg = paired_plot_svg(values, "BPND", ["dorsal_striatum", "ventral_striatum"])
    assert "dorsal_striatum (n = 2)" in svg
    assert "ventral_striatum (n = 0)" in svg
    assert "no data" in svg
    with pytest.raises(InputError, match="lacks column"):
        paired_plot_svg(values.drop(columns="roi"), "BPND", ["x"])


def test_format_p() -> None:
    assert format_p(0.0212) == "p = 0.021"
    assert format_p(1e-5) == "p < 0.001"
    assert format_p(float("nan")) == "p = n/a"
    assert format_p(None) == "p = n/a"
