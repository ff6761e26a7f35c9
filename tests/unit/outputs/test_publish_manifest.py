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
    assert excluded[0][0] == "02"
    assert "missing or changed" in excluded[0][1]


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
