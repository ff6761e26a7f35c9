"""Fast checks of the generator's API and CLI (argument errors fail before any work)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bids_app.errors import InputError
from bids_app.simulation import StudyEffects, generate_study
from bids_app.simulation.__main__ import build_parser, main


@pytest.fixture(autouse=True)
def _restore_app_logger() -> Iterator[None]:
    """The CLI configures the ``bids_app`` logger; put it back for the other tests."""
    logger = logging.getLogger("bids_app")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    for handler in list(logger.handlers):
        if handler not in saved[0]:
            handler.close()
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def test_refuses_non_empty_out_dir(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(InputError, match="is not empty"):
        generate_study(tmp_path, small=True)
    assert (tmp_path / "keep.txt").read_text() == "x"


def test_refuses_file_as_out_dir(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        generate_study(target, small=True)


def test_null_conflicts_with_effects(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="null=True conflicts"):
        generate_study(tmp_path / "out", small=True, null=True, effects=StudyEffects())
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"n_participants": 2.5}, "n_participants must be an integer"), ({"n_jobs": 0}, "n_jobs")],
)
def test_invalid_counts(tmp_path: Path, kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(InputError, match=match):
        generate_study(tmp_path / "out", small=True, **kwargs)  # type: ignore[arg-type]


def test_cli_parses_all_flags() -> None:
    argv = ["out", "--small", "--null", "--n-participants", "6", "--seed", "3"]
    args = build_parser().parse_args([*argv, "--with-t1w", "--n-jobs", "2", "--overwrite"])
    assert (args.small, args.null, args.n_participants, args.seed) == (True, True, 6, 3)
    assert (args.with_t1w, args.n_jobs, args.overwrite) == (True, 2, True)


def test_cli_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["out", "--n-participants", "zero"])
    assert info.value.code == 2
    assert "positive integer" in capsys.readouterr().err


def test_cli_returns_1_on_non_empty_out_dir(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    assert main([str(tmp_path), "--small"]) == 1


def test_failure_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bids_app.simulation import study

    def boom(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(study, "build_anatomy", lambda *_a, **_k: None)
    monkeypatch.setattr(study, "_write_dataset_files", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        generate_study(tmp_path / "out", small=True)
    assert list(tmp_path.iterdir()) == []
