"""Quality-control checks and verdicts."""

from __future__ import annotations

import math

import pytest

from bids_app.qc import QcCheck, QcVerdict, judge


@pytest.mark.parametrize(
    ("value", "bad", "expected"),
    [
        (0.5, "above", "pass"),
        (1.5, "above", "warn"),
        (3.5, "above", "fail"),
        (0.9, "below", "pass"),
        (0.75, "below", "warn"),
        (0.5, "below", "fail"),
        (math.nan, "above", "warn"),
    ],
)
def test_judge(value: float, bad: str, expected: str) -> None:
    warn, fail = (1.0, 3.0) if bad == "above" else (0.8, 0.6)
    assert judge(value, warn, fail, bad) == expected  # type: ignore[arg-type]


def _check(key: str, value: float, scope: str = "ses-sal") -> QcCheck:
    return QcCheck(
        key, "maximum framewise displacement", scope, value, "mm", 1.0, 3.0, "above", "blur"
    )


def test_verdict_is_the_worst_check_and_explains_itself() -> None:
    verdict = QcVerdict((_check("a", 0.2), _check("b", 4.0, "ses-nal"), _check("c", 1.2)))
    assert verdict.status == "fail"
    assert verdict.reasons == [
        "ses-nal: maximum framewise displacement 4 mm (> 3 mm, fail)",
        "ses-sal: maximum framewise displacement 1.2 mm (> 1 mm, warn)",
    ]
    assert verdict.summary().startswith("fail: ses-nal")
    assert QcVerdict(()).status == "pass"
    assert QcVerdict(()).summary() == "pass"


def test_round_trip_keeps_nan_and_status() -> None:
    verdict = QcVerdict((_check("a", math.nan), _check("b", 0.1)))
    data = verdict.to_json()
    assert data["checks"][0]["value"] is None
    back = QcVerdict.from_json(data)
    assert back.status == verdict.status == "warn"
    assert math.isnan(back.checks[0].value)
    assert back.checks[1] == verdict.checks[1]
    assert QcVerdict.combine([back, [_check("z", 5.0)]]).status == "fail"


def test_fit_failures_are_judged_as_a_share_of_the_fitted_voxels() -> None:
    from bids_app.pipelines.qc import fit_checks

    (ok,) = fit_checks("sal", n_fitted=200_000, n_failed=100)
    assert (ok.key, ok.scope, ok.unit, ok.status) == ("fit_failed_pct", "ses-sal", "%", "pass")
    assert ok.value == pytest.approx(0.05)
    assert fit_checks("nal", 1000, 20)[0].status == "warn"
    assert fit_checks("nal", 1000, 80)[0].status == "fail"
    assert fit_checks("nal", 0, 0)[0].status == "warn"  # nothing fitted: not measurable
