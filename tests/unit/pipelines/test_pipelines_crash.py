"""Crash files of failed participants, the hint for the stage, and the summary message."""

from __future__ import annotations

import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from bids_app.bidsio.layout import ParticipantInput, PetScan
from bids_app.config import Config
from bids_app.errors import InputError
from bids_app.pipelines.crash import (
    OUTPUT_STAGE,
    SETUP_STAGE,
    describe_image,
    failure_hint,
    failure_stage,
    record_failure,
    write_crash_file,
)
from bids_app.pipelines.stages import StageRunner
from bids_app.preproc import AntsRegistrationError
from bids_app.timing import FrameTiming

CRASH_NAME = re.compile(r"crash-sub-03-\d{8}-\d{6}(-\d+)?\.txt")


def _pet(path: Path, session: str) -> PetScan:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.ones((7, 8, 9, 6), dtype=np.float32)
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0])), path)
    timing = FrameTiming.from_seconds([0, 60, 120, 180, 300, 600], [60, 60, 60, 120, 300, 600])
    return PetScan(
        subject="03",
        session=session,
        path=path,
        sidecar_path=path.with_name(path.name.replace(".nii.gz", ".json")),
        entities={"trc": "raclopride"},
        metadata={"TracerName": "raclopride"},
        n_frames=6,
        timing=timing,
        shape=(7, 8, 9, 6),
        voxel_size_mm=(2.0, 2.0, 2.0),
        units="kBq/mL",
    )


@pytest.fixture
def participant(tmp_path: Path) -> ParticipantInput:
    """sub-03 with two tiny PET scans and an all-zero T1w."""
    bids = tmp_path / "bids" / "sub-03"
    t1w = bids / "anat" / "sub-03_T1w.nii.gz"
    t1w.parent.mkdir(parents=True)
    nib.save(nib.Nifti1Image(np.zeros((10, 11, 12), np.float32), np.eye(4)), t1w)
    return ParticipantInput(
        "03",
        _pet(bids / "ses-sal" / "pet" / "sub-03_ses-sal_pet.nii.gz", "sal"),
        _pet(bids / "ses-nal" / "pet" / "sub-03_ses-nal_pet.nii.gz", "nal"),
        t1w,
    )


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(
        bids_dir=tmp_path / "bids",
        output_dir=tmp_path / "out",
        analysis_level="participant",
        work_dir=tmp_path / "work",
        command_line=("bids_app", str(tmp_path / "bids"), str(tmp_path / "out"), "participant"),
    )


def _raised(exc: Exception) -> Exception:
    """``exc`` with a traceback, as the pipeline would catch it."""
    try:
        raise exc
    except Exception as caught:
        return caught


def test_crash_file_names_the_stage_the_inputs_and_the_versions(
    participant: ParticipantInput, config: Config
) -> None:
    exc = _raised(InputError("t1w is empty (all zero or non-finite)"))
    path = write_crash_file(participant, exc, "normalisation", config)
    assert path is not None
    assert path.parent == config.output_dir / "logs"
    assert CRASH_NAME.fullmatch(path.name)
    text = path.read_text()
    assert "crash report of sub-03" in text
    assert "\nstage: normalisation\n" in text
    assert "error: InputError: t1w is empty (all zero or non-finite)" in text
    assert "hint: An image has no usable signal" in text  # from the message
    assert "Look at the T1w (shape, voxel size" in text  # from the stage
    assert "baseline PET (ses-sal):" in text
    assert (
        "shape (7, 8, 9, 6), voxel size 2 x 2 x 2 mm, orientation RAS, data type float32" in text
    )
    assert "6 frames, 0 to 1200 s" in text
    assert re.search(r"T1w: .*sub-03_T1w\.nii\.gz\n    shape \(10, 11, 12\).*\(EMPTY\)", text)
    assert '"antspyx":' in text
    assert '"analysis_level": "participant"' in text
    assert "== command line ==\nbids_app " in text
    assert "Traceback (most recent call last)" in text
    assert "antsRegistration" not in text  # no registration section for other errors


def test_crash_file_of_a_registration_failure_holds_ants_own_output(
    participant: ParticipantInput, config: Config
) -> None:
    exc = _raised(
        AntsRegistrationError(
            "registration failed with the mass initialisation: antsRegistration failed: "
            "ITK ERROR: ImageMomentsCalculator: Compute(): Total Mass of the image was zero.",
            ("antsRegistration", "--initial-moving-transform", "[<fixed>,<moving>,1]"),
            ("ITK ERROR: ImageMomentsCalculator: Compute(): Total Mass of the image was zero.",),
            config.work_dir / "norm_t1w2pet_mass_antsRegistration.log",
            ("moving image: shape (10, 11, 12), spacing 1 x 1 x 1 mm, intensities 0 to 0",),
        )
    )
    path = write_crash_file(participant, exc, "normalisation", config)
    assert path is not None
    text = path.read_text()
    sections = [
        "== antsRegistration: last lines of its own output ==\nITK ERROR: ImageMomentsCalculator",
        "(complete output: ",
        "== antsRegistration: attempts and images ==\nmoving image: shape (10, 11, 12)",
        "== antsRegistration: command (last attempt) ==\nantsRegistration "
        "--initial-moving-transform [<fixed>,<moving>,1]",
    ]
    for section in sections:
        assert section in text
    assert "hint: One of the registered images has no usable signal" in text


def test_a_second_crash_in_the_same_second_gets_its_own_file(
    participant: ParticipantInput, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bids_app.pipelines.crash.time.strftime", lambda fmt: "20240611-101530")
    first = write_crash_file(participant, _raised(RuntimeError("a")), "k2prime", config)
    second = write_crash_file(participant, _raised(RuntimeError("b")), "k2prime", config)
    assert first is not None
    assert second is not None
    assert (first.name, second.name) == (
        "crash-sub-03-20240611-101530.txt",
        "crash-sub-03-20240611-101530-2.txt",
    )


@pytest.mark.parametrize(
    ("stage", "has_t1w", "expected"),
    [
        ("normalisation", True, "PET -> T1w -> template"),
        ("normalisation", False, "PET-only normalisation"),
        ("coregistration", True, "same head"),
        ("motion:challenge", False, "Frame realignment"),
        ("fit:baseline", False, "reference region (cerebellum)"),
        (SETUP_STAGE, False, "readable"),
        (OUTPUT_STAGE, False, "free space"),
        ("something new", False, "participant log"),
    ],
)
def test_the_hint_fits_the_stage(stage: str, has_t1w: bool, expected: str) -> None:
    assert expected in failure_hint(stage, RuntimeError("x"), has_t1w)


def test_the_error_text_adds_a_specific_hint_first() -> None:
    exc = AntsRegistrationError(
        "registration failed",
        output_tail=("ITK ERROR: All samples map outside moving image buffer",),
    )
    hint = failure_hint("coregistration", exc, has_t1w=False)
    assert hint.startswith("The images do not overlap after initialisation")
    assert "same head" in hint


def test_the_failed_stage_comes_from_the_runner(tmp_path: Path) -> None:
    assert failure_stage(None) == SETUP_STAGE
    runner = StageRunner(tmp_path, "ctx", "sub-03")
    runner.add("normalisation", lambda: 1 / 0)
    assert failure_stage(runner) == OUTPUT_STAGE
    with pytest.raises(ZeroDivisionError):
        runner.result("normalisation")
    assert failure_stage(runner) == "normalisation"


def test_the_summary_message_is_one_line_with_the_stage_and_the_crash_file(
    participant: ParticipantInput, config: Config
) -> None:
    exc = _raised(RuntimeError("boom\nsecond line"))
    message = record_failure(participant, exc, "coregistration", config)
    match = re.fullmatch(
        r"coregistration: unexpected RuntimeError: boom second line \(details: logs/(.+)\)",
        message,
    )
    assert match
    assert CRASH_NAME.fullmatch(match.group(1))
    assert (config.output_dir / "logs" / match.group(1)).is_file()


def test_an_unwritable_crash_file_still_gives_a_message(
    participant: ParticipantInput, config: Config
) -> None:
    config.output_dir.mkdir(parents=True)
    (config.output_dir / "logs").write_text("a file where the logs folder should be")
    message = record_failure(participant, _raised(InputError("bad")), "tacs:baseline", config)
    assert message == "tacs:baseline: bad"


def test_describe_image_says_when_a_file_is_unreadable(tmp_path: Path) -> None:
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"not a nifti")
    assert describe_image(broken, with_intensities=True).startswith("cannot be read")
