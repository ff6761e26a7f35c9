"""Rigid and affine transform utilities on 4x4 world matrices (pure numpy, no ANTs).

Conventions used throughout :mod:`bids_app.preproc`
----------------------------------------------------
* **World space** is RAS+ millimetres (the NIfTI ``qform``/``sform`` world), as in nibabel.
  ANTs/ITK work in LPS; :func:`itk_affine_to_ras` and :func:`ras_affine_to_itk` convert.
* **Direction**: a matrix ``M`` called ``a_to_b`` maps the world coordinates of a point in
  space *a* to the world coordinates of the *same anatomical point* in space *b*. Motion
  matrices are ``reference_to_frame``: the pull-back used for resampling (the value of the
  motion-corrected frame at reference point ``x`` is the value of the raw frame at ``M @ x``);
  equivalently ``M`` is the head's displacement between the reference and that frame.
* **Six rigid parameters** ``(trans_x, trans_y, trans_z, rot_x, rot_y, rot_z)``: translations
  in mm, rotations in radians (right-hand rule about the RAS axes), composed as
  ``R = Rz(rot_z) @ Ry(rot_y) @ Rx(rot_x)`` (rotate about x first) and applied about a centre
  ``c``: ``x' = R (x - c) + c + t``. The centre is stated wherever parameters are reported.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bids_app.errors import InputError

#: Radius (mm) of the sphere on which rotations are converted to displacements (Power 2012).
HEAD_RADIUS_MM = 50.0

PARAM_NAMES: tuple[str, ...] = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")


def ras_lps_flip() -> NDArray[np.float64]:
    """Return the 4x4 matrix that flips RAS <-> LPS world coordinates (its own inverse)."""
    return np.diag([-1.0, -1.0, 1.0, 1.0])


def _as_matrix(matrix: ArrayLike, name: str = "matrix") -> NDArray[np.float64]:
    mat = np.asarray(matrix, dtype=np.float64)
    if mat.shape != (4, 4):
        msg = f"{name} must be a 4x4 homogeneous matrix; got shape {mat.shape}"
        raise InputError(msg)
    if not np.all(np.isfinite(mat)):
        msg = f"{name} must contain finite numbers; got NaN or Inf"
        raise InputError(msg)
    return mat


def _as_centre(centre_mm: ArrayLike) -> NDArray[np.float64]:
    centre = np.asarray(centre_mm, dtype=np.float64).reshape(-1)
    if centre.shape != (3,):
        msg = f"centre_mm must hold 3 coordinates (x, y, z mm); got {centre.size}"
        raise InputError(msg)
    return centre


def rotation_matrix(rot_x: float, rot_y: float, rot_z: float) -> NDArray[np.float64]:
    """Build the 3x3 rotation ``Rz @ Ry @ Rx`` from angles in radians.

    Parameters
    ----------
    rot_x, rot_y, rot_z : float
        Rotations about the x (left-right), y (posterior-anterior) and z (inferior-superior)
        RAS axes, radians, right-hand rule.

    Returns
    -------
    (3, 3) ndarray
        Orthonormal rotation matrix with determinant +1.
    """
    cx, sx = np.cos(rot_x), np.sin(rot_x)
    cy, sy = np.cos(rot_y), np.sin(rot_y)
    cz, sz = np.cos(rot_z), np.sin(rot_z)
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]])
    ry = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    rz = np.array([[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]])
    return rz @ ry @ rx


def params_to_matrix(
    params: ArrayLike, centre_mm: ArrayLike = (0.0, 0.0, 0.0)
) -> NDArray[np.float64]:
    """Build a rigid 4x4 world matrix from six parameters.

    Parameters
    ----------
    params : (6,) array_like
        ``(trans_x, trans_y, trans_z)`` in mm and ``(rot_x, rot_y, rot_z)`` in radians.
    centre_mm : (3,) array_like
        Rotation centre, RAS mm (default: the world origin).

    Returns
    -------
    (4, 4) ndarray
        ``x' = R (x - c) + c + t`` in homogeneous form.
    """
    p = np.asarray(params, dtype=np.float64).reshape(-1)
    if p.shape != (6,):
        msg = f"rigid parameters must be 6 numbers (3 translations, 3 rotations); got {p.size}"
        raise InputError(msg)
    centre = _as_centre(centre_mm)
    rot = rotation_matrix(p[3], p[4], p[5])
    mat = np.eye(4)
    mat[:3, :3] = rot
    mat[:3, 3] = centre + p[:3] - rot @ centre
    return mat


def matrix_to_params(
    matrix: ArrayLike, centre_mm: ArrayLike = (0.0, 0.0, 0.0)
) -> NDArray[np.float64]:
    """Decompose a rigid 4x4 world matrix into six parameters (inverse of `params_to_matrix`).

    Parameters
    ----------
    matrix : (4, 4) array_like
        Rigid transform. A small non-orthogonal part (numerical noise) is removed by taking the
        nearest rotation (polar decomposition).
    centre_mm : (3,) array_like
        Rotation centre, RAS mm.

    Returns
    -------
    (6,) ndarray
        ``trans_x, trans_y, trans_z`` (mm), ``rot_x, rot_y, rot_z`` (radians); for
        ``|rot_y| < pi/2`` the decomposition is unique.
    """
    mat = _as_matrix(matrix)
    centre = _as_centre(centre_mm)
    u, _, vt = np.linalg.svd(mat[:3, :3])
    rot = u @ vt
    if np.linalg.det(rot) < 0:
        msg = "matrix is not a proper rotation (it mirrors the image); cannot give rigid params"
        raise InputError(msg)
    rot_y = float(np.arcsin(np.clip(-rot[2, 0], -1.0, 1.0)))
    rot_x = float(np.arctan2(rot[2, 1], rot[2, 2]))
    rot_z = float(np.arctan2(rot[1, 0], rot[0, 0]))
    trans = mat[:3, 3] - centre + rot @ centre
    return np.array([*trans, rot_x, rot_y, rot_z])


def apply_to_points(matrix: ArrayLike, points_mm: ArrayLike) -> NDArray[np.float64]:
    """Map world points through a 4x4 matrix.

    Parameters
    ----------
    matrix : (4, 4) array_like
        Affine world transform.
    points_mm : (n_points, 3) or (3,) array_like
        World coordinates, mm.

    Returns
    -------
    (n_points, 3) or (3,) ndarray
        Transformed coordinates, mm (same shape as the input).
    """
    mat = _as_matrix(matrix)
    pts = np.asarray(points_mm, dtype=np.float64)
    single = pts.ndim == 1
    pts2 = np.atleast_2d(pts)
    if pts2.shape[-1] != 3:
        msg = f"points_mm must have 3 columns (x, y, z); got shape {pts.shape}"
        raise InputError(msg)
    out = pts2 @ mat[:3, :3].T + mat[:3, 3]
    return out[0] if single else out


def framewise_displacement(
    params: ArrayLike, radius_mm: float = HEAD_RADIUS_MM
) -> NDArray[np.float64]:
    """Framewise displacement of Power et al. (2012, NeuroImage 59:2142).

    ``FD_i = sum(|d trans_i|) + radius * sum(|d rot_i|)`` with backward differences
    ``d p_i = p_i - p_{i-1}``; rotations (radians) become arc lengths on a sphere of
    ``radius_mm``. The first frame has no predecessor and gets 0.

    Parameters
    ----------
    params : (n_frames, 6) array_like
        Rigid parameters per frame (mm, radians), as from `matrix_to_params`.
    radius_mm : float
        Head radius, mm (Power 2012: 50 mm).

    Returns
    -------
    (n_frames,) ndarray
        FD, mm.
    """
    p = np.asarray(params, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 6:
        msg = f"params must have shape (n_frames, 6); got {p.shape}"
        raise InputError(msg)
    diff = np.abs(np.diff(p, axis=0))
    fd = diff[:, :3].sum(axis=1) + radius_mm * diff[:, 3:].sum(axis=1)
    return np.concatenate([[0.0], fd])


def sphere_points(
    radius_mm: float = HEAD_RADIUS_MM,
    centre_mm: ArrayLike = (0.0, 0.0, 0.0),
    n_points: int = 256,
) -> NDArray[np.float64]:
    """Quasi-uniform points on a sphere (Fibonacci lattice).

    Returns
    -------
    (n_points, 3) ndarray
        World coordinates, mm.
    """
    idx = np.arange(n_points, dtype=np.float64) + 0.5
    z = 1.0 - 2.0 * idx / n_points
    r = np.sqrt(1.0 - z**2)
    phi = np.pi * (1.0 + np.sqrt(5.0)) * idx
    unit = np.column_stack([r * np.cos(phi), r * np.sin(phi), z])
    return _as_centre(centre_mm) + radius_mm * unit


def rms_displacement(
    matrix_a: ArrayLike,
    matrix_b: ArrayLike,
    centre_mm: ArrayLike = (0.0, 0.0, 0.0),
    radius_mm: float = HEAD_RADIUS_MM,
) -> float:
    """Root-mean-square distance between two transforms' images of a sphere's points.

    Parameters
    ----------
    matrix_a, matrix_b : (4, 4) array_like
        World transforms to compare.
    centre_mm : (3,) array_like
        Sphere centre, RAS mm (e.g. the brain's centre).
    radius_mm : float
        Sphere radius, mm.

    Returns
    -------
    float
        RMS displacement, mm.
    """
    pts = sphere_points(radius_mm, centre_mm)
    diff = apply_to_points(matrix_a, pts) - apply_to_points(matrix_b, pts)
    return float(np.sqrt(np.mean(np.sum(diff**2, axis=1))))


def itk_affine_to_ras(parameters: ArrayLike, fixed_parameters: ArrayLike) -> NDArray[np.float64]:
    """Convert ITK ``AffineTransform`` parameters (LPS) to a 4x4 RAS world matrix.

    ITK stores ``parameters = (A row-major (9), translation t (3))`` and
    ``fixed_parameters = centre c`` with ``T(x) = A (x - c) + c + t`` in LPS mm. The direction
    is kept: an ANTs registration transform maps *fixed*-space points to *moving*-space points.

    Returns
    -------
    (4, 4) ndarray
        The same mapping in RAS mm.
    """
    p = np.asarray(parameters, dtype=np.float64).reshape(-1)
    c = np.asarray(fixed_parameters, dtype=np.float64).reshape(-1)
    if p.shape != (12,) or c.shape != (3,):
        msg = (
            "expected a 3-D ITK affine with 12 parameters and a 3-element centre; "
            f"got {p.size} parameters and {c.size} fixed parameters"
        )
        raise InputError(msg)
    lin = p[:9].reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = lin
    lps[:3, 3] = p[9:] + c - lin @ c
    flip = ras_lps_flip()
    return flip @ lps @ flip


def ras_affine_to_itk(
    matrix: ArrayLike,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Convert a 4x4 RAS world matrix to ITK ``AffineTransform`` parameters (centre 0).

    Returns
    -------
    parameters : (12,) ndarray
        Row-major linear part then translation, LPS mm.
    fixed_parameters : (3,) ndarray
        Centre of rotation (zeros).
    """
    mat = _as_matrix(matrix)
    flip = ras_lps_flip()
    lps = flip @ mat @ flip
    return np.concatenate([lps[:3, :3].reshape(-1), lps[:3, 3]]), np.zeros(3)
