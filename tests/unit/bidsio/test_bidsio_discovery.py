"""Layout discovery and session mapping on valid synthetic PET-BIDS trees."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers.bids_skeleton import frame_schedule_s

from bids_app.bidsio import ParticipantInput, PetScan, Study, build_layout, discover_study
from bids_app.errors import ValidationError


def test_default_sal_nal_discovery(synthetic_bids) -> None:
    root = synthetic_bids(
        {
            "01": {"sal": {"t1w": True}, "nal": {}},
            "02": {"sal": {}, "nal": {}, "_t1w": True},
        }
    )
    study = discover_study(root)
    assert isinstance(study, Study)
    assert study.session_source == "default sal/nal"
    assert (study.baseline_session, study.challenge_session) == ("sal", "nal")
    assert study.tracer == "raclopride"
    assert study.skipped == []
    assert [p.subject for p in study.participants] == ["01", "02"]
    first = study.participants[0]
    assert isinstance(first, ParticipantInput)
    assert isinstance(first.baseline, PetScan)
    assert first.baseline.session == "sal"
    assert first.challenge.session == "nal"
    assert first.baseline.path == root / "sub-01/ses-sal/pet/sub-01_ses-sal_pet.nii.gz"
    assert first.baseline.sidecar_path == root / "sub-01/ses-sal/pet/sub-01_ses-sal_pet.json"
    assert first.t1w == root / "sub-01/ses-sal/anat/sub-01_ses-sal_T1w.nii.gz"
    # a session-less T1w is preferred
    assert study.participants[1].t1w == root / "sub-02/anat/sub-02_T1w.nii.gz"


def test_scan_fields_and_seconds_to_minutes(synthetic_bids) -> None:
    root = synthetic_bids(
        {
            "01": {
                "sal": {"pet": [{"entities": {"trc": "rac"}, "n_frames": 8}]},
                "nal": {"pet": [{"entities": {"trc": "rac"}, "n_frames": 8}]},
            }
        }
    )
    scan = discover_study(root).participants[0].baseline
    starts_s, durations_s = frame_schedule_s(8)
    assert scan.n_frames == 8
    assert scan.shape == (7, 8, 9, 8)
    assert scan.voxel_size_mm == (2.0, 2.0, 2.0)
    assert scan.units == "kBq/mL"
    assert scan.entities == {"trc": "rac"}
    assert scan.metadata["TracerRadionuclide"] == "C11"
    np.testing.assert_allclose(scan.timing.start_min, np.asarray(starts_s) / 60.0)
    np.testing.assert_allclose(scan.timing.duration_min, np.asarray(durations_s) / 60.0)
    # 30 s, 60 s, 120 s, ... -> frame 3 starts at (30 + 60 + 120) s = 3.5 min
    assert scan.timing.start_min[3] == pytest.approx(3.5)


def test_no_t1w_gives_none(synthetic_bids) -> None:
    study = discover_study(synthetic_bids())
    assert study.participants[0].t1w is None


def test_flags_select_sessions(synthetic_bids) -> None:
    root = synthetic_bids({"01": {"pla": {}, "chal": {}, "extra": {}}})
    study = discover_study(root, baseline_session="pla", challenge_session="ses-chal")
    assert study.session_source == "flags"
    assert (study.baseline_session, study.challenge_session) == ("pla", "chal")
    p = study.participants[0]
    assert (p.baseline.session, p.challenge.session) == ("pla", "chal")


def test_flags_override_sal_nal(synthetic_bids) -> None:
    root = synthetic_bids({"01": {"sal": {}, "nal": {}}})
    study = discover_study(root, baseline_session="nal", challenge_session="sal")
    assert study.participants[0].baseline.session == "nal"


def test_sessions_tsv_mapping_per_participant(synthetic_bids) -> None:
    root = synthetic_bids(
        {
            "01": {"a": {}, "b": {}, "_sessions_tsv": {"a": "challenge", "b": "baseline"}},
            "02": {"x": {}, "y": {}, "_sessions_tsv": {"x": "baseline", "y": "challenge"}},
        }
    )
    study = discover_study(root)
    assert study.session_source == "sessions.tsv"
    by_sub = {p.subject: (p.baseline.session, p.challenge.session) for p in study.participants}
    assert by_sub == {"01": ("b", "a"), "02": ("x", "y")}
    # labels differ between participants -> no single study-wide label
    assert study.baseline_session is None
    assert study.challenge_session is None


def test_sessions_tsv_common_labels(synthetic_bids) -> None:
    conditions = {"pre": "baseline", "post": "challenge"}
    root = synthetic_bids(
        {
            "01": {"pre": {}, "post": {}, "_sessions_tsv": conditions},
            "02": {"pre": {}, "post": {}, "_sessions_tsv": conditions},
        }
    )
    study = discover_study(root)
    assert (study.baseline_session, study.challenge_session) == ("pre", "post")


@pytest.mark.parametrize("labels", [["sub-02"], ["02"], [" sub-02 ", "02"]])
def test_participant_label_sub_prefix_stripped(synthetic_bids, labels) -> None:
    root = synthetic_bids({"01": {"sal": {}, "nal": {}}, "02": {"sal": {}, "nal": {}}})
    study = discover_study(root, participant_labels=labels)
    assert [p.subject for p in study.participants] == ["02"]


def test_pet_filter_resolves_several_runs(synthetic_bids) -> None:
    two = {"pet": [{"entities": {"rec": "acdyn"}}, {"entities": {"rec": "nacdyn"}}]}
    root = synthetic_bids({"01": {"sal": two, "nal": two}})
    study = discover_study(root, pet_filters={"rec": "acdyn"})
    scan = study.participants[0].baseline
    assert scan.entities == {"rec": "acdyn"}
    assert scan.path.name == "sub-01_ses-sal_rec-acdyn_pet.nii.gz"


def test_units_spelling_normalised(synthetic_bids) -> None:
    spec = {"pet": [{"metadata": {"Units": "bq/ml"}}]}
    root = synthetic_bids({"01": {"sal": spec, "nal": spec}})
    assert discover_study(root).participants[0].baseline.units == "Bq/mL"


def test_skip_incomplete_participant(synthetic_bids) -> None:
    root = synthetic_bids({"01": {"sal": {}, "nal": {}}, "02": {"sal": {}}})
    study = discover_study(root, skip_incomplete=True)
    assert [p.subject for p in study.participants] == ["01"]
    assert len(study.skipped) == 1
    subject, reason = study.skipped[0]
    assert subject == "02"
    assert "challenge session ses-nal not found" in reason


def test_derivatives_and_sourcedata_not_indexed(synthetic_bids) -> None:
    def add_noise(root: Path) -> None:
        for top in ("derivatives/other", "sourcedata"):
            bad = root / top / "sub-01/ses-sal/pet"
            bad.mkdir(parents=True)
            (bad / "sub-01_ses-sal_pet.json").write_text("{not json")
            (bad / "sub-01_ses-sal_pet.nii.gz").write_bytes(b"junk")

    root = synthetic_bids(post=add_noise)
    layout = build_layout(root)
    files = [Path(f).relative_to(root) for f in layout.get(return_type="filename")]
    assert Path("sub-01/ses-sal/pet/sub-01_ses-sal_pet.json") in files
    assert not [f for f in files if f.parts[0] in ("derivatives", "sourcedata")]
    study = discover_study(root)
    assert study.participants[0].baseline.path.parent == root / "sub-01/ses-sal/pet"


def test_check_data_false_skips_reading_voxels(synthetic_bids) -> None:
    # two all-zero images (of different lengths, so that they are not the same file content)
    root = synthetic_bids(
        {
            "01": {
                "sal": {"pet": [{"data": "zeros"}]},
                "nal": {"pet": [{"data": "zeros", "n_frames": 7}]},
            }
        }
    )
    with pytest.raises(ValidationError, match="all-zero image"):
        discover_study(root)
    study = discover_study(root, check_data=False)
    assert len(study.participants) == 1


def test_metadata_kept_verbatim(synthetic_bids) -> None:
    root = synthetic_bids()
    scan = discover_study(root).participants[0].challenge
    on_disk = json.loads(scan.sidecar_path.read_text())
    assert scan.metadata == on_disk
