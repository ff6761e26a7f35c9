"""Fast, deterministic rigid registration of two 3-D volumes of the same modality (numpy/scipy).

Used for frame-to-reference realignment, where speed and exact reproducibility matter more than
multi-modal robustness. The cost is the least-squares misfit after a linear intensity fit,
``sum_k (f(x_k) - a * m(T x_k) - b)^2`` over the fixed-image voxels ``x_k`` inside a head mask,
which at the optimum maximises the Pearson correlation of the two images; ``a`` and ``b``
absorb global activity changes between frames. It is minimised by Levenberg-Marquardt
(:func:`scipy.optimize.least_squares`) with an analytic Jacobian from the moving image's
gradient, coarse-to-fine over two smoothed, down-sampled grids.

Why not ANTs here: on the synthetic noisy frames of the test-suite, antsRegistration rigid
(Mattes MI or GC, regular sampling, 4 mm, antspyx 0.6.3) left 0.2-1.6 mm RMS errors on a 50 mm
sphere at ~1 s per frame, and is only reproducible with one thread; this solver reaches
~0.1 mm in 0.1-0.4 s per frame (one core) and is deterministic by construction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage, optimize

from bids_app.errors import InputError, RegistrationError
from bids_app.preproc.transforms import params_to_matrix

logger = logging.getLogger(__name__)

#: FWHM of a Gaussian expressed by its standard deviation.
_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


@dataclass(frozen=True)
class Volume:
    """A 3-D image on a grid, ready for registration.

    Attributes
    ----------
    data : (nx, ny, nz) ndarray, float64
        Voxel values.
    affine : (4, 4) ndarray
        Voxel-to-RAS (mm) affine.
    """

    data: NDArray[np.float64]
    affine: NDArray[np.float64]


def downsample(
    data: ArrayLike, affine: ArrayLike, spacing_mm: float, fwhm_mm: float | None = None
) -> Volume:
    """Smooth and resample a volume onto a coarser grid with the same axes and centre.

    Parameters
    ----------
    data : (nx, ny, nz) array_like
        Voxel values (non-finite values are treated as 0).
    affine : (4, 4) array_like
        Voxel-to-RAS affine, mm.
    spacing_mm : float
        Target voxel size, mm (isotropic). Smaller than the native voxel keeps the native one.
    fwhm_mm : float, optional
        Total Gaussian smoothing before sampling, mm (default ``spacing_mm``).

    Returns
    -------
    Volume
        Smoothed, down-sampled volume (linear interpolation).
    """
    arr = np.nan_to_num(np.asarray(data, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    aff = np.asarray(affine, dtype=np.float64)
    if arr.ndim != 3:
        msg = f"expected a 3-D volume; got shape {arr.shape}"
        raise InputError(msg)
    vox = np.linalg.norm(aff[:3, :3], axis=0)
    fwhm = spacing_mm if fwhm_mm is None else fwhm_mm
    sigma_vox = (fwhm / _FWHM_PER_SIGMA) / vox
    smoothed = ndimage.gaussian_filter(arr, sigma_vox, mode="constant")
    step = np.maximum(spacing_mm / vox, 1.0)
    new_shape = np.maximum(np.floor((np.array(arr.shape) - 1) / step).astype(int) + 1, 1)
    # centre the coarse grid inside the fine one
    start = ((np.array(arr.shape) - 1) - (new_shape - 1) * step) / 2.0
    scale = np.eye(4)
    scale[:3, :3] = np.diag(step)
    scale[:3, 3] = start
    coords = np.indices(new_shape, dtype=np.float64).reshape(3, -1)
    coords = scale[:3, :3] @ coords + scale[:3, 3:4]
    sampled = ndimage.map_coordinates(smoothed, coords, order=1, mode="nearest")
    return Volume(sampled.reshape(new_shape), aff @ scale)


def head_mask(data: NDArray[np.float64], fraction: float = 0.05) -> NDArray[np.bool_]:
    """Voxels above ``fraction`` of the 99th percentile, dilated by one voxel.

    Parameters
    ----------
    data : (nx, ny, nz) ndarray
        Image (smoothed).
    fraction : float
        Threshold relative to the 99th percentile of the positive voxels.

    Returns
    -------
    (nx, ny, nz) ndarray of bool
        Mask of voxels whose intensities drive the registration.
    """
    positive = data[data > 0]
    if positive.size == 0:
        return np.zeros(data.shape, dtype=bool)
    mask = data > fraction * np.percentile(positive, 99.0)
    return ndimage.binary_dilation(mask, iterations=1)


def _rotation_derivatives(angles: NDArray[np.float64]) -> list[NDArray[np.float64]]:
    """Derivatives of ``Rz @ Ry @ Rx`` with respect to ``rot_x, rot_y, rot_z``."""
    rx, ry, rz = angles
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    mx = np.array([[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]])
    my = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    mz = np.array([[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]])
    dx = np.array([[0.0, 0.0, 0.0], [0.0, -sx, -cx], [0.0, cx, -sx]])
    dy = np.array([[-sy, 0.0, cy], [0.0, 0.0, 0.0], [-cy, 0.0, -sy]])
    dz = np.array([[-sz, -cz, 0.0], [cz, -sz, 0.0], [0.0, 0.0, 0.0]])
    return [mz @ my @ dx, mz @ dy @ mx, dz @ my @ mx]


@dataclass(frozen=True)
class _Problem:
    """Fixed points and moving image of one resolution level."""

    points_mm: NDArray[np.float64]  # (n, 3) fixed-space world points
    fixed_values: NDArray[np.float64]  # (n,)
    moving: NDArray[np.float64]  # (nx, ny, nz)
    moving_gradient: NDArray[np.float64]  # (3, nx, ny, nz), per voxel index
    world_to_moving_vox: NDArray[np.float64]  # (4, 4)
    centre_mm: NDArray[np.float64]  # (3,)

    def mapped(self, params: NDArray[np.float64]) -> NDArray[np.float64]:
        """Moving-image voxel coordinates (3, n) of the fixed points under ``params``."""
        mat = self.world_to_moving_vox @ params_to_matrix(params[:6], self.centre_mm)
        return mat[:3, :3] @ self.points_mm.T + mat[:3, 3:4]

    def residuals(self, theta: NDArray[np.float64]) -> NDArray[np.float64]:
        """``f - a * m(T x) - b`` for ``theta = (6 rigid params, a, b)``."""
        values = ndimage.map_coordinates(self.moving, self.mapped(theta), order=1, mode="nearest")
        return self.fixed_values - theta[6] * values - theta[7]

    def jacobian(self, theta: NDArray[np.float64]) -> NDArray[np.float64]:
        """Analytic Jacobian (n, 8) of :meth:`residuals`."""
        coords = self.mapped(theta)
        values = ndimage.map_coordinates(self.moving, coords, order=1, mode="nearest")
        grad_vox = np.stack(
            [
                ndimage.map_coordinates(g, coords, order=1, mode="nearest")
                for g in self.moving_gradient
            ]
        )  # (3, n): d m / d voxel index
        grad_world = (self.world_to_moving_vox[:3, :3].T @ grad_vox).T  # (n, 3): dm/dx_world
        rel = self.points_mm - self.centre_mm
        jac = np.empty((rel.shape[0], 8))
        jac[:, :3] = grad_world
        for k, d_rot in enumerate(_rotation_derivatives(theta[3:6])):
            jac[:, 3 + k] = np.einsum("nj,nj->n", grad_world, rel @ d_rot.T)
        jac[:, :6] *= -theta[6]
        jac[:, 6] = -values
        jac[:, 7] = -1.0
        return jac


def _build_problem(
    fixed: Volume, moving: Volume, centre_mm: NDArray[np.float64], mask: NDArray[np.bool_]
) -> _Problem:
    idx = np.argwhere(mask).astype(np.float64)
    points = idx @ fixed.affine[:3, :3].T + fixed.affine[:3, 3]
    gradient = np.stack(np.gradient(moving.data))
    return _Problem(
        points_mm=points,
        fixed_values=fixed.data[mask],
        moving=moving.data,
        moving_gradient=gradient,
        world_to_moving_vox=np.linalg.inv(moving.affine),
        centre_mm=centre_mm,
    )


def register_rigid(
    fixed_levels: list[Volume],
    moving_levels: list[Volume],
    centre_mm: ArrayLike,
    init_params: ArrayLike | None = None,
    max_nfev: int = 40,
) -> NDArray[np.float64]:
    """Rigid registration, coarse to fine, of a moving volume to a fixed one.

    Parameters
    ----------
    fixed_levels, moving_levels : list of Volume
        The same images at decreasing voxel size (e.g. from :func:`downsample`), one entry per
        level; fixed and moving levels may use different grids.
    centre_mm : (3,) array_like
        Rotation centre of the parameters, RAS mm.
    init_params : (6,) array_like, optional
        Starting parameters (default identity).
    max_nfev : int
        Maximum residual evaluations per level.

    Returns
    -------
    (6,) ndarray
        ``fixed_to_moving`` rigid parameters (mm, radians) about ``centre_mm``: the moving
        image's value at ``params_to_matrix(p, centre) @ x`` matches the fixed value at ``x``.
    """
    if len(fixed_levels) != len(moving_levels) or not fixed_levels:
        msg = "fixed and moving pyramids must have the same, non-zero number of levels"
        raise InputError(msg)
    centre = np.asarray(centre_mm, dtype=np.float64)
    params = np.zeros(6) if init_params is None else np.asarray(init_params, dtype=np.float64)
    for fixed, moving in zip(fixed_levels, moving_levels, strict=True):
        mask = head_mask(fixed.data)
        if mask.sum() < 50:
            msg = "fixed image has too few voxels with signal (< 50) to register"
            raise RegistrationError(msg)
        problem = _build_problem(fixed, moving, centre, mask)
        m0 = ndimage.map_coordinates(problem.moving, problem.mapped(params), order=1)
        design = np.column_stack([m0, np.ones_like(m0)])
        (a0, b0), *_ = np.linalg.lstsq(design, problem.fixed_values, rcond=None)
        scale_int = max(float(np.std(problem.fixed_values)), 1e-12)
        theta0 = np.concatenate([params, [a0 if a0 > 0 else 1.0, b0]])
        fit = optimize.least_squares(
            problem.residuals,
            theta0,
            jac=problem.jacobian,
            method="lm",
            x_scale=np.array([1.0, 1.0, 1.0, 0.02, 0.02, 0.02, 0.1, 0.1 * scale_int]),
            xtol=1e-8,
            ftol=1e-10,
            max_nfev=max_nfev,
        )
        if not np.all(np.isfinite(fit.x)):
            msg = "rigid registration diverged (non-finite parameters)"
            raise RegistrationError(msg)
        params = fit.x[:6]
        logger.debug(
            "level %s: cost %.4g after %d evaluations", moving.data.shape, fit.cost, fit.nfev
        )
    return params


def pyramid(
    data: ArrayLike, affine: ArrayLike, spacings_mm: tuple[float, ...] = (8.0, 4.0)
) -> list[Volume]:
    """Down-sampled copies of a volume, coarse to fine (see :func:`downsample`)."""
    return [downsample(data, affine, s) for s in spacings_mm]
