"""The BIDS validator wrapper: offline JSON run, parsing, and graceful unavailability."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bids_app.bidsio import validator
from bids_app.bidsio.validator import ValidatorResult, parse_validator_json, run_bids_validator

needs_validator = pytest.mark.skipif(
    validator.validator_command() is None, reason="bids-validator-deno not installed"
)


@needs_validator
def test_valid_synthetic_tree(synthetic_bids) -> None:
    result = run_bids_validator(synthetic_bids())
    assert isinstance(result, ValidatorResult)
    assert result.available, result.reason
    assert result.errors == []
    assert result.ok
    assert result.version is not None
    assert result.schema_version is not None
    assert result.warnings  # e.g. recommended fields


@needs_validator
def test_invalid_synthetic_tree(synthetic_bids) -> None:
    def spoil(root: Path) -> None:
        sidecar = root / "sub-01/ses-sal/pet/sub-01_ses-sal_pet.json"
        metadata = json.loads(sidecar.read_text())
        del metadata["TracerName"]
        metadata["FrameDuration"] = metadata["FrameDuration"][:-1]
        sidecar.write_text(json.dumps(metadata))

    result = run_bids_validator(synthetic_bids(post=spoil))
    assert result.available
    assert not result.ok
    joined = "\n".join(result.errors)
    assert "SIDECAR_KEY_REQUIRED[TracerName]: /sub-01/ses-sal/pet/sub-01_ses-sal_pet.nii.gz" in (
        joined
    )
    assert "PET_FRAME_CONSISTENCY_FRAME_DURATION: /sub-01/ses-sal/pet/" in joined
    assert all("\n" not in line for line in result.errors)


@needs_validator
def test_ignore_codes_demotes_errors(synthetic_bids) -> None:
    def orphan(root: Path) -> None:
        (root / "sub-01/ses-sal/pet/sub-01_ses-sal_pet.nii.gz").unlink()

    root = synthetic_bids(post=orphan)
    strict = run_bids_validator(root)
    assert any(e.startswith("SIDECAR_WITHOUT_DATAFILE") for e in strict.errors)
    lenient = run_bids_validator(root, ignore_codes={"SIDECAR_WITHOUT_DATAFILE"})
    assert not any(e.startswith("SIDECAR_WITHOUT_DATAFILE") for e in lenient.errors)
    assert any(w.startswith("SIDECAR_WITHOUT_DATAFILE") for w in lenient.warnings)


@needs_validator
def test_command_runs_without_network_permission() -> None:
    command = validator.validator_command()
    assert command is not None
    if "run" in command:  # the direct bundle route: read-only, no network
        assert "--allow-read" in command
        assert not any(arg.startswith(("--allow-net", "--allow-write")) for arg in command)


def test_missing_package(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(validator, "validator_command", lambda: None)
    result = run_bids_validator(tmp_path)
    assert not result.available
    assert "bids-validator-deno is not installed" in result.reason
    assert not result.ok


def test_garbage_output(monkeypatch, tmp_path) -> None:
    command = [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"]
    monkeypatch.setattr(validator, "validator_command", lambda: command)
    result = run_bids_validator(tmp_path)
    assert not result.available
    assert "exit code 3" in result.reason
    assert "boom" in result.reason


def test_timeout(monkeypatch, tmp_path) -> None:
    command = [sys.executable, "-c", "import time; time.sleep(10)"]
    monkeypatch.setattr(validator, "validator_command", lambda: command)
    result = run_bids_validator(tmp_path, timeout_s=0.3)
    assert not result.available
    assert "did not finish within 0.3 s" in result.reason


def test_not_startable(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(validator, "validator_command", lambda: [str(tmp_path / "missing-exe")])
    result = run_bids_validator(tmp_path)
    assert not result.available
    assert "could not be started" in result.reason


def test_parse_json_lines() -> None:
    document = {
        "issues": {
            "issues": [
                {"code": "A_ERR", "severity": "error", "location": "/x.json"},
                {
                    "code": "B_WARN",
                    "subCode": "Field",
                    "severity": "warning",
                    "location": "/y.json",
                    "issueMessage": "multi\nline   text",
                },
                {"code": "C_ERR", "severity": "error", "affects": ["/a", "/b"]},
            ],
            "codeMessages": {"A_ERR": "Something is wrong.\n"},
        },
        "summary": {"schemaVersion": "1.2.7"},
    }
    errors, warnings, schema = parse_validator_json(json.dumps(document))
    assert errors == ["A_ERR: /x.json: Something is wrong.", "C_ERR: /a, /b"]
    assert warnings == ["B_WARN[Field]: /y.json: multi line text"]
    assert schema == "1.2.7"


def test_parse_rejects_other_json() -> None:
    with pytest.raises(ValueError, match="no 'issues'"):
        parse_validator_json("[1, 2]")
