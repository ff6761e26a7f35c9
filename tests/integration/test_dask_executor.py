"""Scale-out: the participant level on a local Dask cluster gives the local run's outputs.

A ``distributed.LocalCluster`` (2 worker processes, 1 thread each) receives one task per
participant through ``--dask-scheduler``; every map and table must equal, bit for bit, those of
the in-process run with ``--nprocs 1`` (:func:`reference_run`). That run and this one are also
two uninterrupted runs of the same input: the comparison is the determinism check.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from helpers.tree_hash import incomplete_files

from bids_app.cli.run import main

pytestmark = pytest.mark.integration

distributed = pytest.importorskip("distributed")


def manifest_files(output_dir: Path, subject: str) -> dict[str, int]:
    """Relative path -> size of every file the participant's manifest lists."""
    manifest = output_dir / "logs" / f"sub-{subject}_outputs.json"
    return json.loads(manifest.read_text(encoding="utf-8"))["files"]


def assert_same_outputs(reference: Path, other: Path, subjects: tuple[str, ...]) -> int:
    """Maps (data arrays) and TSVs identical; returns the number of files compared."""
    compared = 0
    for subject in subjects:
        files = manifest_files(reference, subject)
        assert sorted(manifest_files(other, subject)) == sorted(files)
        for rel in files:
            if rel.endswith(".nii.gz"):
                a = np.asarray(nib.load(reference / rel).dataobj)
                b = np.asarray(nib.load(other / rel).dataobj)
                assert a.dtype == b.dtype, rel
                assert a.shape == b.shape, rel
                np.testing.assert_array_equal(a, b, err_msg=rel)
                compared += 1
            elif rel.endswith(".tsv"):
                pd.testing.assert_frame_equal(
                    pd.read_csv(reference / rel, sep="\t"), pd.read_csv(other / rel, sep="\t")
                )
                assert (reference / rel).read_bytes() == (other / rel).read_bytes(), rel
                compared += 1
            elif rel.endswith(".json"):
                assert json.loads((reference / rel).read_text()) == json.loads(
                    (other / rel).read_text()
                ), rel
                compared += 1
    return compared


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_dask_cluster_matches_local_run(reference_run, tmp_path: Path) -> None:
    assert reference_run.exit_code == 0
    out = tmp_path / "out"
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        host="127.0.0.1",
    ) as cluster:
        code = main(
            [
                str(reference_run.bids_dir),
                str(out),
                "participant",
                "--participant-label",
                "01",
                "02",
                "--work-dir",
                str(tmp_path / "work"),
                "--omp-nthreads",
                "1",
                "--skip-bids-validation",
                "--dask-scheduler",
                cluster.scheduler_address,
            ]
        )
    assert code == 0
    assert incomplete_files(out) == []
    summary = pd.read_csv(out / "logs" / "summary.tsv", sep="\t")
    assert summary["status"].tolist() == ["success"] * 4
    n_files = assert_same_outputs(reference_run.output_dir, out, ("01", "02"))
    assert n_files == 2 * 2 * 14  # per session: 4 images, 3 TSVs, 7 JSON sidecars
