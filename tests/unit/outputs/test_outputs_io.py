"""Output names, atomic writes and the dataset description."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_app.outputs.io import atomic_write, write_json, write_nifti, write_text, write_tsv
from bids_app.outputs.names import (
    Space,
    derivative_name,
    group_map_name,
    session_outputs,
    sidecar_name,
)
from bids_app.outputs.sidecars import dataset_description, write_dataset_description


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
    desc = dataset_description("1.2.3", {"Type": "docker", "Tag": "bids_app:1"})
    assert desc["DatasetType"] == "derivative"
    assert desc["GeneratedBy"][0]["Name"] == "bids_app"
    assert desc["GeneratedBy"][0]["Container"] == {"Type": "docker", "Tag": "bids_app:1"}
    path = write_dataset_description(tmp_path, "1.2.3")
    loaded = json.loads(path.read_text())
    assert {"Name", "BIDSVersion", "DatasetType", "GeneratedBy"} <= set(loaded)
    assert loaded["GeneratedBy"][0]["Version"] == "1.2.3"


def test_session_outputs_name_every_file_and_its_sidecar() -> None:
    names = session_outputs(
        "01", "sal", {"trc": "raclopride"}, Space("MNI152NLin2009aSym", 2), "AAL3"
    )
    folder = Path("sub-01/ses-sal/pet")
    assert names["BPND"] == folder / (
        "sub-01_ses-sal_trc-raclopride_space-MNI152NLin2009aSym_res-2_model-SRTM2_meas-BPND"
        "_mimap.nii.gz"
    )
    assert names["tacs"].name == "sub-01_ses-sal_trc-raclopride_seg-AAL3_desc-preproc_tacs.tsv"
    kinds = {k for k in names if not k.endswith("_json")}
    assert kinds == {"confounds", "BPND", "R1", "k2a", "fitstatus", "tacs", "kinpar"}
    for kind in kinds:
        assert names[f"{kind}_json"] == names[kind].parent / sidecar_name(names[kind].name)


def test_group_map_names_keep_the_contract_t_map() -> None:
    space = Space("MNI152NLin2009aSym", 2)
    assert group_map_name("t", "BPND", "nalMinussal", space) == (
        "space-MNI152NLin2009aSym_res-2_meas-BPND_contrast-nalMinussal_stat-t_statmap.nii.gz"
    )
    assert group_map_name("p_decrease", "R1", "nalMinussal", space).endswith(
        "_contrast-nalMinussal_stat-p_desc-decrease_statmap.nii.gz"
    )
    with pytest.raises(ValueError, match="unknown group map"):
        group_map_name("z", "BPND", "x", space)


def test_sidecar_name_refuses_other_extensions() -> None:
    assert sidecar_name("a_mimap.nii.gz") == "a_mimap.json"
    assert sidecar_name("a.tsv") == "a.json"
    with pytest.raises(ValueError, match="has no sidecar"):
        sidecar_name("a.html")


def test_written_files_follow_the_umask(tmp_path: Path) -> None:
    # mkstemp creates 0600 files; outputs must be readable as the umask allows (0644 here)
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
