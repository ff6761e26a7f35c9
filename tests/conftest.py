"""Shared fixtures: no network, a seeded generator, the shared reference folder."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_REFERENCE = REPO_ROOT.parent / "shared" / "reference"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse outgoing connections: tests never touch the network."""

    def guard(*args: object, **kwargs: object) -> None:
        raise RuntimeError("network access is not allowed in tests")

    monkeypatch.setattr(socket.socket, "connect", guard)


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator (seed 42)."""
    return np.random.default_rng(42)


@pytest.fixture
def shared_reference() -> Path:
    """Path to ../shared/reference; skip when the folder is not beside the repo."""
    if not SHARED_REFERENCE.is_dir():
        pytest.skip(f"shared reference data not found at {SHARED_REFERENCE}")
    return SHARED_REFERENCE
