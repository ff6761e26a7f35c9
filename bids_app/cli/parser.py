"""Command-line parser (the BIDS-App convention).

``bids_app BIDS_DIR OUTPUT_DIR {participant,group} [options]``. This module only builds the
parser: argument types, defaults, help texts and cheap path checks; no data is read here.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Literal

from bids_app import __version__

DESCRIPTION = """\
Reference-tissue PET analysis of baseline vs challenge studies (e.g. [11C]raclopride with a
placebo and a drug session), as a BIDS-App.

participant level: validates the PET-BIDS input, corrects frame-wise motion, co-registers the two
sessions, normalises them to MNI space (2 mm) with ANTs, extracts atlas ROI time-activity curves,
estimates k2' and fits SRTM2 voxelwise (basis functions) -> BPND, R1 and k2a maps, and writes a
participant report.

group level: smooths the participant maps, runs voxelwise paired t-tests with cluster-level FWE
(SPM12-compatible random field theory and a sign-flip permutation test), ROI statistics, net DA
release, behavioural effects and correlations, and writes a group report.
"""

EPILOG = """\
examples:
  bids_app /data/study /data/study-derivatives participant --participant-label 01 02
  bids_app /data/study /data/study-derivatives group
  bids_app /data/study /out participant --baseline-session placebo --challenge-session drug
  bids_app /data/study /out participant --pet-run 2     # sessions with two PET runs
  bids_app /data/study /out participant --dry-run     # validate and print the plan only
"""


def _whole_number(value: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        msg = f"must be a whole number; got {value!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if number < minimum:
        msg = f"must be {minimum} or more; got {number}"
        raise argparse.ArgumentTypeError(msg)
    return number


def _positive_int(value: str) -> int:
    return _whole_number(value, 1)


def _non_negative_int(value: str) -> int:
    return _whole_number(value, 0)


def _at_least_two(value: str) -> int:
    return _whole_number(value, 2)


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        msg = f"must be a number; got {value!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if not number > 0:
        msg = f"must be greater than 0; got {value}"
        raise argparse.ArgumentTypeError(msg)
    return number


def _probability(value: str) -> float:
    number = _positive_float(value)
    if number >= 1:
        msg = f"must be between 0 and 1 (exclusive); got {value}"
        raise argparse.ArgumentTypeError(msg)
    return number


def _permutations(value: str) -> int | Literal["exact"]:
    if value == "exact":
        return "exact"
    try:
        return _non_negative_int(value)
    except argparse.ArgumentTypeError:
        msg = f"must be 'exact' or a whole number (0 turns permutations off); got {value!r}"
        raise argparse.ArgumentTypeError(msg) from None


def _existing_dir(value: str) -> Path:
    path = Path(value).expanduser()
    if not path.exists():
        msg = f"folder not found: {path}"
        raise argparse.ArgumentTypeError(msg)
    if not path.is_dir():
        msg = f"not a folder: {path}"
        raise argparse.ArgumentTypeError(msg)
    return path.resolve()


def _existing_file(value: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_file():
        msg = f"file not found: {path}"
        raise argparse.ArgumentTypeError(msg)
    return path.resolve()


def _label(value: str) -> str:
    label = value.strip()
    if label.startswith("sub-"):
        label = label[4:]
    if not label or not label.isalnum():
        msg = (
            "a participant label must be letters and digits (with or without 'sub-'); "
            f"got {value!r}"
        )
        raise argparse.ArgumentTypeError(msg)
    return label


def _run_label(value: str) -> str:
    label = value.strip().removeprefix("run-")
    if not label.isdigit():
        msg = f"a run index must be a whole number (with or without 'run-'); got {value!r}"
        raise argparse.ArgumentTypeError(msg)
    return label


def _session(value: str) -> str:
    label = value.strip()
    if label.startswith("ses-"):
        label = label[4:]
    if not label or not label.isalnum():
        msg = f"a session label must be letters and digits (with or without 'ses-'); got {value!r}"
        raise argparse.ArgumentTypeError(msg)
    return label


def build_parser() -> argparse.ArgumentParser:
    """Build the ``bids_app`` argument parser.

    Returns
    -------
    argparse.ArgumentParser
        The parser; ``parse_args`` exits with code 2 on usage errors.
    """
    parser = argparse.ArgumentParser(
        prog="bids_app",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "bids_dir", type=_existing_dir, help="the input BIDS dataset (read only; never modified)"
    )
    parser.add_argument(
        "output_dir",
        type=lambda v: Path(v).expanduser().resolve(),
        help="where derivatives are written (created if missing; must not be inside BIDS_DIR)",
    )
    parser.add_argument(
        "analysis_level",
        choices=["participant", "group"],
        help="'participant' processes each participant; 'group' reads their outputs",
    )
    parser.add_argument("--version", action="version", version=f"bids_app {__version__}")

    sel = parser.add_argument_group("selecting data")
    sel.add_argument(
        "--participant-label",
        "--participant_label",
        dest="participant_label",
        nargs="+",
        type=_label,
        metavar="LABEL",
        help="participants to process (e.g. 01 02 or sub-01); default: all",
    )
    sel.add_argument(
        "--baseline-session",
        "--baseline_session",
        dest="baseline_session",
        type=_session,
        metavar="LABEL",
        help="the placebo/baseline session label (default: 'sal' when present, else the "
        "'condition' column of sub-*_sessions.tsv)",
    )
    sel.add_argument(
        "--challenge-session",
        "--challenge_session",
        dest="challenge_session",
        type=_session,
        metavar="LABEL",
        help="the drug/challenge session label (default: 'nal' when present, else the "
        "'condition' column of sub-*_sessions.tsv)",
    )
    sel.add_argument(
        "--pet-run",
        type=_run_label,
        metavar="INDEX",
        help="the PET run to use when a session holds several (e.g. 2 for *_run-2_pet.nii.gz)",
    )
    sel.add_argument(
        "--bids-filter-file",
        type=_existing_file,
        metavar="JSON",
        help="select scans by BIDS entities, in fMRIPrep's format, e.g. "
        '{"pet": {"run": 2, "reconstruction": "acdyn"}, "t1w": {"acquisition": "mprage"}}',
    )
    sel.add_argument(
        "--exclude-bad-frames",
        action="store_true",
        help="leave out frames whose data are unusable (all zero, sign-flipped, NaN inside the "
        "field of view, a jump of the whole-image curve) from motion correction, TACs and "
        "fits, with a warning in the log and report (default: such frames are an error)",
    )
    sel.add_argument(
        "--skip-bids-validation",
        "--skip_bids_validation",
        dest="skip_bids_validation",
        action="store_true",
        help="do not run the official BIDS validator (the app's own PET checks still run)",
    )

    model = parser.add_argument_group("registration and kinetic modelling (participant level)")
    model.add_argument(
        "--pet-normalisation",
        choices=["affine", "syn"],
        default="affine",
        help="PET-only normalisation (no T1w) to a perfusion-like PET template: 'affine' "
        "(default; 12 parameters) or 'syn' (adds a SyN deformation, which PET contrast "
        "constrains poorly). With a T1w, T1w -> MNI always uses SyN.",
    )
    model.add_argument(
        "--k2prime-method",
        choices=["roi", "voxel_median"],
        default="roi",
        help="how k2' is estimated once per session: SRTM on the striatal TAC ('roi', default) "
        "or the median k2' of voxelwise SRTM over voxels with BPND > 0",
    )
    model.add_argument(
        "--k2prime-pooling",
        choices=["per_session", "mean", "joint"],
        default="per_session",
        help="fix each session's own k2' ('per_session', default), the mean of the two "
        "sessions' ('mean'), or the k2' of one SRTM fit of both sessions' striatal TACs "
        "('joint', with --k2prime-method roi). Measured on simulated pairs: pooling removes "
        "independent k2' noise from the R1 change but turns the k2' shift that a BPND change "
        "causes into a spurious striatal R1 decrease, so per_session is the default",
    )
    model.add_argument(
        "--weights",
        choices=["duration", "uniform"],
        default="duration",
        help="frame weights of the fits (default: proportional to frame duration)",
    )
    model.add_argument(
        "--n-basis",
        type=_positive_int,
        default=100,
        help="number of SRTM2 basis functions, log-spaced over --k2a-range (default 100)",
    )
    model.add_argument(
        "--k2a-range",
        nargs=2,
        type=_positive_float,
        default=None,
        metavar=("MIN", "MAX"),
        help="range of the apparent efflux rate k2a in 1/min (default 0.006 to max(0.6, "
        "8 k2'), so that high-R1 voxels such as vessels and the pituitary are not clipped)",
    )
    model.add_argument(
        "--atlas-labels",
        type=_existing_file,
        metavar="NIFTI",
        help="your own ROI label image in MNI space (with --atlas-tsv) instead of the built-in "
        "atlas; it must contain a 'cerebellum' reference region",
    )
    model.add_argument(
        "--atlas-tsv",
        type=_existing_file,
        metavar="TSV",
        help="the label table (columns index, name) of --atlas-labels",
    )
    model.add_argument(
        "--write-preproc",
        action="store_true",
        help="also write the preprocessed PET series (motion-corrected, on the template grid, "
        "*_desc-preproc_pet.nii.gz) and the transforms (motion, co-registration, "
        "normalisation; *_xfm.*), as PETPrep does (about 2 MB per frame and session on the "
        "2 mm grid: 25 MB for a 12-frame session)",
    )

    group = parser.add_argument_group("group statistics (group level)")
    group.add_argument(
        "--smoothing-fwhm",
        type=_positive_float,
        default=5.0,
        metavar="MM",
        help="Gaussian smoothing of the maps before the voxelwise tests, FWHM in mm (default 5)",
    )
    group.add_argument(
        "--cluster-forming-p",
        type=_probability,
        default=0.01,
        metavar="P",
        help="voxelwise p threshold that forms clusters (default 0.01, as in the paper)",
    )
    group.add_argument(
        "--n-permutations",
        type=_permutations,
        default="exact",
        metavar="N",
        help="sign-flip permutations for the permutation FWE: 'exact' (all 2^n flips when "
        "n <= 12, else 10000 random flips), a number (random flips used when n > 12; with "
        "n <= 12 all flips are always enumerated), or 0 to skip (default exact)",
    )
    group.add_argument(
        "--no-variance-regularisation",
        dest="variance_regularisation",
        action="store_false",
        help="do not add SPM's PET variance regularisation (1e-3 * max ResMS) before computing t",
    )
    group.add_argument(
        "--explicit-mask",
        type=_existing_file,
        metavar="NIFTI",
        help="restrict the voxelwise search volume to this mask (voxels > 0), on the grid of "
        "the participant maps (MNI152NLin2009aSym, 2 mm). Without it the search volume is "
        "every voxel that all participants' maps cover (SPM's implicit mask)",
    )
    group.add_argument(
        "--cluster-masks",
        choices=("significant", "all"),
        default="significant",
        help="clusters written to the cluster-mask images: those with RFT cluster-level "
        "p(FWE) < 0.05 (default) or every cluster above the cluster-forming threshold",
    )
    group.add_argument(
        "--behavior-config",
        type=_existing_file,
        metavar="JSON",
        help="a JSON file overriding the defaults of the behavioural/physiological analysis",
    )

    failures = parser.add_argument_group("failed participants and quality control")
    failures.add_argument(
        "--qc-fail",
        choices=("warn", "exclude", "error"),
        default="exclude",
        help="what a participant whose quality control failed (results likely wrong: e.g. "
        "large head motion, an implausible normalisation) does. 'exclude' (default): a "
        "warning at the participant level, left out of the group level with the reasons in "
        "its report. 'warn': kept at the group level with a warning. 'error': counted as "
        "failed at the participant level (exit code 1) and stops the group level",
    )
    failures.add_argument(
        "--min-participants",
        type=_at_least_two,
        default=3,
        metavar="N",
        help="the group level stops when fewer than N participants have complete, usable "
        "participant-level outputs (failed, incomplete and QC-excluded participants are "
        "left out and named in the group report); default 3, at least 2 for a paired test",
    )

    perf = parser.add_argument_group("performance and run control")
    perf.add_argument(
        "--work-dir",
        "-w",
        type=lambda v: Path(v).expanduser().resolve(),
        help="intermediate files (default: a folder per OUTPUT_DIR in the system temporary "
        "folder, e.g. /tmp/bids_app_work_<hash>)",
    )
    perf.add_argument(
        "--nprocs",
        "--n-cpus",
        "--n_cpus",
        dest="nprocs",
        type=_positive_int,
        default=1,
        help="participants processed in parallel (local processes; default 1)",
    )
    perf.add_argument(
        "--omp-nthreads",
        type=_positive_int,
        default=1,
        help="threads per participant for ANTs and numerical libraries (default 1)",
    )
    perf.add_argument(
        "--mem-mb",
        type=_positive_int,
        default=4000,
        help="memory per participant task in MB (a resource hint for --dask-scheduler; "
        "default 4000)",
    )
    perf.add_argument(
        "--dask-scheduler",
        metavar="ADDRESS",
        help="submit one task per participant to this dask.distributed scheduler "
        "(e.g. tcp://10.0.0.5:8786) instead of local processes",
    )
    perf.add_argument(
        "--overwrite",
        action="store_true",
        help="redo participants whose outputs are already complete (default: skip them)",
    )
    perf.add_argument(
        "--seed", type=_non_negative_int, default=1234, help="random seed (default 1234)"
    )
    perf.add_argument(
        "--dry-run",
        action="store_true",
        help="validate everything and print the plan (participants, sessions, files, frame "
        "schedules, normalisation path) without processing",
    )
    perf.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more log output (-v info details, -vv debug)",
    )
    perf.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    return parser
