"""One participant fails; the others are delivered and the failure is explained (issue 15).

The small synthetic study with T1w images (4 participants); sub-04's T1w is replaced by an
all-zero image of the same grid, which passes input validation (readable, 3-D, sane voxel
sizes) but cannot be registered. The participant level must exit 1 naming the failure and
leave a crash file that says where it failed and what to look at; the group level must run on
the three others, exit 0, and name the excluded participant, its reason and its ignored
phenotype rows.

The other participants' T1w images are removed, so they take the PET-only path: T1w -> MNI SyN
costs minutes per participant on 2 busy cores (measured: >5 min) and adds nothing to what is
tested here.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_app.cli.run import main
from bids_app.qc import QcCheck, QcVerdict

pytestmark = pytest.mark.integration

FAILING = "04"
GOOD = ("01", "02", "03")


@dataclass(frozen=True)
class Runs:
    """Both levels on the study with one unusable T1w, and their run logs."""

    out: Path
    participant_code: int
    participant_log: str
    group_code: int
    group_log: str


@pytest.fixture(scope="module")
def runs(small_study_t1w, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("failure_isolation")
    bids = Path(shutil.copytree(small_study_t1w.bids_dir, root / "bids"))
    t1w = bids / f"sub-{FAILING}" / "anat" / f"sub-{FAILING}_T1w.nii.gz"
    img = nib.load(t1w)
    nib.save(nib.Nifti1Image(np.zeros(img.shape, np.float32), img.affine), t1w)
    for subject in GOOD:
        shutil.rmtree(bids / f"sub-{subject}" / "anat")
    out, work = root / "out", root / "work"
    common = ["--work-dir", str(work), "--skip-bids-validation"]
    participant_code = main([str(bids), str(out), "participant", *common, "--nprocs", "2"])
    group_code = main([str(bids), str(out), "group", *common, "--n-permutations", "0"])
    logs = out / "logs"
    return Runs(
        out,
        participant_code,
        next(logs.glob("run-*.log")).read_text(encoding="utf-8"),
        group_code,
        next(logs.glob("group-*.log")).read_text(encoding="utf-8"),
    )


@pytest.mark.slow
def test_participant_level_exits_1_naming_the_failure(runs: Runs) -> None:
    assert runs.participant_code == 1, runs.participant_log[-3000:]
    assert f"sub-{FAILING}: failed (" in runs.participant_log
    assert f"1 of 4 participant(s) failed: sub-{FAILING}" in runs.participant_log
    summary = pd.read_csv(runs.out / "logs" / "summary.tsv", sep="\t", dtype=str)
    status = summary.groupby("participant_id")["status"].agg(set).to_dict()
    assert status == {
        **{f"sub-{s}": {"success"} for s in GOOD},
        f"sub-{FAILING}": {"failed"},
    }
    message = summary.loc[summary.participant_id == f"sub-{FAILING}", "message"].iloc[0]
    assert message.startswith("normalisation: ")
    assert "empty" in message
    assert f"(details: logs/crash-sub-{FAILING}-" in message


@pytest.mark.slow
def test_the_crash_file_says_where_and_what_to_look_at(runs: Runs) -> None:
    (crash,) = (runs.out / "logs").glob(f"crash-sub-{FAILING}-*.txt")
    assert not list((runs.out / "logs").glob("crash-sub-0[123]-*"))
    text = crash.read_text(encoding="utf-8")
    assert "\nstage: normalisation\n" in text
    assert "hint: " in text
    assert "Look at the T1w" in text
    t1w_line = text[text.index("\nT1w: ") :].splitlines()[2]
    assert "(EMPTY)" in t1w_line
    assert "voxel size" in t1w_line
    for section in ("== inputs ==", "== configuration ==", "== versions ==", "== traceback =="):
        assert section in text
    assert "baseline PET (ses-sal)" in text
    log = next((runs.out / "logs").glob(f"sub-{FAILING}_*.log")).read_text(encoding="utf-8")
    assert f"sub-{FAILING} failed at stage normalisation" in log
    assert "what to check:" in log  # the hint is in the participant log too
    assert crash.name in log


@pytest.mark.slow
def test_group_level_runs_on_the_others_and_names_the_excluded_one(runs: Runs) -> None:
    assert runs.group_code == 0, runs.group_log[-3000:]
    assert f"sub-{FAILING} (failed)" in runs.group_log
    group = runs.out / "group"
    parameters = json.loads((group / "group_parameters.json").read_text())
    assert parameters["participants_included"] == [f"sub-{s}" for s in GOOD]
    assert parameters["n_participants"] == len(GOOD)
    (excluded,) = parameters["excluded_participants"]
    assert excluded["participant_id"] == f"sub-{FAILING}"
    assert excluded["status"] == "failed"
    assert excluded["reason"].startswith("normalisation: ")
    assert parameters["qc_fail"] == "exclude"
    # one row fewer than participants in the dataset, in every per-participant table
    measures = pd.read_csv(group / "participant_measures.tsv", sep="\t")
    assert sorted(measures.participant_id) == [f"sub-{s}" for s in GOOD]
    roi_stats = pd.read_csv(group / "roi_stats.tsv", sep="\t")
    assert set(roi_stats.n.dropna()) == {len(GOOD)}
    html = (group / "group.html").read_text(encoding="utf-8")
    block = html[html.index('id="excluded-participants"') :]
    block = block[: block.index("</table>")]
    assert f"<td>sub-{FAILING}</td><td>failed</td><td>normalisation: " in block
    # its phenotype rows were ignored with a note, not reported as unknown participants
    assert (
        f"phenotype/subjective.tsv: the rows of 1 excluded participant(s) (sub-{FAILING})" in html
    )
    assert "unknown participant" not in runs.group_log


# --------------------------------------------------------------------------- QC exclusions
def _fail_qc(out: Path, subject: str) -> None:
    """Give a participant's manifest a failed QC verdict (5.2 mm maximum FD)."""
    check = QcCheck(
        "max_fd_mm", "maximum framewise displacement", "ses-nal", 5.2, "mm", 2.0, 4.0, "above", ""
    )
    path = out / "logs" / f"sub-{subject}_outputs.json"
    manifest = json.loads(path.read_text())
    manifest["qc"] = QcVerdict((check,)).to_json()
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("extra", "code", "expected"),
    [
        ((), 0, "3 participant(s) would enter the group analysis: sub-01, sub-02, sub-04"),
        (("--qc-fail", "warn"), 0, "sub-03 is included although its quality control failed"),
        (("--qc-fail", "error"), 1, "quality control failed for 1 participant(s) (sub-03: ses"),
        (
            ("--min-participants", "4"),
            1,
            "Left out: sub-03 (qc fail): quality control failed: ses-nal: maximum framewise",
        ),
    ],
    ids=["exclude", "warn", "error", "too-few"],
)
def test_group_level_applies_qc_fail(
    fake_participant_outputs: Path,
    bids_copy: Path,
    tmp_path: Path,
    extra: tuple[str, ...],
    code: int,
    expected: str,
) -> None:
    out = Path(shutil.copytree(fake_participant_outputs, tmp_path / "out"))
    _fail_qc(out, "03")
    argv = [str(bids_copy), str(out), "group", "--dry-run", "--work-dir", str(tmp_path / "w")]
    assert main([*argv, *extra]) == code
    log = next((out / "logs").glob("group-*.log")).read_text(encoding="utf-8")
    assert expected in log
    # sub-03's phenotype rows are ignored when it is left out, not an unknown participant
    assert "unknown participant" not in log
