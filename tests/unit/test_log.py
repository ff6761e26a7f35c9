"""Log records carry the participant they belong to."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bids_app.log import log_to_file, participant_context, setup_logging


@pytest.fixture
def app_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("bids_app")
    yield logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.propagate = True


def test_worker_lines_name_the_participant_once(
    app_logger: logging.Logger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging(0)
    library = logging.getLogger("bids_app.preproc.registration")
    with log_to_file(tmp_path / "sub-07.log", participant="sub-07"):
        library.info("resampled 12 frames to the template grid")
        library.info("sub-07: fit:baseline done in 2.0 s")
        library.info("sub-07 ses-sal: 3 of 900 voxel fits failed")
    library.info("Participant level finished")
    console = capsys.readouterr().err.splitlines()
    assert console[0].endswith("[INFO] sub-07: resampled 12 frames to the template grid")
    assert console[1].endswith("[INFO] sub-07: fit:baseline done in 2.0 s")
    assert console[2].endswith("[INFO] sub-07 ses-sal: 3 of 900 voxel fits failed")
    assert console[3].endswith("[INFO] Participant level finished")
    in_file = (tmp_path / "sub-07.log").read_text().splitlines()
    assert in_file[0].endswith(
        "bids_app.preproc.registration: sub-07: resampled 12 frames to the template grid"
    )
    assert len(in_file) == 3


def test_context_is_restored_after_the_block(
    app_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging(0)
    with participant_context("sub-01"):
        with participant_context("sub-02"):
            app_logger.warning("inner")
        app_logger.warning("outer")
    app_logger.warning("none")
    lines = capsys.readouterr().err.splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == ["sub-02: inner", "sub-01: outer", "none"]
