"""Acquisition protocol of the synthetic study: frames, native grid, resolution, noise.

Everything the scanner "does" to the simulated activity lives in one frozen dataclass,
:class:`ScanProtocol`, so that a study is fully described by (protocol, effects, seed).
Two presets exist: :func:`default_protocol` (26 frames over 60 min, 2.5 x 2.5 x 3 mm voxels)
and its ``small`` variant (12 frames, 4 mm voxels) used by fast tests. ``axial_fov_mm`` limits
the native grid to a scanner's axial field of view (e.g. 108 mm for the CTI ECAT 931 of the
naloxone paper); :data:`NOISE_LEVELS` names the noise amplitudes of ``generate_study(noise=)``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from petsim.errors import InputError
from petsim.timing import FrameTiming

FOV_MARGIN_MM = 4.0
"""With a limited axial field of view: its bottom lies this far below the lowest cerebellar voxel
centre at the session pose, mm."""

C11_HALF_LIFE_MIN = 20.364
"""Physical half-life of carbon-11, minutes (20.364 min; NNDC)."""

DEFAULT_SCHEDULE_S: tuple[tuple[int, float], ...] = (
    (4, 15.0),
    (4, 30.0),
    (3, 60.0),
    (2, 120.0),
    (6, 180.0),
    (3, 240.0),
    (4, 300.0),
)
"""Default frame schedule as (count, duration in s): 26 frames, 60 min."""

NOISE_LEVELS: dict[str, float] = {"example": 0.20, "high": 1.0}
"""Named values of :attr:`ScanProtocol.noise_scale`: ``"example"`` (the default) and ``"high"``
(ECAT-era voxel noise: a striatal voxel COV of BPND of ~15 % on 2 mm voxelwise SRTM2 maps of the
default protocol; see ``examples/README.md``)."""

SMALL_SCHEDULE_S: tuple[tuple[int, float], ...] = (
    (2, 30.0),
    (2, 60.0),
    (2, 120.0),
    (2, 240.0),
    (3, 600.0),
    (1, 900.0),
)
"""Coarse frame schedule of the small mode: 12 frames, 60 min."""


def frame_schedule_seconds(
    schedule: tuple[tuple[int, float], ...],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Expand a (count, duration) schedule into contiguous frames starting at 0 s.

    Parameters
    ----------
    schedule : tuple of (int, float)
        Blocks of ``count`` frames of ``duration`` seconds each.

    Returns
    -------
    start_s : (n_frames,) ndarray
        Frame start times, s (PET-BIDS ``FrameTimesStart``).
    duration_s : (n_frames,) ndarray
        Frame durations, s (PET-BIDS ``FrameDuration``).
    """
    durations = np.concatenate([np.full(int(n), float(d)) for n, d in schedule])
    starts = np.concatenate([[0.0], np.cumsum(durations)[:-1]])
    return starts, durations


@dataclass(frozen=True)
class ScanProtocol:
    """How the synthetic scanner acquires and reconstructs each session.

    Parameters
    ----------
    schedule_s : tuple of (int, float)
        Frame schedule as (count, duration in s) blocks; frames are contiguous from 0 s.
    voxel_size_mm : (3,) tuple of float
        Native (scanner) voxel size, mm.
    grid_shape : (3,) tuple of int
        Native grid dimensions (unequal on purpose); the grid is centred on the scanner origin.
    axial_fov_mm : float or None
        Axial (z) field of view of the scanner, mm; None: the full ``grid_shape``. Otherwise the
        native grid has ``round(axial_fov_mm / voxel_z)`` slices, centred on the scanner origin,
        and every session's head pose is placed so that the bottom of the field of view lies
        :data:`FOV_MARGIN_MM` below the lowest cerebellar voxel (the bed is positioned over the
        striatum and the cerebellum); the head then moves within the fixed field of view.
    fwhm_mm : float
        Effective isotropic resolution of the reconstructed images (FWHM, mm).
    noise_scale : float
        Noise amplitude: the per-voxel SD is ``noise_scale * sqrt((A + floor) * DCF / dt)`` with
        ``A`` the decay-corrected activity (kBq/mL), ``DCF`` the frame's decay-correction factor
        and ``dt`` the frame duration (min); i.e. variance proportional to true counts.
    noise_floor_kbq_ml : float
        Activity added inside the head before computing the variance (randoms/scatter), kBq/mL.
    noise_fwhm_mm : float
        Spatial correlation of the noise (white noise smoothed by this Gaussian, then rescaled
        to unit variance), mm.
    blood_volume_fraction : float
        Default fractional blood volume of brain tissue (whole blood ~ plasma for raclopride).
    half_life_min : float
        Radionuclide half-life, minutes (C-11).
    injected_mbq_range : (2,) tuple of float
        Injected activity is drawn uniformly in this range, MBq.
    motion_scale : float
        Multiplies all intra-scan motion amplitudes (0 disables intra-scan motion).
    t1w_voxel_mm : float
        Isotropic voxel size of the optional T1w image, mm.
    fine_dt_min : float
        Time step of the fine grid on which the kinetics are solved, minutes.
    """

    schedule_s: tuple[tuple[int, float], ...] = DEFAULT_SCHEDULE_S
    voxel_size_mm: tuple[float, float, float] = (2.5, 2.5, 3.0)
    grid_shape: tuple[int, int, int] = (84, 96, 68)
    axial_fov_mm: float | None = None
    fwhm_mm: float = 6.0
    noise_scale: float = 0.20
    noise_floor_kbq_ml: float = 0.3
    noise_fwhm_mm: float = 4.0
    blood_volume_fraction: float = 0.04
    half_life_min: float = C11_HALF_LIFE_MIN
    injected_mbq_range: tuple[float, float] = (280.0, 380.0)
    motion_scale: float = 1.0
    t1w_voxel_mm: float = 1.25
    fine_dt_min: float = 1.0 / 120.0

    @property
    def decay_constant_per_min(self) -> float:
        """Radioactive decay constant lambda = ln 2 / half-life, 1/min."""
        return math.log(2.0) / self.half_life_min

    def frames(self) -> FrameTiming:
        """Frame timing of the schedule (minutes inside, seconds via ``.start_s``)."""
        start_s, duration_s = frame_schedule_seconds(self.schedule_s)
        return FrameTiming.from_seconds(start_s, duration_s)

    def __post_init__(self) -> None:
        if self.axial_fov_mm is not None and not (
            math.isfinite(self.axial_fov_mm) and self.axial_fov_mm >= 2 * self.voxel_size_mm[2]
        ):
            msg = (
                f"axial_fov_mm must be None or at least two slices "
                f"({2 * self.voxel_size_mm[2]:g} mm); got {self.axial_fov_mm!r}"
            )
            raise InputError(msg)
        if not (math.isfinite(self.noise_scale) and self.noise_scale >= 0.0):
            msg = f"noise_scale must be a finite number >= 0; got {self.noise_scale!r}"
            raise InputError(msg)

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> ScanProtocol:
        """Rebuild a protocol from its ``truth.json`` record (extra keys are ignored).

        Raises
        ------
        InputError
            A field is missing.
        """
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in values]
        if missing:
            msg = f"protocol record lacks {missing}; pass the 'protocol' entry of truth.json"
            raise InputError(msg)

        def as_tuple(value: object) -> object:
            return tuple(as_tuple(v) for v in value) if isinstance(value, list) else value

        return cls(**{n: as_tuple(values[n]) for n in names})  # type: ignore[arg-type]

    def native_shape(self) -> tuple[int, int, int]:
        """Shape of the native grid: ``grid_shape`` with the slices of the axial field of view."""
        nx, ny, nz = self.grid_shape
        if self.axial_fov_mm is not None:
            nz = round(self.axial_fov_mm / self.voxel_size_mm[2])
        return (nx, ny, nz)

    def native_affine(self) -> NDArray[np.float64]:
        """Voxel-to-scanner affine of the native grid (RAS+, centred on the scanner origin).

        Returns
        -------
        (4, 4) ndarray
            Maps native voxel indices to scanner-space mm.
        """
        vox = np.asarray(self.voxel_size_mm, dtype=np.float64)
        shape = np.asarray(self.native_shape(), dtype=np.float64)
        affine = np.diag([*vox, 1.0])
        affine[:3, 3] = -0.5 * (shape - 1.0) * vox
        return affine


def default_protocol(*, small: bool = False) -> ScanProtocol:
    """Return the protocol preset of the default or the small (fast) study.

    Parameters
    ----------
    small : bool
        If True: 12 frames, 4 mm isotropic voxels, 1.5 mm T1w, coarser time grid.

    Returns
    -------
    ScanProtocol
        The preset.
    """
    if not small:
        return ScanProtocol()
    return ScanProtocol(
        schedule_s=SMALL_SCHEDULE_S,
        voxel_size_mm=(4.0, 4.0, 4.0),
        grid_shape=(52, 60, 50),
        t1w_voxel_mm=1.5,
        fine_dt_min=1.0 / 60.0,
    )
