"""Publishing all or nothing, manifests, and the checkpointed stage runner."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from bids_app.errors import InputError, PublishError
from bids_app.outputs.manifest import (
    Manifest,
    collect_participants,
    describe_changes,
    missing_files,
    read_manifest,
    run_key,
    write_manifest,
)
from bids_app.outputs.names import manifest_path
from bids_app.outputs.publish import publish
from bids_app.pipelines.stages import StageRunner


def _stage(tmp_path: Path, names: list[str]) -> Path:
    staging = tmp_path / "staging"
    for name in names:
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        (staging / name).write_text(name)
    return staging


def test_publish_moves_everything_and_removes_staging(tmp_path: Path) -> None:
    staging = _stage(tmp_path, ["a/x.tsv", "b.json"])
    publish(staging, tmp_path / "out", [Path("a/x.tsv"), Path("b.json")])
    assert (tmp_path / "out/a/x.tsv").read_text() == "a/x.tsv"
    assert not staging.exists()


def test_publish_failure_leaves_nothing_and_names_the_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staging = _stage(tmp_path, ["1.tsv", "2.tsv", "3.tsv"])
    real_replace = os.replace
    calls = {"n": 0}

    def replace(src: object, dst: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", replace)
    out = tmp_path / "out"
    with pytest.raises(
        PublishError,
        match=r"No space left on device: the disk holding .*out is full \(\d+ MB free\)",
    ):
        publish(staging, out, [Path("1.tsv"), Path("2.tsv"), Path("3.tsv")])
    assert sorted(p.name for p in out.iterdir()) == []


def _manifest(tmp_path: Path, **changes: object) -> Manifest:
    out = tmp_path / "out"
    (out / "sub-01").mkdir(parents=True, exist_ok=True)
    (out / "sub-01/a.nii.gz").write_bytes(b"12345")
    fields: dict[str, object] = {
        "subject": "01",
        "version": "1.0",
        "run_key": run_key({"sub-01/pet.nii.gz": "abc"}, {"weights": "duration"}, "1.0"),
        "inputs": {"sub-01/pet.nii.gz": "abc"},
        "options": {"weights": "duration"},
        "sessions": {
            role: {
                "session": ses,
                "BPND": "sub-01/a.nii.gz",
                "R1": "sub-01/a.nii.gz",
                "kinpar": "sub-01/a.nii.gz",
            }
            for role, ses in (("baseline", "sal"), ("challenge", "nal"))
        },
        "files": {"sub-01/a.nii.gz": 5},
    }
    fields.update(changes)
    return Manifest(**fields)  # type: ignore[arg-type]


def test_manifest_round_trip_and_completeness(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    out = tmp_path / "out"
    path = write_manifest(out, manifest)
    assert path == manifest_path(out, "01")
    assert read_manifest(path) == manifest
    assert missing_files(out, manifest) == []
    (out / "sub-01/a.nii.gz").write_bytes(b"123")
    assert missing_files(out, manifest) == ["sub-01/a.nii.gz"]


def test_unreadable_manifest_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "sub-01_outputs.json"
    path.write_text("{")
    with pytest.raises(InputError, match=r"manifest .* is unreadable"):
        read_manifest(path)


def test_changes_name_the_input_the_option_and_the_version(tmp_path: Path) -> None:
    old = _manifest(tmp_path)
    same = describe_changes(old, old.inputs, old.options, old.version)
    assert same == []
    changes = describe_changes(old, {"sub-01/pet.nii.gz": "def"}, {"weights": "uniform"}, "2.0")
    assert changes == [
        "bids_app version 1.0 -> 2.0",
        "input sub-01/pet.nii.gz changed",
        "option weights: 'duration' -> 'uniform'",
    ]


def test_collect_reads_complete_participants_and_explains_the_rest(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_manifest(out, _manifest(tmp_path))
    write_manifest(out, _manifest(tmp_path, subject="02", files={"sub-02/gone.nii.gz": 3}))
    included, excluded = collect_participants(out)
    assert [p.subject for p in included] == ["01"]
    assert [(e.subject, e.status) for e in excluded] == [("02", "incomplete")]
    assert "missing or changed" in excluded[0].reason


def _summary(out: Path, rows: list[tuple[str, str, str]]) -> None:
    lines = ["participant_id\tsession_id\tstatus\tmessage\tqc\telapsed_s"]
    for subject, status, message in rows:
        for ses in ("sal", "nal"):
            lines.append(f"sub-{subject}\tses-{ses}\t{status}\t{message}\tn/a\tn/a")
    (out / "logs" / "summary.tsv").write_text("\n".join(lines) + "\n")


def test_collect_names_failed_incomplete_and_unprocessed_participants(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_manifest(out, _manifest(tmp_path))
    write_manifest(out, _manifest(tmp_path, subject="04"))  # complete, but its rerun failed
    _summary(
        out,
        [
            ("01", "skipped", ""),
            ("03", "failed", "normalisation: t1w is empty (details: logs/crash-sub-03.txt)"),
            ("04", "failed", "coregistration: antsRegistration failed"),
            ("05", "success", ""),
        ],
    )
    included, excluded = collect_participants(out, expected=["01", "02", "03", "04", "05"])
    assert [p.subject for p in included] == ["01"]
    by_subject = {e.subject: e for e in excluded}
    assert [(e.subject, e.status) for e in excluded] == [
        ("02", "not processed"),
        ("03", "failed"),
        ("04", "failed"),
        ("05", "incomplete"),
    ]
    assert by_subject["03"].reason.startswith("normalisation: t1w is empty")
    assert "its outputs in OUTPUT_DIR were not used" in by_subject["04"].reason
    assert "OUTPUT_DIR" not in by_subject["03"].reason
    assert "lists it as 'success' but its manifest sub-05_outputs.json is missing" in (
        by_subject["05"].reason
    )
    assert by_subject["03"].describe().startswith("sub-03 (failed): normalisation")
    assert by_subject["02"].to_json() == {
        "participant_id": "sub-02",
        "status": "not processed",
        "reason": "no participant-level outputs; run the participant level for it",
    }
    only, left = collect_participants(out, ["01", "03"], expected=["01", "02", "03"])
    assert [p.subject for p in only] == ["01"]
    assert [e.subject for e in left] == ["03"]  # the others were not asked for


def test_an_unreadable_summary_falls_back_to_the_manifests(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_manifest(out, _manifest(tmp_path))
    (out / "logs" / "summary.tsv").write_text("participant_id\tsomething\nsub-01\tx\n")
    included, excluded = collect_participants(out)
    assert [p.subject for p in included] == ["01"]
    assert excluded == []


def test_stage_runner_resumes_at_the_first_changed_stage(tmp_path: Path) -> None:
    calls: list[str] = []

    def build(param: int) -> StageRunner:
        runner = StageRunner(tmp_path / "ckpt", "context", "sub-01")
        runner.add("a", lambda: calls.append("a") or 1)
        runner.add("big", lambda a: calls.append("big") or a + 1, depends=["a"], persist=False)
        runner.add(
            "c", lambda big: calls.append("c") or big * param, depends=["big"], params={"p": param}
        )
        return runner

    assert build(10).result("c") == 20
    assert calls == ["a", "big", "c"]
    calls.clear()
    runner = build(10)
    assert runner.result("c") == 20  # loaded: nothing upstream runs
    assert calls == []
    assert [t.cached for t in runner.timings] == [True]
    calls.clear()
    assert build(3).result("c") == 6  # only the changed stage and its unpersisted input
    assert calls == ["big", "c"]


def test_stage_runner_names_the_stage_whose_code_raised(tmp_path: Path) -> None:
    runner = StageRunner(tmp_path, "ctx", "sub-01")
    runner.add("a", lambda: 1)
    runner.add("b", lambda a: 1 / 0, depends=["a"])
    runner.add("c", lambda b: b, depends=["b"])
    assert runner.failed_stage is None
    with pytest.raises(ZeroDivisionError):
        runner.result("c")
    assert runner.failed_stage == "b"


def test_stage_runner_recomputes_an_invalid_or_corrupt_checkpoint(tmp_path: Path) -> None:
    calls: list[str] = []

    def build() -> StageRunner:
        runner = StageRunner(tmp_path, "ctx", "x")
        runner.add(
            "a", lambda: calls.append("a") or 5, still_valid=lambda v: (tmp_path / "ok").exists()
        )
        return runner

    build().result("a")
    build().result("a")
    assert calls == ["a", "a"]  # "ok" absent: the loaded result is not trusted
    (tmp_path / "ok").touch()
    (tmp_path / "a.pkl").write_bytes(b"not a pickle")
    assert build().result("a") == 5
    assert calls == ["a", "a", "a"]
