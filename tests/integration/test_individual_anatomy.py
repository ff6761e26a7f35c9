"""Individual anatomy with whole-head T1w images: a correct T1w is accurate, wrong ones fail QC.

A realistic petsim study (issue 9): three participants with their own brains (a smooth random
deformation of the template and +-5 % scaling), a whole-head T1w with skull, scalp, eyes and
neck, a 108 mm axial field of view and head motion, at full resolution. sub-01 keeps its own
T1w; sub-02's T1w is flipped left-right in its voxel data (header kept: a conversion error);
sub-03 is given sub-01's T1w (a mix-up). The participant level must process all three, keep
sub-01 within a few per cent of what an ideal pipeline measures, and judge the other two
*fail* for the right reason; the group level must then leave them out and say why.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_app.cli.run import main
from bids_app.qc import QcVerdict
from bids_app.roi.atlas import build_roi_atlas
from petsim import StudyPaths, generate_study
from petsim.ideal import ideal_roi_measures

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Striatal BPND of the correct T1w against the ideal pipeline (measured: -1 to -2 %).
MAX_STRIATAL_ERROR = 0.05


def _t1w(bids: Path, subject: str) -> Path:
    return bids / f"sub-{subject}" / "anat" / f"sub-{subject}_T1w.nii.gz"


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[StudyPaths, Path, int, str]:
    root = tmp_path_factory.mktemp("individual")
    paths = generate_study(
        root / "study",
        n_participants=3,
        seed=3,
        with_t1w=True,
        anatomy="individual",
        t1w_skull=True,
        axial_fov_mm=108.0,
        n_jobs=2,
    )
    bids = Path(shutil.copytree(paths.bids_dir, root / "bids"))
    flipped = _t1w(bids, "02")
    img = nib.load(flipped)
    axis = int(np.argmax(np.abs(img.affine[0, :3])))  # the voxel axis that runs left-right
    data = np.flip(np.asarray(img.dataobj), axis=axis).copy()
    nib.save(nib.Nifti1Image(data, img.affine, img.header), flipped)
    shutil.copyfile(_t1w(paths.bids_dir, "01"), _t1w(bids, "03"))
    out = root / "out"
    common = ["--work-dir", str(root / "work"), "--skip-bids-validation"]
    code = main([str(bids), str(out), "participant", *common, "--nprocs", "2"])
    return paths, out, code, str(bids)


def _verdict(out: Path, subject: str) -> QcVerdict:
    manifest = json.loads((out / "logs" / f"sub-{subject}_outputs.json").read_text())
    return QcVerdict.from_json(manifest["qc"])


def _status(verdict: QcVerdict) -> dict[str, str]:
    return {check.key: check.status for check in verdict.checks}


def test_all_participants_are_processed(study: tuple[StudyPaths, Path, int, str]) -> None:
    _, out, code, _ = study
    assert code == 0  # QC failures are reported, not errors (--qc-fail exclude)
    for subject in ("01", "02", "03"):
        assert (out / f"sub-{subject}.html").is_file()


def test_correct_t1w_passes_and_matches_the_ideal_pipeline(
    study: tuple[StudyPaths, Path, int, str],
) -> None:
    paths, out, _, _ = study
    verdict = _verdict(out, "01")
    assert verdict.status != "fail", verdict.reasons
    status = _status(verdict)
    assert status["t1w_mirror_gain"] == "pass"
    assert status["binding_dice_gain"] == "pass"
    ideal = ideal_roi_measures(paths.truth_dir, dict(build_roi_atlas(2).masks))
    ideal = ideal[ideal.participant_id.astype(str).str.removeprefix("sub-") == "01"]
    for session in ("sal", "nal"):
        kinpar = pd.read_csv(
            next((out / "sub-01" / f"ses-{session}" / "pet").glob("*_kinpar.tsv")), sep="\t"
        ).set_index("roi")
        truth = ideal[ideal.session_id.astype(str).str.removeprefix("ses-") == session]
        truth = truth.set_index("roi")
        for roi in ("dorsal_striatum", "striatum"):
            error = kinpar.loc[roi, "BPND"] / truth.loc[roi, "BPND"] - 1.0
            assert abs(error) < MAX_STRIATAL_ERROR, (session, roi, error)


def test_flipped_t1w_fails_the_flip_test(study: tuple[StudyPaths, Path, int, str]) -> None:
    _, out, _, _ = study
    verdict = _verdict(out, "02")
    assert verdict.status == "fail"
    assert _status(verdict)["t1w_mirror_gain"] == "fail", verdict.reasons


def test_another_participants_t1w_fails_an_identity_check(
    study: tuple[StudyPaths, Path, int, str],
) -> None:
    """The flip test and the binding-Dice gain warn together: neither fits another head well."""
    _, out, _, _ = study
    verdict = _verdict(out, "03")
    assert verdict.status == "fail"
    status = _status(verdict)
    identity = (
        "binding_dice_gain",
        "t1w_mirror_gain",
        "pet_t1w_agreement_mm",
        "t1w_identity_warnings",
    )
    assert "fail" in {status[key] for key in identity}, verdict.reasons
    failed = {check.key for check in verdict.checks if check.status == "fail"}
    assert failed <= set(identity), verdict.reasons  # nothing else is wrong with sub-03


def test_group_level_leaves_the_failed_participants_out_and_says_why(
    study: tuple[StudyPaths, Path, int, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _, bids = study
    capsys.readouterr()
    code = main([bids, str(out), "group", "--skip-bids-validation", "--n-permutations", "0"])
    err = capsys.readouterr().err
    assert code == 1  # one participant left: fewer than --min-participants 3
    assert re.search(r"sub-02 \(qc fail\):.*mirror", err), err[-2000:]
    assert re.search(r"sub-03 \(qc fail\): quality control failed: T1w: ", err), err[-2000:]
    assert "--qc-fail warn" in err
    assert not (out / "group").exists()
