"""How noisy the simulated images are, measured the way the noise levels are documented.

:func:`voxel_bp_noise` renders one session twice with identical pose and motion, once without
and once with noise, takes both to the 2 mm MNI grid with the true mapping (warp, pose and the
true motion of every frame; one trilinear interpolation, as the truth's ideal pipeline does),
fits voxelwise SRTM2 (:mod:`petsim.srtm`, ``k2'`` from the noise-free striatum) and reports the
noise-induced coefficient of variation of BPND over the dorsal striatum:
``SD(BP_noisy - BP_clean) / mean(BP_clean)``. ``benchmarks/bench_sim_noise.py`` prints it for
the named noise levels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from petsim.anatomy import REFERENCE_ROI, build_anatomy
from petsim.design import SESSIONS, StudyEffects, sample_participants
from petsim.imaging import HeadModel, class_tacs, render_session
from petsim.kinetics_sim import sample_plasma_input
from petsim.motion import SessionMotion, sample_session_motion
from petsim.protocol import ScanProtocol
from petsim.srtm import fit_srtm, fit_srtm2_voxels
from petsim.truth import native_coordinates
from petsim.warp import IndividualWarp, WarpSettings, sample_warp

COV_ROI = "dorsal_striatum"
"""ROI over which the voxel noise is summarised."""


@dataclass(frozen=True)
class VoxelNoise:
    """Noise of voxelwise BPND over the dorsal striatum of one session.

    Attributes
    ----------
    cov : float
        ``SD(BP_noisy - BP_clean) / mean(BP_clean)`` over the ROI's voxels.
    mean_bp_clean : float
        Mean noise-free voxel BPND over the ROI.
    n_voxels : int
        ROI voxels with a successful fit in both maps.
    """

    cov: float
    mean_bp_clean: float
    n_voxels: int


def _to_mni(
    data: NDArray[np.float32],
    head_points_mm: NDArray[np.float64],
    motion: SessionMotion,
    protocol: ScanProtocol,
) -> NDArray[np.float64]:
    """Frame values at MNI points through the true mapping, (n_frames, n_points); NaN outside."""
    out = np.full((data.shape[3], head_points_mm.shape[0]), np.nan)
    for k in range(data.shape[3]):
        ijk, inside = native_coordinates(head_points_mm, motion.frame_pose(k), protocol)
        out[k, inside] = ndimage.map_coordinates(data[..., k], ijk[:, inside], order=1)
    return out


def voxel_bp_noise(
    protocol: ScanProtocol, *, seed: int = 0, anatomy: str = "template"
) -> VoxelNoise:
    """Measure the voxel BPND noise of one baseline session (see the module docstring).

    Parameters
    ----------
    protocol : ScanProtocol
        Protocol, with the noise amplitude to measure (``noise_scale``).
    seed : int
        Seed of the participant, plasma input, motion and noise.
    anatomy : {"template", "individual"}
        Anatomy of the participant.

    Returns
    -------
    VoxelNoise
        COV over the dorsal striatum.
    """
    template = build_anatomy()
    ss = np.random.SeedSequence(seed).spawn(5)
    design = sample_participants(
        np.random.default_rng(ss[0]),
        np.random.default_rng(ss[1]),
        2,
        StudyEffects.none(),
        protocol.blood_volume_fraction,
        protocol.injected_mbq_range,
    )[0]
    warp = (
        sample_warp(np.random.default_rng(ss[4]), template.head_centre_mm, WarpSettings())
        if anatomy == "individual"
        else IndividualWarp.identity(template.head_centre_mm)
    )
    head = HeadModel.build(template, warp, protocol.fwhm_mm)
    rng_plasma, rng_motion, rng_noise = (np.random.default_rng(s) for s in ss[3].spawn(3))
    frames = protocol.frames()
    session = SESSIONS[0]
    plasma = sample_plasma_input(rng_plasma, design.injected_mbq[session])
    tacs = class_tacs(design.sessions[session], template.classes, plasma, protocol).tacs
    motion = sample_session_motion(
        rng_motion, head.head_centre_mm, frames.mid_min, protocol.motion_scale
    )
    mask = template.roi_masks[COV_ROI] | template.roi_masks[REFERENCE_ROI]
    index = np.flatnonzero(mask.ravel())
    head_points = warp.to_head(template.grid.centres_mm(index))
    in_roi = template.roi_masks[COV_ROI].ravel()[index]
    in_ref = template.roi_masks[REFERENCE_ROI].ravel()[index]
    clean = _to_mni(
        render_session(head, tacs, motion, protocol, None), head_points, motion, protocol
    )
    noisy = _to_mni(
        render_session(head, tacs, motion, protocol, rng_noise), head_points, motion, protocol
    )
    ok = np.all(np.isfinite(clean), axis=0) & np.all(np.isfinite(noisy), axis=0)
    ref_clean = clean[:, in_ref & ok].mean(axis=1)
    ref_noisy = noisy[:, in_ref & ok].mean(axis=1)
    k2prime = fit_srtm(frames, ref_clean, clean[:, in_roi & ok].mean(axis=1)).k2prime_per_min
    bp_clean = fit_srtm2_voxels(frames, ref_clean, clean[:, in_roi & ok], k2prime).bp_nd
    bp_noisy = fit_srtm2_voxels(frames, ref_noisy, noisy[:, in_roi & ok], k2prime).bp_nd
    both = np.isfinite(bp_clean) & np.isfinite(bp_noisy)
    mean_clean = float(bp_clean[both].mean())
    return VoxelNoise(
        cov=float(np.std(bp_noisy[both] - bp_clean[both]) / mean_clean),
        mean_bp_clean=mean_clean,
        n_voxels=int(both.sum()),
    )
