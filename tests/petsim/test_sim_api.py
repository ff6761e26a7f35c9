"""Fast checks of the generator's API and CLI (argument errors fail before any work)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from petsim import StudyEffects, generate_study
from petsim.__main__ import build_parser, main
from petsim.errors import InputError


@pytest.fixture(autouse=True)
def _restore_petsim_logger() -> Iterator[None]:
    """The CLI configures the ``petsim`` logger; put it back for the other tests."""
    logger = logging.getLogger("petsim")
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
    argv += ["--anatomy", "individual", "--t1w-skull", "--axial-fov-mm", "108", "--noise", "high"]
    args = build_parser().parse_args([*argv, "--with-t1w", "--n-jobs", "2", "--overwrite"])
    assert (args.small, args.null, args.n_participants, args.seed) == (True, True, 6, 3)
    assert (args.with_t1w, args.n_jobs, args.overwrite) == (True, 2, True)
    assert (args.anatomy, args.t1w_skull, args.axial_fov_mm, args.noise) == (
        "individual",
        True,
        108.0,
        "high",
    )
    assert build_parser().parse_args(["out", "--noise", "0.5"]).noise == 0.5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"anatomy": "average"}, "anatomy must be one of"),
        ({"noise": "loud"}, "noise must be one of"),
        ({"noise": -1.0}, "noise_scale must be a finite number >= 0"),
        ({"axial_fov_mm": 3.0}, "axial_fov_mm must be None or at least two slices"),
    ],
)
def test_invalid_realism_options(tmp_path: Path, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        generate_study(tmp_path / "out", small=True, **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--n-participants", "zero"], "positive integer"),
        (["--noise", "loud"], "must be one of"),
        (["--axial-fov-mm", "-5"], "positive number"),
        (["--anatomy", "average"], "invalid choice"),
    ],
)
def test_cli_usage_error_exits_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["out", *argv])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_returns_1_on_non_empty_out_dir(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    assert main([str(tmp_path), "--small"]) == 1


def test_failure_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from petsim import study

    def boom(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(study, "build_anatomy", lambda *_a, **_k: None)
    monkeypatch.setattr(study, "_write_dataset_files", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        generate_study(tmp_path / "out", small=True)
    assert list(tmp_path.iterdir()) == []
