"""From tissue kinetics to the scanner's 4-D image: warp, blur, pose, motion, noise.

Each participant's unblurred tissue fractions are first taken into the participant's head
space (:meth:`HeadModel.build`: sampled at ``psi(y)``, :mod:`petsim.warp`; the template itself
for ``anatomy="template"``) and then blurred by the scanner resolution. For each frame ``k``
the noise-free head-space image is ``sum_c blurred_f_c(y) * TAC_c[k]``; it is resampled once
(trilinear) onto the native scanner grid through the frame's head pose, and Gaussian noise with
variance proportional to the true counts is added:

``sigma(x, k) = noise_scale * sqrt((A(x, k) + floor) * DCF_k / dt_k)``

(``A`` decay-corrected activity in kBq/mL, ``DCF_k`` the frame's decay-correction factor, ``dt_k``
its duration in minutes; the floor applies inside the head only). The noise is spatially
correlated (white noise smoothed to ``noise_fwhm_mm`` and rescaled to unit variance).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from petsim.anatomy import FWHM_TO_SIGMA, Anatomy, blur_fractions
from petsim.kinetics_sim import (
    CompartmentParameters,
    PlasmaInput,
    decay_correction_factors,
    fine_time_grid,
    frame_means,
    voxel_curve,
)
from petsim.motion import SessionMotion
from petsim.protocol import ScanProtocol
from petsim.warp import IndividualWarp

HEAD_SUPPORT_THRESHOLD = 0.05
"""Blurred tissue fraction above which a voxel counts as inside the head (noise floor)."""

STORE_THRESHOLD = 1e-4
"""Blurred fractions below this total are dropped from :class:`HeadModel` (air)."""


@dataclass(frozen=True)
class HeadModel:
    """Compact, picklable form of one head's blurred anatomy, used to render frames.

    Attributes
    ----------
    blurred : (n_classes, n_support) float32 ndarray
        Blurred class fractions of the voxels with any tissue.
    index : (n_support,) int ndarray
        Flat (C-order) indices of those voxels in the head grid.
    shape : tuple of int
        Head grid shape (the 2 mm MNI grid's geometry, in head-space mm).
    affine : (4, 4) ndarray
        Head grid voxel -> head mm.
    head_centre_mm : (3,) ndarray
        Centre of rotation, head mm.
    """

    blurred: NDArray[np.float32]
    index: NDArray[np.intp]
    shape: tuple[int, int, int]
    affine: NDArray[np.float64]
    head_centre_mm: NDArray[np.float64]

    @classmethod
    def build(cls, anatomy: Anatomy, warp: IndividualWarp, fwhm_mm: float) -> HeadModel:
        """Warp the unblurred fractions into the head, blur them and keep the tissue voxels.

        Parameters
        ----------
        anatomy : Anatomy
            Template-space fractions.
        warp : IndividualWarp
            The participant's maps (identity for the template anatomy).
        fwhm_mm : float
            Scanner resolution, mm.

        Returns
        -------
        HeadModel
            Voxels whose blurred tissue fraction exceeds :data:`STORE_THRESHOLD`.
        """
        fractions = anatomy.fractions
        centre = anatomy.head_centre_mm
        if not warp.is_identity:
            head_points = anatomy.grid.centres_mm()
            template = warp.to_template(head_points)
            inv = np.linalg.inv(anatomy.affine)
            ijk = inv[:3, :3] @ template.T + inv[:3, 3:4]
            fractions = np.stack(
                [
                    ndimage.map_coordinates(f, ijk, order=1, cval=0.0).reshape(anatomy.shape)
                    for f in anatomy.fractions
                ]
            )
            centre = warp.to_head(centre[None, :])[0]
        blurred = blur_fractions(fractions, fwhm_mm, anatomy.grid.voxel_mm)
        flat = blurred.reshape(blurred.shape[0], -1)
        index = np.flatnonzero(flat.sum(axis=0) > STORE_THRESHOLD)
        return cls(
            blurred=np.ascontiguousarray(flat[:, index]),
            index=index,
            shape=anatomy.shape,
            affine=anatomy.affine,
            head_centre_mm=centre,
        )

    def volume(self, values: NDArray[np.float32]) -> NDArray[np.float32]:
        """Scatter per-support-voxel values into a full head-grid volume (0 elsewhere)."""
        out = np.zeros(int(np.prod(self.shape)), dtype=np.float32)
        out[self.index] = values
        return out.reshape(self.shape)

    def frame(self, tac_values: NDArray[np.float64]) -> NDArray[np.float32]:
        """Noise-free blurred head-grid image of one frame: ``sum_c blurred_c * tac_c``."""
        return self.volume(tac_values.astype(np.float32) @ self.blurred)


@dataclass(frozen=True)
class SessionTacs:
    """Noise-free frame-mean TACs of every tissue class in one session.

    Attributes
    ----------
    tacs : (n_classes, n_frames) ndarray
        Decay-corrected frame means, kBq/mL (including each class's blood volume).
    plasma : (n_frames,) ndarray
        Frame means of the plasma (= whole-blood) input, kBq/mL.
    """

    tacs: NDArray[np.float64]
    plasma: NDArray[np.float64]


def class_tacs(
    params: dict[str, CompartmentParameters],
    classes: tuple[str, ...],
    plasma: PlasmaInput,
    protocol: ScanProtocol,
) -> SessionTacs:
    """Frame-mean TAC of each tissue class (compartment model on the fine grid).

    Parameters
    ----------
    params : dict of str to CompartmentParameters
        Micro-parameters per class.
    classes : tuple of str
        Class order of the output rows.
    plasma : PlasmaInput
        The session's plasma input.
    protocol : ScanProtocol
        Frame schedule, fine-grid step and half-life.

    Returns
    -------
    SessionTacs
        TACs and the plasma frame means.
    """
    frames = protocol.frames()
    t = fine_time_grid(float(frames.end_min[-1]), protocol.fine_dt_min)
    cp = plasma(t)
    curves = np.stack([voxel_curve(params[c], cp, protocol.fine_dt_min) for c in classes])
    lam = protocol.decay_constant_per_min
    return SessionTacs(
        tacs=frame_means(t, curves, frames, lam), plasma=frame_means(t, cp, frames, lam)
    )


def _noise_kernel_sigma_vox(protocol: ScanProtocol) -> NDArray[np.float64]:
    """Per-axis sigma (voxels) of the noise-correlation kernel."""
    return protocol.noise_fwhm_mm * FWHM_TO_SIGMA / np.asarray(protocol.voxel_size_mm)


def _noise_gain(sigma_vox: NDArray[np.float64]) -> float:
    """Standard deviation of white noise after :func:`scipy.ndimage.gaussian_filter`."""
    size = 2 * int(np.ceil(4.0 * float(np.max(sigma_vox)))) + 1
    delta = np.zeros((size, size, size))
    delta[size // 2, size // 2, size // 2] = 1.0
    kernel = ndimage.gaussian_filter(delta, sigma_vox, mode="constant")
    return float(np.sqrt(np.sum(kernel**2)))


def correlated_noise(
    rng: np.random.Generator, shape: tuple[int, ...], protocol: ScanProtocol
) -> NDArray[np.float32]:
    """Unit-variance, spatially correlated Gaussian noise on the native grid.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random generator.
    shape : tuple of int
        Native grid shape (3-D).
    protocol : ScanProtocol
        Noise correlation FWHM and voxel size.

    Returns
    -------
    (nx, ny, nz) float32 ndarray
        Noise with (approximately) unit variance away from the grid border.
    """
    white = rng.standard_normal(shape, dtype=np.float32)
    if protocol.noise_fwhm_mm <= 0.0:
        return white
    sigma_vox = _noise_kernel_sigma_vox(protocol)
    smooth = ndimage.gaussian_filter(white, sigma_vox, mode="wrap")
    smooth /= np.float32(_noise_gain(sigma_vox))
    return smooth


def native_to_head_matrix(
    head_affine: NDArray[np.float64],
    head_pose: NDArray[np.float64],
    native_affine: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Matrix mapping native voxel indices to head-grid voxel indices for one head pose.

    ``inv(A_head) @ inv(P_k) @ A_native``: native voxel -> scanner mm -> head mm -> head voxel.
    """
    return np.linalg.inv(head_affine) @ np.linalg.inv(head_pose) @ native_affine


def resample_to_native(
    volume: NDArray[np.float32],
    head_affine: NDArray[np.float64],
    pose: NDArray[np.float64],
    protocol: ScanProtocol,
) -> NDArray[np.float32]:
    """Trilinear resampling of a head-grid volume onto the native grid at one pose."""
    m = native_to_head_matrix(head_affine, pose, protocol.native_affine())
    return ndimage.affine_transform(
        volume, m[:3, :3], offset=m[:3, 3], output_shape=protocol.native_shape(), order=1
    )


def render_session(
    head: HeadModel,
    tacs: NDArray[np.float64],
    motion: SessionMotion,
    protocol: ScanProtocol,
    rng: np.random.Generator | None,
) -> NDArray[np.float32]:
    """Render one session's 4-D native image.

    Parameters
    ----------
    head : HeadModel
        Blurred tissue fractions on the head grid.
    tacs : (n_classes, n_frames) ndarray
        Class TACs, kBq/mL.
    motion : SessionMotion
        Session pose and per-frame motion.
    protocol : ScanProtocol
        Native grid, frames and noise model.
    rng : numpy.random.Generator or None
        Noise generator; None renders the noise-free image.

    Returns
    -------
    (nx, ny, nz, n_frames) float32 ndarray
        Decay-corrected activity, kBq/mL.
    """
    frames = protocol.frames()
    shape = protocol.native_shape()
    dcf = decay_correction_factors(frames, protocol.decay_constant_per_min)
    out = np.empty((*shape, frames.n_frames), dtype=np.float32)
    support = None
    for k in range(frames.n_frames):
        pose = motion.frame_pose(k)
        frame = resample_to_native(head.frame(tacs[:, k]), head.affine, pose, protocol)
        if rng is not None:
            if support is None:
                tissue = head.volume(head.blurred.sum(axis=0))
                support = resample_to_native(tissue, head.affine, pose, protocol)
                support = support > HEAD_SUPPORT_THRESHOLD
            activity = np.maximum(frame, 0.0) + np.float32(protocol.noise_floor_kbq_ml) * support
            sigma = np.float32(protocol.noise_scale) * np.sqrt(
                activity * np.float32(dcf[k] / frames.duration_min[k])
            )
            frame += sigma * correlated_noise(rng, shape, protocol)
        out[..., k] = frame
    return out
