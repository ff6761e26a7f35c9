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

Diagnosis and retries
---------------------
``antsRegistration`` runs in-process and prints with C++ streams to the process's stdout/stderr
file descriptors; a failure otherwise surfaces as "Registration failed with error code 1".
:func:`run_registration` captures that output per attempt (:func:`capture_native_output`) and
raises :class:`AntsRegistrationError` with ANTs' last error lines, the command and the images'
shapes and intensities. Given several initialisations (e.g. :data:`RETRY_INITIALISATIONS`) and
a plausibility check, it tries the next one when an attempt fails or is implausible, and says in
:class:`RegistrationFiles` which one worked and what went wrong before.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
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
    initial : str
        The initialisation that produced these files (``"mass"``, ``"geometry"``,
        ``"identity"`` or the path of an initial transform file).
    failed_attempts : tuple of str
        ``"<initialisation>: <what went wrong>"`` for each initialisation tried before
        ``initial`` (empty when the first one worked); reports say when a retry was needed.
    """

    affine: Path
    warp: Path | None
    inverse_warp: Path | None
    initial: str = "identity"
    failed_attempts: tuple[str, ...] = ()

    @property
    def forward(self) -> list[str]:
        """Transform list that pulls moving-image values onto the fixed grid."""
        files = [self.affine] if self.warp is None else [self.warp, self.affine]
        return [str(f) for f in files]

    @property
    def retried(self) -> bool:
        """Whether an earlier initialisation failed and a later one produced the result."""
        return bool(self.failed_attempts)


class AntsRegistrationError(RegistrationError):
    """``antsRegistration`` failed, or was implausible, with every initialisation tried.

    Carries what a user needs to diagnose the failure (written to crash files).

    Parameters
    ----------
    message : str
        One-paragraph description, with ANTs' own last error lines.
    command : sequence of str
        The ``antsRegistration`` arguments of the last attempt (in-memory images shown as
        ``<fixed>``, ``<moving>``, ``<fixed mask>``).
    output_tail : sequence of str
        The last meaningful lines ANTs printed in the last attempt (ITK errors first).
    log_path : Path, optional
        File with ANTs' complete output of the last attempt.
    details : sequence of str
        Other facts: one line per attempt, and the shapes, spacings and intensities of the
        fixed and moving images.
    """

    def __init__(
        self,
        message: str,
        command: Sequence[str] = (),
        output_tail: Sequence[str] = (),
        log_path: Path | None = None,
        details: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.command = tuple(command)
        self.output_tail = tuple(output_tail)
        self.log_path = log_path
        self.details = tuple(details)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle with every attribute (participant outcomes cross process boundaries)."""
        return (
            type(self),
            (str(self), self.command, self.output_tail, self.log_path, self.details),
        )


Initialisation = Literal["identity", "geometry", "mass"] | Path

#: The initialisations of a registration allowed one retry: aligned centres of mass, then
#: aligned image centres. The centre of mass is the better start for a head in the middle of
#: its field of view, but it fails outright on an image whose intensities sum to zero and is
#: pulled away by bright non-brain structures (neck, bed, a hot spot); the image centres need
#: no intensities at all.
RETRY_INITIALISATIONS: tuple[Initialisation, ...] = ("mass", "geometry")
#: Lines of ANTs' own output kept in error messages.
OUTPUT_TAIL_LINES = 5
#: Lines of ANTs' own output copied into the debug log (the participant log file).
DEBUG_LOG_LINES = 200
#: File descriptors 1 and 2 belong to the whole process: one capture at a time (see
#: :func:`capture_native_output`). A lock is the one piece of process-wide state here because
#: the resource it guards is process-wide.
_CAPTURE_LOCK = threading.Lock()
#: ITK exception boilerplate and object addresses, dropped from the lines shown to users.
_ITK_NOISE = re.compile(
    r"^(Exception Object caught:|itk::ExceptionObject\b|Location: |File: |Line: )"
)
_ADDRESS = re.compile(r"\(0x[0-9a-fA-F]+\)")
_ERROR_WORDS = re.compile(r"error|exception|fail", re.IGNORECASE)


def _flush_std_streams() -> None:
    """Flush Python's and the C library's buffered stdout/stderr (before fds are swapped)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            stream.flush()
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None).fflush(None)


def _duplicate_std_fds() -> tuple[int, int] | None:
    try:
        out = os.dup(1)
    except OSError:
        return None
    try:
        return out, os.dup(2)
    except OSError:
        os.close(out)
        return None


@contextlib.contextmanager
def capture_native_output(path: Path) -> Iterator[bool]:
    """Send everything written to file descriptors 1 and 2 to ``path`` while the block runs.

    ANTs and ITK run in-process and print with C++ streams straight to the process's
    stdout/stderr descriptors, which Python's ``sys.stdout`` redirection cannot catch. The
    descriptors are duplicated, pointed at ``path`` and restored afterwards, with every
    buffer (Python's and the C library's) flushed on both sides of the swap so that no line
    lands on the wrong side. Our own log is not lost: its file handlers write to their own
    descriptors, and anything another thread wrote to the console during the block is in
    ``path`` (the caller logs it).

    Parameters
    ----------
    path : Path
        File that receives the output (created or truncated).

    Yields
    ------
    bool
        True when the output is being captured; False when another thread of this process is
        already capturing or the descriptors cannot be duplicated (the output then goes where
        it always goes).
    """
    if not _CAPTURE_LOCK.acquire(blocking=False):
        yield False
        return
    try:
        saved = _duplicate_std_fds()
        if saved is None:
            yield False
            return
        try:
            with open(path, "wb") as sink:
                _flush_std_streams()
                os.dup2(sink.fileno(), 1)
                os.dup2(sink.fileno(), 2)
                try:
                    yield True
                finally:
                    _flush_std_streams()
                    os.dup2(saved[0], 1)
                    os.dup2(saved[1], 2)
        finally:
            os.close(saved[0])
            os.close(saved[1])
    finally:
        _CAPTURE_LOCK.release()


def meaningful_lines(text: str, n_lines: int = OUTPUT_TAIL_LINES) -> list[str]:
    """The last lines of ANTs/ITK output that say what went wrong.

    ITK's exception boilerplate (``Location:``, ``File:``, ``Line:``) and object addresses
    are dropped and repeated lines shown once. When some lines mention an error, exception
    or failure, only those are kept (numerical warnings such as VNL's SVD messages can
    repeat hundreds of times before the real error).

    Parameters
    ----------
    text : str
        Captured output.
    n_lines : int
        Maximum number of lines returned.

    Returns
    -------
    list of str
        At most ``n_lines`` lines, oldest first.
    """
    last_seen: dict[str, None] = {}  # insertion-ordered: a repeated line moves to the end
    for raw in text.splitlines():
        line = _ADDRESS.sub("", raw).strip()
        if not line or _ITK_NOISE.match(line):
            continue
        line = line.removeprefix("Description:").strip()
        last_seen.pop(line, None)
        last_seen[line] = None
    lines = list(last_seen)
    errors = [line for line in lines if _ERROR_WORDS.search(line)]
    kept = errors or lines
    return kept[-n_lines:] if n_lines > 0 else []


def _describe_image(name: str, image: Any) -> str:
    """Shape, spacing and intensities of an ANTs image, for error reports."""
    data = image.numpy()
    spacing = " x ".join(f"{v:g}" for v in image.spacing)
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        return f"{name}: shape {tuple(data.shape)}, spacing {spacing} mm, no finite voxels"
    nonzero = 100.0 * np.count_nonzero(finite) / data.size
    return (
        f"{name}: shape {tuple(data.shape)}, spacing {spacing} mm, origin "
        f"{tuple(round(float(v), 1) for v in image.origin)}, intensities "
        f"{float(finite.min()):.4g} to {float(finite.max()):.4g}, {nonzero:.0f} % non-zero"
    )


def _initialisations(
    initial: Initialisation | Sequence[Initialisation],
) -> tuple[Initialisation, ...]:
    choices = ("identity", "geometry", "mass")
    items = (initial,) if isinstance(initial, (str, Path)) else tuple(initial)
    bad = [i for i in items if not isinstance(i, Path) and i not in choices]
    if not items or bad:
        msg = (
            f"initial must be one of {choices}, a transform file, or a non-empty sequence of "
            f"them; got {initial!r}"
        )
        raise InputError(msg)
    return items


def _pointer(image: Any) -> str:
    from ants.internal import get_pointer_string

    return str(get_pointer_string(image))


def _initial_arg(initial: Initialisation, fixed_ptr: str, moving_ptr: str) -> str:
    if isinstance(initial, Path):
        return str(initial)
    feature = {"identity": None, "geometry": 0, "mass": 1}[initial]
    return "Identity" if feature is None else f"[{fixed_ptr},{moving_ptr},{feature}]"


def _output_files(outprefix: Path) -> tuple[Path, Path, Path]:
    return (
        Path(f"{outprefix}0GenericAffine.mat"),
        Path(f"{outprefix}1Warp.nii.gz"),
        Path(f"{outprefix}1InverseWarp.nii.gz"),
    )


def inverse_warp_file(outprefix: Path) -> Path:
    """Where :func:`run_registration` with prefix ``outprefix`` writes the inverse warp."""
    return _output_files(outprefix)[2]


@dataclass(frozen=True)
class _Attempt:
    """One ``antsRegistration`` call: its files, or why it failed, and what ANTs printed."""

    label: str
    files: RegistrationFiles | None
    problem: str
    output_tail: tuple[str, ...]
    log_path: Path | None


def _attempt(ants: ModuleType, args: list[str], outprefix: Path, label: str) -> _Attempt:
    affine, warp, inverse = _output_files(outprefix)
    for stale in (affine, warp, inverse):  # a failed attempt must not leave a "result"
        stale.unlink(missing_ok=True)
    log_path = Path(f"{outprefix}{label}_antsRegistration.log")
    error: str | None = None
    exit_code = 0
    with capture_native_output(log_path) as captured:
        try:
            exit_code = ants.registration(args, None)
        except RuntimeError as exc:
            error = str(exc)
    text = log_path.read_text(encoding="utf-8", errors="replace") if captured else ""
    tail = tuple(meaningful_lines(text))
    if text.strip():
        logger.debug("antsRegistration (%s) output:\n%s", label, _last_lines(text))
    if error is None and exit_code == 0 and affine.is_file():
        if captured:
            log_path.unlink(missing_ok=True)
        files = RegistrationFiles(
            affine=affine,
            warp=warp if warp.is_file() else None,
            inverse_warp=inverse if inverse.is_file() else None,
            initial=label,
        )
        return _Attempt(label, files, "", tail, None)
    if error is None:
        error = f"exit code {exit_code}" if exit_code != 0 else f"no transform at {affine}"
    if tail:
        problem = "antsRegistration failed: " + " | ".join(tail)
    elif captured:
        problem = f"antsRegistration failed ({error}) and printed nothing"
    else:
        problem = (
            f"antsRegistration failed ({error}); its output went to the console, not "
            "captured (another thread of this process was capturing, or stdout/stderr are "
            "closed)"
        )
    return _Attempt(label, None, problem, tail, log_path if captured else None)


def _last_lines(text: str, n_lines: int = DEBUG_LOG_LINES) -> str:
    lines = text.rstrip().splitlines()
    if len(lines) <= n_lines:
        return "\n".join(lines)
    return "\n".join([f"({len(lines) - n_lines} earlier lines omitted)", *lines[-n_lines:]])


def run_registration(
    fixed: Any,
    moving: Any,
    stages: Sequence[Stage],
    outprefix: Path,
    *,
    initial: Initialisation | Sequence[Initialisation] = "identity",
    fixed_mask: Any | None = None,
    plausible: Callable[[RegistrationFiles], str | None] | None = None,
) -> RegistrationFiles:
    """Run ``antsRegistration`` with explicit stages, output prefix and random seed.

    ANTs' own output (printed by C++ to the process's stdout/stderr) is captured per attempt
    (:func:`capture_native_output`) into ``<outprefix><initialisation>_antsRegistration.log``;
    its last meaningful lines go into the error when the registration fails, and into the
    debug log otherwise (the file is then deleted).

    Parameters
    ----------
    fixed, moving : ants.ANTsImage
        3-D float images.
    stages : sequence of Stage
        Registration stages, run in order.
    outprefix : Path
        Prefix of the transform files (inside the caller's ``work_dir``; nothing goes to /tmp).
    initial : {"identity", "geometry", "mass"} or Path, or a sequence of them
        Initial moving transform: identity, aligned image centres, aligned centres of mass,
        or an ITK transform file. A sequence is tried in order until one gives a result that
        ANTs completes and ``plausible`` accepts, e.g. :data:`RETRY_INITIALISATIONS`.
    fixed_mask : ants.ANTsImage, optional
        Binary mask on the fixed grid restricting the metric (all stages).
    plausible : callable, optional
        ``plausible(files)`` returns None for an acceptable result, or a sentence saying what is
        wrong with it (e.g. "moved the image by 240 mm"); an implausible result counts as a
        failed attempt.

    Returns
    -------
    RegistrationFiles
        Paths of the composed affine (initial transform included) and the warps, if any; which
        initialisation produced them and what went wrong with the ones tried before.

    Raises
    ------
    AntsRegistrationError
        When every initialisation failed or was implausible; the message holds ANTs' last
        error lines, the attributes the command, image descriptions and the log file.
    RegistrationError
        When an input image holds NaN or Inf voxels.
    """
    ants = import_ants_loaded()
    if not np.all(np.isfinite(fixed.numpy())) or not np.all(np.isfinite(moving.numpy())):
        msg = "registration inputs contain NaN or Inf voxels; replace them before registering"
        raise RegistrationError(msg)
    initials = _initialisations(initial)
    fptr, mptr = _pointer(fixed), _pointer(moving)
    shown = {fptr: "<fixed>", mptr: "<moving>"}  # how error reports name the in-memory images
    mask_arg = "[NA,NA]"
    if fixed_mask is not None:
        mask_image = (fixed_mask != 0).astype("float32")
        mask_ptr = _pointer(mask_image)
        mask_arg = f"[{mask_ptr},NA]"
        shown[mask_ptr] = "<fixed mask>"
    body: list[str] = []
    for stage in stages:
        body += stage.args(fptr, mptr, mask_arg)
    body += [
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
    failures: list[_Attempt] = []
    args: list[str] = []
    for init in initials:
        label = "file" if isinstance(init, Path) else init
        args = ["--dimensionality", "3", "--initial-moving-transform"]
        args += [_initial_arg(init, fptr, mptr), *body]
        attempt = _attempt(ants, args, outprefix, label)
        if attempt.files is not None and plausible is not None:
            problem = plausible(attempt.files)
            if problem:
                attempt = _Attempt(label, None, f"implausible result: {problem}", (), None)
        if attempt.files is not None:
            tried = tuple(f"{f.label}: {f.problem}" for f in failures)
            if tried:
                logger.warning(
                    "registration %s succeeded with the %s initialisation after: %s",
                    outprefix.name,
                    label,
                    "; ".join(tried),
                )
            return replace(attempt.files, failed_attempts=tried)
        failures.append(attempt)
        if len(failures) < len(initials):
            logger.warning(
                "registration %s with the %s initialisation: %s; retrying with another "
                "initialisation",
                outprefix.name,
                label,
                attempt.problem,
            )
    raise _registration_error(failures, args, outprefix, (fixed, moving), shown)


def _registration_error(
    failures: Sequence[_Attempt],
    args: Sequence[str],
    outprefix: Path,
    images: tuple[Any, Any],
    pointers: dict[str, str],
) -> AntsRegistrationError:
    """The error after the last failed attempt (``images``: fixed and moving)."""
    last = failures[-1]
    if len(failures) == 1:
        head = f"registration failed with the {last.label} initialisation: {last.problem}"
    else:
        tried = "; ".join(f"{f.label}: {f.problem}" for f in failures)
        head = f"registration failed with every initialisation tried ({tried})"
    where = f"output prefix {outprefix}"
    logs = [f.log_path for f in failures if f.log_path is not None]
    if logs:
        where += f"; ANTs output in {', '.join(str(p) for p in logs)}"
    command = []
    for arg in args:
        readable = arg
        for ptr, name in pointers.items():
            readable = readable.replace(ptr, name)
        command.append(readable)
    details = [
        *(f"attempt with the {f.label} initialisation: {f.problem}" for f in failures),
        _describe_image("fixed image", images[0]),
        _describe_image("moving image", images[1]),
    ]
    tail = next((f.output_tail for f in reversed(failures) if f.output_tail), ())
    return AntsRegistrationError(
        f"{head} ({where})", ("antsRegistration", *command), tail, last.log_path, details
    )
