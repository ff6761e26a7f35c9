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


@dataclass(frozen=True)
class FrameTiming:
    """Start and end of each frame, in minutes from TimeZero.

    Parameters
    ----------
    start_min : (n_frames,) ndarray
        Frame start times, minutes.
    end_min : (n_frames,) ndarray
        Frame end times, minutes.
    """

    start_min: NDArray[np.float64]
    end_min: NDArray[np.float64]

    def __post_init__(self) -> None:
        start = np.asarray(self.start_min, dtype=np.float64).reshape(-1)
        end = np.asarray(self.end_min, dtype=np.float64).reshape(-1)
        if start.shape != end.shape:
            msg = (
                f"frame starts and ends must have the same length; got {start.size} starts "
                f"and {end.size} ends"
            )
            raise ModelError(msg)
        if start.size == 0:
            raise ModelError("a frame schedule needs at least one frame; got none")
        if not (np.all(np.isfinite(start)) and np.all(np.isfinite(end))):
            raise ModelError("frame times must be finite numbers; got NaN or Inf")
        bad = np.flatnonzero(end <= start)
        if bad.size:
            msg = (
                f"frame durations must be positive; frame {bad[0]} has start {start[bad[0]]:g} "
                f"min and end {end[bad[0]]:g} min"
            )
            raise ModelError(msg)
        overlap = np.flatnonzero(start[1:] < end[:-1] - 1e-9)
        if overlap.size:
            i = overlap[0] + 1
            msg = (
                f"frames must be increasing and non-overlapping; frame {i} starts at "
                f"{start[i]:g} min, before frame {i - 1} ends at {end[i - 1]:g} min"
            )
            raise ModelError(msg)
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
