"""Output names, atomic writes and the dataset description."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_app.outputs.io import (
    atomic_write,
    write_json,
    write_nifti,
    write_text,
    write_tsv,
)
from bids_app.outputs.manifest import remove_participant_leftovers
from bids_app.outputs.names import (
    BIDSIGNORE,
    DESCRIPTIONS,
    GROUP_MAPS,
    Space,
    derivative_name,
    group_map_name,
    preproc_outputs,
    session_outputs,
    sidecar_name,
)
from bids_app.outputs.sidecars import (
    GROUP_TABLE_COLUMNS,
    confounds_sidecar,
    dataset_description,
    group_table_sidecar,
    write_dataset_description,
)

SPACE = Space("MNI152NLin2009aSym", 2)


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


def killed_mid_write(target: Path) -> None:
    """Start an atomic write of ``target`` in a child process that dies before the rename."""
    code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from bids_app.outputs.io import atomic_write\n"
        "with atomic_write(Path(sys.argv[1])) as tmp:\n"
        "    tmp.write_text('half')\n"
        "    os._exit(9)\n"
    )
    assert subprocess.run([sys.executable, "-c", code, str(target)]).returncode == 9


def test_leftovers_of_a_killed_participant_run_are_removed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    own = [
        out / "sub-01" / "ses-sal" / "pet" / "sub-01_ses-sal_desc-bp_pet.nii.gz",
        out / "logs" / "sub-01_outputs.json",
        out / "sub-01.html",
    ]
    others = [
        out / "sub-010" / "pet" / "sub-010_desc-bp_pet.nii.gz",
        out / "logs" / "sub-010_outputs.json",
        out / "logs" / "summary.tsv",
    ]
    for target in own + others:
        killed_mid_write(target)
    hidden = sorted(p for p in out.rglob(".*") if p.is_file())
    assert len(hidden) == len(own) + len(others)  # one temporary per killed write
    assert not any(target.exists() for target in own + others)

    removed = remove_participant_leftovers(out, "01")

    assert sorted(p.parent for p in removed) == sorted(t.parent for t in own)
    left = sorted(p for p in out.rglob(".*") if p.is_file())
    assert sorted(p.parent for p in left) == sorted(t.parent for t in others)
    assert remove_participant_leftovers(out, "01") == []
    assert remove_participant_leftovers(tmp_path / "missing", "01") == []


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


def test_dataset_files_make_a_derivative_dataset(tmp_path: Path) -> None:
    (tmp_path / "README").write_text("the user's own README")
    write_dataset_description(tmp_path, "1.2.3")
    ignore = (tmp_path / ".bidsignore").read_text().splitlines()
    assert [line for line in ignore if not line.startswith("#")] == list(BIDSIGNORE)
    descriptions = pd.read_csv(tmp_path / "descriptions.tsv", sep="\t")
    assert list(descriptions.desc_id) == [f"desc-{label}" for label in DESCRIPTIONS]
    assert (tmp_path / "README").read_text() == "the user's own README"
    assert not (tmp_path / "README.md").exists()
    write_dataset_description(tmp_path / "fresh", "1.2.3")
    assert "bids_app derivatives" in (tmp_path / "fresh" / "README.md").read_text()


def _desc_labels(names: list[str]) -> set[str]:
    return {part[5:] for name in names for part in name.split("_") if part.startswith("desc-")}


def test_every_desc_label_is_described() -> None:
    names = [p.name for p in session_outputs("01", "sal", {}, SPACE, "AAL3").values()]
    for role in ("baseline", "challenge"):
        outputs = preproc_outputs("01", "sal", {}, SPACE, role, [".nii.gz", ".mat", ".mat"])
        names += [p.name for p in outputs.values()]
    names += [group_map_name(kind, "BPND", "nalMinussal", SPACE) for kind in GROUP_MAPS]
    labels = {part[5:] for name in names for part in name.split("_") if part.startswith("desc-")}
    assert labels == set(DESCRIPTIONS)


def test_preproc_outputs_follow_bids_and_fmriprep_names() -> None:
    base = preproc_outputs(
        "01", "sal", {"trc": "raclopride"}, SPACE, "baseline", [".nii.gz", ".mat"]
    )
    assert base["preproc"].name == (
        "sub-01_ses-sal_trc-raclopride_space-MNI152NLin2009aSym_res-2_desc-preproc_pet.nii.gz"
    )
    assert base["hmc"].name == (
        "sub-01_ses-sal_trc-raclopride_from-orig_to-petref_mode-image_desc-hmc_xfm.txt"
    )
    assert base["norm1"].name.endswith("_to-MNI152NLin2009aSym_mode-image_desc-norm1_xfm.nii.gz")
    assert base["norm2"].name.endswith("_desc-norm2_xfm.mat")
    assert base["norm2_json"].name.endswith("_desc-norm2_xfm.json")
    assert "coreg" not in base
    with pytest.raises(ValueError, match="at most 3 are named"):
        preproc_outputs("01", "sal", {}, SPACE, "baseline", [".mat"] * 4)
    challenge = preproc_outputs("01", "nal", {"trc": "raclopride"}, SPACE, "challenge")
    assert challenge["coreg"].name == (
        "sub-01_ses-nal_trc-raclopride_from-petref_to-baseline_mode-image_desc-coreg_xfm.txt"
    )
    assert not any(k.startswith("norm") for k in challenge)


def test_group_table_sidecars_describe_every_column() -> None:
    for kind, columns in GROUP_TABLE_COLUMNS.items():
        sidecar = group_table_sidecar(kind, list(columns))
        assert set(sidecar) == set(columns)
        assert all(entry["Description"] for entry in sidecar.values())  # type: ignore[index]
    measures = group_table_sidecar(
        "participant_measures", ["participant_id", "cortisol_change"], {"cortisol": "nmol/L"}
    )
    assert measures["cortisol_change"]["Units"] == "nmol/L"  # type: ignore[index]
    with pytest.raises(ValueError, match=r"roi_stats\.tsv column 'mystery'"):
        group_table_sidecar("roi_stats", ["measure", "mystery"])


def test_confounds_sidecar_describes_every_column() -> None:
    columns = ["trans_x", "rot_z", "framewise_displacement", "usable", "source_frame"]
    sidecar = confounds_sidecar(columns, [0.0, 0.0, 0.0], [5, 6], "sub-01/pet/x.nii.gz")
    assert set(columns) <= set(sidecar)
    with pytest.raises(ValueError, match="'dvars' has no description"):
        confounds_sidecar(["dvars"], [0.0, 0.0, 0.0], [5], "x")


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
    assert names["fitstatus"].name == (
        "sub-01_ses-sal_trc-raclopride_space-MNI152NLin2009aSym_res-2_desc-fitstatus_mask.nii.gz"
    )
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
    assert sidecar_name("a_xfm.txt") == "a_xfm.json"
    assert sidecar_name("a_xfm.mat") == "a_xfm.json"
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
