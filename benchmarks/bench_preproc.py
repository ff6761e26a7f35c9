"""Time the pre-processing of one participant (2 sessions) on a realistic synthetic study.

Each session: 128 x 128 x 63 voxels at 2.5 mm (ECAT-like), 26 frames (0-60 min), with slow
drift plus one jump of head motion. Steps timed: motion estimation, motion-corrected means,
session co-registration, PET-only normalisation to nilearn's MNI152 (2 mm), and resampling of
all 26 frames of both sessions to the template grid. Goal: <= ~90 s on 2 cores.

Run:  python benchmarks/bench_preproc.py [--threads N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

FRAME_DURATIONS_S = [15] * 4 + [30] * 4 + [60] * 4 + [120] * 4 + [300] * 10


def _pet_like_template(template: nib.Nifti1Image) -> np.ndarray:
    t = template.get_fdata()
    brain = t > 0.1 * t.max()
    grey = np.where(brain, np.clip(1.5 - 2.0 * np.abs(t - 0.55), 0.0, None), 0.0)
    striatum = np.zeros_like(t)
    ijk = np.indices(t.shape).reshape(3, -1).T
    xyz = ijk @ template.affine[:3, :3].T + template.affine[:3, 3]
    for sx in (-1, 1):
        d = (((xyz - [sx * 22.0, 8.0, 2.0]) / [8.0, 14.0, 10.0]) ** 2).sum(1)
        striatum.reshape(-1)[d <= 1] = 1.0
    return np.stack([grey, striatum])


def _session(
    template: nib.Nifti1Image, comps: np.ndarray, rng: np.random.Generator, pose: np.ndarray
) -> tuple[nib.Nifti1Image, object]:
    from bids_app.preproc.transforms import params_to_matrix
    from bids_app.timing import FrameTiming

    shape = (128, 128, 63)
    aff = np.diag([2.5, 2.5, 2.5, 1.0])
    aff[:3, 3] = -(np.array(shape) - 1) / 2.0 * 2.5 + np.array([0.0, -15.0, 5.0])
    starts = np.concatenate([[0.0], np.cumsum(FRAME_DURATIONS_S)[:-1]])
    timing = FrameTiming.from_seconds(starts, FRAME_DURATIONS_S)
    frames = []
    for i, t_min in enumerate(timing.mid_min):
        drift = np.array([0.02, -0.015, 0.03, 0.0003, 0.0002, -0.0004]) * t_min
        jump = np.array([2.0, 0.0, -1.0, 0.01, 0.0, 0.0]) if t_min > 40 else np.zeros(6)
        head = params_to_matrix(pose + drift + jump)
        vox = np.linalg.inv(template.affine) @ np.linalg.inv(head) @ aff
        early = np.exp(-t_min / 3.0)
        img = comps[0] * (1.0 + early) + comps[1] * (1.0 + 3.0 * (1.0 - early))
        img = ndimage.gaussian_filter(img, 6.0 / 2.355 / 2.0)
        moved = ndimage.affine_transform(img, vox[:3, :3], vox[:3, 3], output_shape=shape, order=1)
        sd = 0.1 / np.sqrt(FRAME_DURATIONS_S[i] / 60.0)
        frames.append(moved + rng.normal(0.0, sd, shape) * (moved > 0.02))
    return nib.Nifti1Image(np.stack(frames, -1).astype(np.float32), aff), timing


def main() -> None:
    """Build two sessions, run every step, print timings (seconds)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    from bids_app.preproc import configure_ants_threads

    configure_ants_threads(args.threads)
    from nilearn.datasets import load_mni152_template

    from bids_app.preproc import (
        coregister_sessions,
        estimate_motion,
        motion_corrected_mean,
        normalise_to_template,
        resample_to_template,
    )

    template = load_mni152_template(resolution=2)
    template = nib.Nifti1Image(template.get_fdata().astype(np.float32), template.affine)
    rng = np.random.default_rng(0)
    comps = _pet_like_template(template)
    base, timing = _session(template, comps, rng, np.array([3.0, -5.0, 4.0, 0.05, -0.03, 0.04]))
    chal, _ = _session(template, comps, rng, np.array([-4.0, 2.0, 6.0, -0.04, 0.05, -0.02]))
    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        mot_b = estimate_motion(base, timing)
        mot_c = estimate_motion(chal, timing)
        times["motion (2 sessions)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        mean_b = motion_corrected_mean(base, mot_b, frames="all")
        mean_c = motion_corrected_mean(chal, mot_c, frames="all")
        times["means (2 sessions)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        session = coregister_sessions(mean_c, mean_b, work, n_threads=args.threads)
        times["co-registration"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        norm = normalise_to_template(mean_b, template, work, n_threads=args.threads)
        times["normalisation"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        resample_to_template(base, mot_b, norm, template, n_threads=args.threads)
        resample_to_template(
            chal, mot_c, norm, template, session_transform=session, n_threads=args.threads
        )
        times["resampling (2 x 26 frames)"] = time.perf_counter() - t0
    for name, sec in times.items():
        print(f"{name:<28s} {sec:7.2f} s")
    print(f"{'total':<28s} {sum(times.values()):7.2f} s")
    fd = mot_b.confounds["framewise_displacement"]
    print(
        f"baseline max FD {fd.max():.2f} mm; normalisation det {norm.affine_determinant:.3f}, "
        f"brain overlap {norm.brain_overlap:.3f}"
    )


if __name__ == "__main__":
    main()
