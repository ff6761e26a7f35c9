"""The numpy rigid-registration engine: interpolation kernels, pyramids, known-pose recovery."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.preproc_phantoms import SHAPE, frame_image, grid_affine, head_compartments, move
from scipy import ndimage

from bids_app.errors import InputError, RegistrationError
from bids_app.preproc.rigid import (
    FixedLevel,
    LinearSampler,
    MovingLevel,
    Volume,
    downsample,
    grid_points,
    inside_grid,
    pyramid,
    register_rigid,
    resample_linear,
)
from bids_app.preproc.transforms import params_to_matrix, rms_displacement


def _points(rng: np.random.Generator, shape: tuple[int, ...], n: int) -> np.ndarray:
    """Random voxel coordinates, some of them up to 1.5 voxels outside the grid."""
    return np.stack([rng.uniform(-1.5, s + 0.5, n) for s in shape])


def test_linear_sampler_matches_scipy_on_every_channel(rng: np.random.Generator) -> None:
    data = rng.normal(size=(7, 8, 9, 4)).astype(np.float32)
    vox = _points(rng, data.shape[:3], 500)
    got = LinearSampler(data).sample(vox)
    assert got.shape == (4, 500)
    assert got.dtype == np.float32
    for c in range(4):
        expected = ndimage.map_coordinates(data[..., c], vox, order=1, mode="nearest")
        np.testing.assert_allclose(got[c], expected, atol=1e-5)


def test_linear_sampler_handles_blocks_and_a_single_voxel_axis(rng: np.random.Generator) -> None:
    from bids_app.preproc import rigid

    data = rng.normal(size=(1, 30, 40)).astype(np.float32)
    vox = _points(rng, data.shape, 3 * rigid.CHUNK_POINTS + 17)  # several blocks
    got = LinearSampler(data).sample(vox)[0]
    expected = ndimage.map_coordinates(data, vox, order=1, mode="nearest")
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_inside_grid_is_where_scipy_interpolates(rng: np.random.Generator) -> None:
    data = np.ones((7, 8, 9))
    vox = _points(rng, data.shape, 2000)
    scipy_inside = np.isfinite(
        ndimage.map_coordinates(data, vox, order=1, mode="constant", cval=np.nan)
    )
    np.testing.assert_array_equal(inside_grid(vox, data.shape), scipy_inside)
    edges = np.array(
        [[0.0, 6.0, -1e-9, 6.0 + 1e-9, -0.01], [0.0, 7.0, 0.0, 7.0, 0.0], [0, 8, 0, 8, 0]]
    )
    np.testing.assert_array_equal(inside_grid(edges, data.shape), [True, True, True, True, False])


def test_grid_points_maps_every_voxel_in_c_order() -> None:
    matrix = np.array([[2.0, 0.1, 0, 5], [0, 3, 0, -1], [0.2, 0, 1, 0], [0, 0, 0, 1]])
    shape = (3, 4, 5)
    ijk = np.indices(shape).reshape(3, -1)
    np.testing.assert_allclose(grid_points(matrix, shape), matrix[:3, :3] @ ijk + matrix[:3, 3:])


def test_resample_linear_matches_affine_transform(rng: np.random.Generator) -> None:
    data = ndimage.gaussian_filter(rng.normal(size=(17, 18, 19)), 1.5)
    data[3, 4, 5] = np.nan  # treated as 0, as the native resampling always did
    rot = params_to_matrix([1.3, -0.7, 2.1, 0.05, -0.04, 0.08], centre_mm=[8, 9, 9])
    got = resample_linear(data, rot, (15, 20, 19))
    expected = ndimage.affine_transform(
        np.nan_to_num(data), rot, output_shape=(15, 20, 19), order=1, cval=np.nan
    )
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    finite = np.isfinite(expected)
    assert finite.mean() > 0.5
    np.testing.assert_allclose(got[finite], expected[finite], atol=1e-5)


def test_pyramid_levels_are_coarse_to_fine_and_close_to_direct_smoothing() -> None:
    affine = grid_affine()
    image = frame_image(head_compartments(SHAPE, affine), 30.0)
    coarse, fine = pyramid(image, affine, (8.0, 4.0))
    assert coarse.data.dtype == np.float32
    assert np.allclose(np.linalg.norm(fine.affine[:3, :3], axis=0), 4.0)
    assert np.allclose(np.linalg.norm(coarse.affine[:3, :3], axis=0), 8.0)
    direct = downsample(image, affine, 8.0)
    assert direct.data.shape == coarse.data.shape
    r = np.corrcoef(direct.data.ravel(), coarse.data.ravel())[0, 1]
    assert r > 0.995
    with pytest.raises(InputError, match="decreasing"):
        pyramid(image, affine, (4.0, 8.0))


def test_register_rigid_recovers_a_known_pose(rng: np.random.Generator) -> None:
    affine = grid_affine()
    static = frame_image(head_compartments(SHAPE, affine), 30.0)
    truth = params_to_matrix([2.5, -1.5, 1.0, *np.deg2rad([2.0, -1.5, 3.0])])
    moved = move(static, affine, truth) * 1.3 + 0.1 + rng.normal(0, 0.02, SHAPE)
    fixed = [FixedLevel.from_volume(v) for v in pyramid(static, affine)]
    moving = [MovingLevel(v) for v in pyramid(moved, affine)]
    centre = np.array([0.0, 0.0, 0.0])
    params = register_rigid(fixed, moving, centre)
    assert rms_displacement(params_to_matrix(params, centre), truth) < 0.15
    again = register_rigid(fixed, moving, centre)
    np.testing.assert_array_equal(params, again)  # deterministic
    from_truth = register_rigid(fixed[1:], moving[1:], centre, init_params=params)
    assert rms_displacement(params_to_matrix(from_truth, centre), truth) < 0.15


def test_register_rigid_rejects_bad_inputs() -> None:
    affine = grid_affine()
    image = frame_image(head_compartments(SHAPE, affine), 30.0)
    fixed = [FixedLevel.from_volume(v) for v in pyramid(image, affine)]
    moving = [MovingLevel(v) for v in pyramid(image, affine)]
    with pytest.raises(InputError, match="same, non-zero number of levels; got 2 and 1"):
        register_rigid(fixed, moving[:1], np.zeros(3))
    empty = Volume(np.zeros((10, 11, 12), dtype=np.float32), affine)
    with pytest.raises(RegistrationError, match="too few voxels with signal"):
        FixedLevel.from_volume(empty)
    with pytest.raises(InputError, match="3-D grid"):
        LinearSampler(np.zeros((4, 5)))
