"""Version of the simulator (recorded in the generated dataset and its truth)."""

from __future__ import annotations

__version__ = "2.0.0"
