"""Validator findings: the accepted ones (BOM, phenotype index) and grouped summaries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.globbing import glob_some

from bids_app.bidsio import validator
from bids_app.bidsio.inheritance import UTF8_BOM
from bids_app.bidsio.validator import (
    ACCEPTED,
    Finding,
    run_bids_validator,
    summarise_findings,
    triage_findings,
)

needs_validator = pytest.mark.skipif(
    validator.validator_command() is None, reason="bids-validator-deno not installed"
)
SAL_JSON = "/sub-01/ses-sal/pet/sub-01_ses-sal_pet.json"
SAL_NII = "/sub-01/ses-sal/pet/sub-01_ses-sal_pet.nii.gz"
NAL_NII = "/sub-01/ses-nal/pet/sub-01_ses-nal_pet.nii.gz"


def _error(code: str, location: str, sub: str = "") -> Finding:
    return Finding(code, sub, "error", location, f"{code} message")


def _bom(root: Path, rel: str) -> None:
    path = root / rel.lstrip("/")
    path.write_bytes(UTF8_BOM + path.read_bytes())


def test_bom_and_its_consequences_are_accepted(synthetic_bids) -> None:
    root = synthetic_bids(post=lambda r: _bom(r, SAL_JSON))
    findings = [
        _error("INVALID_JSON_ENCODING", SAL_JSON),
        _error("SIDECAR_KEY_REQUIRED", SAL_NII, "TracerName"),
        _error("SIDECAR_KEY_REQUIRED", NAL_NII, "TracerName"),  # ses-nal has no BOM: a real one
        _error("TSV_INDEX_VALUE_NOT_UNIQUE", "/phenotype/subjective.tsv"),
        _error("TSV_INDEX_VALUE_NOT_UNIQUE", "/participants.tsv"),
        Finding("JSON_KEY_RECOMMENDED", "", "warning", "/dataset_description.json", "x"),
    ]
    errors, accepted = triage_findings(root, findings)
    assert [(f.code, f.location) for f in errors] == [
        ("SIDECAR_KEY_REQUIRED", NAL_NII),
        ("TSV_INDEX_VALUE_NOT_UNIQUE", "/participants.tsv"),
    ]
    assert [reason for _, reason in accepted] == [
        ACCEPTED["bom"],
        ACCEPTED["bom_inherited"],
        ACCEPTED["phenotype_index"],
    ]


def test_bom_with_broken_json_is_not_accepted(synthetic_bids) -> None:
    def broken(root: Path) -> None:
        (root / SAL_JSON.lstrip("/")).write_bytes(UTF8_BOM + b'{"Units": ')

    errors, accepted = triage_findings(
        synthetic_bids(post=broken), [_error("INVALID_JSON_ENCODING", SAL_JSON)]
    )
    assert len(errors) == 1
    assert accepted == []


def test_summary_groups_by_code() -> None:
    findings = [_error("SYMLINK_CYCLE", f"/sub-01/loop{i}") for i in range(200)]
    findings += [_error("SIDECAR_KEY_REQUIRED", SAL_NII, key) for key in "ABCDEFG"]
    lines = summarise_findings(findings)
    assert lines == [
        "SYMLINK_CYCLE: 200 finding(s) in 200 file(s), e.g. /sub-01/loop0, /sub-01/loop1, "
        "/sub-01/loop2 (and 197 more): SYMLINK_CYCLE message",
        f"SIDECAR_KEY_REQUIRED: 7 finding(s) in 1 file(s), e.g. {SAL_NII} [A, B, C, D, E and 2 "
        "more]",
    ]


@needs_validator
def test_real_validator_bom_dataset_has_no_remaining_error(synthetic_bids) -> None:
    def bom_everywhere(root: Path) -> None:
        for path in glob_some(root, "*_pet.json", recursive=True):
            path.write_bytes(UTF8_BOM + path.read_bytes())

    root = synthetic_bids(
        {"01": {"sal": {}, "nal": {}}, "02": {"sal": {}, "nal": {}}}, post=bom_everywhere
    )
    result = run_bids_validator(root)
    assert result.available, result.reason
    assert len(result.errors) > 50  # the flood: every required key of every scan
    errors, accepted = triage_findings(root, result.findings)
    assert errors == []
    assert len(accepted) == len(result.errors)


@needs_validator
def test_real_validator_symlink_loop_is_summarised(synthetic_bids) -> None:
    def loop(root: Path) -> None:
        (root / "sub-01/ses-sal/loop").symlink_to("..")

    root = synthetic_bids(post=loop)
    result = run_bids_validator(root)
    errors, _ = triage_findings(root, result.findings)
    lines = summarise_findings(errors)
    assert len(errors) > 20
    assert len(lines) == len({f.code for f in errors}) <= 4
    assert any(line.startswith("SYMLINK_CYCLE: ") for line in lines)
    assert sum(len(line) for line in lines) < 2000


def test_phenotype_sidecar_json_is_valid_json(tmp_path: Path) -> None:
    # the wide form's sidecar describes each column; a BOM there is accepted as well
    (tmp_path / "phenotype").mkdir()
    path = tmp_path / "phenotype/subjective.json"
    path.write_bytes(UTF8_BOM + json.dumps({"sick_t10": {"Description": "x"}}).encode())
    errors, accepted = triage_findings(
        tmp_path, [_error("INVALID_JSON_ENCODING", "/phenotype/subjective.json")]
    )
    assert errors == []
    assert accepted[0][1] == ACCEPTED["bom"]
