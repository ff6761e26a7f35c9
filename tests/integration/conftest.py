"""Fixtures of the end-to-end hardening tests: one synthetic study per session, fresh copies.

The small synthetic study (4 participants, ``ses-sal``/``ses-nal``, ~10 s to generate) is made
once per test session, with or without T1w images; a test that corrupts it works on a copy
(:func:`bids_copy`). One real participant run of sub-01 and sub-02 (``--nprocs 1
--omp-nthreads 1``) is shared by the Dask and crash-safety tests as the reference outputs.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers.derivatives import smooth_noise, write_participant

from bids_app.cli.run import main
from bids_app.roi.atlas import build_roi_atlas
from petsim import StudyPaths, generate_study

#: Participants of the shared reference run.
REFERENCE_PARTICIPANTS = ("01", "02")
FAKE_SESSIONS = {"baseline": "sal", "challenge": "nal"}


def reset_app_logger() -> None:
    """Detach the handlers ``main`` attached to the ``bids_app`` logger (closing log files).

    In-process runs otherwise leave a console handler bound to the previous test's captured
    stderr, and a later failure reported before logging is set up would go there. Propagation is
    restored too: pytest (>= 9) attaches its capture handlers to every non-propagating logger,
    and ``cli.run`` would take those for the app's own handlers.
    """
    logger = logging.getLogger("bids_app")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.propagate = True


@pytest.fixture(autouse=True)
def _fresh_app_logger() -> Iterator[None]:
    reset_app_logger()
    yield
    reset_app_logger()


@pytest.fixture(scope="session")
def small_study(tmp_path_factory: pytest.TempPathFactory) -> StudyPaths:
    """The small synthetic study (generated once per session; never modify it in place)."""
    return generate_study(tmp_path_factory.mktemp("study"), small=True, seed=0)


@pytest.fixture(scope="session")
def small_study_t1w(tmp_path_factory: pytest.TempPathFactory) -> StudyPaths:
    """The small synthetic study with a T1w per participant (never modify it in place)."""
    return generate_study(tmp_path_factory.mktemp("study_t1w"), small=True, seed=0, with_t1w=True)


@pytest.fixture
def bids_copy(small_study: StudyPaths, tmp_path: Path) -> Path:
    """A private copy of the study's BIDS folder (``tmp_path / "bids"``), free to corrupt."""
    return Path(shutil.copytree(small_study.bids_dir, tmp_path / "bids"))


@pytest.fixture(scope="session")
def fake_participant_outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Participant-level outputs of sub-01..04 written directly (no registration, no fits).

    Same names, layout and manifests as the participant pipeline; enough for the group level to
    reach its phenotype and configuration checks in seconds. Copy before modifying.
    """
    out = tmp_path_factory.mktemp("fake_outputs") / "out"
    atlas = build_roi_atlas(2)
    rng = np.random.default_rng(7)
    striatum = atlas.masks["striatum"]
    for i in range(4):
        bp = 0.3 + smooth_noise(rng, atlas.shape, 0.05)
        bp[striatum] += 1.8
        r1 = 1.0 + smooth_noise(rng, atlas.shape, 0.04)
        maps = {
            ("BPND", "baseline"): bp,
            ("BPND", "challenge"): bp * 0.9 + smooth_noise(rng, atlas.shape, 0.05),
            ("R1", "baseline"): r1,
            ("R1", "challenge"): r1 + smooth_noise(rng, atlas.shape, 0.04),
        }
        write_participant(out, f"{i + 1:02d}", atlas, maps, FAKE_SESSIONS)
    return out


@dataclass(frozen=True)
class ReferenceRun:
    """An uninterrupted participant run: its output and work folders and exit code."""

    bids_dir: Path
    output_dir: Path
    work_dir: Path
    exit_code: int


@pytest.fixture(scope="session")
def reference_run(
    small_study: StudyPaths, tmp_path_factory: pytest.TempPathFactory
) -> ReferenceRun:
    """sub-01 and sub-02 processed in this process, ``--nprocs 1 --omp-nthreads 1`` (~45 s)."""
    root = tmp_path_factory.mktemp("reference_run")
    out, work = root / "out", root / "work"
    code = main(
        [
            str(small_study.bids_dir),
            str(out),
            "participant",
            "--participant-label",
            *REFERENCE_PARTICIPANTS,
            "--work-dir",
            str(work),
            "--nprocs",
            "1",
            "--omp-nthreads",
            "1",
            "--skip-bids-validation",
        ]
    )
    reset_app_logger()
    return ReferenceRun(small_study.bids_dir, out, work, code)
