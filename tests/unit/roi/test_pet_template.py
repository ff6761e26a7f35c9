"""The perfusion-like PET template used for PET-only normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from bids_app.errors import InputError
from bids_app.roi.atlas import build_roi_atlas
from bids_app.roi.pet_template import load_pet_template
from bids_app.roi.template import load_template


def test_grid_and_contrast() -> None:
    template = load_template(2)
    pet = load_pet_template(2)
    assert pet.shape == template.shape
    np.testing.assert_allclose(pet.affine, template.affine)
    data = np.asarray(pet.dataobj)
    atlas = build_roi_atlas(2)
    putamen = data[atlas.masks["putamen"]].mean()
    assert putamen > 0.5
    brain_only = np.asarray(load_pet_template(2, extracerebral=0.0).dataobj)
    for roi in ("pituitary", "carotid"):  # high-flow structures below the brain are present
        assert data[atlas.masks[roi]].mean() > 0.5
        assert brain_only[atlas.masks[roi]].mean() < 0.5 * data[atlas.masks[roi]].mean()
    assert data[0, 0, 0] == 0.0  # nothing far outside the head
    assert not data.flags.writeable


def test_smoothing_widens_the_profile() -> None:
    sharp = np.asarray(load_pet_template(2, fwhm_mm=0.0).dataobj)
    smooth = np.asarray(load_pet_template(2, fwhm_mm=8.0).dataobj)
    assert np.count_nonzero(smooth > 0.01) > np.count_nonzero(sharp > 0.01)


@pytest.mark.parametrize("kwargs", [{"wm_to_gm": 1.5}, {"extracerebral": -1.0}, {"fwhm_mm": -2.0}])
def test_bad_arguments(kwargs: dict[str, float]) -> None:
    with pytest.raises(InputError, match="wm_to_gm must be in"):
        load_pet_template(2, **kwargs)
