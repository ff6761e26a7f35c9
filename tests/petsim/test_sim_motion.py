"""Rigid motion helpers of the simulator."""

from __future__ import annotations

import numpy as np
import pytest

from petsim.motion import (
    framewise_displacement,
    rigid_matrix,
    rigid_params,
    sample_session_motion,
    sample_session_pose,
)


def test_rigid_roundtrip_and_orthonormal(rng: np.random.Generator) -> None:
    for _ in range(20):
        params = np.concatenate([rng.uniform(-10, 10, 3), rng.uniform(-0.5, 0.5, 3)])
        matrix = rigid_matrix(params)
        r = matrix[:3, :3]
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(r) == pytest.approx(1.0)
        np.testing.assert_allclose(rigid_params(matrix), params, atol=1e-12)


def test_rotation_order_is_z_y_x() -> None:
    # A pure rot_z of 90 deg maps +x to +y.
    m = rigid_matrix([0, 0, 0, 0, 0, np.pi / 2])
    np.testing.assert_allclose(m[:3, :3] @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    # rot_x then rot_z: x-rotation is applied first.
    both = rigid_matrix([0, 0, 0, np.pi / 2, 0, np.pi / 2])
    expected = rigid_matrix([0, 0, 0, 0, 0, np.pi / 2]) @ rigid_matrix([0, 0, 0, np.pi / 2, 0, 0])
    np.testing.assert_allclose(both, expected, atol=1e-12)


def test_session_pose_places_head_centre(rng: np.random.Generator) -> None:
    centre = np.array([0.0, -18.0, 10.0])
    for _ in range(50):
        pose, params = sample_session_pose(rng, centre)
        moved = pose @ np.append(centre, 1.0)
        np.testing.assert_allclose(moved[:3], params[:3], atol=1e-9)
        assert np.all(np.abs(params[:3]) <= 8.0)
        assert np.all(np.abs(np.rad2deg(params[3:])) <= 6.0)


def test_intrascan_motion_is_small_and_starts_at_identity(rng: np.random.Generator) -> None:
    centre = np.array([0.0, -18.0, 10.0])
    mid = np.linspace(0.1, 57.5, 26)
    worst_shift = worst_rot = 0.0
    for _ in range(100):
        motion = sample_session_motion(rng, centre, mid)
        np.testing.assert_allclose(motion.frame_motion[0], np.eye(4), atol=1e-12)
        centre_scanner = (motion.pose @ np.append(centre, 1.0))[:3]
        for d in motion.frame_motion:
            shift = np.linalg.norm((d @ np.append(centre_scanner, 1.0))[:3] - centre_scanner)
            angle = np.rad2deg(np.arccos(np.clip((np.trace(d[:3, :3]) - 1) / 2, -1, 1)))
            worst_shift, worst_rot = max(worst_shift, shift), max(worst_rot, angle)
    # Per axis <= 2.2 mm and <= 1.5 deg: the head centre moves < 3.9 mm, angle < 2.6 deg.
    assert 0.5 < worst_shift < 3.9
    assert 0.3 < worst_rot < 2.6


def test_no_motion_when_scale_zero(rng: np.random.Generator) -> None:
    motion = sample_session_motion(rng, np.zeros(3), np.linspace(0, 60, 10), motion_scale=0.0)
    np.testing.assert_allclose(motion.frame_motion, np.broadcast_to(np.eye(4), (10, 4, 4)))
    np.testing.assert_allclose(motion.frame_pose(5), motion.pose)


def test_framewise_displacement() -> None:
    params = np.zeros((3, 6))
    params[1, 0] = 1.0
    params[2, 0] = 1.0
    params[2, 5] = 0.01
    np.testing.assert_allclose(framewise_displacement(params), [0.0, 1.0, 0.5])
