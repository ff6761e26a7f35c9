"""Rigid head poses: the session pose in the scanner and slow intra-scan motion.

Conventions (all matrices are 4 x 4 homogeneous, mm):

* Rotation parameters ``(rot_x, rot_y, rot_z)`` are radians about the world x, y, z axes and
  compose as ``R = Rz @ Ry @ Rx`` (x applied first); translations ``(trans_x, trans_y, trans_z)``
  are mm. :func:`rigid_matrix` and :func:`rigid_params` convert both ways.
* The **session pose** ``P`` maps head coordinates (the participant's head space, which is the
  MNI template space for ``anatomy="template"``) to scanner coordinates:
  ``x_scanner = P @ x_mni`` at frame 0. It rotates about the head centre and then translates.
* The **frame motion** ``D_k`` maps the scanner position of a head point at frame 0 to its
  scanner position at frame ``k``: ``x_k = D_k @ x_0``, so the head pose at frame ``k`` is
  ``D_k @ P`` and ``D_0`` is the identity. Resampling frame ``k`` onto frame 0 therefore
  samples frame ``k`` at ``D_k @ x``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

PARAM_NAMES: tuple[str, ...] = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
"""Names and order of the six rigid parameters (mm, mm, mm, rad, rad, rad)."""


def rigid_matrix(params: NDArray[np.float64] | tuple[float, ...]) -> NDArray[np.float64]:
    """Build a 4 x 4 rigid matrix from six parameters.

    Parameters
    ----------
    params : (6,) array-like
        ``trans_x, trans_y, trans_z`` (mm) and ``rot_x, rot_y, rot_z`` (rad);
        ``R = Rz @ Ry @ Rx``.

    Returns
    -------
    (4, 4) ndarray
        ``[[R, t], [0, 1]]``.
    """
    tx, ty, tz, rx, ry, rz = (float(v) for v in np.asarray(params, dtype=np.float64).ravel())
    cx, sx = np.cos(rx), np.sin(rx)
    cy, sy = np.cos(ry), np.sin(ry)
    cz, sz = np.cos(rz), np.sin(rz)
    r_x = np.array([[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]])
    r_y = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    r_z = np.array([[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]])
    matrix = np.eye(4)
    matrix[:3, :3] = r_z @ r_y @ r_x
    matrix[:3, 3] = (tx, ty, tz)
    return matrix


def rigid_params(matrix: NDArray[np.float64]) -> NDArray[np.float64]:
    """Recover the six parameters of :func:`rigid_matrix` (rotations within +-90 deg about y).

    Parameters
    ----------
    matrix : (4, 4) ndarray
        Rigid matrix.

    Returns
    -------
    (6,) ndarray
        ``trans_x, trans_y, trans_z`` (mm), ``rot_x, rot_y, rot_z`` (rad).
    """
    r = np.asarray(matrix, dtype=np.float64)[:3, :3]
    ry = float(np.arcsin(np.clip(-r[2, 0], -1.0, 1.0)))
    rx = float(np.arctan2(r[2, 1], r[2, 2]))
    rz = float(np.arctan2(r[1, 0], r[0, 0]))
    return np.array([*np.asarray(matrix)[:3, 3], rx, ry, rz], dtype=np.float64)


def about_centre(matrix: NDArray[np.float64], centre_mm: NDArray[np.float64]) -> NDArray:
    """Re-express a rigid motion so that its rotation acts about ``centre_mm``.

    Returns ``T(c) @ matrix @ T(-c)`` (a rotation about ``c`` followed by the translation).
    """
    shift = np.eye(4)
    shift[:3, 3] = centre_mm
    unshift = np.eye(4)
    unshift[:3, 3] = -np.asarray(centre_mm, dtype=np.float64)
    return shift @ matrix @ unshift


@dataclass(frozen=True)
class SessionMotion:
    """Head pose of one session and its per-frame motion.

    Parameters
    ----------
    pose : (4, 4) ndarray
        Head mm -> scanner (mm) at frame 0.
    pose_params : (6,) ndarray
        Parameters of ``pose`` as drawn: rotation about the head centre, then the translation
        of the head centre from the scanner origin.
    frame_motion : (n_frames, 4, 4) ndarray
        ``D_k``: scanner position at frame 0 -> scanner position at frame k.
    head_centre_mm : (3,) ndarray
        Centre of rotation in head mm.
    """

    pose: NDArray[np.float64]
    pose_params: NDArray[np.float64]
    frame_motion: NDArray[np.float64]
    head_centre_mm: NDArray[np.float64]

    def frame_pose(self, frame: int) -> NDArray[np.float64]:
        """Head mm -> scanner (mm) at ``frame``: ``D_k @ P``."""
        return self.frame_motion[frame] @ self.pose

    def frame_params(self) -> NDArray[np.float64]:
        """Six rigid parameters of each ``D_k`` (:func:`rigid_params`), shape (n_frames, 6)."""
        return np.stack([rigid_params(m) for m in self.frame_motion])


def sample_session_pose(
    rng: np.random.Generator,
    head_centre_mm: NDArray[np.float64],
    max_rotation_deg: float = 6.0,
    max_translation_mm: float = 8.0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Draw the head pose of a session.

    Rotations are uniform in +-``max_rotation_deg`` about each axis (through the head centre),
    then the head centre is moved to a uniform offset within +-``max_translation_mm`` of the
    scanner origin.

    Returns
    -------
    pose : (4, 4) ndarray
        Head mm -> scanner (mm).
    params : (6,) ndarray
        Translation of the head centre (mm) and rotations (rad).
    """
    rot = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg, size=3))
    trans = rng.uniform(-max_translation_mm, max_translation_mm, size=3)
    rotation = rigid_matrix(np.concatenate([np.zeros(3), rot]))
    to_origin = np.eye(4)
    to_origin[:3, 3] = -np.asarray(head_centre_mm, dtype=np.float64)
    place = np.eye(4)
    place[:3, 3] = trans
    return place @ rotation @ to_origin, np.concatenate([trans, rot])


def sample_intrascan_motion(
    rng: np.random.Generator,
    frame_mid_min: NDArray[np.float64],
    centre_scanner_mm: NDArray[np.float64],
    scale: float = 1.0,
) -> NDArray[np.float64]:
    """Draw slow drift plus an occasional jump, relative to frame 0.

    Drift grows linearly in time to a random end value (up to ~1.2 mm / 0.8 deg per axis);
    with probability 0.6 one jump (up to ~1 mm / 0.7 deg) happens at a random time after
    10 min. The total stays within ~2 mm / 1.5 deg. Rotations act about the head centre.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random generator.
    frame_mid_min : (n_frames,) ndarray
        Frame mid-times, minutes.
    centre_scanner_mm : (3,) ndarray
        Head centre in scanner coordinates (centre of rotation).
    scale : float
        Multiplies all amplitudes (0 gives no motion).

    Returns
    -------
    (n_frames, 4, 4) ndarray
        ``D_k`` per frame; ``D_0`` is the identity.
    """
    t = np.asarray(frame_mid_min, dtype=np.float64)
    rel = (t - t[0]) / max(t[-1] - t[0], 1e-9)
    drift_end = np.concatenate(
        [rng.uniform(-1.2, 1.2, size=3), np.deg2rad(rng.uniform(-0.8, 0.8, size=3))]
    )
    jump = np.concatenate(
        [rng.uniform(-1.0, 1.0, size=3), np.deg2rad(rng.uniform(-0.7, 0.7, size=3))]
    )
    has_jump = rng.uniform() < 0.6
    jump_time = rng.uniform(10.0, max(t[-1], 10.5))
    params = rel[:, None] * drift_end[None, :]
    if has_jump:
        params = params + (t >= jump_time)[:, None] * jump[None, :]
    params = scale * params
    params[0] = 0.0
    return np.stack([about_centre(rigid_matrix(p), centre_scanner_mm) for p in params])


def sample_session_motion(
    rng: np.random.Generator,
    head_centre_mm: NDArray[np.float64],
    frame_mid_min: NDArray[np.float64],
    motion_scale: float = 1.0,
    z_shift: Callable[[NDArray[np.float64]], float] | None = None,
) -> SessionMotion:
    """Draw a session pose and its intra-scan motion (see the module docstring).

    Parameters
    ----------
    rng : numpy.random.Generator
        Random generator.
    head_centre_mm : (3,) ndarray
        Centre of rotation, head mm.
    frame_mid_min : (n_frames,) ndarray
        Frame mid-times, minutes.
    motion_scale : float
        Multiplies all intra-scan motion amplitudes.
    z_shift : callable or None
        ``z_shift(pose)`` -> mm added to the pose's z translation before the intra-scan motion
        is drawn (the bed position of a limited field of view); the random numbers drawn are the
        same with or without it.

    Returns
    -------
    SessionMotion
        Pose, per-frame motion and the head centre.
    """
    centre = np.asarray(head_centre_mm, dtype=np.float64)
    pose, pose_params = sample_session_pose(rng, centre)
    if z_shift is not None:
        dz = float(z_shift(pose))
        pose[2, 3] += dz
        pose_params[2] += dz
    centre_scanner = (pose @ np.append(centre, 1.0))[:3]
    frame_motion = sample_intrascan_motion(rng, frame_mid_min, centre_scanner, motion_scale)
    return SessionMotion(
        pose=pose, pose_params=pose_params, frame_motion=frame_motion, head_centre_mm=centre
    )


def framewise_displacement(params: NDArray[np.float64], radius_mm: float = 50.0) -> NDArray:
    """Power et al. (NeuroImage 2012) framewise displacement of a parameter series.

    Parameters
    ----------
    params : (n_frames, 6) ndarray
        Translations (mm) then rotations (rad).
    radius_mm : float
        Sphere radius converting rotations to arc length, mm.

    Returns
    -------
    (n_frames,) ndarray
        FD per frame, mm (0 for the first frame).
    """
    diff = np.abs(np.diff(np.asarray(params, dtype=np.float64), axis=0))
    fd = diff[:, :3].sum(axis=1) + radius_mm * diff[:, 3:].sum(axis=1)
    return np.concatenate([[0.0], fd])
