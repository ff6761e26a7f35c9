"""Command-line parsing: options, validators and usage-error exit codes (2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bids_app import __version__
from bids_app.cli.parser import build_parser
from bids_app.cli.run import main
from bids_app.config import Config


@pytest.fixture
def bids_dir(tmp_path: Path) -> Path:
    path = tmp_path / "bids"
    path.mkdir()
    return path


def parse(*args: str) -> Config:
    ns = build_parser().parse_args(list(args))
    return Config.from_namespace(ns, command_line=("bids_app", *args))


def test_help_exits_zero_and_describes_levels(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for text in ("participant", "group", "--participant-label", "--baseline-session", "SRTM2"):
        assert text in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["participant", "--nprocs", "0"], "must be 1 or more"),
        (["participant", "--nprocs", "two"], "must be a whole number"),
        (["banana"], "invalid choice"),
        (["group", "--cluster-forming-p", "1.5"], "between 0 and 1"),
        (["group", "--smoothing-fwhm", "-2"], "greater than 0"),
        (["group", "--n-permutations", "many"], "'exact' or a whole number"),
        (["participant", "--participant-label", "sub-0_1"], "letters and digits"),
        (["participant", "--k2a-range", "0.5", "0.1"], "MIN must be below MAX"),
        (
            ["participant", "--k2prime-pooling", "joint", "--k2prime-method", "voxel_median"],
            "use --k2prime-method roi",
        ),
        (["participant", "--k2prime-method", "mean"], "invalid choice"),
        (["group", "--qc-fail", "ignore"], "invalid choice"),
        (["group", "--min-participants", "1"], "must be 2 or more"),
    ],
)
def test_usage_errors_exit_2(
    bids_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    with pytest.raises(SystemExit) as exc:
        main([str(bids_dir), str(tmp_path / "out"), *extra])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_bids_dir_is_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "nope"), str(tmp_path / "out"), "participant"])
    assert exc.value.code == 2
    assert "folder not found" in capsys.readouterr().err


def test_atlas_labels_need_tsv(
    bids_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = tmp_path / "labels.nii.gz"
    labels.write_bytes(b"")
    with pytest.raises(SystemExit) as exc:
        main([str(bids_dir), str(tmp_path / "out"), "participant", "--atlas-labels", str(labels)])
    assert exc.value.code == 2
    assert "--atlas-labels needs --atlas-tsv" in capsys.readouterr().err


def test_labels_strip_prefixes_and_deduplicate(bids_dir: Path, tmp_path: Path) -> None:
    config = parse(
        str(bids_dir),
        str(tmp_path / "out"),
        "participant",
        "--participant_label",
        "sub-01",
        "02",
        "01",
        "--baseline-session",
        "ses-placebo",
        "--challenge_session",
        "drug",
    )
    assert config.participant_label == ("01", "02")
    assert config.baseline_session == "placebo"
    assert config.challenge_session == "drug"


def test_defaults_and_provenance_json(bids_dir: Path, tmp_path: Path) -> None:
    config = parse(str(bids_dir), str(tmp_path / "out"), "group", "-vv")
    assert config.smoothing_fwhm_mm == 5.0
    assert config.cluster_forming_p == 0.01
    assert config.n_permutations == "exact"
    assert config.variance_regularisation is True
    assert config.work_dir.name.startswith("bids_app_work_")
    assert config.work_dir != parse(str(bids_dir), str(tmp_path / "other"), "group").work_dir
    assert config.verbosity == 2
    dumped = json.loads(config.to_json())
    assert dumped["bids_dir"] == str(bids_dir.resolve())
    assert dumped["k2a_range_per_min"] is None  # chosen from k2' by the kinetics
    assert dumped["k2prime_pooling"] == "per_session"
    assert dumped["command_line"][:2] == ["bids_app", str(bids_dir)]
    assert (config.qc_fail, config.min_participants) == ("exclude", 3)
    assert "qc_fail" not in config.participant_options()  # does not change participant results


def test_failure_options(bids_dir: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    config = parse(str(bids_dir), out, "group", "--qc-fail", "warn", "--min-participants", "5")
    assert (config.qc_fail, config.min_participants) == ("warn", 5)


def test_k2prime_pooling_and_k2a_range(bids_dir: Path, tmp_path: Path) -> None:
    config = parse(
        str(bids_dir),
        str(tmp_path / "out"),
        "participant",
        "--k2prime-pooling",
        "joint",
        "--k2a-range",
        "0.01",
        "1.5",
    )
    assert config.k2prime_pooling == "joint"
    assert config.k2a_range_per_min == (0.01, 1.5)
    assert "k2prime_pooling" in config.participant_options()


def test_numeric_permutations_and_switches(bids_dir: Path, tmp_path: Path) -> None:
    config = parse(
        str(bids_dir),
        str(tmp_path / "out"),
        "group",
        "--n-permutations",
        "0",
        "--no-variance-regularisation",
        "-q",
    )
    assert config.n_permutations == 0
    assert config.variance_regularisation is False
    assert config.verbosity == -1
