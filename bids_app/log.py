"""Logging set-up: the only place that attaches handlers."""

from __future__ import annotations

import logging
import sys
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
