"""Field-of-view coverage on the template grid: NaN or all-zero voxels are "no data"."""

from __future__ import annotations

import numpy as np

from bids_app.pipelines.session_model import covered_voxels, roi_coverage


def test_voxels_outside_the_field_of_view_are_not_covered() -> None:
    data = np.ones((4, 3, 2, 5), np.float32)
    data[0] = np.nan  # exported with NaN outside the field of view
    data[1] = 0.0  # exported with zeros outside the field of view
    data[2, 0, 0, 3] = np.nan  # moved out of the field of view in one frame
    data[3, 0, 0, :2] = 0.0  # early frames legitimately zero, signal later
    covered = covered_voxels(data)
    expected = np.ones((4, 3, 2), bool)
    expected[0] = expected[1] = False
    expected[2, 0, 0] = False
    np.testing.assert_array_equal(covered, expected)


def test_roi_coverage_is_the_share_of_covered_voxels() -> None:
    covered = np.zeros((2, 2, 2), bool)
    covered[0] = True
    masks = {"a": np.ones((2, 2, 2), bool), "b": covered.copy(), "empty": np.zeros_like(covered)}
    assert roi_coverage(masks, covered) == {"a": 0.5, "b": 1.0, "empty": 0.0}
