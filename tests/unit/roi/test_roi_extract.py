"""Tests for bids_app.roi.extract: TACs, ROI means and reference coverage on toy arrays."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from numpy.typing import NDArray

from bids_app.errors import InputError
from bids_app.roi.extract import extract_tacs, roi_means

SHAPE = (7, 8, 9)


@pytest.fixture
def toy() -> tuple[NDArray[np.float32], dict[str, NDArray[np.bool_]]]:
    """A 3-frame image: voxel value = 10 * frame + x index; two masks."""
    data = np.zeros((*SHAPE, 3), dtype=np.float32)
    x = np.arange(SHAPE[0], dtype=np.float32)[:, None, None]
    for t in range(3):
        data[..., t] = 10.0 * (t + 1) + x
    a = np.zeros(SHAPE, dtype=bool)
    a[1:3, 0, 0] = True  # x = 1, 2
    b = np.zeros(SHAPE, dtype=bool)
    b[6, 2:4, 5] = True  # x = 6 (two voxels)
    return data, {"cerebellum": a, "putamen": b}


def test_extract_tacs_hand_computed(toy: tuple) -> None:
    data, masks = toy
    tacs = extract_tacs(data, masks, [0.0, 60.0, 120.0], [60.0, 120.0, 300.0])
    assert list(tacs.columns) == ["frame_start", "frame_end", "cerebellum", "putamen"]
    np.testing.assert_allclose(tacs["frame_start"], [0.0, 60.0, 120.0])
    np.testing.assert_allclose(tacs["frame_end"], [60.0, 120.0, 300.0])
    np.testing.assert_allclose(tacs["cerebellum"], [11.5, 21.5, 31.5])
    np.testing.assert_allclose(tacs["putamen"], [16.0, 26.0, 36.0])
    assert tacs["cerebellum"].dtype == np.float64


def test_extract_tacs_ignores_nan_voxels(toy: tuple) -> None:
    data, masks = toy
    data[2, 0, 0, 1] = np.nan  # x = 2 voxel missing in frame 1 only
    tacs = extract_tacs(data, masks, [0, 60, 120], [60, 120, 300])
    np.testing.assert_allclose(tacs["cerebellum"], [11.5, 21.0, 31.5])


def test_extract_tacs_accepts_nifti(toy: tuple) -> None:
    data, masks = toy
    img = nib.Nifti1Image(data, np.eye(4))
    tacs = extract_tacs(img, masks, [0, 60, 120], [60, 120, 300])
    np.testing.assert_allclose(tacs["putamen"], [16.0, 26.0, 36.0])


def test_extract_tacs_all_nan_frame_raises_naming_roi(toy: tuple) -> None:
    data, masks = toy
    data[6, :, :, 2] = np.nan
    with pytest.raises(InputError, match=r"ROI 'putamen': no finite voxel in frame\(s\) \[2\]"):
        extract_tacs(data, masks, [0, 60, 120], [60, 120, 300])


def test_extract_tacs_on_empty_nan(toy: tuple, caplog: pytest.LogCaptureFixture) -> None:
    data, masks = toy
    data[6, ...] = np.nan
    tacs = extract_tacs(data, masks, [0, 60, 120], [60, 120, 300], on_empty="nan")
    assert tacs["putamen"].isna().all()
    np.testing.assert_allclose(tacs["cerebellum"], [11.5, 21.5, 31.5])
    assert "putamen" in caplog.text


def test_extract_tacs_empty_mask(toy: tuple) -> None:
    data, masks = toy
    masks["pituitary"] = np.zeros(SHAPE, dtype=bool)
    with pytest.raises(InputError, match="ROI 'pituitary': the mask has no voxels"):
        extract_tacs(data, masks, [0, 60, 120], [60, 120, 300])


@pytest.mark.parametrize(
    ("start", "end", "match"),
    [
        ([0, 60], [60, 120], "2 starts and 2 ends for 3 frames"),
        ([0, 60, 120], [60, 60, 300], r"not so at frame index \[1\]"),
        ([0, np.nan, 120], [60, 120, 300], "must be finite"),
    ],
)
def test_extract_tacs_bad_frame_times(toy: tuple, start: list, end: list, match: str) -> None:
    data, masks = toy
    with pytest.raises(InputError, match=match):
        extract_tacs(data, masks, start, end)


def test_extract_tacs_shape_mismatch(toy: tuple) -> None:
    data, _ = toy
    with pytest.raises(InputError, match=r"mask shape \(7, 8, 8\) does not match"):
        extract_tacs(data, {"x": np.ones((7, 8, 8), bool)}, [0, 1, 2], [1, 2, 3])
    with pytest.raises(InputError, match="data_4d must be 4-D"):
        extract_tacs(data[..., 0], {"x": np.ones(SHAPE, bool)}, [0], [1])


def test_roi_means_nan_robust(toy: tuple) -> None:
    data, masks = toy
    img = data[..., 0].copy()  # 10 + x
    img[1, 0, 0] = np.nan
    out = roi_means(img, masks)
    assert out == {"cerebellum": pytest.approx(12.0), "putamen": pytest.approx(16.0)}
    img[6] = np.nan
    assert np.isnan(roi_means(img, masks)["putamen"])


def test_extract_tacs_on_real_atlas_masks(rng: np.random.Generator) -> None:
    from bids_app.roi.atlas import build_roi_atlas

    atlas = build_roi_atlas(2)
    n_frames = 2
    data = np.zeros((*atlas.shape, n_frames), dtype=np.float32)
    data[atlas.masks["striatum"]] = [3.0, 4.0]
    data[atlas.masks["cerebellum"]] = [1.0, 2.0]
    data += rng.normal(0.0, 0.01, size=data.shape).astype(np.float32)
    tacs = extract_tacs(data, atlas.masks, [0, 60], [60, 180])
    assert isinstance(tacs, pd.DataFrame)
    np.testing.assert_allclose(tacs["putamen"], [3.0, 4.0], atol=0.01)
    np.testing.assert_allclose(tacs["cerebellum"], [1.0, 2.0], atol=0.01)
    np.testing.assert_allclose(tacs["pituitary"], [0.0, 0.0], atol=0.01)
