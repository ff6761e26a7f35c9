"""Rigid/affine matrix utilities: conventions, round trips, framewise displacement."""

from __future__ import annotations

import numpy as np
import pytest

from bids_app.errors import InputError
from bids_app.preproc.transforms import (
    apply_to_points,
    framewise_displacement,
    itk_affine_to_ras,
    matrix_to_params,
    params_to_matrix,
    ras_affine_to_itk,
    rms_displacement,
)


def test_rotation_convention_right_handed_about_z() -> None:
    # +90 degrees about z takes the +x axis to +y (right-hand rule, RAS)
    mat = params_to_matrix([0, 0, 0, 0, 0, np.pi / 2])
    np.testing.assert_allclose(
        apply_to_points(mat, [10.0, 0.0, 0.0]), [0.0, 10.0, 0.0], atol=1e-12
    )


def test_rotation_order_is_x_then_y_then_z() -> None:
    # R = Rz @ Ry @ Rx: rotate x first. +90 about x sends +y to +z; then +90 about z keeps +z.
    mat = params_to_matrix([0, 0, 0, np.pi / 2, 0, np.pi / 2])
    np.testing.assert_allclose(apply_to_points(mat, [0.0, 1.0, 0.0]), [0.0, 0.0, 1.0], atol=1e-12)


def test_centre_is_a_fixed_point_of_a_pure_rotation() -> None:
    centre = np.array([12.0, -30.0, 5.0])
    mat = params_to_matrix([0, 0, 0, 0.1, -0.2, 0.3], centre)
    np.testing.assert_allclose(apply_to_points(mat, centre), centre, atol=1e-12)


def test_params_round_trip_about_a_centre(rng: np.random.Generator) -> None:
    centre = rng.normal(0, 20, 3)
    for _ in range(20):
        params = np.r_[rng.uniform(-10, 10, 3), rng.uniform(-0.5, 0.5, 3)]
        back = matrix_to_params(params_to_matrix(params, centre), centre)
        np.testing.assert_allclose(back, params, atol=1e-10)


def test_translation_depends_on_the_centre() -> None:
    mat = params_to_matrix([0, 0, 0, 0, 0, np.deg2rad(10)], [50.0, 0, 0])
    about_origin = matrix_to_params(mat)
    # rotating about (50, 0, 0) == rotating about 0 then translating by (I - R) c
    rot = mat[:3, :3]
    np.testing.assert_allclose(about_origin[:3], (np.eye(3) - rot) @ [50.0, 0, 0], atol=1e-12)


def test_matrix_to_params_rejects_mirroring() -> None:
    with pytest.raises(InputError, match="mirrors"):
        matrix_to_params(np.diag([-1.0, 1.0, 1.0, 1.0]))


def test_framewise_displacement_power_2012() -> None:
    params = np.array(
        [
            [0, 0, 0, 0, 0, 0],
            [1.0, -0.5, 0.0, 0.01, 0.0, 0.0],
            [1.0, -0.5, 0.2, 0.01, -0.02, 0.0],
        ]
    )
    fd = framewise_displacement(params)
    # frame 1: 1 + 0.5 + 50 * 0.01 = 2.0; frame 2: 0.2 + 50 * 0.02 = 1.2
    np.testing.assert_allclose(fd, [0.0, 2.0, 1.2])


def test_framewise_displacement_rejects_bad_shape() -> None:
    with pytest.raises(InputError, match=r"shape \(n_frames, 6\)"):
        framewise_displacement(np.zeros((4, 5)))


def test_rms_displacement_of_translation_is_its_length() -> None:
    a = params_to_matrix([3.0, 4.0, 0, 0, 0, 0])
    assert rms_displacement(a, np.eye(4)) == pytest.approx(5.0)


def test_rms_displacement_of_small_rotation_on_50mm_sphere() -> None:
    # a rotation by angle t moves sphere points by 2 r sin(t/2) sin(polar angle);
    # RMS over the sphere = r t sqrt(2/3) for small t
    t = np.deg2rad(1.0)
    rms = rms_displacement(params_to_matrix([0, 0, 0, 0, 0, t]), np.eye(4))
    assert rms == pytest.approx(50.0 * t * np.sqrt(2.0 / 3.0), rel=1e-2)


def test_itk_conversion_round_trip_and_lps_flip(rng: np.random.Generator) -> None:
    mat = params_to_matrix(np.r_[rng.uniform(-5, 5, 3), rng.uniform(-0.2, 0.2, 3)])
    mat[:3, :3] *= 1.1
    params, centre = ras_affine_to_itk(mat)
    np.testing.assert_allclose(itk_affine_to_ras(params, centre), mat, atol=1e-12)
    # a +x (right) RAS translation is a -x LPS translation
    params_t, _ = ras_affine_to_itk(params_to_matrix([2.0, 3.0, 4.0, 0, 0, 0]))
    np.testing.assert_allclose(params_t[9:], [-2.0, -3.0, 4.0])


def test_itk_centre_is_honoured() -> None:
    # ITK: T(x) = A (x - c) + c + t, in LPS
    lin = np.diag([2.0, 1.0, 1.0]).reshape(-1)
    mat = itk_affine_to_ras(np.r_[lin, [0.0, 0.0, 0.0]], [10.0, 0.0, 0.0])
    # LPS point (10, 0, 0) is fixed -> RAS point (-10, 0, 0) is fixed
    np.testing.assert_allclose(apply_to_points(mat, [-10.0, 0, 0]), [-10.0, 0, 0])


def test_bad_inputs_raise() -> None:
    with pytest.raises(InputError, match="6 numbers"):
        params_to_matrix([1, 2, 3])
    with pytest.raises(InputError, match="4x4"):
        apply_to_points(np.eye(3), [0, 0, 0])
    with pytest.raises(InputError, match="3 columns"):
        apply_to_points(np.eye(4), np.zeros((2, 2)))
