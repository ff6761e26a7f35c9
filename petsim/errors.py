"""Exceptions of the simulator (no dependency on the analysis package)."""

from __future__ import annotations


class SimulationError(Exception):
    """Base class of every error petsim raises on purpose."""


class InputError(ValueError, SimulationError):
    """An argument or option of the simulator cannot be used as given."""


class ModelError(ValueError, SimulationError):
    """Model inputs are invalid or a model cannot be evaluated (degenerate parameters)."""
