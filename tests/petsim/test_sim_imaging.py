"""Rendering of native frames: pose, noise model and determinism, on a tiny phantom."""

from __future__ import annotations

import numpy as np
import pytest

from petsim.imaging import HeadModel, correlated_noise, render_session
from petsim.kinetics_sim import decay_correction_factors
from petsim.motion import SessionMotion, rigid_matrix
from petsim.protocol import ScanProtocol

MNI_SHAPE = (30, 32, 28)


def _phantom() -> HeadModel:
    """Two classes on a 4 mm grid: a 40 x 48 x 32 mm block (class 0) and a small cube (1)."""
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = -0.5 * (np.asarray(MNI_SHAPE) - 1) * 4.0
    vol = np.zeros((2, *MNI_SHAPE), dtype=np.float32)
    vol[0, 10:20, 10:22, 10:18] = 1.0
    vol[1, 12:14, 12:14, 12:14] = 1.0
    vol[0, 12:14, 12:14, 12:14] = 0.0
    flat = vol.reshape(2, -1)
    index = np.flatnonzero(flat.sum(axis=0) > 0)
    return HeadModel(
        blurred=flat[:, index],
        index=index,
        shape=MNI_SHAPE,
        affine=affine,
        head_centre_mm=np.zeros(3),
    )


def _protocol(**kw: object) -> ScanProtocol:
    base = {
        "schedule_s": ((2, 30.0), (2, 120.0), (2, 600.0)),
        "voxel_size_mm": (4.0, 4.0, 4.0),
        "grid_shape": (26, 28, 24),
        "noise_fwhm_mm": 0.0,
        "noise_floor_kbq_ml": 0.0,
    }
    base.update(kw)
    return ScanProtocol(**base)  # type: ignore[arg-type]


def _motion(protocol: ScanProtocol, pose: np.ndarray) -> SessionMotion:
    n = protocol.frames().n_frames
    return SessionMotion(
        pose=pose,
        pose_params=np.zeros(6),
        frame_motion=np.broadcast_to(np.eye(4), (n, 4, 4)).copy(),
        head_centre_mm=np.zeros(3),
    )


def _com_mm(volume: np.ndarray, affine: np.ndarray) -> np.ndarray:
    ijk = np.indices(volume.shape).reshape(3, -1)
    w = volume.ravel()
    centre = (ijk * w).sum(axis=1) / w.sum()
    return affine[:3, :3] @ centre + affine[:3, 3]


def test_noise_free_render_follows_the_pose() -> None:
    head = _phantom()
    protocol = _protocol()
    tacs = np.ones((2, protocol.frames().n_frames))
    tacs[1] = 5.0
    pose = rigid_matrix([6.0, -4.0, 3.0, 0.05, -0.08, 0.1])
    img = render_session(head, tacs, _motion(protocol, pose), protocol, rng=None)
    mni = head.frame(tacs[:, 0])
    com_mni = _com_mm(mni, head.affine)
    com_native = _com_mm(img[..., 0], protocol.native_affine())
    expected = (pose @ np.append(com_mni, 1.0))[:3]
    np.testing.assert_allclose(com_native, expected, atol=0.3)
    # Without the pose the centre of mass would be ~8 mm away.
    assert np.linalg.norm(com_native - com_mni) > 5.0


def test_frame_motion_moves_later_frames() -> None:
    head = _phantom()
    protocol = _protocol()
    n = protocol.frames().n_frames
    motion = _motion(protocol, np.eye(4))
    frame_motion = motion.frame_motion.copy()
    frame_motion[-1] = rigid_matrix([4.0, 0, 0, 0, 0, 0])
    moved = SessionMotion(motion.pose, motion.pose_params, frame_motion, motion.head_centre_mm)
    img = render_session(head, np.ones((2, n)), moved, protocol, rng=None)
    shift = _com_mm(img[..., -1], protocol.native_affine()) - _com_mm(
        img[..., 0], protocol.native_affine()
    )
    np.testing.assert_allclose(shift, [4.0, 0.0, 0.0], atol=0.2)


def test_noise_variance_follows_counts() -> None:
    head = _phantom()
    protocol = _protocol(noise_scale=0.3)
    frames = protocol.frames()
    tacs = np.full((2, frames.n_frames), 8.0)
    motion = _motion(protocol, np.eye(4))
    clean = render_session(head, tacs, motion, protocol, rng=None)
    noisy = render_session(head, tacs, motion, protocol, rng=np.random.default_rng(1))
    inner = clean[..., 0] > 7.99
    assert inner.sum() > 500
    var = np.array([(noisy[..., k] - clean[..., k])[inner].var() for k in range(frames.n_frames)])
    dcf = decay_correction_factors(frames, protocol.decay_constant_per_min)
    expected = 0.3**2 * 8.0 * dcf / frames.duration_min
    np.testing.assert_allclose(var, expected, rtol=0.1)
    # Longer frames are less noisy (variance ~ 1 / duration), even after decay.
    assert var[2] < var[0] / 3
    assert var[4] < var[2] / 3
    # Outside the head (zero activity, no floor) there is no noise.
    outside = clean[..., 0] == 0
    assert np.all(noisy[..., 0][outside] == 0)


def test_correlated_noise_unit_variance_and_smooth() -> None:
    protocol = _protocol(noise_fwhm_mm=8.0)
    noise = correlated_noise(np.random.default_rng(0), (40, 42, 44), protocol)
    assert noise.var() == pytest.approx(1.0, rel=0.1)
    lag1 = np.corrcoef(noise[:-1].ravel(), noise[1:].ravel())[0, 1]
    assert lag1 > 0.5
    white = correlated_noise(np.random.default_rng(0), (40, 42, 44), _protocol())
    assert abs(np.corrcoef(white[:-1].ravel(), white[1:].ravel())[0, 1]) < 0.02


def test_render_is_deterministic() -> None:
    head = _phantom()
    protocol = _protocol(noise_fwhm_mm=4.0, noise_floor_kbq_ml=0.3)
    tacs = np.linspace(1, 3, 2 * 6).reshape(2, 6)
    motion = _motion(protocol, rigid_matrix([1, 2, 3, 0.01, 0.02, 0.03]))
    a = render_session(head, tacs, motion, protocol, rng=np.random.default_rng(7))
    b = render_session(head, tacs, motion, protocol, rng=np.random.default_rng(7))
    c = render_session(head, tacs, motion, protocol, rng=np.random.default_rng(8))
    assert a.dtype == np.float32
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, c)
