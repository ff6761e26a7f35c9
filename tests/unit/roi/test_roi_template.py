"""Tests for bids_app.roi.template (nilearn's bundled MNI152 2009a template, offline)."""

from __future__ import annotations

import numpy as np
import pytest

from bids_app.errors import InputError
from bids_app.roi import template as tpl


def test_template_name() -> None:
    assert tpl.TEMPLATE_NAME == "MNI152NLin2009aSym"


def test_load_template_2mm_grid_and_dtype() -> None:
    img = tpl.load_template(2)
    assert img.shape == (99, 117, 95)
    assert img.get_data_dtype() == np.float32
    np.testing.assert_allclose(np.diag(img.affine)[:3], [2.0, 2.0, 2.0])
    np.testing.assert_allclose(img.affine[:3, 3], [-98.0, -134.0, -72.0])
    data = np.asarray(img.dataobj)
    assert data.dtype == np.float32
    assert 0.0 <= float(data.min())
    assert float(data.max()) <= 1.0
    # MNI origin (0, 0, 0) lies inside the brain: the template is non-zero there
    ijk = np.rint(np.linalg.solve(img.affine, [0.0, 0.0, 0.0, 1.0])[:3]).astype(int)
    assert data[tuple(ijk)] > 0.2


def test_template_cache_is_read_only_and_callers_get_fresh_images() -> None:
    img = tpl.load_template(2)
    with pytest.raises(ValueError, match="read-only"):
        np.asarray(img.dataobj)[0, 0, 0] = 5.0
    copy = img.get_fdata()
    copy[:] = 7.0
    assert float(np.asarray(tpl.load_template(2).dataobj).max()) <= 1.0
    assert tpl.load_template(2) is not img


def test_brain_mask_binary_and_plausible_volume() -> None:
    img = tpl.load_brain_mask(2)
    data = np.asarray(img.dataobj)
    assert data.dtype == np.uint8
    assert set(np.unique(data).tolist()) == {0, 1}
    volume_l = data.sum() * 8.0 / 1e6
    assert 1.5 < volume_l < 2.3  # an adult brain + a margin, litres
    np.testing.assert_allclose(img.affine, tpl.template_affine(2))


@pytest.mark.parametrize("tissue", ["gm", "wm"])
def test_tissue_mask_and_probability(tissue: str) -> None:
    mask = np.asarray(tpl.load_tissue_mask(tissue, 2).dataobj) > 0
    prob = np.asarray(tpl.load_tissue_probability(tissue, 2).dataobj)
    brain = np.asarray(tpl.load_brain_mask(2).dataobj) > 0
    assert prob.dtype == np.float32
    assert prob.min() >= 0.0
    assert prob.max() <= 1.0
    assert 0.2 < mask.sum() / brain.sum() < 1.0
    # the binary mask is where the probability is substantial
    assert prob[mask].mean() > prob[~mask].mean() + 0.3


def test_gm_and_wm_differ_where_expected() -> None:
    gm = np.asarray(tpl.load_tissue_probability("gm", 2).dataobj)
    wm = np.asarray(tpl.load_tissue_probability("wm", 2).dataobj)
    affine = tpl.template_affine(2)

    def at(x: float, y: float, z: float) -> tuple[int, ...]:
        return tuple(np.rint(np.linalg.solve(affine, [x, y, z, 1.0])[:3]).astype(int))

    assert wm[at(-28, -10, 30)] > gm[at(-28, -10, 30)]  # centrum semiovale: white matter
    assert gm[at(-24, 2, 0)] > wm[at(-24, 2, 0)]  # putamen: grey matter


@pytest.mark.parametrize("bad", [3, 0, 1.5, "2"])
def test_bad_resolution_raises(bad: object) -> None:
    with pytest.raises(InputError, match=r"resolution must be one of \[1, 2\]"):
        tpl.load_template(bad)  # type: ignore[arg-type]


def test_bad_tissue_raises() -> None:
    with pytest.raises(InputError, match="tissue must be one of"):
        tpl.load_tissue_mask("csf", 2)  # type: ignore[arg-type]
