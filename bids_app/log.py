"""Logging set-up: the only place that attaches handlers."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
CONSOLE_FORMAT = "%(asctime)s [%(levelname)s] %(message)s"
DATE_FORMAT = "%H:%M:%S"


def level_for(verbosity: int) -> int:
    """Map -q / default / -v / -vv to a logging level."""
    if verbosity < 0:
        return logging.WARNING
    if verbosity == 0:
        return logging.INFO
    return logging.DEBUG


def setup_logging(verbosity: int = 0, log_file: Path | None = None) -> None:
    """Configure the ``bids_app`` logger: console (stderr) and optionally a log file.

    Parameters
    ----------
    verbosity : int
        -1 quiet (warnings), 0 progress (info), >= 1 debug.
    log_file : Path, optional
        A file that receives every record at DEBUG level.
    """
    logger = logging.getLogger("bids_app")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(level_for(verbosity))
    console.setFormatter(logging.Formatter(CONSOLE_FORMAT, DATE_FORMAT))
    logger.addHandler(console)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setLevel(logging.DEBUG)
        file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logger.addHandler(file_handler)


@contextlib.contextmanager
def log_to_file(log_file: Path, verbosity: int = 0) -> Iterator[None]:
    """Also send ``bids_app`` records to ``log_file`` while the block runs.

    Used per participant (``logs/sub-<label>_<runid>.log``); in a fresh worker process, where
    nothing is configured yet, it also sets up the console handler.
    """
    logger = logging.getLogger("bids_app")
    if not logger.handlers:
        setup_logging(verbosity)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()


@contextlib.contextmanager
def step(logger: logging.Logger, label: str) -> Iterator[None]:
    """Log the start and the duration of a long step (progress for the user)."""
    logger.info("%s ...", label)
    start = time.perf_counter()
    yield
    logger.info("%s done in %.1f s", label, time.perf_counter() - start)
