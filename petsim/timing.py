"""Frame timing of the simulated scans (the simulator's own type, in minutes and seconds).

PET-BIDS stores ``FrameTimesStart``/``FrameDuration`` in seconds; kinetics work in minutes.
:class:`FrameTiming` holds minutes and offers the second views the BIDS writer needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from petsim.errors import ModelError


@dataclass(frozen=True)
class FrameTiming:
    """Contiguous or gapped, non-overlapping frames.

    Parameters
    ----------
    start_min, end_min : (n_frames,) ndarray
        Frame start and end times after the injection, minutes.
    """

    start_min: NDArray[np.float64]
    end_min: NDArray[np.float64]

    def __post_init__(self) -> None:
        start = np.asarray(self.start_min, dtype=np.float64).reshape(-1)
        end = np.asarray(self.end_min, dtype=np.float64).reshape(-1)
        if start.shape != end.shape or start.size == 0:
            msg = (
                "frame starts and ends must be non-empty and of equal length; got "
                f"{start.size} starts and {end.size} ends"
            )
            raise ModelError(msg)
        if not (np.all(np.isfinite(start)) and np.all(np.isfinite(end))):
            raise ModelError("frame times must be finite; got NaN or Inf")
        if np.any(end <= start) or np.any(start[1:] < end[:-1] - 1e-9) or start[0] < 0.0:
            msg = (
                "frames must start at or after 0, have positive durations and not overlap; "
                f"got starts {start.tolist()} and ends {end.tolist()} (min)"
            )
            raise ModelError(msg)
        object.__setattr__(self, "start_min", start)
        object.__setattr__(self, "end_min", end)

    @classmethod
    def from_seconds(cls, start_s: ArrayLike, duration_s: ArrayLike) -> FrameTiming:
        """Build from PET-BIDS ``FrameTimesStart`` and ``FrameDuration`` (seconds)."""
        start = np.asarray(start_s, dtype=np.float64).reshape(-1)
        duration = np.asarray(duration_s, dtype=np.float64).reshape(-1)
        if start.shape != duration.shape:
            msg = f"{start.size} frame starts but {duration.size} durations; they must match"
            raise ModelError(msg)
        return cls(start / 60.0, (start + duration) / 60.0)

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.start_min.size)

    @property
    def duration_min(self) -> NDArray[np.float64]:
        """Frame durations, minutes."""
        return self.end_min - self.start_min

    @property
    def mid_min(self) -> NDArray[np.float64]:
        """Frame mid-times, minutes."""
        return 0.5 * (self.start_min + self.end_min)

    @property
    def start_s(self) -> NDArray[np.float64]:
        """Frame starts, seconds."""
        return self.start_min * 60.0

    @property
    def end_s(self) -> NDArray[np.float64]:
        """Frame ends, seconds."""
        return self.end_min * 60.0
