"""Radioactive decay: radionuclide half-lives, frame decay-correction factors, the app's origin.

Convention of the app (documented in the README): every PET image is analysed **decay-corrected
to the tracer injection**, ``InjectionStart`` on the ``TimeZero`` clock (usually 0, i.e. TimeZero
itself). A PET-BIDS image comes in one of three ways, read from its (inherited) sidecar:

* ``ImageDecayCorrected: true`` with ``ImageDecayCorrectionTime`` equal to ``InjectionStart``:
  used as it is;
* ``ImageDecayCorrected: true`` with another ``ImageDecayCorrectionTime`` ``t_c``: every frame is
  multiplied by ``exp(lambda (t_c - t_inj))`` (one constant: reference-tissue parameters do not
  change, the TAC values become comparable between sessions);
* ``ImageDecayCorrected: false``: frame ``k`` is multiplied by the factor of a frame-average
  correction to the injection,
  ``DCF_k = lambda dt_k exp(lambda (t_k - t_inj)) / (1 - exp(-lambda dt_k))``
  (``t_k`` its start, ``dt_k`` its duration; exact for an activity constant within the frame,
  the scanners' convention). Fitting a reference-tissue model to uncorrected data instead biases
  it: decay acts like an extra efflux (striatal BPND about 27 % low for raclopride over 60 min).

``DecayCorrectionFactor`` (RECOMMENDED), when present, must agree with the other fields: with
``ImageDecayCorrected: true`` it must be the factors of a correction to
``ImageDecayCorrectionTime`` (frame-average or mid-frame form, within
:data:`FACTOR_RELATIVE_TOLERANCE`); with ``false`` it may also be 1 for every frame (no
correction applied). Anything else is refused, naming the
contradiction and the fix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bids_app.bidsio import messages
from bids_app.bidsio.inheritance import ResolvedMetadata

#: Physical half-lives of PET radionuclides, minutes (NNDC NuDat 3 values, rounded to 5
#: significant digits).
HALF_LIFE_MIN: Mapping[str, float] = MappingProxyType(
    {
        "C11": 20.364,
        "N13": 9.965,
        "O15": 2.0373,
        "F18": 109.77,
        "Cu62": 9.673,
        "Cu64": 762.06,
        "Ga68": 67.71,
        "Br76": 972.0,
        "Rb82": 1.2575,
        "Y86": 884.4,
        "Zr89": 4704.6,
        "I124": 6013.4,
    }
)

_ELEMENTS: Mapping[str, str] = MappingProxyType(
    {
        "carbon": "C",
        "nitrogen": "N",
        "oxygen": "O",
        "fluorine": "F",
        "copper": "Cu",
        "gallium": "Ga",
        "bromine": "Br",
        "rubidium": "Rb",
        "yttrium": "Y",
        "zirconium": "Zr",
        "iodine": "I",
    }
)
_SYMBOL_FIRST = re.compile(r"^([a-z]+)(\d+)$")
_MASS_FIRST = re.compile(r"^(\d+)([a-z]+)$")

#: Relative tolerance when a sidecar's ``DecayCorrectionFactor`` is compared with the factors
#: computed from the half-life (covers rounding and the frame-average vs mid-frame forms, which
#: differ by about 1 % for a 15 min frame of carbon-11).
FACTOR_RELATIVE_TOLERANCE = 0.02

#: A scan lasting longer than this many half-lives (from the injection to the end of the last
#: frame) is implausible (e.g. frame times written in milliseconds).
MAX_SCAN_HALF_LIVES = 10.0
#: A single frame longer than this many half-lives is implausible.
MAX_FRAME_HALF_LIVES = 3.0
#: Longest plausible scan when the radionuclide is unknown, s (24 h).
MAX_SCAN_UNKNOWN_NUCLIDE_S = 24 * 3600.0
#: An implausible schedule is said to be in milliseconds only when, divided by 1000, it lasts
#: at least this long (s), i.e. becomes a usable dynamic scan.
MIN_MILLISECOND_HINT_S = 300.0


def normalise_radionuclide(name: object) -> str | None:
    """Canonical symbol of a radionuclide (``"C11"``), or None when it is not recognised.

    Accepts the spellings found in sidecars: ``C11``, ``11C``, ``[11C]``, ``C-11``,
    ``carbon-11``, ``^18F``, ``18-F`` (any case).

    Examples
    --------
    >>> normalise_radionuclide("[11C]"), normalise_radionuclide("Fluorine-18")
    ('C11', 'F18')
    """
    if not isinstance(name, str):
        return None
    key = re.sub(r"[\s\[\]^\-_]", "", name).lower()
    match = _SYMBOL_FIRST.match(key)
    if match:
        element, mass = match.groups()
    else:
        match = _MASS_FIRST.match(key)
        if not match:
            return None
        mass, element = match.groups()
    symbol = _ELEMENTS.get(element, element.capitalize())
    canonical = f"{symbol}{int(mass)}"
    return canonical if canonical in HALF_LIFE_MIN else None


def half_life_min(name: object) -> float | None:
    """Half-life in minutes of a radionuclide named as in ``TracerRadionuclide`` (or None)."""
    canonical = normalise_radionuclide(name)
    return None if canonical is None else HALF_LIFE_MIN[canonical]


def frame_decay_factors(
    frame_start_s: ArrayLike,
    frame_end_s: ArrayLike,
    half_life_s: float,
    reference_s: float,
    *,
    form: str = "frame_average",
) -> NDArray[np.float64]:
    """Per-frame factors that decay-correct frame means to the time ``reference_s``.

    Parameters
    ----------
    frame_start_s, frame_end_s : (n_frames,) array_like, s
        Frame bounds on the TimeZero clock.
    half_life_s : float
        Physical half-life, s.
    reference_s : float
        The time corrected to, s on the same clock.
    form : {"frame_average", "mid_frame"}
        ``frame_average``: ``lambda dt exp(lambda (t_start - t_ref)) / (1 - exp(-lambda dt))``
        (exact for a constant activity within the frame); ``mid_frame``:
        ``exp(lambda (t_mid - t_ref))`` (used by some reconstructions).

    Returns
    -------
    (n_frames,) ndarray
        Dimensionless factors (> 1 for frames after ``reference_s``).
    """
    start = np.asarray(frame_start_s, dtype=np.float64)
    end = np.asarray(frame_end_s, dtype=np.float64)
    lam = math.log(2.0) / float(half_life_s)
    if form == "mid_frame":
        factors = np.exp(lam * (0.5 * (start + end) - reference_s))
    else:
        x = lam * (end - start)
        # x / (1 - exp(-x)) -> 1 as x -> 0; expm1 keeps it accurate for short frames
        factors = np.exp(lam * (start - reference_s)) * x / -np.expm1(-x)
    return np.asarray(factors, dtype=np.float64)


@dataclass(frozen=True)
class DecayCorrection:
    """How one scan's frames are brought to the app's convention (corrected to the injection).

    Attributes
    ----------
    factors : (n_frames,) ndarray
        Multiply frame ``k`` by ``factors[k]`` (all 1: nothing to do).
    description : str
        What was done and why, for logs and reports.
    half_life_min : float or None
        The radionuclide's half-life, minutes (None when unknown).
    """

    factors: NDArray[np.float64]
    description: str
    half_life_min: float | None

    @property
    def is_identity(self) -> bool:
        """True when no frame changes."""
        return bool(np.all(self.factors == 1.0))


def _number(metadata: Mapping[str, Any], key: str, default: float) -> float:
    value = metadata.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return float(value)


def _matches(given: NDArray[np.float64], expected: NDArray[np.float64]) -> bool:
    return bool(np.all(np.abs(given / expected - 1.0) <= FACTOR_RELATIVE_TOLERANCE))


def _matches_correction(
    given: NDArray[np.float64],
    start_s: NDArray[np.float64],
    end_s: NDArray[np.float64],
    half_life_s: float,
    reference_s: float,
) -> bool:
    return any(
        _matches(given, frame_decay_factors(start_s, end_s, half_life_s, reference_s, form=f))
        for f in ("frame_average", "mid_frame")
    )


def _implied_correction_time_s(
    given: NDArray[np.float64],
    start_s: NDArray[np.float64],
    end_s: NDArray[np.float64],
    half_life_s: float,
) -> float | None:
    """The correction time the factors correspond to, when they are consistent with one."""
    if np.any(given <= 0):
        return None
    lam = math.log(2.0) / half_life_s
    unit = frame_decay_factors(start_s, end_s, half_life_s, 0.0)
    times = -np.log(given / unit) / lam
    if float(np.ptp(times)) > 0.02 * half_life_s:
        return None
    return float(np.median(times))


def plan_decay_correction(
    metadata: ResolvedMetadata,
    start_s: NDArray[np.float64],
    end_s: NDArray[np.float64],
    prefix: str,
) -> tuple[DecayCorrection | None, list[str]]:
    """Decide the frame factors that bring a scan to decay correction at the injection.

    Parameters
    ----------
    metadata : ResolvedMetadata
        The scan's merged sidecar (its REQUIRED fields already checked for type).
    start_s, end_s : (n_frames,) ndarray, s
        Frame bounds on the TimeZero clock (a valid schedule).
    prefix : str
        Message prefix, e.g. ``"sub-01 ses-nal"``.

    Returns
    -------
    correction : DecayCorrection or None
        None when the fields contradict each other.
    problems : list of str
        One line per contradiction, naming the fields, their files and the fix.
    """
    values = metadata.values
    corrected = values.get("ImageDecayCorrected")
    correction_time_s = _number(values, "ImageDecayCorrectionTime", 0.0)
    injection_s = _number(values, "InjectionStart", 0.0)
    nuclide = values.get("TracerRadionuclide")
    half_life = half_life_min(nuclide)
    half_life_s = None if half_life is None else 60.0 * half_life
    n_frames = int(np.asarray(start_s).size)
    given_raw = values.get("DecayCorrectionFactor")
    given: NDArray[np.float64] | None = None
    if given_raw is not None:
        ok = (
            isinstance(given_raw, list)
            and len(given_raw) == n_frames
            and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for v in given_raw
            )
            and all(v > 0 for v in given_raw)
        )
        if not ok:
            return None, [
                messages.bad_decay_factor_list(
                    prefix, given_raw, n_frames, metadata.location("DecayCorrectionFactor")
                )
            ]
        given = np.asarray(given_raw, dtype=np.float64)
    fields = ("ImageDecayCorrected", "ImageDecayCorrectionTime", "DecayCorrectionFactor")
    where = metadata.location(*(f for f in fields if f in metadata.sources))
    ones = np.ones(n_frames)

    if corrected is False:
        if half_life_s is None:
            return None, [
                messages.cannot_decay_correct(
                    prefix, nuclide, sorted(HALF_LIFE_MIN), metadata.location("TracerRadionuclide")
                )
            ]
        if given is not None and not (
            _matches(given, ones)
            or _matches_correction(given, start_s, end_s, half_life_s, correction_time_s)
            or _matches_correction(given, start_s, end_s, half_life_s, injection_s)
        ):
            return None, [messages.decay_factors_contradict(prefix, "false", where)]
        factors = frame_decay_factors(start_s, end_s, half_life_s, injection_s)
        description = (
            f"decay-corrected by the app to the injection ({nuclide}, half-life {half_life:g} "
            f"min; ImageDecayCorrected was false): frame factors {factors[0]:.4g} to "
            f"{factors[-1]:.4g}"
        )
        return DecayCorrection(factors, description, half_life), []

    # ImageDecayCorrected is true (its type was checked with the REQUIRED fields)
    if given is not None and half_life_s is not None:
        if not _matches_correction(given, start_s, end_s, half_life_s, correction_time_s):
            expected = frame_decay_factors(start_s, end_s, half_life_s, correction_time_s)
            last = n_frames - 1
            if _matches(given, ones) and not _matches(expected, ones):
                return None, [messages.decay_factors_all_one(prefix, float(expected[last]), where)]
            implied = _implied_correction_time_s(given, start_s, end_s, half_life_s)
            return None, [
                messages.decay_factors_mismatch(
                    prefix,
                    last,
                    float(given[last]),
                    float(expected[last]),
                    str(nuclide),
                    correction_time_s,
                    implied,
                    where,
                )
            ]
    if abs(correction_time_s - injection_s) <= 1e-3:
        return DecayCorrection(ones, "decay-corrected to the injection (as given)", half_life), []
    if half_life_s is None:
        description = (
            f"decay-corrected to {correction_time_s:g} s, not to the injection at "
            f"{injection_s:g} s; left as given ({nuclide!r} has no known half-life; a constant "
            "factor does not change reference-tissue parameters)"
        )
        return DecayCorrection(ones, description, None), []
    factor = math.exp(math.log(2.0) / half_life_s * (correction_time_s - injection_s))
    description = (
        f"decay correction moved from ImageDecayCorrectionTime={correction_time_s:g} s to the "
        f"injection at {injection_s:g} s (every frame x {factor:.4g})"
    )
    return DecayCorrection(np.full(n_frames, factor), description, half_life), []


def implausible_schedule(
    metadata: ResolvedMetadata,
    start_s: NDArray[np.float64],
    end_s: NDArray[np.float64],
    prefix: str,
) -> list[str]:
    """Frame times implausible for the radionuclide (e.g. written in milliseconds).

    A scan lasting more than :data:`MAX_SCAN_HALF_LIVES` half-lives from the injection, or a
    frame longer than :data:`MAX_FRAME_HALF_LIVES` half-lives, carries almost no counts at its
    end; it is nearly always a unit mistake. Without a known radionuclide the limit is
    :data:`MAX_SCAN_UNKNOWN_NUCLIDE_S`.

    Returns
    -------
    list of str
        At most one line (naming the longest frame and the total), empty when plausible.
    """
    values = metadata.values
    nuclide = values.get("TracerRadionuclide")
    half_life = half_life_min(nuclide)
    injection_s = _number(values, "InjectionStart", 0.0)
    total_s = float(np.max(end_s)) - min(injection_s, float(np.min(start_s)))
    durations = np.asarray(end_s) - np.asarray(start_s)
    longest = int(np.argmax(durations))
    if half_life is None:
        max_total_s, max_frame_s = MAX_SCAN_UNKNOWN_NUCLIDE_S, MAX_SCAN_UNKNOWN_NUCLIDE_S
        basis = f"any PET scan (radionuclide {nuclide!r} unknown)"
    else:
        max_total_s = MAX_SCAN_HALF_LIVES * half_life * 60.0
        max_frame_s = MAX_FRAME_HALF_LIVES * half_life * 60.0
        basis = f"{normalise_radionuclide(nuclide)} (half-life {half_life:g} min)"
    if total_s <= max_total_s and float(durations[longest]) <= max_frame_s:
        return []
    total_ms_as_s = total_s / 1000.0
    milliseconds = (
        MIN_MILLISECOND_HINT_S <= total_ms_as_s <= max_total_s
        and durations[longest] / 1000.0 <= max_frame_s
    )
    return [
        messages.implausible_schedule(
            prefix,
            total_s,
            longest,
            float(durations[longest]),
            basis,
            max_total_s,
            max_frame_s,
            milliseconds,
            metadata.location("FrameTimesStart", "FrameDuration"),
        )
    ]
