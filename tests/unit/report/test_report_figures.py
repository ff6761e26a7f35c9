"""Report figures: encodings, caps, determinism, orientation, edge cases."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from helpers.html_checks import check_html, png_info
from helpers.report_factories import grid_affine, synthetic_anatomy

from bids_app.errors import InputError
from bids_app.report import figures
from bids_app.report.brain_figures import (
    Contour,
    delta_map_png,
    glass_brain_png,
    mosaic_cuts,
    mosaic_png,
    roi_rows_png,
    stat_slices_png,
)
from bids_app.report.figures import (
    StripSpec,
    behaviour_svg,
    distinct_series,
    format_p,
    map_slices_png,
    motion_svg,
    paired_plot_svg,
    reference_tacs_svg,
    scatter_svg,
    strip_plot_svg,
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


def test_mosaic_png_is_a_capped_png_of_seven_cuts_per_plane(anatomy: dict) -> None:
    edges = [Contour("template edges", anatomy["template"], "#ff0000")]
    uri = mosaic_png(anatomy["pet"], anatomy["affine"], edges, title="after", planes=("z",))
    width, height, dpi = png_info(uri)
    assert width == round(figures.FIG_WIDTH_IN * 100)  # shown unscaled in the report
    assert 150 < height < width
    assert dpi == pytest.approx(100.0, abs=0.5)
    cuts = mosaic_cuts(anatomy["template"], anatomy["affine"])
    assert [len(c) for c in cuts.values()] == [7, 7, 7]
    assert all(np.all(np.diff(c) > 0) for c in cuts.values())


def test_png_width_cap_lowers_dpi() -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(20.0, 2.0))
    width, _h, dpi = png_info(figures._png_data_uri(fig, dpi=300))
    assert width == figures.MAX_PNG_WIDTH_PX
    assert dpi == pytest.approx(figures.MAX_PNG_WIDTH_PX / 20.0, abs=0.5)


def test_png_output_is_deterministic(anatomy: dict) -> None:
    masks = anatomy["masks"]
    rows = [(name, [Contour(name, m, "#ff0000")], (10.0, 8.0, 0.0)) for name, m in masks.items()]
    one = roi_rows_png(anatomy["pet"], anatomy["affine"], rows)
    assert one == roi_rows_png(anatomy["pet"], anatomy["affine"], rows)


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
    flipped = volume[::-1]
    same = map_slices_png({"m": volume}, volume, ras, 0.0, 3.0, cut_coords_mm=cut)
    assert same == map_slices_png({"m": flipped}, flipped, las, 0.0, 3.0, cut_coords_mm=cut)
    assert same != map_slices_png({"m": flipped}, flipped, ras, 0.0, 3.0, cut_coords_mm=cut)


def test_grid_maps_mm_to_voxels() -> None:
    affine = grid_affine(SHAPE)  # 8 mm voxels centred on the origin
    grid = figures._make_grid(SHAPE, affine)
    assert grid.index(0, affine[0, 3]) == 0
    assert grid.index(0, 0.0) in (9, 10)
    assert grid.index(2, 1e6) == SHAPE[2] - 1
    assert grid.coord(1, 0) == pytest.approx(affine[1, 3])
    assert grid.extent_mm(0) == pytest.approx(SHAPE[0] * 8.0)


def test_nan_maps_and_empty_masks_render_without_warnings(anatomy: dict) -> None:
    nan = np.full(SHAPE, np.nan)
    affine = anatomy["affine"]
    uri = map_slices_png({"a": nan, "b": nan}, anatomy["template"], affine, 0.0, 3.0)
    assert png_info(uri)[0] == round(figures.FIG_WIDTH_IN * 100)
    empty = [Contour("empty", np.zeros(SHAPE, bool), "#ff0000")]
    assert mosaic_png(nan, affine, empty).startswith("data:image/png")
    # no supra-threshold voxel: an empty glass brain, not an error (warnings are errors here)
    assert glass_brain_png(nan, affine, threshold=3.0, vmax=5.0).startswith("data:image/png")
    assert delta_map_png(nan, anatomy["template"], affine, 0.5, [0.0, 8.0]).startswith("data:")


def test_shape_mismatch_is_an_input_error(anatomy: dict) -> None:
    affine = anatomy["affine"]
    with pytest.raises(InputError, match="resample it to the same grid"):
        mosaic_png(anatomy["pet"], affine, [Contour("x", np.zeros((3, 3, 3)), "#ff0000")])
    with pytest.raises(InputError, match="resample it to the analysis grid"):
        map_slices_png({"m": np.zeros((3, 3, 3))}, anatomy["template"], affine, 0.0, 1.0)
    with pytest.raises(InputError, match="3 values"):
        stat_slices_png(anatomy["pet"], anatomy["template"], affine, (1.0, 2.0), 2.0, 4.0)
    with pytest.raises(InputError, match="needs an"):
        roi_rows_png(anatomy["pet"], affine, [("r", [], (1.0, 2.0))])


def test_stat_slices_show_the_clusters(anatomy: dict) -> None:
    t_map = np.where(anatomy["masks"]["dorsal_striatum"], -5.0, np.nan)
    uri = stat_slices_png(t_map, anatomy["template"], anatomy["affine"], (14, 8, 6), 3.0, 6.0)
    assert png_info(uri)[0] == round(figures.FIG_WIDTH_IN * 100)


def test_otsu_separates_two_classes() -> None:
    values = np.concatenate([np.full(500, 10.0), np.full(500, 30.0)])
    assert 10.0 < figures._otsu_threshold(values) < 30.0
    assert figures.edge_levels(np.zeros(SHAPE)) == []


def test_motion_svg_marks_borrowed_frames_and_fd_thresholds() -> None:
    with_borrowed = motion_svg(
        _confounds(8, usable=False), np.arange(8.0) + 0.5, title="s1", fd_thresholds_mm=(2, 4)
    )
    plain = motion_svg(_confounds(8), None)
    assert "borrowed transform" in with_borrowed
    assert "warn 2 mm" in with_borrowed
    assert "fail 4 mm" in with_borrowed
    assert "borrowed transform" not in plain
    assert "warn" not in plain
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


def test_tac_plot_draws_identical_rois_once_and_the_carotid_on_its_own_axis() -> None:
    t = np.linspace(0.5, 60, 12)
    ref = 10 * t * np.exp(-t / 8)
    ventral = 1.5 * ref
    carotid = 40 * np.exp(-t / 2)
    tacs = {"cerebellum": ref, "ventral_striatum": ventral, "accumbens": ventral.copy()}
    tacs["carotid"] = carotid
    fitted = {"ventral_striatum": ventral, "accumbens": ventral, "carotid": carotid}
    svg = tac_fit_svg(t, tacs, fitted)
    assert "ventral_striatum = accumbens" in svg
    assert svg.count("accumbens") == 1
    assert "carotid (kBq/mL)" in svg
    kept, aliases = distinct_series(tacs)
    assert list(kept) == ["cerebellum", "ventral_striatum", "carotid"]
    assert aliases == {"accumbens": "ventral_striatum"}
    alone = tac_fit_svg(t, {"cerebellum": ref, "putamen": ventral}, {"putamen": ventral})
    assert "carotid" not in alone


def test_reference_tacs_of_both_sessions_share_one_axis() -> None:
    t = np.linspace(0.5, 60, 12)
    svg = reference_tacs_svg(
        {"ses-sal (baseline)": (t, t, "baseline"), "ses-nal (challenge)": (t, 2 * t, "challenge")}
    )
    assert "ses-sal (baseline)" in svg
    assert "ses-nal (challenge)" in svg
    assert figures.SESSION_COLOURS["challenge"] in svg
    with pytest.raises(InputError, match="has 3 values for 12 times"):
        reference_tacs_svg({"a": (t, np.ones(3), "baseline")})


def test_strip_plot_flags_and_labels_participants_beyond_the_thresholds() -> None:
    strip = StripSpec("max FD", "mm", {"sub-01": 0.5, "sub-02": 2.5, "sub-03": 4.5}, 2.0, 4.0)
    low = StripSpec("Dice", "", {"sub-01": 0.9, "sub-02": 0.7}, 0.75, 0.6, bad="below")
    svg = strip_plot_svg([strip, low], title="QC")
    assert "<title>sub-02: 2.5 mm</title>" in svg
    assert "<title>sub-01: 0.5 mm</title>" in svg
    labels = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert "sub-02" in labels  # warn and fail are labelled
    assert "sub-03" in labels
    assert "sub-01" not in labels
    assert "warn 2 mm" in labels
    assert check_html(svg).problems == []
    assert strip_plot_svg([strip, low], title="QC") == svg


def test_behaviour_time_courses_per_session() -> None:
    rows = [
        (p, role, t, m, v)
        for p in ("01", "02")
        for role, shift in (("baseline", 0.0), ("challenge", 1.0))
        for t in (-10.0, 10.0, 30.0)
        for m, v in (("anxiety", 2.0 + shift), ("cortisol", 300.0 - shift))
    ]
    data = pd.DataFrame(rows, columns=["participant_id", "role", "time_min", "measure", "value"])
    svg = behaviour_svg(data, ["anxiety", "cortisol"], units={"cortisol": "nmol/L"})
    assert "cortisol (nmol/L)" in svg
    assert figures.SESSION_COLOURS["baseline"] in svg
    with pytest.raises(InputError, match="lacks column"):
        behaviour_svg(data.drop(columns="role"), ["anxiety"])


def test_tac_fit_svg_checks_lengths() -> None:
    t = np.linspace(0.5, 60, 12)
    with pytest.raises(InputError, match="has 3 values for 12 frames"):
        tac_fit_svg(t, {"cerebellum": t}, {"putamen": np.ones(3)})


def test_scatter_title_reports_r_df_p() -> None:
    x = np.array([0.1, 0.2, 0.3, 0.4, np.nan])
    svg = scatter_svg(x, 2 * x, "net_da_release", "aversion_index", r=-0.71, df=8, p=0.021)
    assert "r(8) = -0.71, p = 0.021" in svg
    svg = scatter_svg(x, x, "a", "b", r=0.9, df=2, p=0.00041)
    assert "r(2) = 0.90, p = 0.00041" in svg
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
    assert figures.CHANGE_COLOURS["decrease"] in svg  # 2.5 -> 2.2
    assert figures.CHANGE_COLOURS["increase"] in svg  # 2.4 -> 2.5
    assert "dorsal_striatum (n = 2)" in svg
    assert "ventral_striatum (n = 0)" in svg
    assert "no data" in svg
    with pytest.raises(InputError, match="lacks column"):
        paired_plot_svg(values.drop(columns="roi"), "BPND", ["x"])


def test_format_p() -> None:
    assert format_p(0.0212) == "p = 0.021"
    assert format_p(1.23e-5) == "p = 1.2e-05"
    assert format_p(float("nan")) == "p = n/a"
    assert format_p(None) == "p = n/a"
