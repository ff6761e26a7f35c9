"""Exception hierarchy and exit codes.

Library code raises these; only :mod:`bids_app.cli.run` turns them into exit codes.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1


class BidsAppError(Exception):
    """Base class of every error the app raises on purpose."""


class InputError(ValueError, BidsAppError):
    """The input data (files, values, options) cannot be used as given."""


class MetadataError(InputError):
    """A sidecar JSON or TSV field is missing, malformed or inconsistent with the image."""


class ValidationError(InputError):
    """Several input problems found together; ``problems`` holds one message per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        n = len(self.problems)
        header = f"{n} input problem{'s' if n != 1 else ''} found:"
        super().__init__("\n".join([header, *(f"  - {p}" for p in self.problems)]))


class RegistrationError(RuntimeError, BidsAppError):
    """An image registration failed or produced an implausible transform."""


class PublishError(OSError, BidsAppError):
    """Finished outputs could not be moved into OUTPUT_DIR (disk full, permissions)."""


class ModelError(ValueError, BidsAppError):
    """Kinetic model inputs are invalid (lengths, non-finite values, empty reference)."""


class StatsError(ValueError, BidsAppError):
    """Statistical analysis inputs are invalid (too few subjects, empty mask, ...)."""
