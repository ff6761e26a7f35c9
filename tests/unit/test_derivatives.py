"""Derivative names, sidecars and atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_app.bidsio.derivatives import (
    atomic_write,
    dataset_description,
    derivative_name,
    write_dataset_description,
    write_json,
    write_nifti,
    write_tsv,
)


def test_contract_map_name_keeps_source_entities() -> None:
    source = {"sub": "01", "ses": "sal", "trc": "raclopride"}
    name = derivative_name(
        source,
        "mimap",
        ".nii.gz",
        space="MNI152NLin2009aSym",
        res="2",
        model="SRTM2",
        meas="BPND",
    )
    assert name == (
        "sub-01_ses-sal_trc-raclopride_space-MNI152NLin2009aSym_res-2_model-SRTM2_meas-BPND"
        "_mimap.nii.gz"
    )


def test_entity_order_is_fixed_whatever_the_call_order() -> None:
    source = {"run": "2", "sub": "01", "ses": "nal", "rec": "acdyn"}
    name = derivative_name(source, "tacs", ".tsv", desc="preproc", seg="AAL3")
    assert name == "sub-01_ses-nal_rec-acdyn_run-2_seg-AAL3_desc-preproc_tacs.tsv"


def test_unknown_entity_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown derivative entities"):
        derivative_name({"sub": "01"}, "x", ".tsv", colour="red")


def test_atomic_write_leaves_nothing_on_error(tmp_path: Path) -> None:
    target = tmp_path / "a" / "file.tsv"

    def write_then_fail() -> None:
        with atomic_write(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail()
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_atomic_write_replaces_existing(tmp_path: Path) -> None:
    target = tmp_path / "file.json"
    target.write_text("old")
    write_json(target, {"b": np.float32(1.5), "a": [np.int64(2), float("nan")], "p": Path("x")})
    assert json.loads(target.read_text()) == {"a": [2, None], "b": 1.5, "p": "x"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.json"]


def test_tsv_uses_na_for_missing(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    write_tsv(path, pd.DataFrame({"roi": ["a", "b"], "BPND": [1.25, np.nan]}))
    assert path.read_text() == "roi\tBPND\na\t1.25\nb\tn/a\n"


def test_nifti_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "m.nii.gz"
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    write_nifti(path, nib.Nifti1Image(data, np.eye(4)))
    np.testing.assert_array_equal(np.asarray(nib.load(path).dataobj), data)


def test_dataset_description_is_a_derivative(tmp_path: Path) -> None:
    desc = dataset_description({"Type": "docker", "Tag": "bids_app:1"})
    assert desc["DatasetType"] == "derivative"
    assert desc["GeneratedBy"][0]["Name"] == "bids_app"
    assert desc["GeneratedBy"][0]["Container"] == {"Type": "docker", "Tag": "bids_app:1"}
    path = write_dataset_description(tmp_path)
    loaded = json.loads(path.read_text())
    assert {"Name", "BIDSVersion", "DatasetType", "GeneratedBy"} <= set(loaded)
