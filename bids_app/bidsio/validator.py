"""Run the official BIDS validator (the ``bids-validator-deno`` package) offline.

The package ships the validator as a JavaScript bundle plus a Deno runtime (the ``deno`` PyPI
package). Its console script grants network access; here the bundle is run directly with
read-only permissions (``--allow-read --allow-env``, no ``--allow-net``, no ``--allow-write``), so
it validates against its bundled schema and can neither fetch anything nor write to the dataset.
When the bundle or Deno cannot be found the console script is used as a fallback.

A missing or failing validator never fails a run: :func:`run_bids_validator` then returns
``available=False`` with a reason, and the caller logs a warning and goes on.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PACKAGE = "bids-validator-deno"
_BUNDLE = "bids-validator.js"
_MAX_MESSAGE_CHARS = 200


@dataclass(frozen=True)
class ValidatorResult:
    """Outcome of a BIDS validator run.

    Attributes
    ----------
    errors : list of str
        One line per error issue: ``"CODE[subcode]: /path/in/dataset: message"``.
    warnings : list of str
        Same, for warnings (and for errors whose code the caller chose to ignore).
    available : bool
        False when the validator could not be run (then ``reason`` says why).
    version : str or None
        Validator version (``bids-validator-deno`` package version).
    reason : str
        Why the validator was unavailable; empty otherwise.
    schema_version : str or None
        BIDS schema version the validator used.
    """

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    available: bool = True
    version: str | None = None
    reason: str = ""
    schema_version: str | None = None

    @property
    def ok(self) -> bool:
        """True when the validator ran and found no (non-ignored) errors."""
        return self.available and not self.errors


def _package_version() -> str | None:
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None


def validator_command() -> list[str] | None:
    """Return the command prefix that runs the validator offline, or None when not installed.

    Returns
    -------
    list of str or None
        ``[deno, "run", "--allow-read", "--allow-env", bundle]`` when the bundle and Deno are
        found; else the ``bids-validator-deno`` console script (next to the Python executable or
        on ``PATH``); else None.
    """
    try:
        from deno import find_deno_bin  # type: ignore[import-not-found,import-untyped]

        bundle = importlib.resources.files("bids_validator_deno").joinpath(_BUNDLE)
        deno = os.fsdecode(find_deno_bin())
        if bundle.is_file() and Path(deno).is_file():
            return [deno, "run", "--allow-read", "--allow-env", str(bundle)]
    except (ImportError, OSError, FileNotFoundError, RuntimeError) as exc:
        logger.debug("bids-validator bundle/deno not usable directly: %s", exc)
    script = Path(sys.executable).with_name("bids-validator-deno")
    if script.is_file():
        return [str(script)]
    found = shutil.which("bids-validator-deno")
    return [found] if found else None


def _issue_line(issue: Mapping[str, Any], code_messages: Mapping[str, str]) -> str:
    """Format one validator issue as a single line: code, file(s), message."""
    code = str(issue.get("code", "UNKNOWN"))
    sub = issue.get("subCode")
    label = f"{code}[{sub}]" if sub else code
    location = issue.get("location")
    if not location:
        affects = issue.get("affects") or []
        location = ", ".join(str(a) for a in affects) if affects else "dataset"
    text = str(issue.get("issueMessage") or code_messages.get(code) or "").strip()
    text = " ".join(text.split())
    if len(text) > _MAX_MESSAGE_CHARS:
        text = text[: _MAX_MESSAGE_CHARS - 3] + "..."
    return f"{label}: {location}: {text}" if text else f"{label}: {location}"


def parse_validator_json(
    output: str, *, ignore_codes: Collection[str] = ()
) -> tuple[list[str], list[str], str | None]:
    """Parse the validator's ``--format json`` output.

    Parameters
    ----------
    output : str
        The JSON document printed by the validator.
    ignore_codes : collection of str
        Error codes to demote to warnings.

    Returns
    -------
    errors, warnings : list of str
        One line per issue.
    schema_version : str or None

    Raises
    ------
    ValueError
        When the output is not the expected JSON document.
    """
    document = json.loads(output)
    if not isinstance(document, dict) or "issues" not in document:
        msg = "validator output has no 'issues' object"
        raise ValueError(msg)
    issues = document["issues"]
    code_messages = issues.get("codeMessages", {}) or {}
    errors: list[str] = []
    warnings: list[str] = []
    for issue in issues.get("issues", []):
        line = _issue_line(issue, code_messages)
        is_error = issue.get("severity") == "error" and issue.get("code") not in ignore_codes
        (errors if is_error else warnings).append(line)
    summary = document.get("summary") or {}
    schema = summary.get("schemaVersion")
    return errors, warnings, str(schema) if schema is not None else None


def run_bids_validator(
    bids_dir: Path | str,
    timeout_s: float = 120,
    *,
    ignore_codes: Collection[str] = (),
) -> ValidatorResult:
    """Validate a dataset with the official BIDS validator, offline.

    Parameters
    ----------
    bids_dir : Path or str
        Dataset root (only read).
    timeout_s : float
        Give up after this many seconds (then ``available=False``).
    ignore_codes : collection of str
        Validator error codes not to treat as fatal (reported as warnings). By default every
        validator error is fatal.

    Returns
    -------
    ValidatorResult
        ``available=False`` with a ``reason`` when the validator is missing, times out, crashes
        or prints something that is not its JSON report.
    """
    version = _package_version()
    command = validator_command()
    if command is None:
        reason = f"{PACKAGE} is not installed (pip install {PACKAGE})"
        return ValidatorResult(available=False, version=version, reason=reason)
    env = {**os.environ, "NO_COLOR": "1", "DENO_NO_UPDATE_CHECK": "1"}
    argv = [*command, "--format", "json", "--no-color", str(Path(bids_dir))]
    try:
        completed = subprocess.run(  # command built from installed files, no shell
            argv,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        reason = f"the BIDS validator did not finish within {timeout_s:g} s"
        return ValidatorResult(available=False, version=version, reason=reason)
    except OSError as exc:
        reason = f"the BIDS validator could not be started ({exc})"
        return ValidatorResult(available=False, version=version, reason=reason)
    try:
        errors, warnings, schema = parse_validator_json(
            completed.stdout, ignore_codes=ignore_codes
        )
    except (ValueError, TypeError, AttributeError) as exc:
        tail = " ".join((completed.stderr or completed.stdout or "").split())[-300:]
        reason = (
            f"the BIDS validator failed (exit code {completed.returncode}; {exc}): "
            f"{tail or 'no output'}"
        )
        return ValidatorResult(available=False, version=version, reason=reason)
    logger.info(
        "BIDS validator %s (schema %s): %d error(s), %d warning(s)",
        version,
        schema,
        len(errors),
        len(warnings),
    )
    return ValidatorResult(
        errors=errors,
        warnings=warnings,
        available=True,
        version=version,
        schema_version=schema,
    )
