"""Frame timing of a dynamic PET scan: the one seconds -> minutes conversion of the app.

PET-BIDS stores ``FrameTimesStart`` and ``FrameDuration`` in seconds relative to ``TimeZero``;
kinetic rate constants are conventionally per minute. :class:`FrameTiming` converts once, when
the sidecar is read (:mod:`bids_app.bidsio`), and everything downstream (motion correction,
kinetics) works in minutes; seconds are only produced again for outputs (TAC tables) and the
kinetics API, whose contract takes seconds. A ground module: it imports only
:mod:`bids_app.errors`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bids_app.errors import ModelError

SECONDS_PER_MINUTE = 60.0

#: Tolerance of every frame-schedule comparison, s. Sidecars hold rounded starts and durations
#: (``237.0 + 2100.4``), float noise (``1e-7`` s) or a documented sub-millisecond overlap of
#: list-mode frames: frame ``i`` may start up to this much before frame ``i - 1`` ends. The one
#: tolerance of :func:`frame_schedule_problems`, used both when a sidecar is checked
#: (:mod:`bids_app.bidsio`) and when a :class:`FrameTiming` is built (kinetics), so a schedule
#: that passes the first check never fails the second.
FRAME_TIME_TOLERANCE_S = 1e-3


def frame_schedule_problems(
    frame_start_s: ArrayLike, frame_end_s: ArrayLike, *, durations_given: bool = True
) -> list[str]:
    """Check a frame schedule in seconds: lengths, finite, positive, increasing, no overlap.

    The one schedule check of the app: the sidecar checks (:mod:`bids_app.bidsio.metadata`)
    prefix its messages with the participant and the file, and :class:`FrameTiming` raises the
    first one. Messages are in seconds (the unit of PET-BIDS).

    Parameters
    ----------
    frame_start_s : (n_frames,) array_like, s
        Frame start times (``FrameTimesStart``).
    frame_end_s : (n_frames,) array_like, s
        Frame end times (``FrameTimesStart + FrameDuration``).
    durations_given : bool, default True
        Word the messages for a schedule given as starts and durations (PET-BIDS); False for
        starts and ends (the kinetics API).

    Returns
    -------
    list of str
        One message per kind of problem (the first offending frame of each), without prefix;
        empty when the schedule is valid.
    """
    start = np.asarray(frame_start_s, dtype=np.float64).reshape(-1)
    end = np.asarray(frame_end_s, dtype=np.float64).reshape(-1)
    starts_name = "FrameTimesStart" if durations_given else "frame_start"
    ends_name = "FrameDuration" if durations_given else "frame_end"
    if start.shape != end.shape:
        return [
            f"{starts_name} has {start.size} entries but {ends_name} has {end.size}; they must "
            "have the same length (one entry per frame)"
        ]
    if start.size == 0:
        return ["a frame schedule needs at least one frame; got none"]
    for name, values in ((starts_name, start), (ends_name, end)):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            return [f"{name} entry {int(bad[0])} is not a finite number"]
    problems: list[str] = []
    duration = end - start
    nonpositive = np.flatnonzero(duration <= 0)
    if nonpositive.size:
        i = int(nonpositive[0])
        problems.append(f"frame durations must be positive; frame {i} lasts {duration[i]:g} s")
    unsorted = np.flatnonzero(np.diff(start) <= 0)
    if unsorted.size:
        i = int(unsorted[0]) + 1
        problems.append(
            f"frame start times must be increasing; frame {i} starts at {start[i]:g} s, not "
            f"after frame {i - 1} at {start[i - 1]:g} s"
        )
    elif not nonpositive.size:
        overlap = np.flatnonzero(start[1:] < end[:-1] - FRAME_TIME_TOLERANCE_S)
        if overlap.size:
            i = int(overlap[0]) + 1
            hint = ""
            if durations_given and np.allclose(duration[:-1], start[1:]):
                hint = (
                    " FrameDuration looks like frame end times (FrameDuration[i] == "
                    "FrameTimesStart[i+1]); it must hold each frame's length (end - start)."
                )
            problems.append(
                f"frames overlap; frame {i} starts at {start[i]:g} s, before frame {i - 1} ends "
                f"at {end[i - 1]:g} s (frames must be increasing and non-overlapping, within "
                f"{FRAME_TIME_TOLERANCE_S:g} s).{hint}"
            )
    return problems


@dataclass(frozen=True)
class FrameTiming:
    """Start and end of each frame, in minutes from TimeZero.

    Frames must be increasing and non-overlapping within :data:`FRAME_TIME_TOLERANCE_S`
    (checked by :func:`frame_schedule_problems`); gaps between frames are allowed (e.g. frames
    excluded from the analysis).

    Parameters
    ----------
    start_min : (n_frames,) ndarray
        Frame start times, minutes.
    end_min : (n_frames,) ndarray
        Frame end times, minutes.

    Raises
    ------
    ModelError
        With the first message of :func:`frame_schedule_problems` (in seconds).
    """

    start_min: NDArray[np.float64]
    end_min: NDArray[np.float64]

    def __post_init__(self) -> None:
        start = np.asarray(self.start_min, dtype=np.float64).reshape(-1)
        end = np.asarray(self.end_min, dtype=np.float64).reshape(-1)
        problems = frame_schedule_problems(
            start * SECONDS_PER_MINUTE, end * SECONDS_PER_MINUTE, durations_given=False
        )
        if problems:
            raise ModelError(problems[0])
        object.__setattr__(self, "start_min", start)
        object.__setattr__(self, "end_min", end)

    @classmethod
    def from_seconds(cls, frame_start_s: ArrayLike, frame_duration_s: ArrayLike) -> FrameTiming:
        """Build from PET-BIDS ``FrameTimesStart`` and ``FrameDuration`` (seconds)."""
        start_s = np.asarray(frame_start_s, dtype=np.float64).reshape(-1)
        duration_s = np.asarray(frame_duration_s, dtype=np.float64).reshape(-1)
        if start_s.shape != duration_s.shape:
            msg = (
                f"FrameTimesStart has {start_s.size} entries but FrameDuration has "
                f"{duration_s.size}; they must match"
            )
            raise ModelError(msg)
        return cls(start_s / SECONDS_PER_MINUTE, (start_s + duration_s) / SECONDS_PER_MINUTE)

    @classmethod
    def from_bounds_seconds(cls, frame_start_s: ArrayLike, frame_end_s: ArrayLike) -> FrameTiming:
        """Build from frame start and end times in seconds (the kinetics API convention)."""
        start_s = np.asarray(frame_start_s, dtype=np.float64)
        end_s = np.asarray(frame_end_s, dtype=np.float64)
        return cls(start_s / SECONDS_PER_MINUTE, end_s / SECONDS_PER_MINUTE)

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.start_min.size)

    @property
    def mid_min(self) -> NDArray[np.float64]:
        """Frame mid-times, minutes."""
        return 0.5 * (self.start_min + self.end_min)

    @property
    def duration_min(self) -> NDArray[np.float64]:
        """Frame durations, minutes."""
        return self.end_min - self.start_min

    @property
    def start_s(self) -> NDArray[np.float64]:
        """Frame start times, seconds."""
        return self.start_min * SECONDS_PER_MINUTE

    @property
    def end_s(self) -> NDArray[np.float64]:
        """Frame end times, seconds."""
        return self.end_min * SECONDS_PER_MINUTE
