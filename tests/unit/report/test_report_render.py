"""Participant and group reports: structure, self-containment, escaping, size, robustness."""

from __future__ import annotations

import re
from dataclasses import replace

import jinja2
import numpy as np
import pandas as pd
import pytest
from helpers.html_checks import check_html, png_info
from helpers.report_factories import (
    make_group,
    make_participant,
    make_verdict,
    provenance,
)

from bids_app.errors import InputError
from bids_app.report.render import (
    MAX_REPORT_BYTES,
    build_environment,
    render_group,
    render_participant,
)

PARTICIPANT_HEADINGS = (
    "Quality control pass",
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
    "Participant QC",
    "Net DA release and rCBF change",
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
        elif tag == "a":  # the group report links to the participant reports beside it
            assert re.fullmatch(r"\.\./sub-[A-Za-z0-9]+\.html", url), url
        else:
            assert url.startswith("data:image/png;base64,"), (tag, attr, url[:40])
    assert "script" not in checker.tags
    assert "link" not in checker.tags
    assert html.lstrip().startswith("<!DOCTYPE html>")


def test_participant_report_is_well_formed_and_self_contained(participant_html: str) -> None:
    assert_well_formed(participant_html)
    checker = check_html(participant_html)
    assert checker.headings[0] == "sub-01 pass"
    for heading in PARTICIPANT_HEADINGS:
        assert heading in checker.headings, heading
    # 2 registrations x (before + after), 2 sessions x (normalised mean + ROIs), BPND, R1, ΔBPND
    assert len(checker.img_srcs) == 11
    # 2 motion + 2 TAC figures + the reference TACs of both sessions
    assert participant_html.count('class="svg-figure"') == 5
    assert len(participant_html.encode()) < MAX_REPORT_BYTES


def test_lazy_images_reserve_their_size(participant_html: str) -> None:
    for tag in re.findall(r"<img [^>]*>", participant_html):
        width = int(re.search(r'width="(\d+)"', tag).group(1))  # type: ignore[union-attr]
        height = int(re.search(r'height="(\d+)"', tag).group(1))  # type: ignore[union-attr]
        src = re.search(r'src="([^"]+)"', tag).group(1)  # type: ignore[union-attr]
        assert (width, height) == png_info(src)[:2]
        assert 'loading="lazy"' in tag


def test_qc_checks_are_shown_with_thresholds_reasons_and_badges(participant_html: str) -> None:
    html = participant_html
    assert "maximum framewise displacement" in html
    assert "warn &gt; 2; fail &gt; 4" in html
    assert "warn &lt; 0.75; fail &lt; 0.6" in html
    assert "a jump of several mm within a frame cannot be corrected" in html
    assert html.count('<span class="badge badge-pass">pass</span>') >= 4
    assert 'class="banner banner-fail"' not in html
    assert "QC warning" not in html  # every check passes


def test_failed_qc_puts_a_red_banner_on_top() -> None:
    report = make_participant(n_sessions=1, qc=make_verdict(max_fd_mm=(4.8, 2.5)))
    html = render_participant(report)
    assert_well_formed(html)
    banner = html.index('class="banner banner-fail"')
    assert banner < html.index('id="summary"')
    assert "QC failed: the results of sub-01 are likely wrong" in html
    assert "ses-sal: maximum framewise displacement 4.8 mm (&gt; 4 mm, fail)" in html
    assert "QC warning: ses-nal: maximum framewise displacement 2.5 mm" in html
    assert "No warnings or errors." not in html
    assert '<span class="badge badge-fail">fail</span>' in html


def test_sessions_show_what_was_injected(participant_html: str) -> None:
    assert ">357 MBq<" in participant_html
    assert ">362.2 MBq<" in participant_html
    assert ">3.1 ug<" in participant_html
    assert ">not recorded<" in participant_html  # molar activity n/a


def test_registrations_show_before_and_after(participant_html: str) -> None:
    assert participant_html.count('class="fig fig-img flicker"') == 2
    assert "Challenge -&gt; baseline co-registration" in participant_html
    assert 'alt="Normalisation to MNI152NLin2009aSym (PET-only), before"' in participant_html


def test_participant_report_content(participant_html: str) -> None:
    html = participant_html
    assert "reference region eroded by 1 voxel" in html
    assert "median of voxelwise SRTM k2&#39; over voxels with BPND &gt; 0" in html
    for citation in ("Lammertsma AA, Hume SP", "Wu Y, Carson RE", "Gunn RN", "Avants BB"):
        assert citation in html
    assert "bids_app /data /out participant --participant-label 01" in html
    assert "2024-01-01T10:30:00" in html
    # kinpar BPND of the challenge session (0.9 * 2.5), 3 decimals, and the fit counts
    assert ">2.250<" in html
    assert ">MNI152NLin2009aSym<" in html
    assert "sub-01/ses-sal/pet/sub-01_ses-sal_desc-confounds_timeseries.tsv" in html


def test_group_report_is_well_formed_and_has_sections(group_html: str) -> None:
    assert_well_formed(group_html)
    checker = check_html(group_html)
    for heading in GROUP_HEADINGS:
        assert heading in checker.headings, heading
    # BPND: glass brain + peak slices; R1 without clusters: glass brain only
    assert len(checker.img_srcs) == 3
    assert "No cluster reached significance" in group_html
    assert len(group_html.encode()) < MAX_REPORT_BYTES


def test_group_qc_table_links_every_participant_report(group_html: str) -> None:
    for i in range(1, 11):
        assert f'<a href="../sub-{i:02d}.html">sub-{i:02d}</a>' in group_html
    assert "excluded: no challenge session" in group_html
    assert 'class="cell-warn num">3.1<' in group_html
    assert "maximum framewise displacement ses-sal (mm)" in group_html
    assert "<title>sub-02: 3.1 mm</title>" in group_html  # the strip plot's tooltip
    assert "k2&#39; ses-sal (1/min)" in group_html


def test_group_shows_only_significant_clusters_and_their_peaks(group_html: str) -> None:
    assert "1 of the 2 clusters above the cluster-forming threshold are significant" in group_html
    assert "Right putamen" in group_html
    assert "Left angular gyrus" not in group_html
    assert "Search volume: BPND: 236,026 voxels (1888.2 mL); SPM&#39;s implicit mask" in group_html


def test_numbers_are_formatted_by_meaning(group_html: str) -> None:
    text = re.sub(r"\s+", " ", group_html)
    assert ">2.500<" in text  # BPND baseline mean, 3 decimals
    assert ">0.0027<" in text  # p, 2 significant digits
    assert ">1.7e-05<" in text
    assert ">-10.0<" in text  # percentage, 1 decimal
    assert ">-4.10<" in text  # t, 2 decimals
    volume_ml = float(make_group().clusters["size_mm3"].iloc[0]) / 1000.0  # mm3 shown as mL
    assert f'<td class="num">{volume_ml:.2f}</td>' in text
    assert '<td class="num">10</td><td class="num">3.20</td>' in text  # time_min, then t


def test_only_rows_significant_after_correction_are_highlighted(group_html: str) -> None:
    rows = re.findall(r"<tr( class=\"highlight\")?><td>(BPND|R1)</td><td>(\w+)</td>", group_html)
    highlighted = {roi for cls, _measure, roi in rows if cls}
    assert highlighted == {"dorsal_striatum", "pituitary"}  # ventral: p 0.03 but p_corrected 0.06


def test_net_change_is_shown_with_its_definition(group_html: str) -> None:
    assert "mean over the striatal voxels of the symmetric change" in group_html
    assert ">0.081<" in group_html


def test_conventions_are_stated_once_in_each_report(
    group_html: str, participant_html: str
) -> None:
    assert "blue = lower under the challenge, red = higher" in group_html
    assert "blue = lower under the challenge, red = higher" in participant_html
    assert "positive value is dopamine release" in group_html


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
    assert "No cluster above the threshold." in html
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


def test_t1w_normalisation_adds_pet_on_t1w_panel() -> None:
    report = make_participant(n_sessions=1)
    ses = report.sessions[0]
    with_t1w = replace(ses, t1w_mni=ses.template)
    html = render_participant(replace(report, sessions=[with_t1w], normalisation="PET→T1w→MNI"))
    checker = check_html(html)
    # normalised mean + PET-on-T1w + ROI rows + BPND + R1 maps
    assert len(checker.img_srcs) == 5
    assert "Normalised T1w with the edges of the mean PET" in html
    assert "PET→T1w→MNI" in html


def test_participant_provenance_shows_stage_timings_only_when_given(participant_html: str) -> None:
    timings = pd.DataFrame(
        {
            "stage": ["motion:baseline", "resample:challenge", "total"],
            "seconds": [4.25, 1.5, 5.75],
            "from_checkpoint": [False, True, None],
            "peak_rss_mb": [300, 805, 805],
        }
    )
    report = make_participant()
    timed = replace(report, provenance=replace(provenance(), stage_timings=timings))
    html = render_participant(timed)
    assert_well_formed(html)
    section = html[html.index('id="provenance"') :]
    assert "Processing time and memory" in section
    assert re.search(
        r"resample:challenge</td>\s*<td class=\"num\">1\.50*</td>\s*<td>yes</td>", section
    )
    assert "Processing time and memory" not in participant_html


def test_group_shows_k2prime_and_injection_comparisons() -> None:
    comparisons = pd.DataFrame(
        {
            "quantity": ["k2prime", "injected_mass"],
            "unit": ["1/min", "ug"],
            "n": [10, 9],
            "baseline_mean": [0.312, 5.1],
            "baseline_sd": [0.02, 0.6],
            "challenge_mean": [0.318, 5.3],
            "challenge_sd": [0.03, 0.7],
            "mean_change_pct": [1.9, 3.9],
            "t": [0.81, 1.23],
            "df": [9, 8],
            "p": [0.44, 0.25],
            "status": ["ok", "ok"],
            "note": [None, "1 participant(s) without both values"],
        }
    )
    notes = ["sub-03 ses-nal: InjectedMass missing"]
    html = render_group(
        replace(make_group(), session_comparisons=comparisons, session_notes=notes)
    )
    assert_well_formed(html)
    section = html[html.index('id="session-checks"') : html.index('id="stat-maps"')]
    assert "<h2>k2' and injection, baseline vs challenge</h2>" in section
    assert "would bias R1" in section
    assert "mass effect" in section
    assert ">k2prime<" in section
    assert ">0.44<" in section
    assert "1 participant(s) without both values" in section
    assert "sub-03 ses-nal: InjectedMass missing (n/a)" in section
    assert "were compared between the sessions with paired t-tests" in html
    empty = render_group(make_group())
    assert "no per-session values were read" in empty
    assert "were compared between the sessions with paired t-tests" not in empty


def test_group_methods_name_both_striatal_definitions() -> None:
    base = make_group()
    html = render_group(replace(base, roi_stats=base.roi_stats.assign(definition="AAL3")))
    assert "two definitions: AAL3" in html
    assert "Mawlawi et al. (2001)" in html
    assert "Mawlawi et al. (2001)" not in render_group(base)


def test_group_shows_descriptives_pc1_and_leave_one_out() -> None:
    base = make_group()
    descriptives = pd.DataFrame(
        {
            "measure": ["anxiety"] * 4 + ["cortisol"],
            "kind": ["subjective"] * 4 + ["hormone"],
            "condition": ["challenge", "baseline", "challenge", "baseline", "challenge"],
            "session_id": ["nal", "sal", "nal", "sal", "nal"],
            "time_min": [-10.0, -10.0, 10.0, 10.0, 30.0],
            "n": [10, 10, 10, 9, 1],
            "mean": [2.04, 2.11, 5.3, 2.2, 14.25],
            "sd": [0.513, 0.48, 1.9, 0.61, np.nan],
        }
    )
    loadings = pd.DataFrame(
        {
            "column": ["anxiety_10min", "happiness_10min"],
            "measure": ["anxiety", "happiness"],
            "time_min": [10.0, 10.0],
            "aversive_sign": [1, -1],
            "loading": [0.7071, -0.7071],
            "explained_variance_ratio": [0.37, 0.37],
            "n": [10, 10],
            "status": ["ok", "ok"],
        }
    )
    correlations = base.correlations.assign(r_loo_min=[-0.8412], r_loo_max=[-0.4388])
    html = render_group(
        replace(
            base,
            behavior_descriptives=descriptives,
            aversion_loadings=loadings,
            correlations=correlations,
            parameters={**base.parameters, "behavior_challenge_effect": "post_minus_pre"},
        )
    )
    assert_well_formed(html)
    section = html[html.index('id="behaviour"') : html.index('id="methods"')]
    # Supplementary Table 1 layout: baseline columns first, then by time
    header = re.findall(r"<th[^>]*>([^<]*)</th>", section[section.index("<h3>Descriptives") :])
    assert header[:6] == [
        "measure",
        "kind",
        "baseline -10 min",
        "baseline 10 min",
        "challenge -10 min",
        "challenge 10 min",
    ]
    assert "2.11 ± 0.48 (10)" in section
    assert "2.04 ± 0.51 (10)" in section
    assert "14.2 (1)" in section  # one value: no SD
    assert "explains 37.0 % of their variance (n = 10, status ok)" in section
    assert ">0.707<" in section
    assert ">-0.707<" in section
    corr = html[html.index('id="correlations"') : html.index('id="behaviour"')]
    assert ">-0.84<" in corr
    assert ">-0.44<" in corr
    assert "leaving one participant out: -0.84 to -0.44" in corr
    assert "within the challenge session (post - pre; the paper" in html
    default = render_group(
        replace(base, parameters={**base.parameters, "behavior_challenge_effect": None})
    )
    assert "(challenge post - pre) - (baseline post - pre)" in default
    assert "No aversion index was computed" in default
