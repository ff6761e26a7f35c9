"""Quality-control judgements: a measured value, the thresholds it is held to, and the verdict.

A ground module (it imports nothing from the app): the pipelines build :class:`QcCheck` records
from what the processing measured (motion, registrations, coverage, fits), the manifest stores
them, the participant summary and the group level read the verdict, and the reports show each
check with its thresholds and the reason for them.

A check is ``"pass"``, ``"warn"`` (worth a look; results are kept) or ``"fail"`` (results are
likely wrong: by default the participant is excluded from the group level, see
``--qc-fail``). A value that could not be measured (NaN) is a ``"warn"``: QC that cannot look
must say so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

QcStatus = Literal["pass", "warn", "fail"]
Direction = Literal["above", "below"]

STATUS_ORDER: dict[str, int] = {"pass": 0, "warn": 1, "fail": 2}


def judge(value: float, warn: float | None, fail: float | None, bad: Direction) -> QcStatus:
    """Status of ``value`` against its thresholds.

    Parameters
    ----------
    value : float
        The measured value (NaN: not measurable, a ``"warn"``).
    warn, fail : float or None
        Thresholds; ``None`` means no such level.
    bad : {"above", "below"}
        Whether values above or below the thresholds are bad.

    Returns
    -------
    {"pass", "warn", "fail"}
    """
    if not math.isfinite(value):
        return "warn"

    def beyond(limit: float | None) -> bool:
        if limit is None:
            return False
        return value > limit if bad == "above" else value < limit

    if beyond(fail):
        return "fail"
    if beyond(warn):
        return "warn"
    return "pass"


@dataclass(frozen=True)
class QcCheck:
    """One quality-control measurement and its verdict.

    Attributes
    ----------
    key : str
        Machine name, e.g. ``"max_fd_mm"`` (stable: used in tables and manifests).
    label : str
        What was measured, in words (``"maximum framewise displacement"``).
    scope : str
        What it was measured on: ``"participant"`` or a session (``"ses-sal"``).
    value : float
        The measurement (NaN when it could not be measured).
    unit : str
        Unit of ``value`` and of the thresholds (``"mm"``, ``""`` for ratios).
    warn, fail : float or None
        Thresholds.
    bad : {"above", "below"}
        Whether values above or below the thresholds are bad.
    reason : str
        Why the thresholds are where they are (shown in the report).
    """

    key: str
    label: str
    scope: str
    value: float
    unit: str
    warn: float | None
    fail: float | None
    bad: Direction
    reason: str

    @property
    def status(self) -> QcStatus:
        """The verdict."""
        return judge(self.value, self.warn, self.fail, self.bad)

    def describe(self) -> str:
        """One line: scope, measurement, value and the threshold it crossed."""
        unit = f" {self.unit}" if self.unit else ""
        value = "not measurable" if not math.isfinite(self.value) else f"{self.value:.3g}{unit}"
        status = self.status
        limit = self.fail if status == "fail" else self.warn
        if status == "pass" or limit is None:
            return f"{self.scope}: {self.label} {value}"
        sign = ">" if self.bad == "above" else "<"
        return f"{self.scope}: {self.label} {value} ({sign} {limit:g}{unit}, {status})"

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (NaN as None)."""
        return {
            "key": self.key,
            "label": self.label,
            "scope": self.scope,
            "value": self.value if math.isfinite(self.value) else None,
            "unit": self.unit,
            "warn": self.warn,
            "fail": self.fail,
            "bad": self.bad,
            "reason": self.reason,
            "status": self.status,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> QcCheck:
        """Inverse of :meth:`to_json`."""
        value = data.get("value")
        return cls(
            key=str(data["key"]),
            label=str(data["label"]),
            scope=str(data["scope"]),
            value=float("nan") if value is None else float(value),
            unit=str(data.get("unit", "")),
            warn=None if data.get("warn") is None else float(data["warn"]),
            fail=None if data.get("fail") is None else float(data["fail"]),
            bad="below" if data.get("bad") == "below" else "above",
            reason=str(data.get("reason", "")),
        )


@dataclass(frozen=True)
class QcVerdict:
    """All checks of one participant.

    Attributes
    ----------
    checks : tuple of QcCheck
        Every check, in the order they were made.
    """

    checks: tuple[QcCheck, ...]

    @property
    def status(self) -> QcStatus:
        """The worst status of any check (``"pass"`` without checks)."""
        worst = max((STATUS_ORDER[c.status] for c in self.checks), default=0)
        return ("pass", "warn", "fail")[worst]

    def flagged(self, status: QcStatus) -> list[QcCheck]:
        """The checks with exactly ``status``."""
        return [c for c in self.checks if c.status == status]

    @property
    def reasons(self) -> list[str]:
        """One line per failed, then per warned check."""
        return [c.describe() for c in (*self.flagged("fail"), *self.flagged("warn"))]

    def summary(self) -> str:
        """``"pass"``, or the status with its reasons (for ``logs/summary.tsv``)."""
        if self.status == "pass":
            return "pass"
        return f"{self.status}: " + "; ".join(self.reasons)

    def to_json(self) -> dict[str, Any]:
        """JSON-able form for the participant manifest."""
        return {
            "status": self.status,
            "reasons": self.reasons,
            "checks": [c.to_json() for c in self.checks],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> QcVerdict:
        """Inverse of :meth:`to_json` (an empty mapping gives no checks)."""
        return cls(tuple(QcCheck.from_json(c) for c in data.get("checks", ())))

    @classmethod
    def combine(cls, parts: Iterable[QcVerdict | Sequence[QcCheck]]) -> QcVerdict:
        """One verdict from several verdicts or lists of checks."""
        checks: list[QcCheck] = []
        for part in parts:
            checks.extend(part.checks if isinstance(part, QcVerdict) else part)
        return cls(tuple(checks))
