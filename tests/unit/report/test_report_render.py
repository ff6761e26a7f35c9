"""Participant and group reports: structure, self-containment, escaping, size, robustness."""

from __future__ import annotations

import re
from dataclasses import replace

import jinja2
import numpy as np
import pandas as pd
import pytest
from _report_factories import BIG_SHAPE, make_group, make_participant
from _report_html_checks import check_html, png_info

from bids_app.errors import InputError
from bids_app.report.render import (
    MAX_REPORT_BYTES,
    build_environment,
    render_group,
    render_participant,
)

PARTICIPANT_HEADINGS = (
    "Motion",
    "Registration",
    "Regions of interest",
    "Time-activity curves and fits",
    "Kinetic parameters (SRTM2)",
    "Parametric maps",
    "Fit status",
    "Outputs",
    "Methods",
    "Provenance",
)
GROUP_HEADINGS = (
    "Group report",
    "Methods",
    "Statistic maps",
    "Clusters",
    "ROI plots",
    "ROI statistics",
    "Participant measures",
    "Correlations",
    "Behaviour and physiology",
    "Provenance",
)


@pytest.fixture(scope="module")
def participant_html() -> str:
    """The participant report of the default synthetic input, rendered once per module."""
    return render_participant(make_participant())


@pytest.fixture(scope="module")
def group_html() -> str:
    """The group report of the default synthetic input, rendered once per module."""
    return render_group(make_group())


def assert_well_formed(html: str) -> None:
    """Balanced tags, unique ids, every in-page link resolves, nothing external."""
    checker = check_html(html)
    assert checker.problems == []
    assert checker.stack == []
    duplicates = {i for i in checker.ids if checker.ids.count(i) > 1}
    assert duplicates == set()
    for tag, attr, url in checker.urls:
        assert not re.match(r"(?i)\s*(https?:)?//", url), (tag, attr, url)
        if url.startswith("#"):
            assert url[1:] in checker.ids, url
        else:
            assert url.startswith("data:image/png;base64,"), (tag, attr, url[:40])
    assert "script" not in checker.tags
    assert "link" not in checker.tags
    assert html.lstrip().startswith("<!DOCTYPE html>")


def test_participant_report_is_well_formed_and_self_contained(participant_html: str) -> None:
    assert_well_formed(participant_html)
    checker = check_html(participant_html)
    assert checker.headings[0] == "sub-01"
    for heading in PARTICIPANT_HEADINGS:
        assert heading in checker.headings, heading
    # 2 sessions x (registration + 2 ROI views) + BPND + R1 map figures
    assert len(checker.img_srcs) == 8
    assert participant_html.count('class="svg-figure"') == 4  # 2 motion + 2 TAC figures
    assert len(participant_html.encode()) < MAX_REPORT_BYTES


def test_participant_report_content(participant_html: str) -> None:
    html = participant_html
    assert "reference region eroded by 1 voxel" in html
    assert "median of voxelwise SRTM k2&#39; over voxels with BPND &gt; 0" in html
    for citation in ("Lammertsma AA, Hume SP", "Wu Y, Carson RE", "Gunn RN", "Avants BB"):
        assert citation in html
    assert "bids_app /data /out participant --participant-label 01" in html
    assert "2024-01-01T10:30:00" in html
    # kinpar BPND of the challenge session (0.9 * 2.5) and the fit counts are shown
    assert ">2.25<" in html
    assert ">MNI152NLin2009aSym<" in html
    assert "sub-01/ses-sal/pet/sub-01_ses-sal_desc-confounds_timeseries.tsv" in html


def test_group_report_is_well_formed_and_has_sections(group_html: str) -> None:
    assert_well_formed(group_html)
    checker = check_html(group_html)
    for heading in GROUP_HEADINGS:
        assert heading in checker.headings, heading
    # BPND: MIP + peak slices; R1 without clusters: MIP only
    assert len(checker.img_srcs) == 3
    assert "No cluster survived the threshold" in group_html
    assert len(group_html.encode()) < MAX_REPORT_BYTES


def test_group_methods_are_generated_from_parameters(group_html: str) -> None:
    text = re.sub(r"\s+", " ", group_html)
    assert "Gaussian kernel of 8 mm FWHM" in text
    assert "df = 9" in text
    assert "p &lt; 0.001" in text
    assert "FWHM = 10.2 x 11 x 9.8 mm" in text
    assert "1024 permutations" in text
    assert "Friston et al. 1994; Worsley et al. 1996" in text
    assert "explains 62.0 % of the variance" in text
    assert "r(8) = -0.71, p = 0.021" in text
    assert "Right putamen" in text


def test_group_report_lists_excluded_participants_with_status_and_reason(
    group_html: str,
) -> None:
    block = group_html[group_html.index('id="excluded-participants"') :]
    block = block[: block.index("</table>")]
    assert '<th scope="col">status</th>' in block
    assert re.search(
        r"<td>sub-11</td><td>failed</td><td>normalisation: the T1w image is empty</td>", block
    )
    assert "phenotype rows were not analysed" in group_html


def test_group_without_optional_parts_says_why() -> None:
    report = replace(
        make_group(),
        cluster_maps=[],
        clusters=pd.DataFrame(),
        roi_values=pd.DataFrame(),
        behavior_effects=None,
        correlations=None,
        aversion_explained_variance=None,
        excluded=[],
        parameters={"df": 9},
    )
    html = render_group(report)
    assert_well_formed(html)
    assert "no voxelwise statistic map was computed" in html
    assert "No cluster to report" in html
    assert "no ROI values were collected" in html
    assert "no correlations were computed" in html
    assert "no phenotype data were found" in html
    assert "not available because no phenotype data were analysed" in html
    assert "No permutation test was run." in html
    assert (
        "every participant of the dataset had complete, usable participant-level outputs" in html
    )
    assert "phenotype rows were not analysed" not in html
    assert "Gaussian kernel of not recorded FWHM" in html
    assert "<img" not in html


def test_participant_label_is_escaped() -> None:
    evil = "<script>alert(1)</script>"
    report = replace(make_participant(n_sessions=1), participant_id=evil, warnings=[evil])
    html = render_participant(report)
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert_well_formed(html)


def test_strict_undefined_raises_on_missing_field() -> None:
    template = build_environment().get_template("participant.html.j2")
    with pytest.raises(jinja2.UndefinedError, match="is undefined"):
        template.render(page_title="x", css="", version="0", sections=[])


def test_environment_autoescapes_j2_templates() -> None:
    env = build_environment()
    assert env.autoescape is True
    html = env.from_string("{{ v }}").render(v="<b>&</b>")
    assert html == "&lt;b&gt;&amp;&lt;/b&gt;"


def test_nan_only_maps_and_empty_masks_do_not_crash() -> None:
    report = make_participant(n_sessions=1)
    ses = report.sessions[0]
    masks = dict(ses.roi_masks)
    masks["ventral_striatum"] = np.zeros_like(masks["ventral_striatum"])
    nan = np.full(ses.bp_map.shape, np.nan)
    ses = replace(ses, bp_map=nan, r1_map=nan, roi_masks=masks)
    html = render_participant(replace(report, sessions=[ses]))
    assert_well_formed(html)
    assert "BPND maps hold no finite voxel" in html
    assert "R1 maps hold no finite voxel" in html
    assert "Empty ROI mask: ventral_striatum" in html
    assert "Only one session (ses-sal, baseline)" in html


def test_failed_figure_becomes_a_note_not_a_crash() -> None:
    report = make_participant(n_sessions=1)
    ses = report.sessions[0]
    broken = {"dorsal_striatum": np.ones(3)}  # wrong length: 3 values for 12 frames
    html = render_participant(replace(report, sessions=[replace(ses, fitted=broken)]))
    assert_well_formed(html)
    assert "not available because the figure failed" in html
    assert "&#39;dorsal_striatum&#39; has 3 values for 12 frames" in html


def test_rendering_is_deterministic(group_html: str) -> None:
    assert render_group(make_group()) == group_html


def test_participant_rendering_is_deterministic(participant_html: str) -> None:
    assert render_participant(make_participant()) == participant_html


def test_no_sessions_is_an_input_error() -> None:
    report = replace(make_participant(n_sessions=1), sessions=[])
    with pytest.raises(InputError, match="at least one session"):
        render_participant(report)


@pytest.mark.integration
def test_big_grid_reports_stay_under_the_size_cap() -> None:
    """Realistic (99, 117, 95) 2 mm grids: PNG caps keep both reports below 5 MB."""
    for html in (
        render_participant(make_participant(BIG_SHAPE)),
        render_group(make_group(BIG_SHAPE)),
    ):
        size = len(html.encode())
        assert size < MAX_REPORT_BYTES, size
        checker = check_html(html)
        assert checker.problems == []
        assert checker.img_srcs
        for src in checker.img_srcs:
            width, _height, dpi = png_info(src)
            assert width <= 1400
            assert dpi is not None
            assert dpi <= 100.5


def test_t1w_normalisation_adds_pet_on_t1w_panel() -> None:
    report = make_participant(n_sessions=1)
    ses = report.sessions[0]
    with_t1w = replace(ses, t1w_mni=ses.template)
    html = render_participant(replace(report, sessions=[with_t1w], normalisation="PET→T1w→MNI"))
    checker = check_html(html)
    # registration + PET-on-T1w + 2 ROI views + BPND + R1 maps
    assert len(checker.img_srcs) == 6
    assert "Normalised T1w with the edges of the mean PET" in html
    assert "PET→T1w→MNI" in html
