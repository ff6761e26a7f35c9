"""Real-world inputs end to end through ``main()``: what BIDS allows, and what the data mean.

Each test changes a private copy of the small synthetic study the way datasets from OpenNeuro
and labs differ from the app's own examples, runs the real command and checks the exit code,
the message, that OUTPUT_DIR holds only complete files, and that the input tree is unchanged:

- inherited sidecars (a root ``pet.json``), UTF-8 byte-order marks, a wide phenotype table and
  the official validator (participant ``--dry-run``);
- a symbolic-link loop: the validator's flood summarised by code;
- an uncorrected copy of a scan (``ImageDecayCorrected: false``) gives the BPND of the
  reference run on the decay-corrected original;
- an unusable frame excluded with ``--exclude-bad-frames``, NaN outside a limited field of view,
  and a participant lacking a session, skipped with its reason;
- the disk filling up while the manifest is written: no map stays without a manifest;
- the group level on the wide phenotype, warning about participants processed differently.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from helpers.globbing import glob_some
from helpers.tree_hash import hash_tree, incomplete_files, non_log_files, tree_diff

from bids_app.cli.run import main
from bids_app.outputs.names import DATASET_FILES
from bids_app.pipelines import participant_run

pytestmark = pytest.mark.integration

PER_SCAN_KEYS = ("FrameTimesStart", "FrameDuration", "DecayCorrectionFactor", "TimeZero")
UTF8_BOM = b"\xef\xbb\xbf"


def pet_path(bids: Path, sub: str = "01", ses: str = "sal", ext: str = ".nii.gz") -> Path:
    return (
        bids / f"sub-{sub}" / f"ses-{ses}" / "pet" / f"sub-{sub}_ses-{ses}_trc-raclopride_pet{ext}"
    )


def run(bids: Path, out: Path, work: Path, *args: str, validator: bool = False) -> int:
    argv = [str(bids), str(out), *args, "--work-dir", str(work)]
    if not validator and args[0] == "participant":
        argv.append("--skip-bids-validation")
    return main(argv)


def move_shared_keys_to_root(bids: Path) -> None:
    """Keep only per-scan keys in each scan's sidecar; the rest in one root ``pet.json``."""
    shared: dict = {}
    for sidecar in glob_some(bids, "sub-*/ses-*/pet/*_pet.json"):
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        shared = {k: v for k, v in meta.items() if k not in PER_SCAN_KEYS}
        own = {k: meta[k] for k in PER_SCAN_KEYS}
        sidecar.write_bytes(UTF8_BOM + json.dumps(own, indent=1).encode("utf-8"))
    for key in ("PharmaceuticalName", "PharmaceuticalDoseAmount", "PharmaceuticalDoseRegimen"):
        shared.pop(key)  # differ between sessions
    (bids / "pet.json").write_text(json.dumps(shared, indent=1), encoding="utf-8")


def phenotype_to_wide(bids: Path) -> None:
    """Rewrite the long phenotype tables in the BIDS-valid wide form, with sidecars."""
    for name in ("subjective", "physiology"):
        path = bids / "phenotype" / f"{name}.tsv"
        long = pd.read_csv(path, sep="\t")
        wide = long.pivot(index=["participant_id", "session_id"], columns="time_min")
        wide.columns = [
            f"{measure}_t{'minus' if t < 0 else ''}{abs(int(t))}" for measure, t in wide.columns
        ]
        wide = wide.reset_index()
        wide.to_csv(path, sep="\t", index=False, na_rep="n/a", lineterminator="\n")
        sidecar = {
            "session_id": {"Description": "Session label."},
            **{
                c: {"Description": f"{c}: measure and minutes from the drug"}
                for c in wide.columns[2:]
            },
        }
        path.with_suffix(".json").write_text(json.dumps(sidecar), encoding="utf-8")
    (bids / ".bidsignore").unlink(missing_ok=True)


# --------------------------------------------------------------------- BIDS permissive forms
def test_inherited_bom_sidecars_and_wide_phenotype_pass_with_the_validator(
    bids_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    move_shared_keys_to_root(bids_copy)
    phenotype_to_wide(bids_copy)
    before = hash_tree(bids_copy)
    code = run(
        bids_copy, tmp_path / "out", tmp_path / "work", "participant", "--dry-run", validator=True
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err[-3000:]
    assert "participants : 4" in captured.out
    accepted = [line for line in captured.err.splitlines() if "error(s) accepted" in line]
    assert len(accepted) == 1, captured.err[-3000:]
    assert "INVALID_JSON_ENCODING x8" in accepted[0]
    assert "TSV_INDEX_VALUE_NOT_UNIQUE" in accepted[0]
    assert len(captured.err) < 10_000
    assert tree_diff(before, hash_tree(bids_copy)) == []


def test_symlink_loop_flood_is_summarised(
    bids_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (bids_copy / "sub-01" / "ses-sal" / "loop").symlink_to("..")
    before = hash_tree(bids_copy)
    out = tmp_path / "out"
    code = run(bids_copy, out, tmp_path / "work", "participant", validator=True)
    err = capsys.readouterr().err
    assert code == 1
    assert re.search(r"BIDS validator: SYMLINK_CYCLE: \d+ finding\(s\) in \d+ file\(s\)", err)
    assert re.search(
        r"\d+ error\(s\) of \d kind\(s\), listed above\..*--skip-bids-validation", err
    )
    problem_lines = [line for line in err.splitlines() if line.lstrip().startswith("- ")]
    assert len(problem_lines) <= 5
    assert len(err) < 10_000  # was 940 kB on a real dataset
    assert non_log_files(out) == []
    assert tree_diff(before, hash_tree(bids_copy)) == []


# ----------------------------------------------------------------------------- decay correction
def test_uncorrected_copy_gives_the_same_bpnd(
    bids_copy: Path,
    tmp_path: Path,
    reference_run,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """sub-01 ses-nal stored without decay correction: the app corrects it to the same data."""
    assert reference_run.exit_code == 0
    image, sidecar = pet_path(bids_copy, ses="nal"), pet_path(bids_copy, ses="nal", ext=".json")
    meta = json.loads(sidecar.read_text())
    factors = np.asarray(meta["DecayCorrectionFactor"], dtype=np.float32)  # the simulator's
    img = nib.load(image)
    data = np.asarray(img.dataobj, dtype=np.float32) / factors
    nib.save(nib.Nifti1Image(data, img.affine, img.header), image)
    meta["ImageDecayCorrected"] = False
    sidecar.write_text(json.dumps(meta, indent=2))
    before = hash_tree(bids_copy)
    out = tmp_path / "out"
    code = run(
        bids_copy, out, tmp_path / "work", "participant", "--participant-label", "01",
        "--nprocs", "1", "--omp-nthreads", "1",
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err[-3000:]
    assert tree_diff(before, hash_tree(bids_copy)) == []
    assert incomplete_files(out) == []
    summary = pd.read_csv(out / "logs" / "summary.tsv", sep="\t", keep_default_na=False)
    nal = summary.set_index("session_id").loc["ses-nal", "message"]
    assert "decay-corrected by the app to the injection" in nal
    manifest = json.loads((out / "logs" / "sub-01_outputs.json").read_text())
    reference = json.loads((reference_run.output_dir / "logs" / "sub-01_outputs.json").read_text())
    for role in ("baseline", "challenge"):
        new = pd.read_csv(out / manifest["sessions"][role]["kinpar"], sep="\t").set_index("roi")
        ref = pd.read_csv(
            reference_run.output_dir / reference["sessions"][role]["kinpar"], sep="\t"
        ).set_index("roi")
        # float32 rounding of the round trip moves registration a little: measured 5e-4 in
        # BPND and 3e-3 in R1 at most over the ROIs, against -37 % BPND without correction
        np.testing.assert_allclose(new["BPND"], ref["BPND"], rtol=2e-3, atol=2e-3)
        np.testing.assert_allclose(new["R1"], ref["R1"], rtol=2e-3, atol=5e-3)
    new_map = nib.load(out / manifest["sessions"]["challenge"]["BPND"]).get_fdata()
    ref_map = nib.load(
        reference_run.output_dir / reference["sessions"]["challenge"]["BPND"]
    ).get_fdata()
    both = np.isfinite(new_map) & np.isfinite(ref_map)
    assert np.median(np.abs(new_map[both] - ref_map[both])) < 2e-3


# ----------------------------------------------------------------------------- frames and sessions
def test_excluded_frame_and_skipped_participant(
    bids_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = pet_path(bids_copy, ses="nal")
    img = nib.load(image)
    data = np.asarray(img.dataobj, dtype=np.float32)
    data[..., 7] = 0.0  # a frame lost in the export
    nib.save(nib.Nifti1Image(data, img.affine, img.header), image)
    # the baseline exported with NaN outside a limited axial field of view (the vertex)
    image = pet_path(bids_copy)
    img = nib.load(image)
    data = np.asarray(img.dataobj, dtype=np.float32)
    data[:, :, -8:, :] = np.nan
    nib.save(nib.Nifti1Image(data, img.affine, img.header), image)
    shutil.rmtree(bids_copy / "sub-03" / "ses-nal")
    before = hash_tree(bids_copy)
    out = tmp_path / "out"
    code = run(
        bids_copy, out, tmp_path / "work", "participant", "--participant-label", "01", "03",
        "--exclude-bad-frames", "--nprocs", "1", "--omp-nthreads", "1",
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err[-3000:]
    assert "sub-03 skipped: not processed: sub-03: challenge session ses-nal not found" in err
    assert "excluded 1 frame(s) of sub-01_ses-nal_trc-raclopride_pet.nii.gz" in err
    assert tree_diff(before, hash_tree(bids_copy)) == []
    assert incomplete_files(out) == []
    summary = pd.read_csv(out / "logs" / "summary.tsv", sep="\t", keep_default_na=False)
    rows = {(r.participant_id, r.session_id): r for r in summary.itertuples()}
    skipped = rows[("sub-03", "n/a")]
    assert skipped.status == "skipped"
    assert "challenge session ses-nal not found (sessions present: sal)" in skipped.message
    assert rows[("sub-01", "ses-nal")].status == "success"
    assert "frame 7: every finite voxel is 0" in rows[("sub-01", "ses-nal")].message
    manifest = json.loads((out / "logs" / "sub-01_outputs.json").read_text())
    assert manifest["options"]["exclude_bad_frames"] is True
    nal = manifest["sessions"]["challenge"]
    tacs = pd.read_csv(out / nal["tacs"], sep="\t")
    start_s = json.loads(pet_path(bids_copy, ses="nal", ext=".json").read_text())[
        "FrameTimesStart"
    ]
    assert len(tacs) == 11
    assert tacs["frame_start"].tolist() == [s for i, s in enumerate(start_s) if i != 7]
    confounds = pd.read_csv(out / nal["confounds"], sep="\t")
    assert len(confounds) == 11
    kinpar = pd.read_csv(out / nal["kinpar"], sep="\t").set_index("roi")
    assert 0.5 < kinpar.loc["striatum", "BPND"] < 5.0
    report = (out / "sub-01.html").read_text(encoding="utf-8")
    assert "excluded 1 frame(s)" in report


# ----------------------------------------------------------------------------- publishing
def test_disk_full_while_writing_the_manifest(
    bids_copy: Path,
    tmp_path: Path,
    reference_run,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The maps are published, then the manifest cannot be written: the maps are taken back.

    The reference run's checkpoints (copied) make this run cheap: only publishing is redone.
    """
    work = Path(shutil.copytree(reference_run.work_dir, tmp_path / "work"))

    published: list[str] = []

    def full_disk(output_dir: Path, manifest: object) -> Path:
        published.extend(non_log_files(output_dir))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(output_dir / "logs"))

    monkeypatch.setattr(participant_run, "write_manifest", full_disk)
    before = hash_tree(bids_copy)
    out = tmp_path / "out"
    code = run(bids_copy, out, work, "participant", "--participant-label", "01")
    err = capsys.readouterr().err
    assert code == 1
    assert re.search(r"sub-01: .*No space left on device", err)
    # the maps were in place when the manifest failed, and are gone now
    assert any(name.endswith("_meas-BPND_mimap.nii.gz") for name in published)
    assert sorted(non_log_files(out)) == sorted(DATASET_FILES)  # dataset-level files only
    assert not (out / "logs" / "sub-01_outputs.json").exists()
    assert incomplete_files(out) == []
    assert tree_diff(before, hash_tree(bids_copy)) == []


def test_report_failure_keeps_the_maps_writes_a_crash_file_and_a_rerun_repairs_it(
    bids_copy: Path,
    tmp_path: Path,
    reference_run,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A report that cannot be built: the maps stay, the failure is explained, a rerun heals."""
    work = Path(shutil.copytree(reference_run.work_dir, tmp_path / "work"))
    out = tmp_path / "out"

    def broken(report: object) -> str:
        raise ValueError("figure could not be drawn")

    monkeypatch.setattr(participant_run, "render_participant", broken)
    assert run(bids_copy, out, work, "participant", "--participant-label", "01") == 1
    err = capsys.readouterr().err
    assert "sub-01 failed at stage report" in err
    assert "HTML report could not be built" in err  # the hint
    crash = glob_some(out / "logs", "crash-sub-01-*.txt")
    assert "== traceback ==" in crash[0].read_text(encoding="utf-8")
    assert glob_some(out, "sub-01/ses-*/pet/*_meas-BPND_mimap.nii.gz")
    assert not (out / "sub-01.html").exists()
    summary = pd.read_csv(out / "logs" / "summary.tsv", sep="\t")
    assert set(summary.status) == {"failed"}
    assert summary.message.str.startswith("report: ").all()

    monkeypatch.undo()
    assert run(bids_copy, out, work, "participant", "--participant-label", "01") == 0
    assert (out / "sub-01.html").is_file()
    manifest = json.loads((out / "logs" / "sub-01_outputs.json").read_text())
    assert "sub-01.html" in manifest["files"]


# ----------------------------------------------------------------------------- group level
def test_group_level_on_wide_phenotype_warns_about_mixed_settings(
    bids_copy: Path,
    fake_participant_outputs: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    phenotype_to_wide(bids_copy)
    out = Path(shutil.copytree(fake_participant_outputs, tmp_path / "out"))
    manifest_path = out / "logs" / "sub-04_outputs.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["options"] = {**manifest["options"], "k2prime_method": "voxel_median"}
    manifest_path.write_text(json.dumps(manifest))
    before = hash_tree(bids_copy)
    code = run(bids_copy, out, tmp_path / "work", "group", "--n-permutations", "0")
    err = capsys.readouterr().err
    assert code == 0, err[-3000:]
    warning = "participants were processed with different settings: option k2prime_method"
    assert warning in err
    assert "sub-04" in err.split(warning)[1].splitlines()[0]
    report = (out / "group" / "group.html").read_text(encoding="utf-8")
    assert "option k2prime_method" in report
    effects = pd.read_csv(out / "group" / "behavior_effects.tsv", sep="\t")
    assert set(effects["time_min"]) >= {10.0, 30.0, 60.0}
    assert tree_diff(before, hash_tree(bids_copy)) == []
