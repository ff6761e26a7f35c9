"""Logging set-up: the only place that attaches handlers.

While a participant is processed (:func:`participant_context`, entered by
:func:`log_to_file`), every record gets the participant's label in front of its message unless
the message already starts with it, so that interleaved lines of parallel workers, and lines of
library modules that do not know the participant, can be told apart.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(participant)s%(message)s"
CONSOLE_FORMAT = "%(asctime)s [%(levelname)s] %(participant)s%(message)s"
DATE_FORMAT = "%H:%M:%S"

_PARTICIPANT: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "bids_app_participant", default=None
)


class ParticipantFilter(logging.Filter):
    """Set ``record.participant`` to ``"sub-<label>: "`` while a participant is processed.

    Empty outside :func:`participant_context` and when the message already names the
    participant at its start.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the ``participant`` attribute (never drops a record)."""
        label = _PARTICIPANT.get()
        prefix = ""
        if label and not record.getMessage().startswith(label):
            prefix = f"{label}: "
        record.participant = prefix
        return True


@contextlib.contextmanager
def participant_context(label: str) -> Iterator[None]:
    """Mark the records of the block as belonging to ``label`` (e.g. ``"sub-01"``)."""
    token = _PARTICIPANT.set(label)
    try:
        yield
    finally:
        _PARTICIPANT.reset(token)


def _formatter(fmt: str, datefmt: str | None = None) -> logging.Formatter:
    return logging.Formatter(fmt, datefmt, defaults={"participant": ""})


def _handler_setup(handler: logging.Handler, fmt: str, datefmt: str | None = None) -> None:
    handler.setFormatter(_formatter(fmt, datefmt))
    handler.addFilter(ParticipantFilter())


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
    _handler_setup(console, CONSOLE_FORMAT, DATE_FORMAT)
    logger.addHandler(console)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setLevel(logging.DEBUG)
        _handler_setup(file_handler, LOG_FORMAT)
        logger.addHandler(file_handler)


@contextlib.contextmanager
def log_to_file(
    log_file: Path, verbosity: int = 0, participant: str | None = None
) -> Iterator[None]:
    """Also send ``bids_app`` records to ``log_file`` while the block runs.

    Used per participant (``logs/sub-<label>_<runid>.log``); in a fresh worker process, where
    nothing is configured yet, it also sets up the console handler.

    Parameters
    ----------
    log_file : Path
        The extra log file.
    verbosity : int
        Console verbosity when the console has to be set up here.
    participant : str, optional
        ``"sub-<label>"``: the block's records carry it (:func:`participant_context`).
    """
    logger = logging.getLogger("bids_app")
    if not logger.handlers:
        setup_logging(verbosity)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    _handler_setup(handler, LOG_FORMAT)
    logger.addHandler(handler)
    context = participant_context(participant) if participant else contextlib.nullcontext()
    try:
        with context:
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
