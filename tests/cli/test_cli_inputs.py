"""Input-selection options, the settings check of the group level, and an unreadable HOME."""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import upath.implementations.local
from helpers.bids_skeleton import write_bids_skeleton

from bids_app.cli.parser import build_parser
from bids_app.cli.run import main
from bids_app.config import PARTICIPANT_OPTIONS, Config, settings_differences
from bids_app.pipelines.participant import scan_filters


@pytest.fixture(autouse=True)
def _detach_app_logger() -> Iterator[None]:
    """``main`` attaches console handlers to the ``bids_app`` logger; remove them afterwards."""
    yield
    logger = logging.getLogger("bids_app")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.propagate = True


def _config(*args: str) -> Config:
    return Config.from_namespace(build_parser().parse_args(list(args)))


def _usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


def test_selection_options(tmp_path: Path) -> None:
    filters = tmp_path / "filters.json"
    filters.write_text(json.dumps({"pet": {"reconstruction": "acdyn"}, "t1w": {"acq": "mp"}}))
    config = _config(
        str(tmp_path),
        str(tmp_path / "out"),
        "participant",
        "--pet-run",
        "run-2",
        "--bids-filter-file",
        str(filters),
        "--exclude-bad-frames",
    )
    assert config.pet_run == "2"
    assert config.exclude_bad_frames is True
    assert "exclude_bad_frames" in PARTICIPANT_OPTIONS
    assert config.participant_options()["exclude_bad_frames"] is True
    pet, t1w = scan_filters(config)
    assert pet == {"rec": ("acdyn",), "run": ("2",)}
    assert t1w == {"acq": ("mp",)}


def test_pet_run_must_be_a_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _usage_error(
        [str(tmp_path), str(tmp_path / "o"), "participant", "--pet-run", "x"], capsys
    )
    assert "a run index must be a whole number" in err


def test_invalid_filter_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    filters = tmp_path / "filters.json"
    filters.write_text(json.dumps({"pet": {"session": "sal"}}))
    argv = [str(tmp_path), str(tmp_path / "o"), "participant", "--bids-filter-file", str(filters)]
    err = _usage_error(argv, capsys)
    assert "--bids-filter-file:" in err
    assert "filter on 'session' is not supported" in err


def test_pet_run_contradicting_the_filter_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    filters = tmp_path / "filters.json"
    filters.write_text(json.dumps({"pet": {"run": 1}}))
    argv = [
        str(tmp_path),
        str(tmp_path / "o"),
        "participant",
        "--bids-filter-file",
        str(filters),
        "--pet-run",
        "2",
    ]
    assert "--pet-run 2 contradicts the run in" in _usage_error(argv, capsys)
    # the same run written differently is no contradiction
    filters.write_text(json.dumps({"pet": {"run": "02"}}))
    config = _config(*argv[:3], "--bids-filter-file", str(filters), "--pet-run", "2")
    assert scan_filters(config)[0] == {"run": ("2",)}


def test_settings_differences() -> None:
    same = {"method": "roi", "baseline_session": "sal"}
    options = {
        "01": same,
        "02": {**same, "baseline_session": "pre"},  # session labels may differ
        "03": {**same, "method": "voxel_median"},
    }
    lines = settings_differences(options, {"01": "1.0", "02": "1.0", "03": "1.1"})
    assert lines[0].startswith(
        'participants were processed with different settings: option method is "roi" for '
        'sub-01, sub-02; "voxel_median" for sub-03.'
    )
    assert lines[1].startswith(
        "participants were processed with different bids_app versions: 1.0 for sub-01, "
        "sub-02; 1.1 for sub-03."
    )
    assert all("--participant-label" in line for line in lines)
    assert settings_differences({"01": same, "02": same}, {"01": "1", "02": "1"}) == []


@pytest.fixture
def unreadable_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """pybids imported afresh with a HOME whose settings file cannot be checked.

    The tests run as root, for whom file permissions do not apply, so the failing call is
    simulated: pybids imports ``$HOME/pybids_config.json``'s ``exists()`` (a
    ``upath`` ``PosixUPath``), which raises ``PermissionError`` for an unreadable HOME on Python
    3.11. Every ``bids`` module is removed from ``sys.modules`` so that the import runs again,
    and restored afterwards.
    """
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    real_exists = upath.implementations.local.PosixUPath.exists

    def exists(self: Path, *args: object, **kwargs: object) -> bool:
        if str(self).startswith(str(home)):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real_exists(self, *args, **kwargs)

    monkeypatch.setattr(upath.implementations.local.PosixUPath, "exists", exists)
    saved = {k: v for k, v in sys.modules.items() if k == "bids" or k.startswith("bids.")}
    for name in saved:
        del sys.modules[name]
    try:
        yield home
    finally:
        for name in [k for k in sys.modules if k == "bids" or k.startswith("bids.")]:
            del sys.modules[name]
        sys.modules.update(saved)


def test_unreadable_home_gives_a_clear_message(
    unreadable_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bids = write_bids_skeleton(tmp_path / "bids", {"01": {"sal": {}, "nal": {}}})
    out = tmp_path / "out"
    code = main([str(bids), str(out), "participant", "--skip-bids-validation"])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    assert "pybids, which indexes the BIDS dataset, could not start" in err
    assert f"HOME={unreadable_home} is not readable" in err
    assert "HOME=/tmp bids_app" in err
    assert not [p for p in out.rglob("*") if p.is_file() and "logs" not in p.parts]


def test_dry_run_plan_shows_excluded_frames_and_skipped_participants(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from helpers.bids_skeleton import pet_image_data

    data = pet_image_data((7, 8, 9), 6, seed=3)
    data[..., 2] = 0.0
    spec = {
        "01": {"sal": {"pet": [{"data": data}]}, "nal": {}},
        "02": {"sal": {}},  # no challenge session: skipped
    }
    bids = write_bids_skeleton(tmp_path / "bids", spec)
    argv = [str(bids), str(tmp_path / "out"), "participant", "--skip-bids-validation"]
    code = main([*argv, "--dry-run", "--exclude-bad-frames"])
    out = capsys.readouterr().out
    assert code == 0
    assert "baseline  ses-sal: sub-01/ses-sal/pet/sub-01_ses-sal_pet.nii.gz | 5 frames, " in out
    assert "frame(s) 2 excluded" in out
    assert "note: sub-01 ses-sal: excluded 1 frame(s) of sub-01_ses-sal_pet.nii.gz" in out
    assert "skipped sub-02: sub-02: challenge session ses-nal not found" in out
    # without the option the bad frame stops the run, naming it
    assert main([*argv, "--dry-run"]) == 1
    assert "frame 2: every finite voxel is 0" in capsys.readouterr().err
