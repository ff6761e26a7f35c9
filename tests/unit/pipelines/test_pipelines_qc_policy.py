"""``--qc-fail`` at the participant level (counts as failed) and the group level (exclusions)."""

from __future__ import annotations

import pytest

from bids_app.errors import InputError
from bids_app.outputs.manifest import Manifest, ParticipantDerivatives
from bids_app.pipelines.group import apply_qc_policy
from bids_app.pipelines.participant import apply_qc_policy as participant_qc_policy
from bids_app.pipelines.participant_run import ParticipantOutcome
from bids_app.qc import QcCheck, QcVerdict


def _verdict(max_fd_mm: float) -> QcVerdict:
    check = QcCheck(
        "max_fd_mm",
        "maximum framewise displacement",
        "ses-nal",
        max_fd_mm,
        "mm",
        2.0,
        4.0,
        "above",
        "jumps within a frame cannot be undone",
    )
    return QcVerdict((check,))


def _participant(subject: str, qc: QcVerdict | None) -> ParticipantDerivatives:
    manifest = Manifest(
        subject=subject,
        version="1",
        run_key="k",
        inputs={},
        options={},
        sessions={},
        files={},
        qc={} if qc is None else qc.to_json(),
    )
    return ParticipantDerivatives(
        subject, {"baseline": "sal", "challenge": "nal"}, {}, {}, manifest
    )


@pytest.fixture
def participants() -> list[ParticipantDerivatives]:
    return [
        _participant("01", _verdict(0.4)),
        _participant("02", _verdict(5.2)),  # fail
        _participant("03", None),  # written before QC existed: no checks, a pass
        _participant("04", _verdict(2.5)),  # warn only
    ]


def test_exclude_leaves_qc_failed_participants_out_with_the_failed_checks(
    participants: list[ParticipantDerivatives],
) -> None:
    kept, excluded, warnings = apply_qc_policy(participants, "exclude")
    assert [p.subject for p in kept] == ["01", "03", "04"]
    assert [(e.subject, e.status) for e in excluded] == [("02", "qc fail")]
    assert excluded[0].reason == (
        "quality control failed: ses-nal: maximum framewise displacement 5.2 mm (> 4 mm, fail) "
        "(--qc-fail exclude)"
    )
    assert warnings == []


def test_warn_keeps_them_with_a_warning(participants: list[ParticipantDerivatives]) -> None:
    kept, excluded, warnings = apply_qc_policy(participants, "warn")
    assert [p.subject for p in kept] == ["01", "02", "03", "04"]
    assert excluded == []
    assert len(warnings) == 1
    assert warnings[0].startswith("sub-02 is included although its quality control failed")


def test_error_stops_the_group_level_naming_them(
    participants: list[ParticipantDerivatives],
) -> None:
    with pytest.raises(InputError, match=r"failed for 1 participant\(s\) \(sub-02: ses-nal: max"):
        apply_qc_policy(participants, "error")
    assert apply_qc_policy([participants[0]], "error") == ([participants[0]], [], [])


@pytest.mark.parametrize(
    ("policy", "status", "max_fd_mm", "expected"),
    [
        ("error", "success", 5.2, "failed"),
        ("error", "skipped", 5.2, "failed"),  # an earlier run's outputs with a failed QC
        ("error", "success", 2.5, "success"),  # a warning is not a failure
        ("exclude", "success", 5.2, "success"),  # the default only warns here
        ("warn", "success", 5.2, "success"),
    ],
)
def test_participant_level_error_counts_a_qc_failure_as_failed(
    policy: str, status: str, max_fd_mm: float, expected: str
) -> None:
    outcome = ParticipantOutcome("02", status, "", ("sal", "nal"), qc=_verdict(max_fd_mm))  # type: ignore[arg-type]
    result = participant_qc_policy(outcome, policy)  # type: ignore[arg-type]
    assert result.status == expected
    if expected == "failed":
        assert result.message.startswith("quality control failed (ses-nal: maximum framewise")
        assert "--qc-fail error" in result.message
        assert result.qc == outcome.qc
    else:
        assert result == outcome


def test_a_failed_participant_stays_failed_without_a_verdict() -> None:
    outcome = ParticipantOutcome("02", "failed", "normalisation: boom", ("sal", "nal"))
    assert participant_qc_policy(outcome, "error") == outcome
