"""Crash safety: ``kill -9`` during a participant run never leaves a partial file behind.

``python -m bids_app ... participant`` runs as a subprocess and is killed with SIGKILL after
seeded random delays (and once right when its first derivative appears under OUTPUT_DIR, i.e.
while files are being published). After every kill each file under OUTPUT_DIR must be complete
(NIfTI loads, TSV/JSON parse; only the hidden temporary of the interrupted write may remain) and a
manifest, when present, must list only files that are in place. A final run removes leftover
temporaries, completes the participant, and its maps and tables equal those of an uninterrupted
run bit for bit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from helpers.tree_hash import hash_tree, incomplete_files, tree_diff

from bids_app.cli.run import main

pytestmark = pytest.mark.integration

SUBJECT = "01"
KILL_SEED = 20240611
N_RANDOM_KILLS = 3
KILL_DELAY_RANGE_S = (3.0, 16.0)
POLL_S = 0.01


def command(bids: Path, out: Path, work: Path) -> list[str]:
    return [
        str(bids),
        str(out),
        "participant",
        "--participant-label",
        SUBJECT,
        "--work-dir",
        str(work),
        "--nprocs",
        "1",
        "--omp-nthreads",
        "1",
        "--skip-bids-validation",
        "-q",
    ]


def start(bids: Path, out: Path, work: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start a participant run in a child process; its output goes to ``log``."""
    with open(log, "ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "bids_app", *command(bids, out, work)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


def kill(proc: subprocess.Popen[bytes]) -> bool:
    """SIGKILL the run if it is still going; True when it was killed."""
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return True


def check_after_kill(out: Path) -> None:
    """Every visible file complete; a manifest lists only files present with their sizes.

    A hidden temporary file of the write the kill interrupted may remain; the rerun removes it
    (:func:`finish_and_compare` checks that none is left).
    """
    assert incomplete_files(out, allow_temporaries=True) == []
    manifest = out / "logs" / f"sub-{SUBJECT}_outputs.json"
    if manifest.is_file():
        files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
        for rel, size in files.items():
            assert (out / rel).stat().st_size == size, rel


def finish_and_compare(bids: Path, out: Path, work: Path, reference: Path) -> None:
    """Run to completion (in this process) and compare with the uninterrupted reference."""
    before = hash_tree(bids)
    assert main(command(bids, out, work)) == 0
    assert tree_diff(before, hash_tree(bids)) == []
    assert incomplete_files(out) == []
    summary = pd.read_csv(out / "logs" / "summary.tsv", sep="\t")
    assert set(summary["status"]) <= {"success", "skipped"}
    ref_files = json.loads((reference / "logs" / f"sub-{SUBJECT}_outputs.json").read_text())
    new_files = json.loads((out / "logs" / f"sub-{SUBJECT}_outputs.json").read_text())
    assert sorted(new_files["files"]) == sorted(ref_files["files"])
    assert new_files["sessions"] == ref_files["sessions"]
    n_maps = 0
    for rel in ref_files["files"]:
        if rel.endswith(".nii.gz"):
            a = np.asarray(nib.load(reference / rel).dataobj)
            b = np.asarray(nib.load(out / rel).dataobj)
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b, err_msg=rel)
            n_maps += 1
        elif rel.endswith(".tsv"):
            assert (reference / rel).read_bytes() == (out / rel).read_bytes(), rel
        elif rel.endswith(".json"):
            assert json.loads((reference / rel).read_text()) == json.loads(
                (out / rel).read_text()
            ), rel
    assert n_maps == 8
    bp_rel = ref_files["sessions"]["baseline"]["BPND"]
    bp = np.asarray(nib.load(out / bp_rel).dataobj)
    assert np.count_nonzero(np.isfinite(bp)) > 100_000  # a real map, not NaN everywhere


def test_random_kills_then_rerun_matches_uninterrupted_run(reference_run, tmp_path: Path) -> None:
    assert reference_run.exit_code == 0
    bids = reference_run.bids_dir
    out, work = tmp_path / "out", tmp_path / "work"
    rng = np.random.default_rng(KILL_SEED)
    delays = rng.uniform(*KILL_DELAY_RANGE_S, size=N_RANDOM_KILLS)
    killed = 0
    log = tmp_path / "runs.log"
    for delay in delays:
        proc = start(bids, out, work, log)
        deadline = time.monotonic() + float(delay)
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        killed += kill(proc)
        check_after_kill(out)
    # the delays are shorter than a run, so kills land mid-run; a run that ended early
    # (e.g. an error) shows in the log
    assert killed >= 1, log.read_text(errors="replace")[-3000:]
    finish_and_compare(bids, out, work, reference_run.output_dir)


def test_kill_while_publishing_then_rerun(reference_run, tmp_path: Path) -> None:
    """Kill as soon as the participant's first derivative appears under OUTPUT_DIR.

    The window between the first rename into OUTPUT_DIR and the manifest is the one where a
    half-published participant exists; the rerun must redo it (no manifest) or skip it
    (manifest complete).
    """
    assert reference_run.exit_code == 0
    bids = reference_run.bids_dir
    out, work = tmp_path / "out", tmp_path / "work"
    target = out / f"sub-{SUBJECT}"
    proc = start(bids, out, work, tmp_path / "run.log")
    deadline = time.monotonic() + 120
    while not target.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(POLL_S)
    assert kill(proc), "the run finished before it could be killed while publishing"
    # Publishing (renames) takes milliseconds: the kill may land before, during or just after
    # the manifest is written; each state must be consistent (checked here) and recoverable.
    check_after_kill(out)
    finish_and_compare(bids, out, work, reference_run.output_dir)
