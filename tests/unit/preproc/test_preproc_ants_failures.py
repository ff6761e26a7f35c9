"""Diagnosable registration failures: ANTs' own output captured, one retry, plausibility."""

from __future__ import annotations

import ctypes
import os
import pickle
import threading
from pathlib import Path

import numpy as np
import pytest

from bids_app.errors import InputError, RegistrationError
from bids_app.preproc._ants import (
    RETRY_INITIALISATIONS,
    AntsRegistrationError,
    RegistrationFiles,
    Stage,
    capture_native_output,
    meaningful_lines,
    read_affine,
    run_registration,
)

ants = pytest.importorskip("ants")

SPACING_MM = (3.0, 3.0, 3.0)
#: A short rigid stage: enough to exercise ANTs, fast on a 30x32x34 grid.
RIGID = Stage("Rigid[0.1]", "Mattes", 32, "Regular", 0.25, (40, 20), (2, 1), (1.0, 0.0))
#: A few iterations at one level, where only the retry logic is under test.
QUICK = Stage("Rigid[0.1]", "Mattes", 32, "Regular", 0.25, (5,), (2,), (1.0,))
TOTAL_MASS_ZERO = "Total Mass of the image was zero"

ITK_EXCEPTION = """\
/project/itksource/Modules/ThirdParty/VNL/src/vxl/core/vnl/algo/vnl_svd.hxx: M is 2x2
/project/itksource/Modules/ThirdParty/VNL/src/vxl/core/vnl/algo/vnl_svd.hxx: M is 2x2
Exception Object caught:

itk::ExceptionObject (0x5584e79fb2a0)
Location: "unknown"
File: /project/itksource/Modules/Filtering/ImageStatistics/include/itkImageMomentsCalculator.hxx
Line: 123
Description: ITK ERROR: ImageMomentsCalculator(0x5584e7ae2f00): Compute(): Total Mass of the \
image was zero. Aborting here to prevent division by zero later on.

"""


def _head(rng: np.random.Generator) -> np.ndarray:
    data = np.zeros((30, 32, 34), np.float32)
    data[8:22, 8:24, 9:25] = 1.0 + rng.random((14, 16, 16), dtype=np.float32)
    return data


def _zero_sum_image() -> np.ndarray:
    """+1/-1 checkerboard: not empty, but its 'centre of mass' does not exist (total mass 0)."""
    parity = np.indices((30, 32, 34)).sum(axis=0) % 2
    return np.where(parity == 0, 1.0, -1.0).astype(np.float32)


def _image(data: np.ndarray) -> object:
    return ants.from_numpy(data, spacing=SPACING_MM)


# --------------------------------------------------------------------------- capture
def test_capture_gets_c_level_output_and_restores_the_descriptors(tmp_path: Path) -> None:
    libc = ctypes.CDLL(None)
    log = tmp_path / "native.log"
    with capture_native_output(log) as captured:
        os.write(1, b"fd1 line\n")
        os.write(2, b"fd2 line\n")
        libc.printf(b"printf line (C stdio buffer)\n")
    after = tmp_path / "after.log"
    with open(after, "wb") as sink:
        saved = os.dup(1)
        os.dup2(sink.fileno(), 1)
        try:
            os.write(1, b"written after the block\n")
        finally:
            os.dup2(saved, 1)
            os.close(saved)
    assert captured
    text = log.read_text()
    assert "fd1 line" in text
    assert "fd2 line" in text
    assert "printf line (C stdio buffer)" in text  # flushed before the descriptors returned
    assert "written after the block" not in text
    assert after.read_text() == "written after the block\n"


def test_capture_restores_the_descriptors_when_the_block_raises(tmp_path: Path) -> None:
    before = os.fstat(2).st_ino
    with pytest.raises(ValueError, match="boom"), capture_native_output(tmp_path / "x.log"):
        raise ValueError("boom")
    assert os.fstat(2).st_ino == before


def test_a_second_capture_in_the_process_does_not_steal_the_descriptors(tmp_path: Path) -> None:
    results: list[bool] = []

    def inner() -> None:
        with capture_native_output(tmp_path / "inner.log") as got:
            results.append(got)

    with capture_native_output(tmp_path / "outer.log") as outer:
        worker = threading.Thread(target=inner)
        worker.start()
        worker.join()
        os.write(2, b"outer keeps this\n")
    assert outer
    assert results == [False]
    assert "outer keeps this" in (tmp_path / "outer.log").read_text()
    with capture_native_output(tmp_path / "again.log") as again:  # the lock was released
        pass
    assert again


def test_meaningful_lines_keep_the_itk_error_without_boilerplate() -> None:
    lines = meaningful_lines(ITK_EXCEPTION)
    assert lines == [
        "ITK ERROR: ImageMomentsCalculator: Compute(): Total Mass of the image was zero. "
        "Aborting here to prevent division by zero later on."
    ]
    plain = meaningful_lines("a\n\nb\na\nc\n", n_lines=2)
    assert plain == ["a", "c"]  # no error line: the last distinct lines
    assert meaningful_lines("") == []


def test_registration_error_pickles_with_its_details(tmp_path: Path) -> None:
    exc = AntsRegistrationError(
        "failed", ("antsRegistration", "-d", "3"), ("ITK ERROR",), tmp_path
    )
    copy = pickle.loads(pickle.dumps(exc))
    assert isinstance(copy, RegistrationError)
    assert str(copy) == "failed"
    assert copy.command == exc.command
    assert copy.output_tail == ("ITK ERROR",)
    assert copy.log_path == tmp_path


# --------------------------------------------------------------------------- failures and retries
def test_ants_failure_names_the_itk_error_and_keeps_its_output(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    fixed, moving = _image(_head(rng)), _image(_zero_sum_image())
    with pytest.raises(AntsRegistrationError, match=TOTAL_MASS_ZERO) as info:
        run_registration(fixed, moving, [RIGID], tmp_path / "reg_", initial="mass")
    err = info.value
    assert "mass initialisation" in str(err)
    assert "Location:" not in str(err)
    assert err.log_path is not None
    assert TOTAL_MASS_ZERO in err.log_path.read_text()
    assert err.command[0] == "antsRegistration"
    assert "[<fixed>,<moving>,1]" in err.command
    assert any(
        d.startswith("moving image: shape (30, 32, 34), spacing 3 x 3 x 3") for d in err.details
    )
    assert not (tmp_path / "reg_0GenericAffine.mat").exists()


def test_an_uncaptured_failure_says_where_the_output_went(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    fixed, moving = _image(_head(rng)), _image(_zero_sum_image())
    outer = tmp_path / "outer.log"
    with capture_native_output(outer), pytest.raises(AntsRegistrationError) as info:
        run_registration(fixed, moving, [RIGID], tmp_path / "reg_", initial="mass")
    assert "its output went to the console, not captured" in str(info.value)
    assert info.value.log_path is None
    assert TOTAL_MASS_ZERO in outer.read_text()  # nothing was lost: the outer capture has it


def test_a_failed_initialisation_is_retried_with_the_image_centres(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    fixed, moving = _image(_head(rng)), _image(_zero_sum_image())
    files = run_registration(
        fixed, moving, [RIGID], tmp_path / "reg_", initial=RETRY_INITIALISATIONS
    )
    assert files.initial == "geometry"
    assert files.retried
    assert len(files.failed_attempts) == 1
    assert files.failed_attempts[0].startswith("mass: antsRegistration failed")
    assert TOTAL_MASS_ZERO in files.failed_attempts[0]
    assert files.affine.is_file()
    assert not list(tmp_path.glob("*geometry_antsRegistration.log"))  # deleted on success


def test_an_implausible_result_is_retried_then_reported(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    data = _head(rng)
    fixed, moving = _image(data), _image(np.roll(data, 2, axis=0))
    seen: list[str] = []

    def reject_mass(files: RegistrationFiles) -> str | None:
        seen.append(files.initial)
        assert read_affine(files.affine).shape == (4, 4)
        return "rejected by the test" if files.initial == "mass" else None

    files = run_registration(
        fixed,
        moving,
        [RIGID],
        tmp_path / "a_",
        initial=("mass", "geometry"),
        plausible=reject_mass,
    )
    assert seen == ["mass", "geometry"]
    assert files.initial == "geometry"
    assert files.failed_attempts == ("mass: implausible result: rejected by the test",)
    with pytest.raises(AntsRegistrationError, match="every initialisation tried") as info:
        run_registration(
            fixed,
            moving,
            [QUICK],
            tmp_path / "b_",
            initial=("mass", "geometry"),
            plausible=lambda f: f"no good ({f.initial})",
        )
    assert "mass: implausible result: no good (mass)" in str(info.value)
    assert "geometry: implausible result: no good (geometry)" in str(info.value)


def test_a_clean_first_attempt_is_not_a_retry(tmp_path: Path, rng: np.random.Generator) -> None:
    data = _head(rng)
    files = run_registration(
        _image(data), _image(data), [RIGID], tmp_path / "r_", initial=RETRY_INITIALISATIONS
    )
    assert files.initial == "mass"
    assert not files.retried
    np.testing.assert_allclose(read_affine(files.affine), np.eye(4), atol=0.05)


@pytest.mark.parametrize("initial", [(), "centre", ("mass", "nearest")])
def test_unknown_initialisations_are_refused(
    initial: object, tmp_path: Path, rng: np.random.Generator
) -> None:
    image = _image(_head(rng))
    with pytest.raises(InputError, match="initial must be one of"):
        run_registration(image, image, [RIGID], tmp_path / "x_", initial=initial)  # type: ignore[arg-type]
