"""pybids indexes the outputs with the shipped configuration: one sidecar per map, no clashes."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from bids_app.outputs.io import write_json, write_nifti
from bids_app.outputs.names import (
    DERIVED_ENTITIES,
    GROUP_DIR,
    GROUP_MAPS,
    MAP_MEASURES,
    Space,
    group_map_name,
    pybids_config,
    session_outputs,
    sidecar_name,
)
from bids_app.outputs.sidecars import (
    MAP_UNITS,
    FitDescription,
    group_map_sidecar,
    map_sidecar,
    write_dataset_description,
)

bids = pytest.importorskip("bids")

SPACE = Space("MNI152NLin2009aSym", 2)
SESSIONS = {"baseline": "sal", "challenge": "nal"}
CONTRAST = "nalMinussal"


def _fit(source: str) -> FitDescription:
    return FitDescription(
        source=source,
        reference_region="cerebellum",
        atlas="AAL3",
        k2prime_per_min=0.1,
        k2prime_method="SRTM fit of the striatum TAC",
        k2prime_session_estimate_per_min=0.1,
        n_basis=10,
        k2a_range_per_min=(0.006, 0.6),
        weights="duration",
    )


@pytest.fixture(scope="module")
def output_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two participants' maps and the group maps of both measures, with their sidecars."""
    out = tmp_path_factory.mktemp("pybids") / "out"
    img = nib.Nifti1Image(np.zeros((3, 4, 5), dtype=np.float32), np.eye(4))
    write_dataset_description(out, "1.0.0")
    for subject in ("01", "02"):
        for session in SESSIONS.values():
            names = session_outputs(subject, session, {"trc": "raclopride"}, SPACE, "AAL3")
            for measure in MAP_MEASURES:
                write_nifti(out / names[measure], img)
                sidecar = map_sidecar(measure, _fit(f"sub-{subject}/x.nii.gz"), SPACE, "1", 1, 1)
                write_json(out / names[f"{measure}_json"], sidecar)
    for measure in ("BPND", "R1"):
        for kind in GROUP_MAPS:
            name = group_map_name(kind, measure, CONTRAST, SPACE)
            write_nifti(out / GROUP_DIR / name, img)
            sidecar = group_map_sidecar(measure, kind, {"DegreesOfFreedom": 9}, SPACE, CONTRAST)
            write_json(out / GROUP_DIR / sidecar_name(name), sidecar)
    return out


@pytest.fixture(scope="module")
def layout(output_tree: Path) -> object:
    return bids.BIDSLayout(
        output_tree, validate=False, config=["bids", "derivatives", str(pybids_config())]
    )


def test_every_entity_of_the_names_is_known_to_pybids_with_the_config() -> None:
    ours = json.loads(pybids_config().read_text())["entities"]
    assert {e["name"] for e in ours} == {"meas", "contrast", "stat"}
    shipped = Path(bids.__file__).parent / "layout" / "config"
    patterns = [e["pattern"] for e in ours]
    for name in ("bids.json", "derivatives.json"):
        patterns += [e["pattern"] for e in json.loads((shipped / name).read_text())["entities"]]
    missing = [key for key in DERIVED_ENTITIES if not any(f"{key}-" in p for p in patterns)]
    assert missing == []


def test_every_participant_map_gets_its_own_metadata(layout: object) -> None:
    for measure in MAP_MEASURES:
        files = layout.get(meas=measure, suffix="mimap", extension=".nii.gz")  # type: ignore[attr-defined]
        assert len(files) == 4, measure
        for f in files:
            metadata = f.get_metadata()
            assert metadata["Measure"] == measure
            assert metadata["Units"] == MAP_UNITS[measure]
            assert metadata["ModelName"] == "SRTM2"
            assert f.entities["model"] == "SRTM2"
            assert f.entities["tracer"] == "raclopride"


def test_every_group_map_gets_its_own_metadata(layout: object) -> None:
    maps = layout.get(suffix="statmap", extension=".nii.gz")  # type: ignore[attr-defined]
    assert len(maps) == 2 * sum(suffix == "statmap" for _, suffix in GROUP_MAPS.values())
    for f in maps:
        metadata = f.get_metadata()
        assert metadata["Measure"] == f.entities["meas"]
        assert metadata["ContrastLabel"] == f.entities["contrast"] == CONTRAST
        if "stat" in f.entities:
            assert metadata["Map"].split("_")[0] == f.entities["stat"]
    t_r1 = layout.get(meas="R1", stat="t", extension=".nii.gz")  # type: ignore[attr-defined]
    assert len(t_r1) == 1
    assert t_r1[0].get_metadata()["Measure"] == "R1"
