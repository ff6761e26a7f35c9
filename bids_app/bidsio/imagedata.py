"""A PET image's voxel data: integrity, content hashes, per-frame signal checks, loading.

:func:`scan_image_data` reads a 4-D image once, frame by frame (memory: one frame), after
streaming the file once to hash it (SHA-256 of the bytes, the hash the participant manifest
records) and, for ``.nii.gz``, to verify the gzip CRC in the same pass. It returns per-frame
statistics; :func:`bad_frames` turns them into named problems:

* non-finite values: ``Inf`` anywhere, or ``NaN`` in voxels that hold data in other frames.
  ``NaN`` in every frame of a voxel is common in exports and means "outside the field of view":
  accepted (such voxels are read as 0, like a scanner that writes 0 outside its field of view);
* a frame whose finite values are all zero, or sum to zero or less (sign-flipped data);
* a jump of the whole-image time-activity curve (e.g. a wrong per-frame scale factor): from its
  (median-filtered) peak on, a frame whose mean differs from the running median of the curve by
  more than :data:`JUMP_RATIO` times, or a frame before the peak exceeding the peak as much.

:func:`load_pet_data` is how the pipelines read a scan: decay correction to the injection and
the exclusion of bad frames (``--exclude-bad-frames``) are applied there, once.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import nibabel as nib
import numpy as np
from numpy.typing import NDArray

from bids_app.bidsio import messages
from bids_app.bidsio.metadata import IMAGE_READ_ERRORS, MIN_FRAMES
from bids_app.bidsio.nifti import load_spatial_image

if TYPE_CHECKING:
    from bids_app.bidsio.layout import PetScan

#: Chunk size when a file is streamed (hash, gzip CRC), bytes.
CHUNK_BYTES = 1 << 22

#: A frame whose whole-image mean is more than this factor above or below the median of its
#: neighbours (after the peak) is a jump. Real decay-corrected whole-image curves change by
#: well under 1.5x between neighbouring frames after the peak.
JUMP_RATIO = 3.0
#: A frame whose signal sum is negative by more than this share of the largest frame sum has
#: lost its sign (or is corrupt); a frame whose sum is merely near zero is accepted: before the
#: tracer arrives, reconstruction noise (FBP gives negative voxels) averages to about 0.
NEGATIVE_SIGNAL_FRACTION = 0.05
#: Frames of the running median that is each frame's jump reference (two bad frames in a row
#: do not move a five-frame median).
JUMP_WINDOW = 5


@dataclass(frozen=True)
class StreamCheck:
    """One pass over a file's bytes: its SHA-256 and, for gzip, whether the stream is intact.

    Attributes
    ----------
    sha256 : str
        SHA-256 of the file's bytes (hex).
    error : str or None
        ``"<ErrorType>: <message>"`` when the gzip stream is truncated or corrupt.
    """

    sha256: str
    error: str | None


def stream_check(path: Path) -> StreamCheck:
    """Hash a file and, for ``.gz``, decompress it to its end (CRC and length checked).

    Reading the frames stops before the gzip trailer, so a corrupt block that still decodes
    (garbage values) or a wrong CRC would pass unnoticed; streaming to the end checks them.
    Memory use is one chunk.

    Parameters
    ----------
    path : Path
        The file.

    Returns
    -------
    StreamCheck

    Raises
    ------
    OSError
        When the file cannot be read at all.
    """
    digest = hashlib.sha256()
    gz = path.name.endswith(".gz")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if gz else None
    error: str | None = None
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
            if inflater is None or error is not None:
                continue
            try:
                data = chunk
                while data:
                    inflater.decompress(data)
                    data = inflater.unused_data
                    if inflater.eof and data:  # a further gzip member
                        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            except zlib.error as exc:
                error = f"{type(exc).__name__}: {exc}"
    if inflater is not None and error is None and not inflater.eof:
        error = "EOFError: Compressed file ended before the end-of-stream marker was reached"
    return StreamCheck(digest.hexdigest(), error)


@dataclass(frozen=True)
class FrameStatistics:
    """What one pass over a 4-D image's frames measured.

    Attributes
    ----------
    sha256 : str
        SHA-256 of the file's bytes.
    data_sha256 : str
        SHA-256 of the voxel values (float32, frame by frame): equal for two files holding the
        same image even when compressed differently.
    total : (n_frames,) ndarray
        Sum of each frame's finite values (image units x voxels).
    mean : (n_frames,) ndarray
        Mean of each frame's finite values: the whole-image time-activity curve.
    n_nan_with_data : (n_frames,) ndarray of int
        NaN voxels of each frame that are finite in another frame.
    n_inf : (n_frames,) ndarray of int
        Infinite voxels of each frame.
    negative_fraction : (n_frames,) ndarray
        Fraction of each frame's finite non-zero voxels that are negative.
    n_outside : int
        Voxels that are NaN in every frame (outside the field of view).
    n_voxels : int
        Voxels per frame.
    """

    sha256: str
    data_sha256: str
    total: NDArray[np.float64]
    mean: NDArray[np.float64]
    n_nan_with_data: NDArray[np.int64]
    n_inf: NDArray[np.int64]
    negative_fraction: NDArray[np.float64]
    n_outside: int
    n_voxels: int

    @property
    def any_signal(self) -> bool:
        """True when some finite voxel of some frame is not zero."""
        return bool(np.any(self.total != 0) or np.any(self.negative_fraction > 0))


def scan_image_data(image: Path) -> tuple[FrameStatistics | None, str | None]:
    """Hash a 4-D image and measure every frame (one frame in memory at a time).

    Parameters
    ----------
    image : Path
        ``*_pet.nii[.gz]`` whose header was read successfully.

    Returns
    -------
    statistics : FrameStatistics or None
        None when the file is corrupt.
    error : str or None
        ``"<ErrorType>: <message>"`` for a truncated/corrupt file.
    """
    try:
        stream = stream_check(image)
    except OSError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if stream.error is not None:
        return None, stream.error
    data_digest = hashlib.sha256()
    try:
        img = load_spatial_image(image, keep_file_open=True)
        proxy = img.dataobj
        n_frames = int(img.shape[3]) if len(img.shape) == 4 else 1
        total = np.zeros(n_frames)
        mean = np.full(n_frames, np.nan)
        n_nan = np.zeros(n_frames, dtype=np.int64)
        n_inf = np.zeros(n_frames, dtype=np.int64)
        negative = np.zeros(n_frames)
        always_nan: NDArray[np.bool_] | None = None
        for i in range(n_frames):
            frame = np.ascontiguousarray(
                proxy[..., i] if len(img.shape) == 4 else proxy, dtype=np.float32
            )
            data_digest.update(frame.data)  # the frame's C-contiguous bytes
            nan = np.isnan(frame)
            always_nan = nan if always_nan is None else always_nan & nan
            finite = np.isfinite(frame)
            n_finite = int(np.count_nonzero(finite))
            n_nan[i] = int(np.count_nonzero(nan))
            n_inf[i] = frame.size - n_finite - int(n_nan[i])
            # boolean indexing copies the frame: only when something is not finite
            values = frame if n_finite == frame.size else frame[finite]
            total[i] = float(values.sum(dtype=np.float64))
            if n_finite:
                mean[i] = total[i] / n_finite
            nonzero = np.count_nonzero(values)
            negative[i] = float(np.count_nonzero(values < 0)) / nonzero if nonzero else 0.0
        n_voxels = int(np.prod(img.shape[:3]))
        del proxy, img
    except IMAGE_READ_ERRORS as exc:
        return None, f"{type(exc).__name__}: {exc}"
    n_outside = int(np.count_nonzero(always_nan)) if always_nan is not None else 0
    stats = FrameStatistics(
        sha256=stream.sha256,
        data_sha256=data_digest.hexdigest(),
        total=total,
        mean=mean,
        n_nan_with_data=n_nan - n_outside,
        n_inf=n_inf,
        negative_fraction=negative,
        n_outside=n_outside,
        n_voxels=n_voxels,
    )
    return stats, None


def whole_image_jumps(
    mean: NDArray[np.float64], usable: NDArray[np.bool_]
) -> dict[int, tuple[float, float]]:
    """Frames where the whole-image curve jumps (see the module docstring).

    The reference of each frame is the running median of the curve over five frames (fewer at
    the ends), which one or two bad frames do not move; the curve's peak is that of the running
    median. From the peak on, a frame more than :data:`JUMP_RATIO` times above or below its
    reference is a jump; before the peak (the rising part, where neighbours legitimately differ
    several-fold) only a frame more than :data:`JUMP_RATIO` times above the peak is.

    Parameters
    ----------
    mean : (n_frames,) ndarray
        Whole-image mean of each frame, decay-corrected to one time.
    usable : (n_frames,) ndarray of bool
        Frames to consider (others, e.g. all-NaN frames, are skipped and not used as
        references).

    Returns
    -------
    dict of int to (float, float)
        Frame index -> (its mean, the reference it was compared with).
    """
    index = np.flatnonzero(usable & np.isfinite(mean) & (mean > 0))
    if index.size < 3:
        return {}
    values = mean[index]
    half = JUMP_WINDOW // 2
    smooth = np.array(
        [float(np.median(values[max(0, j - half) : j + half + 1])) for j in range(values.size)]
    )
    peak = int(np.argmax(smooth))
    jumps: dict[int, tuple[float, float]] = {}
    for j, frame in enumerate(index):
        reference = float(smooth[peak]) if j < peak else float(smooth[j])
        ratio = values[j] / reference
        if ratio > JUMP_RATIO or (j >= peak and ratio < 1.0 / JUMP_RATIO):
            jumps[int(frame)] = (float(values[j]), reference)
    return jumps


def bad_frames(stats: FrameStatistics, factors: NDArray[np.float64]) -> dict[int, str]:
    """The unusable frames of an image and why (one phrase each).

    Parameters
    ----------
    stats : FrameStatistics
        From :func:`scan_image_data`.
    factors : (n_frames,) ndarray
        Decay-correction factors to the injection (the jump check compares corrected values).

    Returns
    -------
    dict of int to str
        Frame index -> reason, in frame order; empty when every frame is usable.
    """
    reasons: dict[int, list[str]] = {}
    in_fov = stats.n_voxels - stats.n_outside
    peak = max(float(np.max(stats.total, initial=0.0)), 0.0)
    for i in range(stats.total.size):
        found: list[str] = []
        if stats.n_inf[i]:
            found.append(f"{int(stats.n_inf[i])} infinite voxel value(s)")
        if stats.n_nan_with_data[i]:
            share = 100.0 * float(stats.n_nan_with_data[i]) / max(in_fov, 1)
            found.append(
                f"NaN in {int(stats.n_nan_with_data[i])} voxel(s) ({share:.3g} % of the field of "
                "view) that hold data in other frames"
            )
        if stats.total[i] == 0 and stats.negative_fraction[i] == 0 and not found:
            found.append("every finite voxel is 0")
        elif np.isfinite(stats.mean[i]) and stats.total[i] < -NEGATIVE_SIGNAL_FRACTION * peak:
            found.append(
                f"no net positive signal (sum {stats.total[i]:.3g}; "
                f"{100.0 * stats.negative_fraction[i]:.0f} % of the non-zero voxels negative)"
            )
        if found:
            reasons[i] = found
    usable = np.ones(stats.total.size, dtype=bool)
    usable[list(reasons)] = False
    corrected = stats.mean * np.asarray(factors, dtype=np.float64)
    for frame, (value, reference) in whole_image_jumps(corrected, usable).items():
        reasons[frame] = [
            f"its whole-image mean ({value:.3g}) is {value / reference:.2g} x the level of the "
            f"frames around it ({reference:.3g})"
        ]
    return {i: "; ".join(reasons[i]) for i in sorted(reasons)}


@dataclass(frozen=True)
class ImageCheck:
    """What checking a scan's voxels gave: content hashes and the frames to leave out.

    Attributes
    ----------
    sha256 : str
        SHA-256 of the file.
    data_sha256 : str or None
        SHA-256 of the voxel values (None when only the file was hashed).
    excluded : tuple of int
        Unusable frames left out (``exclude_bad_frames=True``).
    notes : tuple of str
        Warnings about the excluded frames.
    outside_fov_voxels : int or None
        Voxels NaN in every frame (None when the data were not read).
    """

    sha256: str
    data_sha256: str | None
    excluded: tuple[int, ...] = ()
    notes: tuple[str, ...] = ()
    outside_fov_voxels: int | None = None


def hash_image_file(image: Path, prefix: str) -> tuple[ImageCheck | None, list[str]]:
    """Only hash a scan's file (the data are not read); for quick discovery."""
    try:
        return ImageCheck(stream_check(image).sha256, None), []
    except OSError as exc:
        return None, [messages.corrupt_image(prefix, image, f"{type(exc).__name__}: {exc}")]


def check_image_data(
    image: Path,
    prefix: str,
    factors: NDArray[np.float64] | None = None,
    *,
    exclude_bad_frames: bool = False,
) -> tuple[ImageCheck | None, list[str]]:
    """Read a 4-D PET image: integrity, per-frame signal, content hashes.

    Parameters
    ----------
    image : Path
        ``*_pet.nii[.gz]`` whose header :func:`~bids_app.bidsio.metadata.read_image_header`
        accepted.
    prefix : str
        Message prefix, e.g. ``"sub-01 ses-nal"``.
    factors : (n_frames,) ndarray, optional
        Decay-correction factors to the injection (default 1: the jump check then compares
        the values as stored).
    exclude_bad_frames : bool
        Leave unusable frames out (with a note) instead of reporting them.

    Returns
    -------
    check : ImageCheck or None
        None when the image is unusable.
    problems : list of str
        A corrupt/truncated file, an all-zero image, an image without net positive signal,
        unusable frames (listed with their reasons), or too few frames left after exclusion.
    """
    stats, error = scan_image_data(image)
    if stats is None:
        return None, [messages.corrupt_image(prefix, image, error or "unreadable")]
    if not stats.any_signal:
        return None, [messages.all_zero_image(prefix, image)]
    net = float(np.sum(stats.total))
    if net <= 0:
        return None, [messages.nonpositive_image(prefix, image, net)]
    scale = np.ones(stats.total.size) if factors is None else factors
    reasons = bad_frames(stats, scale)
    notes: tuple[str, ...] = ()
    if reasons:
        if not exclude_bad_frames:
            return None, [messages.unusable_frames(prefix, image, reasons)]
        n_left = int(stats.total.size) - len(reasons)
        if n_left < MIN_FRAMES:
            return None, [messages.too_many_excluded(prefix, image, n_left, MIN_FRAMES)]
        notes = (messages.excluded_frames(prefix, image, reasons),)
    return ImageCheck(stats.sha256, stats.data_sha256, tuple(reasons), notes, stats.n_outside), []


def load_pet_data(scan: PetScan) -> nib.spatialimages.SpatialImage:
    """The scan's image as the pipelines analyse it.

    Decay-corrected to the injection (:mod:`bids_app.bidsio.decay`), without the excluded
    frames, and with voxels that are NaN in every frame (outside the field of view) set to 0.
    When nothing needs changing, the image is returned as loaded (data read on demand);
    otherwise an in-memory float32 image with the same affine and header.

    Parameters
    ----------
    scan : PetScan
        A validated scan (:func:`bids_app.bidsio.layout.discover_study`).

    Returns
    -------
    nibabel image
        4-D, ``scan.timing.n_frames`` frames.
    """
    img = load_spatial_image(scan.path)
    keep = [i for i in range(scan.n_frames) if i not in set(scan.excluded_frames)]
    factors = scan.decay.factors if scan.decay is not None else np.ones(scan.n_frames)
    outside = scan.outside_fov_voxels is None or scan.outside_fov_voxels > 0
    if len(keep) == scan.n_frames and np.all(factors == 1.0) and not outside:
        return img
    # one read (a .nii.gz decompresses from its start for every frame read on its own)
    data = np.asarray(img.dataobj, dtype=np.float32)[..., keep]
    data *= np.asarray(factors, dtype=np.float32)[keep]
    if outside:
        data[np.all(np.isnan(data), axis=3)] = 0.0
    header = img.header.copy()
    header.set_data_dtype(np.float32)
    return type(img)(data, img.affine, header)
