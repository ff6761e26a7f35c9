"""Run the official BIDS validator (the ``bids-validator-deno`` package) offline.

The package ships the validator as a JavaScript bundle plus a Deno runtime (the ``deno`` PyPI
package). Its console script grants network access; here the bundle is run directly with
read-only permissions (``--allow-read --allow-env``, no ``--allow-net``, no ``--allow-write``), so
it validates against its bundled schema and can neither fetch anything nor write to the dataset.
When the bundle or Deno cannot be found the console script is used as a fallback.

A missing or failing validator never fails a run: :func:`run_bids_validator` then returns
``available=False`` with a reason, and the caller logs a warning and goes on.

A broken dataset can make the validator report hundreds of findings (a symbolic-link loop, a
byte-order mark in a sidecar that every data file inherits). :func:`triage_findings` accepts
the ones the app knows to be harmless for it (:data:`ACCEPTED`), and
:func:`summarise_findings` groups the rest by code, with counts and the first few files.
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
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from bids_app.bidsio.inheritance import applicable_sidecars, has_utf8_bom, read_json_object
from bids_app.errors import MetadataError

logger = logging.getLogger(__name__)

PACKAGE = "bids-validator-deno"
_BUNDLE = "bids-validator.js"
_MAX_MESSAGE_CHARS = 200
#: Files named per group of findings in :func:`summarise_findings`, and their longest shown
#: length (characters).
MAX_FILES_SHOWN = 3
MAX_PATH_CHARS = 90


@dataclass(frozen=True)
class Finding:
    """One validator issue.

    Attributes
    ----------
    code : str
        Issue code, e.g. ``"SIDECAR_KEY_REQUIRED"``.
    sub_code : str
        Sub-code (e.g. the field name), or empty.
    severity : {"error", "warning"}
        As the validator says (errors demoted by ``ignore_codes`` are warnings).
    location : str
        Dataset-relative path (``/sub-01/...``) or ``"dataset"``.
    message : str
        The validator's message, one line, capped at 200 characters.
    """

    code: str
    sub_code: str
    severity: str
    location: str
    message: str

    @property
    def line(self) -> str:
        """``"CODE[sub]: location: message"``."""
        label = f"{self.code}[{self.sub_code}]" if self.sub_code else self.code
        head = f"{label}: {self.location}"
        return f"{head}: {self.message}" if self.message else head


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
    findings : tuple of Finding
        Every issue, structured.
    """

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    available: bool = True
    version: str | None = None
    reason: str = ""
    schema_version: str | None = None
    findings: tuple[Finding, ...] = ()

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
        from deno import find_deno_bin  # type: ignore[import-untyped]  # deno ships no types

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


def _finding(issue: Mapping[str, Any], code_messages: Mapping[str, str]) -> Finding:
    """One validator issue as a :class:`Finding` (message on one line, capped)."""
    code = str(issue.get("code", "UNKNOWN"))
    location = issue.get("location")
    if not location:
        affects = issue.get("affects") or []
        location = ", ".join(str(a) for a in affects) if affects else "dataset"
    text = str(issue.get("issueMessage") or code_messages.get(code) or "").strip()
    text = " ".join(text.split())
    if len(text) > _MAX_MESSAGE_CHARS:
        text = text[: _MAX_MESSAGE_CHARS - 3] + "..."
    severity = "error" if issue.get("severity") == "error" else "warning"
    return Finding(code, str(issue.get("subCode") or ""), severity, str(location), text)


def parse_validator_findings(
    output: str, *, ignore_codes: Collection[str] = ()
) -> tuple[list[Finding], str | None]:
    """Parse the validator's ``--format json`` output into findings.

    Parameters
    ----------
    output : str
        The JSON document printed by the validator.
    ignore_codes : collection of str
        Error codes to demote to warnings.

    Returns
    -------
    findings : list of Finding
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
    findings = []
    for issue in issues.get("issues", []):
        finding = _finding(issue, code_messages)
        if finding.severity == "error" and finding.code in ignore_codes:
            finding = Finding(
                finding.code, finding.sub_code, "warning", finding.location, finding.message
            )
        findings.append(finding)
    summary = document.get("summary") or {}
    schema = summary.get("schemaVersion")
    return findings, str(schema) if schema is not None else None


def parse_validator_json(
    output: str, *, ignore_codes: Collection[str] = ()
) -> tuple[list[str], list[str], str | None]:
    """Parse the validator's ``--format json`` output into lines.

    Parameters
    ----------
    output : str
        The JSON document printed by the validator.
    ignore_codes : collection of str
        Error codes to demote to warnings.

    Returns
    -------
    errors, warnings : list of str
        One line per issue (:attr:`Finding.line`).
    schema_version : str or None

    Raises
    ------
    ValueError
        When the output is not the expected JSON document.
    """
    findings, schema = parse_validator_findings(output, ignore_codes=ignore_codes)
    errors = [f.line for f in findings if f.severity == "error"]
    warnings = [f.line for f in findings if f.severity != "error"]
    return errors, warnings, schema


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
        findings, schema = parse_validator_findings(completed.stdout, ignore_codes=ignore_codes)
    except (ValueError, TypeError, AttributeError) as exc:
        tail = " ".join((completed.stderr or completed.stdout or "").split())[-300:]
        reason = (
            f"the BIDS validator failed (exit code {completed.returncode}; {exc}): "
            f"{tail or 'no output'}"
        )
        return ValidatorResult(available=False, version=version, reason=reason)
    errors = [f.line for f in findings if f.severity == "error"]
    warnings = [f.line for f in findings if f.severity != "error"]
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
        findings=tuple(findings),
    )


# ----------------------------------------------------------------------------- triage
#: Validator errors the app accepts, with the reason shown when it does.
ACCEPTED: Mapping[str, str] = MappingProxyType(
    {
        "phenotype_index": (
            "phenotype tables hold one row per participant and session (or per time point, in "
            "long format), which the app reads; the validator indexes them by participant alone"
        ),
        "bom": "a UTF-8 byte-order mark, which the app reads",
        "bom_inherited": (
            "the validator could not read a sidecar that starts with a UTF-8 byte-order mark; "
            "the app reads it and checks these fields itself"
        ),
    }
)
#: Error codes that follow from an unreadable sidecar (accepted when the sidecar has a BOM).
_SIDECAR_CONSEQUENCES = frozenset({"SIDECAR_KEY_REQUIRED", "JSON_KEY_REQUIRED"})


def _bom_json_files(root: Path, findings: Iterable[Finding]) -> set[Path]:
    """JSON files the validator rejected only for their UTF-8 byte-order mark."""
    readable: set[Path] = set()
    for finding in findings:
        if finding.code != "INVALID_JSON_ENCODING" or not finding.location.startswith("/"):
            continue
        path = root / finding.location.lstrip("/")
        if not has_utf8_bom(path):
            continue
        try:
            read_json_object(path, "dataset")
        except MetadataError:
            continue
        readable.add(path)
    return readable


def triage_findings(
    root: Path, findings: Sequence[Finding]
) -> tuple[list[Finding], list[tuple[Finding, str]]]:
    """Split validator errors into those that stop the run and those the app accepts.

    Accepted (:data:`ACCEPTED`): ``TSV_INDEX_VALUE_NOT_UNIQUE`` on ``phenotype/`` tables (the
    app's phenotype forms repeat ``participant_id`` over sessions); ``INVALID_JSON_ENCODING`` on
    a JSON file that is valid UTF-8 JSON after a byte-order mark; and the missing-key errors of
    data files that inherit such a file (the app reads it and checks the keys itself).

    Parameters
    ----------
    root : Path
        Dataset root (to read the files named by findings).
    findings : sequence of Finding
        The validator's findings (warnings are ignored here).

    Returns
    -------
    errors : list of Finding
        The errors that stop the run.
    accepted : list of (Finding, str)
        Accepted errors and why.
    """
    root = Path(root)
    bom_files = _bom_json_files(root, findings)
    errors: list[Finding] = []
    accepted: list[tuple[Finding, str]] = []
    for finding in findings:
        if finding.severity != "error":
            continue
        reason = None
        path = root / finding.location.lstrip("/")
        if finding.code == "TSV_INDEX_VALUE_NOT_UNIQUE" and "/phenotype/" in finding.location:
            reason = ACCEPTED["phenotype_index"]
        elif finding.code == "INVALID_JSON_ENCODING" and path in bom_files:
            reason = ACCEPTED["bom"]
        elif finding.code in _SIDECAR_CONSEQUENCES and bom_files:
            sidecars, _ = applicable_sidecars(root, path)
            if bom_files & set(sidecars):
                reason = ACCEPTED["bom_inherited"]
        if reason is None:
            errors.append(finding)
        else:
            accepted.append((finding, reason))
    return errors, accepted


def _short(location: str, max_chars: int = MAX_PATH_CHARS) -> str:
    """A path cut in the middle to ``max_chars`` (a link loop repeats folders endlessly)."""
    if len(location) <= max_chars:
        return location
    head = max_chars // 3
    return f"{location[:head]}...{location[-(max_chars - head - 3) :]}"


def summarise_findings(findings: Sequence[Finding], max_files: int = MAX_FILES_SHOWN) -> list[str]:
    """One line per code: how many findings, in how many files, the first few files, a message.

    Parameters
    ----------
    findings : sequence of Finding
        Findings of one kind (e.g. the errors).
    max_files : int
        Files named per code.

    Returns
    -------
    list of str
        ``"CODE: 83 finding(s) in 83 file(s), e.g. /a, /b, /c (and 80 more): message"`` (the
        shortest paths, cut to :data:`MAX_PATH_CHARS`; the sub-codes in brackets instead of the
        message when there are some), codes in order of first appearance.
    """
    groups: dict[str, list[Finding]] = {}
    for finding in findings:
        groups.setdefault(finding.code, []).append(finding)
    lines = []
    for code, members in groups.items():
        files = list(dict.fromkeys(f.location for f in members))
        # the shortest paths first: in a symbolic-link loop they are the informative ones
        shown = ", ".join(_short(f) for f in sorted(files, key=len)[:max_files])
        more = f" (and {len(files) - max_files} more)" if len(files) > max_files else ""
        subs = list(dict.fromkeys(f.sub_code for f in members if f.sub_code))
        if subs:
            extra = f" and {len(subs) - 5} more" if len(subs) > 5 else ""
            detail = f" [{', '.join(subs[:5])}{extra}]"
        else:
            detail = f": {members[0].message}" if members[0].message else ""
        lines.append(
            f"{code}: {len(members)} finding(s) in {len(files)} file(s), e.g. {shown}{more}"
            f"{detail}"
        )
    return lines
