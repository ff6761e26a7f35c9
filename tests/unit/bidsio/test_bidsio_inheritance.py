"""PET metadata by the BIDS inheritance principle: root, session and scan sidecars merged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bids import BIDSLayout

from bids_app.bidsio import discover_study
from bids_app.bidsio.inheritance import (
    UTF8_BOM,
    applicable_sidecars,
    parse_bids_name,
    resolve_metadata,
)
from bids_app.errors import ValidationError
from bids_app.pipelines.participant_run import metadata_sha256

SCANS = [
    "sub-01/ses-sal/pet/sub-01_ses-sal_pet",
    "sub-01/ses-nal/pet/sub-01_ses-nal_pet",
    "sub-02/ses-sal/pet/sub-02_ses-sal_pet",
    "sub-02/ses-nal/pet/sub-02_ses-nal_pet",
]
PER_SCAN = ("FrameTimesStart", "FrameDuration", "TimeZero")
TWO = {"01": {"sal": {}, "nal": {}}, "02": {"sal": {}, "nal": {}}}


def _split(root: Path, keep: tuple[str, ...] = PER_SCAN, shared: str = "pet.json") -> dict:
    """Move every key but ``keep`` of each scan sidecar into one shared sidecar."""
    common: dict = {}
    for scan in SCANS:
        path = root / f"{scan}.json"
        meta = json.loads(path.read_text())
        common = {k: v for k, v in meta.items() if k not in keep}
        path.write_text(json.dumps({k: meta[k] for k in keep}))
    (root / shared).parent.mkdir(parents=True, exist_ok=True)
    (root / shared).write_text(json.dumps(common))
    return common


def test_parse_bids_name() -> None:
    name = parse_bids_name("sub-01_ses-sal_trc-rac_run-2_pet.nii.gz")
    assert name is not None
    assert name.entities == {"sub": "01", "ses": "sal", "trc": "rac", "run": "2"}
    assert (name.suffix, name.extension) == ("pet", ".nii.gz")
    root_name = parse_bids_name("pet.json")
    assert root_name is not None
    assert (root_name.entities, root_name.suffix) == ({}, "pet")
    for bad in ("README", "sub-01_pet", "sub_pet.json", "sub-01_sub-02_pet.json", "_pet.json"):
        assert parse_bids_name(bad) is None, bad


def test_root_pet_json_is_inherited(synthetic_bids) -> None:
    common: dict = {}

    def split(root: Path) -> None:
        common.update(_split(root))

    root = synthetic_bids(TWO, post=split)
    study = discover_study(root)
    scan = study.participants[0].baseline
    assert scan.metadata["TracerName"] == "raclopride"
    assert scan.metadata_sources["TracerName"] == root / "pet.json"
    assert scan.metadata_sources["FrameDuration"] == root / f"{SCANS[0]}.json"
    assert scan.sidecar_files == (root / "pet.json", root / f"{SCANS[0]}.json")
    assert scan.sidecar_path == root / f"{SCANS[0]}.json"
    assert set(scan.metadata) == set(common) | set(PER_SCAN)


def test_session_level_sidecar_and_override(synthetic_bids) -> None:
    def split(root: Path) -> None:
        _split(root, shared="pet.json")
        # a session-level sidecar overrides one root value for sub-01 ses-nal only
        (root / "sub-01/ses-nal/sub-01_ses-nal_pet.json").write_text(
            json.dumps({"InjectedRadioactivity": 111.0})
        )

    root = synthetic_bids(TWO, post=split)
    by_sub = {p.subject: p for p in discover_study(root).participants}
    nal = by_sub["01"].challenge
    assert nal.metadata["InjectedRadioactivity"] == 111.0
    assert nal.metadata_sources["InjectedRadioactivity"] == (
        root / "sub-01/ses-nal/sub-01_ses-nal_pet.json"
    )
    assert by_sub["01"].baseline.metadata["InjectedRadioactivity"] == 250.0
    assert len(nal.sidecar_files) == 3


def test_pet_folder_sidecar_without_the_scan_entities_is_inherited(synthetic_bids) -> None:
    # sub-01_ses-sal_pet.json next to sub-01_ses-sal_trc-rac_pet.nii.gz: inherited, not a scan
    def split(root: Path) -> None:
        for ses in ("sal", "nal"):
            folder = root / "sub-01" / f"ses-{ses}" / "pet"
            own = folder / f"sub-01_ses-{ses}_trc-rac_pet.json"
            meta = json.loads(own.read_text())
            own.write_text(json.dumps({k: meta[k] for k in PER_SCAN}))
            shared = {k: v for k, v in meta.items() if k not in PER_SCAN}
            (folder / f"sub-01_ses-{ses}_pet.json").write_text(json.dumps(shared))

    spec = {"pet": [{"entities": {"trc": "rac"}}]}
    root = synthetic_bids({"01": {"sal": spec, "nal": spec}}, post=split)
    scan = discover_study(root).participants[0].baseline
    assert scan.path.name == "sub-01_ses-sal_trc-rac_pet.nii.gz"
    assert [p.name for p in scan.sidecar_files] == [
        "sub-01_ses-sal_pet.json",
        "sub-01_ses-sal_trc-rac_pet.json",
    ]


def test_missing_field_names_every_applicable_sidecar(synthetic_bids) -> None:
    def split(root: Path) -> None:
        _split(root)
        shared = json.loads((root / "pet.json").read_text())
        del shared["TracerName"]
        (root / "pet.json").write_text(json.dumps(shared))

    root = synthetic_bids(TWO, post=split)
    with pytest.raises(ValidationError) as info:
        discover_study(root, participant_labels=["01"])
    problems = [p for p in info.value.problems if "TracerName" in p]
    assert len(problems) == 2
    assert problems[0].startswith(
        "sub-01 ses-sal: required PET-BIDS field TracerName is missing from "
        "sub-01_ses-sal_pet.json (and inherited pet.json)"
    )
    assert str(root / f"{SCANS[0]}.json") in problems[0]
    assert str(root / "pet.json") in problems[0]


def test_wrong_value_names_the_file_it_came_from(synthetic_bids) -> None:
    def split(root: Path) -> None:
        _split(root)
        shared = json.loads((root / "pet.json").read_text())
        shared["Units"] = "counts"
        (root / "pet.json").write_text(json.dumps(shared))

    root = synthetic_bids(TWO, post=split)
    with pytest.raises(ValidationError) as info:
        discover_study(root)
    assert len(info.value.problems) == 4
    assert all(
        p.endswith(f"found 'counts'. Fix the sidecar JSON ({root / 'pet.json'}).")
        for p in info.value.problems
    )


def test_timing_split_between_files_names_both(synthetic_bids) -> None:
    def split(root: Path) -> None:
        _split(root, keep=("FrameTimesStart",))
        shared = json.loads((root / "pet.json").read_text())
        shared["FrameDuration"] = shared["FrameDuration"][:-1]
        (root / "pet.json").write_text(json.dumps(shared))

    root = synthetic_bids(TWO, post=split)
    with pytest.raises(ValidationError) as info:
        discover_study(root, participant_labels=["01"])
    first = info.value.problems[0]
    assert "FrameTimesStart has 6 entries but FrameDuration has 5" in first
    assert f"FrameTimesStart from {root / SCANS[0]}.json" in first
    assert f"FrameDuration from {root / 'pet.json'}" in first


def test_same_as_pybids_get_metadata(synthetic_bids) -> None:
    def split(root: Path) -> None:
        _split(root)
        (root / "sub-02/sub-02_pet.json").write_text(json.dumps({"InjectedMass": 9.9}))
        (root / "sub-02/ses-nal/sub-02_ses-nal_pet.json").write_text(
            json.dumps({"InjectedMass": 1.1, "Units": "Bq/mL"})
        )

    root = synthetic_bids(TWO, post=split)
    pybids = BIDSLayout(root, validate=False)
    for scan in SCANS:
        image = root / f"{scan}.nii.gz"
        resolved, problems = resolve_metadata(root, image, "test")
        assert problems == []
        assert resolved is not None
        assert resolved.values == dict(pybids.get_metadata(str(image))), scan


def test_two_unordered_sidecars_in_one_folder_are_reported(synthetic_bids) -> None:
    spec = {"pet": [{"entities": {"trc": "rac", "rec": "acdyn"}}]}

    def add(root: Path) -> None:
        folder = root / "sub-01/ses-sal/pet"
        (folder / "sub-01_ses-sal_trc-rac_pet.json").write_text('{"Units": "Bq/mL"}')
        (folder / "sub-01_ses-sal_rec-acdyn_pet.json").write_text('{"Units": "kBq/mL"}')

    root = synthetic_bids({"01": {"sal": spec, "nal": spec}}, post=add)
    image = root / "sub-01/ses-sal/pet/sub-01_ses-sal_trc-rac_rec-acdyn_pet.nii.gz"
    files, problems = applicable_sidecars(root, image)
    assert len(files) == 3
    assert len(problems) == 1
    assert "sub-01_ses-sal_rec-acdyn_pet.json and sub-01_ses-sal_trc-rac_pet.json" in (problems[0])
    assert "neither's entities include the other's" in problems[0]


def test_utf8_bom_sidecar_is_read(synthetic_bids) -> None:
    def bom(root: Path) -> None:
        for scan in SCANS[:2]:
            path = root / f"{scan}.json"
            path.write_bytes(UTF8_BOM + path.read_bytes())

    root = synthetic_bids({"01": {"sal": {}, "nal": {}}}, post=bom)
    scan = discover_study(root).participants[0].baseline
    assert scan.metadata["TracerName"] == "raclopride"


def test_no_sidecar_at_any_level(synthetic_bids) -> None:
    root = synthetic_bids({"01": {"sal": {"pet": [{"sidecar": False}]}, "nal": {}}})
    with pytest.raises(ValidationError) as info:
        discover_study(root)
    (problem,) = info.value.problems
    assert "PET sidecar missing: sub-01_ses-sal_pet.json not found" in problem
    assert "no sidecar applies by inheritance" in problem


def test_inherited_value_is_part_of_the_metadata_hash(synthetic_bids, tmp_path) -> None:
    hashes = []
    for mass in (1.0, 2.0):

        def split(root: Path, mass: float = mass) -> None:
            _split(root)
            shared = json.loads((root / "pet.json").read_text())
            shared["InjectedMass"] = mass
            (root / "pet.json").write_text(json.dumps(shared))

        scan = discover_study(synthetic_bids(TWO, post=split)).participants[0].baseline
        hashes.append(metadata_sha256(scan))
    assert hashes[0] != hashes[1]


def test_broken_inherited_t1w_sidecar_is_reported(synthetic_bids) -> None:
    def broken(root: Path) -> None:
        (root / "T1w.json").write_text('{"MagneticFieldStrength": 3,}')

    root = synthetic_bids({"01": {"sal": {"t1w": True}, "nal": {}}}, post=broken)
    with pytest.raises(ValidationError) as info:
        discover_study(root)
    (problem,) = info.value.problems
    assert problem.startswith("sub-01: T1w.json is not valid JSON")
