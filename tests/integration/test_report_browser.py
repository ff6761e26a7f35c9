"""Both reports opened in headless Chromium: no console errors, every image decoded, every
TOC link lands on its section, tables readable at 1024 px, plot text at least 11 px, printable.

The reports are rendered from the synthetic report inputs (``helpers.report_factories``) on a 2 mm
MNI-sized grid. Screenshots go to ``$BIDS_APP_SCREENSHOT_DIR`` (CI keeps them as artefacts) or
to the test's temporary folder. The test skips, saying why, where no Chromium is installed
(``apt-get install chromium`` on Debian/Ubuntu; ``BIDS_APP_CHROMIUM`` names another binary).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.browser import Chromium, find_chromium
from helpers.report_factories import BIG_SHAPE, make_group, make_participant, make_verdict

from bids_app.outputs.io import write_text
from bids_app.report.render import MAX_REPORT_BYTES, render_group, render_participant

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = find_chromium()
#: A TOC link lands when its section's top is this close to the bottom of the sticky header.
LANDING_TOLERANCE_PX = 50
MIN_FONT_PX = 11.0

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium found (apt-get install chromium, or set BIDS_APP_CHROMIUM)",
)


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A participant report (one QC warning) and the group report linking to it."""
    out = tmp_path_factory.mktemp("browser") / "out"
    participant = make_participant(BIG_SHAPE, qc=make_verdict(max_fd_mm=(2.6, 0.8)))
    write_text(out / "sub-01.html", render_participant(participant))
    write_text(out / "group" / "group.html", render_group(make_group(BIG_SHAPE)))
    paths = {"participant": out / "sub-01.html", "group": out / "group" / "group.html"}
    for path in paths.values():
        assert path.stat().st_size < MAX_REPORT_BYTES, path
    return paths


@pytest.fixture(scope="module")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("BIDS_APP_SCREENSHOT_DIR")
    return Path(configured) if configured else tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def browser() -> Iterator[Chromium]:
    assert CHROMIUM is not None
    with Chromium(CHROMIUM, width=1280, height=900) as chromium:
        yield chromium


def _settle(browser: Chromium) -> None:
    """Wait until the page stops scrolling (the stylesheet scrolls smoothly to anchors)."""
    last = None
    for _ in range(60):
        browser.pause(0.2)
        position = browser.evaluate("window.scrollY")
        if position == last:
            return
        last = position


def _anchor_landings(browser: Chromium) -> list[tuple[str, float, bool]]:
    """For every TOC link: (href, section top - header bottom in px, page at its end)."""
    links = browser.evaluate(
        "Array.from(document.querySelectorAll('nav.toc a')).map(a => a.getAttribute('href'))"
    )
    landings = []
    for href in links:
        browser.evaluate(f"document.querySelector('nav.toc a[href=\"{href}\"]').click(); 0")
        _settle(browser)
        offset, at_end = browser.evaluate(
            f"""(() => {{
                const top = document.querySelector('{href}').getBoundingClientRect().top;
                const header = document.querySelector('.topbar').getBoundingClientRect().bottom;
                const end = document.documentElement.scrollHeight - innerHeight;
                return [top - header, window.scrollY >= end - 1];
            }})()"""
        )
        landings.append((href, float(offset), bool(at_end)))
    return landings


DECODE_ALL = """(async () => {
    const images = Array.from(document.images);
    for (const img of images) img.loading = 'eager';
    await Promise.all(images.map(img => img.decode().catch(() => null)));
    return images.map(img => [img.alt, img.complete && img.naturalWidth > 0]);
})()"""

SMALLEST_SVG_TEXT = """(() => {
    let smallest = [1e9, ''];
    for (const text of document.querySelectorAll('svg.svg-figure text')) {
        const size = parseFloat(getComputedStyle(text).fontSize) * text.getScreenCTM().a;
        if (size > 0 && size < smallest[0]) smallest = [size, text.textContent];
    }
    return smallest;
})()"""

TABLES = """(() => Array.from(document.querySelectorAll('.table-wrap')).map(wrap => {
    const first = wrap.querySelector('tbody td');
    return [getComputedStyle(wrap).overflowX,
            first ? getComputedStyle(first).position : 'sticky',
            wrap.getBoundingClientRect().right <= innerWidth + 1];
}))()"""


@needs_chromium
@pytest.mark.parametrize("kind", ["participant", "group"])
def test_report_in_chromium(
    kind: str, reports: dict[str, Path], browser: Chromium, screenshot_dir: Path
) -> None:
    browser.open(reports[kind])
    browser.screenshot(screenshot_dir / f"{kind}_report_top.png")

    landings = _anchor_landings(browser)
    assert len(landings) >= 10
    for href, offset, at_end in landings:
        landed = abs(offset) <= LANDING_TOLERANCE_PX
        # the last sections cannot scroll higher than the end of the page: then they must at
        # least be in view, below the header
        assert landed or (at_end and 0 <= offset < 900), (href, offset)

    decoded = browser.evaluate(DECODE_ALL)
    assert decoded, "the report has no image"
    assert [alt for alt, ok in decoded if not ok] == []

    size, text = browser.evaluate(SMALLEST_SVG_TEXT)
    assert size >= MIN_FONT_PX, f"SVG text {text!r} is {size:.1f} px"

    browser.call(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1024, "height": 800, "deviceScaleFactor": 1, "mobile": False},
    )
    browser.pause(0.5)
    assert browser.evaluate("document.documentElement.scrollWidth <= innerWidth")
    for overflow, first_cell, inside in browser.evaluate(TABLES):
        assert overflow == "auto"
        assert first_cell == "sticky"
        assert inside
    size_1024, text_1024 = browser.evaluate(SMALLEST_SVG_TEXT)
    assert size_1024 >= MIN_FONT_PX, f"at 1024 px, SVG text {text_1024!r} is {size_1024:.1f} px"
    browser.evaluate("window.scrollTo(0, 0); 0")
    browser.screenshot(screenshot_dir / f"{kind}_report_1024.png")

    pdf = browser.call("Page.printToPDF", {"printBackground": True})["data"]
    assert len(pdf) > 10_000  # print works (the print stylesheet shows every section)

    assert browser.console_errors == []
