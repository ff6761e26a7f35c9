"""One frame-schedule check, one tolerance, one message in seconds (bids_app.timing)."""

from __future__ import annotations

import numpy as np
import pytest

from bids_app.bidsio.metadata import check_frame_schedule
from bids_app.errors import ModelError
from bids_app.kinetics.model import make_timing
from bids_app.timing import FRAME_TIME_TOLERANCE_S, FrameTiming, frame_schedule_problems

STARTS = [0.0, 30.0, 90.0, 210.0, 450.0, 930.0]
DURATIONS = [30.0, 60.0, 120.0, 240.0, 480.0, 600.0]
WHERE = "the sidecar JSON (/data/sub-01_pet.json)"


def _shifted(frame: int, by_s: float) -> list[float]:
    starts = list(STARTS)
    starts[frame] += by_s
    return starts


@pytest.mark.parametrize("overlap_s", [1e-7, 4e-4, FRAME_TIME_TOLERANCE_S])
def test_float_noise_and_sub_millisecond_overlap_pass_every_check(overlap_s: float) -> None:
    # frame 3 starts a little before frame 2 ends: float noise, or a documented list-mode overlap
    starts = _shifted(3, -overlap_s)
    assert check_frame_schedule(starts, DURATIONS, WHERE, "sub-01 ses-sal") == []
    timing = FrameTiming.from_seconds(starts, DURATIONS)
    assert timing.n_frames == 6
    # the kinetics' own boundary accepts it too (frames in seconds from the injection)
    ends = np.asarray(starts) + np.asarray(DURATIONS)
    assert make_timing(starts, ends).n_frames == 6


def test_larger_overlap_gives_one_message_in_seconds_everywhere() -> None:
    starts = _shifted(3, -2e-3)
    sidecar = check_frame_schedule(starts, DURATIONS, WHERE, "sub-01 ses-sal")
    assert len(sidecar) == 1
    assert sidecar[0].startswith(
        "sub-01 ses-sal: frames overlap; frame 3 starts at 209.998 s, before frame 2 ends at 210 s"
    )
    assert sidecar[0].endswith(f"Fix FrameTimesStart/FrameDuration in {WHERE}.")
    with pytest.raises(ModelError) as info:
        FrameTiming.from_seconds(starts, DURATIONS)
    # the same check and wording (seconds, not minutes) once the sidecar prefix is removed
    core = sidecar[0].removeprefix("sub-01 ses-sal: ").split(". Fix")[0]
    assert str(info.value).startswith(core.split(" (frames must")[0])
    assert " min" not in str(info.value)


def test_problems_are_collected_per_kind() -> None:
    starts = [0.0, 30.0, 20.0, 210.0]
    ends = [30.0, 20.0, 140.0, 450.0]
    problems = frame_schedule_problems(starts, ends)
    assert problems == [
        "frame durations must be positive; frame 1 lasts -10 s",
        "frame start times must be increasing; frame 2 starts at 20 s, not after frame 1 at 30 s",
    ]


def test_durations_written_as_end_times_are_recognised() -> None:
    ends_as_durations = [30.0, 90.0, 210.0, 450.0, 930.0, 1530.0]
    ends = np.asarray(STARTS) + np.asarray(ends_as_durations)
    (problem,) = frame_schedule_problems(STARTS, ends)
    assert "FrameDuration looks like frame end times" in problem


def test_length_and_finiteness() -> None:
    assert frame_schedule_problems([0.0, 1.0], [1.0]) == [
        "FrameTimesStart has 2 entries but FrameDuration has 1; they must have the same length "
        "(one entry per frame)"
    ]
    assert frame_schedule_problems([0.0, np.nan], [1.0, 2.0]) == [
        "FrameTimesStart entry 1 is not a finite number"
    ]
    (empty,) = frame_schedule_problems([], [])
    assert empty == "a frame schedule needs at least one frame; got none"


def test_gaps_are_allowed() -> None:
    # frames excluded from an analysis leave gaps; they are not overlaps
    timing = FrameTiming.from_bounds_seconds([0.0, 90.0, 450.0], [30.0, 210.0, 930.0])
    np.testing.assert_allclose(timing.duration_min, [0.5, 2.0, 8.0])


def test_frame_timing_message_names_seconds() -> None:
    with pytest.raises(ModelError, match=r"frame 1 lasts -0\.5 s"):
        FrameTiming(np.array([0.0, 1.0]), np.array([1.0, 0.99166666]))
