"""The bridge to ANTsPy: lazy import, thread set-up, nibabel <-> ANTs images, raw registrations.

Everything that touches ``ants`` objects lives in :mod:`bids_app.preproc`; this module holds
the shared plumbing. ANTsPy is imported lazily (inside functions) so that importing
``bids_app`` stays cheap and the ITK thread count can still be chosen at process start.

Determinism
-----------
``ants.registration(random_seed=...)`` is ignored by antspyx 0.6.3, and ANTs' default seed is
time based. :func:`run_registration` therefore calls the ``antsRegistration`` library entry point
with an explicit ``--random-seed`` (always the same). Measured on antspyx 0.6.3: with one ITK
thread, repeated runs give bitwise-identical transforms; with 2 threads they differ at the
~0.01 mm level (the threaded metric reduction is not order-stable), even with dense sampling.
Bitwise reproducibility therefore needs ``configure_ants_threads(1)`` before ANTs is first used.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import nibabel as nib
import numpy as np
from numpy.typing import ArrayLike, NDArray

from bids_app.errors import InputError, RegistrationError
from bids_app.preproc.transforms import itk_affine_to_ras, ras_affine_to_itk, ras_lps_flip

logger = logging.getLogger(__name__)

#: Environment variable ITK reads (once, on first use) to choose its thread count.
ITK_THREADS_ENV = "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"
#: Seed passed to every ``antsRegistration`` call (recorded for provenance).
ANTS_RANDOM_SEED = 20211
#: Largest tolerated deviation of the voxel axes from orthogonality before we refuse the image.
_MAX_SHEAR = 1e-3

MetricName = Literal["MI", "Mattes", "GC", "CC", "MeanSquares"]

#: Value ANTs writes outside the input field of view before it becomes NaN. ANTs' command-line
#: parser cannot read "nan", and its interpolators never mix the default value with data (a
#: point is either inside the buffer or gets the default), so a sentinel is exact.
OUTSIDE = -1.0e30


def configure_ants_threads(n_threads: int) -> None:
    """Choose the number of threads ITK/ANTs uses in this process.

    ITK reads ``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS`` once, when it first runs a filter, so
    this must be called before ANTs is first used (the pipeline calls it at process start).
    This is the only place where :mod:`bids_app` writes to ``os.environ``. A later call with a
    different number cannot take effect and logs a warning.

    Parameters
    ----------
    n_threads : int
        Number of threads (>= 1). ``1`` makes registrations bitwise reproducible.
    """
    if isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
        msg = f"n_threads must be a positive integer; got {n_threads!r}"
        raise InputError(msg)
    current = os.environ.get(ITK_THREADS_ENV)
    if "ants" in sys.modules and current != str(n_threads):
        logger.warning(
            "ANTs is already loaded (ITK threads: %s); asking for %d threads now may have no "
            "effect. Call configure_ants_threads() at process start.",
            current or "all cores",
            n_threads,
        )
    os.environ[ITK_THREADS_ENV] = str(n_threads)


def import_ants(n_threads: int = 1) -> ModuleType:
    """Import ANTsPy, choosing the thread count first when it is not loaded yet.

    Parameters
    ----------
    n_threads : int
        Threads for ITK; only honoured when ANTs has not been imported in this process yet
        (through :func:`configure_ants_threads`); otherwise a mismatch is logged at debug level.

    Returns
    -------
    module
        The ``ants`` module.
    """
    if "ants" not in sys.modules:
        configure_ants_threads(n_threads)
    elif os.environ.get(ITK_THREADS_ENV) != str(n_threads):
        logger.debug(
            "n_threads=%d requested but ITK threads were fixed at start-up (%s)",
            n_threads,
            os.environ.get(ITK_THREADS_ENV, "all cores"),
        )
    import ants

    return ants


# --------------------------------------------------------------------------- images
def _affine_geometry(
    affine: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Split a NIfTI voxel-to-RAS affine into ITK origin, spacing and direction (LPS)."""
    lps = ras_lps_flip() @ affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    if np.any(spacing <= 0) or not np.all(np.isfinite(lps)):
        msg = f"image affine has zero or non-finite voxel sizes: {affine.tolist()}"
        raise InputError(msg)
    direction = lps[:3, :3] / spacing
    gram = direction.T @ direction
    shear = float(np.max(np.abs(gram - np.eye(3))))
    if shear > _MAX_SHEAR:
        msg = (
            f"image affine has non-orthogonal (sheared) voxel axes (deviation {shear:.2g}); "
            "ANTs only supports orthonormal directions. Reslice the image to an orthogonal grid."
        )
        raise InputError(msg)
    u, _, vt = np.linalg.svd(direction)
    return lps[:3, 3], spacing, u @ vt


def nifti_to_ants(img: nib.spatialimages.SpatialImage, data: ArrayLike | None = None) -> Any:
    """Convert a 3-D nibabel image (or ``data`` on its grid) to a float32 ANTs image.

    Parameters
    ----------
    img : nibabel image
        Provides the grid (shape and affine). Must be 3-D unless ``data`` is given.
    data : (nx, ny, nz) array_like, optional
        Voxel values to use instead of ``img``'s data (e.g. one frame of a 4-D image).

    Returns
    -------
    ants.ANTsImage
        Same voxels and world positions (ITK LPS convention).
    """
    ants = import_ants_loaded()
    arr = np.asarray(img.dataobj if data is None else data, dtype=np.float32)
    if arr.ndim != 3:
        msg = f"expected a 3-D image; got shape {arr.shape}"
        raise InputError(msg)
    origin, spacing, direction = _affine_geometry(np.asarray(img.affine, dtype=np.float64))
    return ants.from_numpy(
        np.ascontiguousarray(arr),
        origin=tuple(float(v) for v in origin),
        spacing=tuple(float(v) for v in spacing),
        direction=direction,
    )


def import_ants_loaded() -> ModuleType:
    """Return the ``ants`` module, importing it with the current thread setting if needed."""
    if "ants" in sys.modules:
        return sys.modules["ants"]
    return import_ants(int(os.environ.get(ITK_THREADS_ENV, "1")))


def as_3d(img: nib.spatialimages.SpatialImage, name: str) -> nib.Nifti1Image:
    """A finite float32 3-D copy of ``img`` (NaN/Inf -> 0) for ANTs; raises if it is empty."""
    shape = img.shape
    if len(shape) == 4 and shape[3] == 1:
        img = img.slicer[..., 0]
    if len(img.shape) != 3:
        msg = f"{name} must be a 3-D image; got shape {shape}"
        raise InputError(msg)
    data = np.asarray(img.dataobj, dtype=np.float32)
    if not np.any(np.isfinite(data) & (data != 0)):
        msg = f"{name} is empty (all zero or non-finite)"
        raise InputError(msg)
    return nib.Nifti1Image(np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0), img.affine)


def outside_to_nan(data: NDArray[np.floating]) -> NDArray[np.float32]:
    """Turn ANTs' :data:`OUTSIDE` sentinel into NaN ("no data")."""
    out = np.asarray(data, dtype=np.float32)
    out[out < OUTSIDE / 10.0] = np.nan
    return out


# --------------------------------------------------------------------------- transforms
def write_affine(matrix_ras: ArrayLike, path: Path) -> Path:
    """Write a 4x4 RAS matrix as an ANTs/ITK ``.mat`` affine transform file.

    Parameters
    ----------
    matrix_ras : (4, 4) array_like
        Transform in the ANTs direction: fixed-space (output grid) points to moving-space points.
    path : Path
        Output file; must end in ``.mat``.

    Returns
    -------
    Path
        ``path``.
    """
    ants = import_ants_loaded()
    params, centre = ras_affine_to_itk(matrix_ras)
    tx = ants.create_ants_transform(
        transform_type="AffineTransform",
        precision="double",
        dimension=3,
        parameters=params,
        fixed_parameters=centre,
    )
    ants.write_transform(tx, str(path))
    return path


def read_affine(path: Path | str) -> NDArray[np.float64]:
    """Read an ANTs/ITK affine ``.mat`` file as a 4x4 RAS matrix (fixed -> moving points)."""
    ants = import_ants_loaded()
    tx = ants.read_transform(str(path))
    return itk_affine_to_ras(tx.parameters, tx.fixed_parameters)


# --------------------------------------------------------------------------- registration
@dataclass(frozen=True)
class Stage:
    """One ``antsRegistration`` stage.

    Attributes
    ----------
    transform : str
        ANTs transform spec, e.g. ``"Rigid[0.1]"``, ``"Affine[0.1]"``, ``"SyN[0.1,3,0]"``.
    metric : {"MI", "Mattes", "GC", "CC", "MeanSquares"}
        Similarity metric.
    metric_param : int
        Histogram bins (MI/Mattes) or neighbourhood radius in voxels (CC); ignored otherwise.
    sampling : {"None", "Regular", "Random"}
        Metric sampling strategy ("None" = every voxel, no randomness).
    sampling_rate : float
        Fraction of voxels sampled (ignored for "None").
    iterations : tuple of int
        Iterations per resolution level.
    shrink_factors : tuple of int
        Down-sampling factor per level.
    smoothing_vox : tuple of float
        Gaussian sigma per level, voxels.
    """

    transform: str
    metric: MetricName
    metric_param: int
    sampling: Literal["None", "Regular", "Random"]
    sampling_rate: float
    iterations: tuple[int, ...]
    shrink_factors: tuple[int, ...]
    smoothing_vox: tuple[float, ...]

    def args(self, fixed_ptr: str, moving_ptr: str, mask_arg: str) -> list[str]:
        """Command-line arguments of this stage for the given image pointers."""
        if not len(self.iterations) == len(self.shrink_factors) == len(self.smoothing_vox):
            msg = (
                "registration stage levels must match: "
                f"{len(self.iterations)} iterations, {len(self.shrink_factors)} shrink factors, "
                f"{len(self.smoothing_vox)} smoothing sigmas"
            )
            raise InputError(msg)
        sampling = "None" if self.sampling == "None" else f"{self.sampling},{self.sampling_rate}"
        metric = f"{self.metric}[{fixed_ptr},{moving_ptr},1,{self.metric_param},{sampling}]"
        return [
            "--transform",
            self.transform,
            "--metric",
            metric,
            "--convergence",
            f"[{'x'.join(str(i) for i in self.iterations)},1e-6,10]",
            "--shrink-factors",
            "x".join(str(s) for s in self.shrink_factors),
            "--smoothing-sigmas",
            "x".join(f"{s:g}" for s in self.smoothing_vox) + "vox",
            "--masks",
            mask_arg,
        ]


@dataclass(frozen=True)
class RegistrationFiles:
    """Transform files written by :func:`run_registration`.

    Attributes
    ----------
    affine : Path
        ``<prefix>0GenericAffine.mat``: maps fixed-space points to moving-space points.
    warp : Path or None
        ``<prefix>1Warp.nii.gz`` (fixed -> moving displacement), for deformable stages.
    inverse_warp : Path or None
        ``<prefix>1InverseWarp.nii.gz``.
    """

    affine: Path
    warp: Path | None
    inverse_warp: Path | None

    @property
    def forward(self) -> list[str]:
        """Transform list that pulls moving-image values onto the fixed grid."""
        files = [self.affine] if self.warp is None else [self.warp, self.affine]
        return [str(f) for f in files]


def _pointer(image: Any) -> str:
    from ants.internal import get_pointer_string

    return str(get_pointer_string(image))


def run_registration(
    fixed: Any,
    moving: Any,
    stages: Sequence[Stage],
    outprefix: Path,
    *,
    initial: Literal["identity", "geometry", "mass"] | Path = "identity",
    fixed_mask: Any | None = None,
) -> RegistrationFiles:
    """Run ``antsRegistration`` with explicit stages, output prefix and random seed.

    Parameters
    ----------
    fixed, moving : ants.ANTsImage
        3-D float images.
    stages : sequence of Stage
        Registration stages, run in order.
    outprefix : Path
        Prefix of the transform files (inside the caller's ``work_dir``; nothing goes to /tmp).
    initial : {"identity", "geometry", "mass"} or Path
        Initial moving transform: identity, aligned image centres, aligned centres of mass,
        or an ITK transform file.
    fixed_mask : ants.ANTsImage, optional
        Binary mask on the fixed grid restricting the metric (all stages).

    Returns
    -------
    RegistrationFiles
        Paths of the composed affine (initial transform included) and the warps, if any.
    """
    ants = import_ants_loaded()
    if not np.all(np.isfinite(fixed.numpy())) or not np.all(np.isfinite(moving.numpy())):
        msg = "registration inputs contain NaN or Inf voxels; replace them before registering"
        raise RegistrationError(msg)
    fptr, mptr = _pointer(fixed), _pointer(moving)
    if isinstance(initial, Path):
        init = str(initial)
    else:
        feature = {"identity": None, "geometry": 0, "mass": 1}[initial]
        init = "Identity" if feature is None else f"[{fptr},{mptr},{feature}]"
    mask_image = None if fixed_mask is None else (fixed_mask != 0).astype("float32")
    mask_arg = "[NA,NA]" if mask_image is None else f"[{_pointer(mask_image)},NA]"
    args: list[str] = ["--dimensionality", "3", "--initial-moving-transform", init]
    for stage in stages:
        args += stage.args(fptr, mptr, mask_arg)
    args += [
        "--output",
        str(outprefix),
        "--collapse-output-transforms",
        "1",
        "--winsorize-image-intensities",
        "[0.005,0.995]",
        "--use-histogram-matching",
        "0",
        "--float",
        "1",
        "--random-seed",
        str(ANTS_RANDOM_SEED),
    ]
    try:
        exit_code = ants.registration(args, None)
    except RuntimeError as exc:
        msg = f"antsRegistration failed ({exc}); output prefix {outprefix}"
        raise RegistrationError(msg) from exc
    affine = Path(f"{outprefix}0GenericAffine.mat")
    if exit_code != 0 or not affine.is_file():
        msg = f"antsRegistration failed (exit code {exit_code}); no transform at {affine}"
        raise RegistrationError(msg)
    warp = Path(f"{outprefix}1Warp.nii.gz")
    inverse = Path(f"{outprefix}1InverseWarp.nii.gz")
    return RegistrationFiles(
        affine=affine,
        warp=warp if warp.is_file() else None,
        inverse_warp=inverse if inverse.is_file() else None,
    )
