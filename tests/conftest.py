"""Shared fixtures: no network, a seeded generator, the shared reference folder."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Numbers from SPM12, kinfitr and the BIDS schema, copied from ../shared/reference (README there).
REFERENCE_DATA = REPO_ROOT / "tests" / "data" / "reference"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse connections beyond this machine: tests never touch the network.

    Loopback and Unix sockets stay allowed (a local Dask cluster talks over them).
    """
    real_connect = socket.socket.connect

    def guard(sock: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else None
        if host is None or host in {"localhost", "::1"} or str(host).startswith("127."):
            return real_connect(sock, address)
        raise RuntimeError(f"network access to {address!r} is not allowed in tests")

    monkeypatch.setattr(socket.socket, "connect", guard)


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator (seed 42)."""
    return np.random.default_rng(42)


@pytest.fixture
def shared_reference() -> Path:
    """Reference numbers of other tools (``tests/data/reference``, copied from ../shared)."""
    return REFERENCE_DATA
