"""Reports of a realistic (99, 117, 95) 2 mm grid stay under the size cap.

Moved from the unit suite: rendering both reports on the full template grid takes tens of
seconds.
"""

from __future__ import annotations

import pytest
from helpers.html_checks import check_html, png_info
from helpers.report_factories import BIG_SHAPE, make_group, make_participant

from bids_app.report.render import MAX_REPORT_BYTES, render_group, render_participant


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
