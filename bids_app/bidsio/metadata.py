"""PET sidecar and image-header checks; the frame schedule becomes a :class:`FrameTiming`.

Every check here *collects* problems (one line each, worded by :mod:`bids_app.bidsio.messages`)
instead of raising on the first one, so that a run can report everything wrong with its inputs at
once. The metadata checked is a scan's *resolved* metadata (:mod:`bids_app.bidsio.inheritance`:
its own sidecar merged with inherited ones), and every message names the file(s) a value came
from. Seconds become minutes exactly once, in :func:`frame_timing_from_metadata`.
"""

from __future__ import annotations

import gzip
import logging
import math
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

import nibabel as nib
import numpy as np

from bids_app.bidsio import messages
from bids_app.bidsio.inheritance import ResolvedMetadata
from bids_app.bidsio.nifti import load_spatial_image
from bids_app.errors import MetadataError, ModelError
from bids_app.timing import FrameTiming, frame_schedule_problems

logger = logging.getLogger(__name__)

#: Unconditionally REQUIRED PET sidecar fields (BIDS schema, PET rule groups; read from
#: ``reference/bids_pet/pet_sidecar_field_levels_from_schema.tsv``, level "required", no addendum).
REQUIRED_PET_FIELDS: tuple[str, ...] = (
    "Manufacturer",
    "ManufacturersModelName",
    "Units",
    "TracerName",
    "TracerRadionuclide",
    "InjectedRadioactivity",
    "InjectedRadioactivityUnits",
    "InjectedMass",
    "InjectedMassUnits",
    "SpecificRadioactivity",
    "SpecificRadioactivityUnits",
    "ModeOfAdministration",
    "TimeZero",
    "ScanStart",
    "InjectionStart",
    "FrameTimesStart",
    "FrameDuration",
    "AcquisitionMode",
    "ImageDecayCorrected",
    "ImageDecayCorrectionTime",
    "ReconMethodName",
    "ReconMethodParameterLabels",
    "ReconFilterType",
    "AttenuationCorrection",
)

#: Fields required when ``ModeOfAdministration`` is ``"bolus-infusion"``.
BOLUS_INFUSION_FIELDS: tuple[str, ...] = (
    "InfusionRadioactivity",
    "InfusionStart",
    "InfusionSpeed",
    "InfusionSpeedUnits",
    "InjectedVolume",
)

#: Image units accepted for ``Units`` (activity concentrations; any of them suits a
#: reference-tissue model, whose parameters are unit-free ratios). Matching ignores case
#: (``"Bq/ml"`` is accepted and reported as ``"Bq/mL"``); ``µ`` is read as ``u``.
ALLOWED_PET_UNITS: tuple[str, ...] = ("Bq/mL", "kBq/mL", "MBq/mL", "nCi/mL", "uCi/mL", "mCi/mL")

#: Units accepted for ``InjectedRadioactivityUnits``.
ALLOWED_RADIOACTIVITY_UNITS: tuple[str, ...] = (
    "Bq",
    "kBq",
    "MBq",
    "GBq",
    "nCi",
    "uCi",
    "mCi",
    "Ci",
)

#: Values of ``ModeOfAdministration`` allowed by the BIDS schema.
MODES_OF_ADMINISTRATION: tuple[str, ...] = ("bolus", "infusion", "bolus-infusion")

#: Fewest frames a dynamic scan may have for kinetic modelling.
MIN_FRAMES = 3

_TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?$")


# ----------------------------------------------------------------------------- JSON types
def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_string(value: object) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _is_number_array(value: object) -> TypeGuard[list[float]]:
    return isinstance(value, list) and len(value) > 0 and all(_is_number(v) for v in value)


def _is_string_array(value: object) -> TypeGuard[list[str]]:
    return isinstance(value, list) and len(value) > 0 and all(_is_string(v) for v in value)


def _is_number_or_na(value: object) -> bool:
    return _is_number(value) or value == "n/a"


def _is_string_or_string_array(value: object) -> bool:
    return _is_string(value) or _is_string_array(value)


def _is_number_or_number_array(value: object) -> bool:
    return _is_number(value) or _is_number_array(value)


_KINDS: dict[str, tuple[Callable[[object], bool], str]] = {
    "string": (_is_string, "a non-empty string"),
    "number": (_is_number, "a number"),
    "number_or_na": (_is_number_or_na, 'a number (or "n/a")'),
    "boolean": (lambda v: isinstance(v, bool), "a boolean (true/false)"),
    "number_array": (_is_number_array, "a non-empty array of numbers"),
    "string_array": (_is_string_array, "a non-empty array of strings"),
    "string_or_string_array": (_is_string_or_string_array, "a string or an array of strings"),
    "number_or_number_array": (_is_number_or_number_array, "a number or an array of numbers"),
}

#: JSON kind of each field this module checks (required and conditionally required).
FIELD_KINDS: dict[str, str] = {
    "Manufacturer": "string",
    "ManufacturersModelName": "string",
    "Units": "string",
    "TracerName": "string",
    "TracerRadionuclide": "string",
    "InjectedRadioactivity": "number",
    "InjectedRadioactivityUnits": "string",
    "InjectedMass": "number_or_na",
    "InjectedMassUnits": "string",
    "SpecificRadioactivity": "number_or_na",
    "SpecificRadioactivityUnits": "string",
    "ModeOfAdministration": "string",
    "TimeZero": "string",
    "ScanStart": "number",
    "InjectionStart": "number",
    "FrameTimesStart": "number_array",
    "FrameDuration": "number_array",
    "AcquisitionMode": "string",
    "ImageDecayCorrected": "boolean",
    "ImageDecayCorrectionTime": "number",
    "ReconMethodName": "string",
    "ReconMethodParameterLabels": "string_array",
    "ReconMethodParameterUnits": "string_array",
    "ReconMethodParameterValues": "number_array",
    "ReconFilterType": "string_or_string_array",
    "ReconFilterSize": "number_or_number_array",
    "AttenuationCorrection": "string",
    "InfusionRadioactivity": "number",
    "InfusionStart": "number",
    "InfusionSpeed": "number",
    "InfusionSpeedUnits": "string",
    "InjectedVolume": "number",
}


def normalise_units(units: str, allowed: tuple[str, ...] = ALLOWED_PET_UNITS) -> str | None:
    """Return the canonical spelling of ``units`` from ``allowed``, or None if not allowed.

    Parameters
    ----------
    units : str
        Units as written in the sidecar, e.g. ``"Bq/ml"``.
    allowed : tuple of str
        Canonical spellings.

    Returns
    -------
    str or None
        E.g. ``"Bq/mL"``; None when ``units`` matches none of ``allowed`` (ignoring case).
    """
    key = units.strip().replace("µ", "u").replace("μ", "u").casefold()
    for canonical in allowed:
        if canonical.casefold() == key:
            return canonical
    return None


# ----------------------------------------------------------------------------- reading
# ----------------------------------------------------------------------------- sidecar checks
def check_pet_sidecar(resolved: ResolvedMetadata, prefix: str) -> list[str]:
    """Check a PET scan's REQUIRED fields, their types, units and frame schedule.

    Parameters
    ----------
    resolved : ResolvedMetadata
        The scan's metadata merged from every applicable sidecar.
    prefix : str
        Message prefix, e.g. ``"sub-01 ses-nal"``.

    Returns
    -------
    list of str
        One line per problem (naming the sidecar each value came from, or every applicable
        sidecar for a missing field); empty when the metadata is fine.
    """
    metadata = resolved.values
    required = list(REQUIRED_PET_FIELDS)
    mode = metadata.get("ModeOfAdministration")
    if mode == "bolus-infusion":
        required += list(BOLUS_INFUSION_FIELDS)
    labels = metadata.get("ReconMethodParameterLabels")
    if _is_string_array(labels) and "none" not in [str(v).lower() for v in labels]:
        required += ["ReconMethodParameterUnits", "ReconMethodParameterValues"]
    filter_type = metadata.get("ReconFilterType")
    if _is_string_or_string_array(filter_type) and filter_type not in ("none", ["none"]):
        required.append("ReconFilterSize")

    problems: list[str] = []
    for field in required:
        if field not in metadata:
            problems.append(
                messages.missing_field(prefix, field, resolved.names(), resolved.location(field))
            )
            continue
        check, expected = _KINDS[FIELD_KINDS[field]]
        if not check(metadata[field]):
            problems.append(
                messages.wrong_type(
                    prefix, field, expected, metadata[field], resolved.location(field)
                )
            )
    type_ok = {f for f in required if f in metadata and _KINDS[FIELD_KINDS[f]][0](metadata[f])}
    problems += _check_values(resolved, prefix, type_ok)
    if {"FrameTimesStart", "FrameDuration"} <= type_ok:
        problems += check_frame_schedule(
            metadata["FrameTimesStart"],
            metadata["FrameDuration"],
            resolved.location("FrameTimesStart", "FrameDuration"),
            prefix,
        )
    return problems


def _check_values(resolved: ResolvedMetadata, prefix: str, type_ok: set[str]) -> list[str]:
    """Check enumerated values and formats of fields whose type is already right."""
    metadata = resolved.values
    problems: list[str] = []
    if "Units" in type_ok and normalise_units(metadata["Units"]) is None:
        problems.append(
            messages.bad_value(
                prefix, "Units", ALLOWED_PET_UNITS, metadata["Units"], resolved.location("Units")
            )
        )
    if "InjectedRadioactivityUnits" in type_ok:
        units = metadata["InjectedRadioactivityUnits"]
        if normalise_units(units, ALLOWED_RADIOACTIVITY_UNITS) is None:
            problems.append(
                messages.bad_value(
                    prefix,
                    "InjectedRadioactivityUnits",
                    ALLOWED_RADIOACTIVITY_UNITS,
                    units,
                    resolved.location("InjectedRadioactivityUnits"),
                )
            )
    if "ModeOfAdministration" in type_ok:
        mode = metadata["ModeOfAdministration"]
        if mode not in MODES_OF_ADMINISTRATION:
            problems.append(
                messages.bad_value(
                    prefix,
                    "ModeOfAdministration",
                    MODES_OF_ADMINISTRATION,
                    mode,
                    resolved.location("ModeOfAdministration"),
                )
            )
    if "TimeZero" in type_ok and not _TIME_OF_DAY.match(metadata["TimeZero"]):
        problems.append(
            messages.bad_time_of_day(
                prefix, "TimeZero", metadata["TimeZero"], resolved.location("TimeZero")
            )
        )
    return problems


def check_frame_schedule(
    frame_start_s: list[float], frame_duration_s: list[float], location: str, prefix: str
) -> list[str]:
    """Check a PET-BIDS frame schedule (seconds): lengths, positive, increasing, no overlap.

    The checks and their one tolerance are :func:`bids_app.timing.frame_schedule_problems`
    (the same the :class:`FrameTiming` of the kinetics applies); a schedule that is valid but
    lasts a few seconds in total is reported as written in minutes.

    Parameters
    ----------
    frame_start_s : (n_frames,) list of float, s
        ``FrameTimesStart``.
    frame_duration_s : (n_frames,) list of float, s
        ``FrameDuration``.
    location : str
        Where the values came from (e.g. ``"the sidecar JSON (<path>)"``), named in messages.
    prefix : str
        Message prefix.

    Returns
    -------
    list of str
        One line per problem (at most one per kind, the first offending frame).
    """
    start = np.asarray(frame_start_s, dtype=np.float64)
    duration = np.asarray(frame_duration_s, dtype=np.float64)
    ends = start + duration if start.shape == duration.shape else duration
    found = frame_schedule_problems(start, ends)
    problems = [messages.schedule_problem(prefix, p, location) for p in found]
    if problems:
        return problems
    total_s = float(np.max(start + duration))
    n_frames = int(start.size)
    if (n_frames >= 10 and total_s < 30.0) or total_s < 10.0:
        problems.append(messages.minutes_not_seconds(prefix, n_frames, total_s, location))
    return problems


def check_frame_count(
    resolved: ResolvedMetadata, prefix: str, image: Path, n_frames: int
) -> list[str]:
    """Check that ``FrameTimesStart`` and ``FrameDuration`` have one entry per image volume.

    Parameters
    ----------
    resolved : ResolvedMetadata
        The scan's metadata (fields of a wrong type are skipped: reported elsewhere).
    prefix : str
        Message prefix.
    image : Path
        The image (named in messages).
    n_frames : int
        Number of volumes in the NIfTI header.

    Returns
    -------
    list of str
        One line per mismatching field.
    """
    problems: list[str] = []
    for field in ("FrameDuration", "FrameTimesStart"):
        values = resolved.values.get(field)
        if _is_number_array(values) and len(values) != n_frames:
            problems.append(
                messages.frame_count_mismatch(
                    prefix, field, len(values), image.name, n_frames, resolved.location(field)
                )
            )
    return problems


def frame_timing_from_metadata(metadata: Mapping[str, Any], location: str) -> FrameTiming:
    """Convert a checked frame schedule (seconds) to a :class:`FrameTiming` (minutes).

    Parameters
    ----------
    metadata : mapping
        Metadata with ``FrameTimesStart`` and ``FrameDuration`` in seconds.
    location : str
        Where they came from (e.g. ``"the sidecar JSON (<path>)"``), named in messages.

    Returns
    -------
    FrameTiming
        Frame starts and ends in minutes.

    Raises
    ------
    MetadataError
        When the schedule is missing or invalid (run :func:`check_pet_sidecar` first for a
        complete list of problems; a schedule it accepts never fails here: both use
        :func:`bids_app.timing.frame_schedule_problems`).
    """
    try:
        return FrameTiming.from_seconds(metadata["FrameTimesStart"], metadata["FrameDuration"])
    except (KeyError, TypeError, ValueError, ModelError) as exc:
        msg = f"invalid frame schedule ({exc}). Fix FrameTimesStart/FrameDuration in {location}."
        raise MetadataError(msg) from exc


# ----------------------------------------------------------------------------- image checks
@dataclass(frozen=True)
class ImageHeaderInfo:
    """What the NIfTI header says about a PET image.

    Attributes
    ----------
    shape : tuple of int
        Image shape, e.g. ``(x, y, z, n_frames)``.
    voxel_size_mm : tuple of float
        The three spatial voxel sizes, mm.
    n_frames : int
        Number of volumes (1 for a 3-D image).
    """

    shape: tuple[int, ...]
    voxel_size_mm: tuple[float, float, float]
    n_frames: int


IMAGE_READ_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    zlib.error,
    gzip.BadGzipFile,
    nib.filebasedimages.ImageFileError,
)


def read_image_header(image: Path, prefix: str) -> tuple[ImageHeaderInfo | None, list[str]]:
    """Read a PET image's header only (cheap) and check it is 4-D with enough frames.

    Parameters
    ----------
    image : Path
        ``*_pet.nii[.gz]``.
    prefix : str
        Message prefix.

    Returns
    -------
    info : ImageHeaderInfo or None
        None when the header cannot be read.
    problems : list of str
        Unreadable file, invalid voxel size/affine, not 4-D, or fewer than :data:`MIN_FRAMES`
        frames.
    """
    try:
        img = load_spatial_image(image)
        shape = tuple(int(n) for n in img.shape)
        zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
    except IMAGE_READ_ERRORS as exc:
        return None, [messages.corrupt_image(prefix, image, f"{type(exc).__name__}: {exc}")]
    if len(zooms) < 3:
        zooms = (*zooms, *([1.0] * (3 - len(zooms))))
    n_frames = shape[3] if len(shape) >= 4 else 1
    info = ImageHeaderInfo(shape, (zooms[0], zooms[1], zooms[2]), n_frames)
    geometry = _geometry_problem(img, zooms[:3])
    if geometry is not None:
        return info, [messages.bad_geometry(prefix, image, geometry)]
    if len(shape) != 4:
        return info, [messages.not_4d(prefix, image, shape, MIN_FRAMES)]
    if n_frames < MIN_FRAMES:
        return info, [messages.too_few_frames(prefix, image, n_frames, MIN_FRAMES)]
    return info, []


def _raw_pixdim(img: nib.spatialimages.SpatialImage) -> tuple[float, ...] | None:
    """The spatial ``pixdim`` as stored in the file (NIfTI-1), or None for other formats.

    ``nib.load`` repairs a zero pixdim to 1 while reading, so the header is read again from
    the file without nibabel's checks.
    """
    filename = img.get_filename()
    if filename is None or not isinstance(img, nib.Nifti1Image):
        return None
    try:
        with nib.openers.ImageOpener(filename) as fobj:
            header = nib.Nifti1Header.from_fileobj(fobj, check=False)
    except IMAGE_READ_ERRORS:
        return None
    return tuple(float(z) for z in header["pixdim"][1:4])


def _geometry_problem(
    img: nib.spatialimages.SpatialImage, zooms_mm: tuple[float, ...]
) -> str | None:
    """Describe a broken geometry (voxel sizes, singular affine), or None when it is fine.

    The raw NIfTI ``pixdim`` is checked too: nibabel reports a zero voxel size as 1 mm, which
    would let a broken header through to fail much later (as "no cerebellar coverage").
    """
    raw = _raw_pixdim(img)
    if raw is not None and not all(math.isfinite(z) and z > 0 for z in raw):
        return "voxel size (pixdim) " + " x ".join(f"{z:g}" for z in raw) + " mm"
    if not all(math.isfinite(z) and z > 0 for z in zooms_mm):
        return "voxel size " + " x ".join(f"{z:g}" for z in zooms_mm) + " mm"
    affine = np.asarray(img.affine, dtype=np.float64)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) == 0:
        return "the voxel-to-world matrix is singular or not finite"
    return None
