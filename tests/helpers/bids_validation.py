"""Run the official BIDS validator on an output folder as a derivative dataset."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from bids_app.bidsio.validator import parse_validator_json, validator_command


def validate_derivatives(root: Path, timeout_s: float = 300) -> tuple[list[str], list[str]]:
    """Validate ``root`` with ``--datasetTypes derivative``; return (errors, warnings).

    Uses the same offline command and JSON parsing as the app's own validation
    (:mod:`bids_app.bidsio.validator`).

    Raises
    ------
    RuntimeError
        When the validator is not installed.
    """
    command = validator_command()
    if command is None:
        msg = "bids-validator-deno is not installed"
        raise RuntimeError(msg)
    completed = subprocess.run(
        [*command, "--format", "json", "--no-color", "--datasetTypes", "derivative", str(root)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "NO_COLOR": "1", "DENO_NO_UPDATE_CHECK": "1"},
        check=False,
    )
    errors, warnings, _ = parse_validator_json(completed.stdout)
    return errors, warnings
