"""Command line: ``python -m petsim OUT_DIR [--small] [--null] [--anatomy individual] ...``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from petsim.errors import SimulationError
from petsim.protocol import NOISE_LEVELS

EXIT_OK = 0
EXIT_FAILURE = 1

logger = logging.getLogger("petsim")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"must be a positive integer; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        msg = f"must be a positive number; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _noise(text: str) -> str | float:
    if text in NOISE_LEVELS:
        return text
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        msg = f"must be one of {sorted(NOISE_LEVELS)} or a number >= 0; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of the generator CLI."""
    parser = argparse.ArgumentParser(
        prog="python -m petsim",
        description=(
            "Generate a synthetic [11C]raclopride baseline/challenge PET-BIDS study in "
            "OUT_DIR/bids with its ground truth in OUT_DIR/truth."
        ),
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", help="output folder (absent or empty)")
    parser.add_argument(
        "--small", action="store_true", help="fast mode: 4 participants, 4 mm, 12 frames"
    )
    parser.add_argument("--null", action="store_true", help="no challenge effects at all")
    parser.add_argument(
        "--n-participants",
        type=_positive_int,
        default=None,
        help="number of participants (default 10; 4 with --small)",
    )
    parser.add_argument("--seed", type=int, default=0, help="master random seed (default 0)")
    parser.add_argument(
        "--with-t1w", action="store_true", help="also write a T1w image per participant"
    )
    realism = parser.add_argument_group("realism")
    realism.add_argument(
        "--anatomy",
        choices=("template", "individual"),
        default="template",
        help="every head is the template (default) or an individually deformed one",
    )
    realism.add_argument(
        "--phenotype-form",
        choices=("long", "wide"),
        default="long",
        help="phenotype tables with a time_min column (default) or in the BIDS-valid wide form "
        "(sick_t10, sick_tminus10)",
    )
    realism.add_argument(
        "--t1w-skull",
        action="store_true",
        help="whole-head T1w (skull, scalp, eyes, neck, bias field, Rician noise); implies "
        "--with-t1w",
    )
    realism.add_argument(
        "--axial-fov-mm",
        type=_positive_float,
        default=None,
        metavar="MM",
        help="limited axial field of view, e.g. 108 for the ECAT 931 (default: full grid)",
    )
    realism.add_argument(
        "--noise",
        type=_noise,
        default=None,
        metavar="LEVEL",
        help=f"noise level: {' or '.join(sorted(NOISE_LEVELS))} or a number (default example)",
    )
    parser.add_argument(
        "--n-jobs", type=_positive_int, default=1, help="worker processes (default 1)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the contents of a non-empty OUT_DIR"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    return parser


def _configure_logging(verbose: bool) -> logging.Handler:
    """Send petsim's log records to stderr (progress with -v, else warnings and errors)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s petsim %(levelname)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    """Run the generator; returns the exit code (0 success, 1 failure, 2 usage via argparse)."""
    from petsim.study import generate_study

    args = build_parser().parse_args(argv)
    handler = _configure_logging(args.verbose)
    try:
        paths = generate_study(
            args.out_dir,
            n_participants=args.n_participants,
            small=args.small,
            seed=args.seed,
            null=args.null,
            with_t1w=args.with_t1w,
            n_jobs=args.n_jobs,
            overwrite=args.overwrite,
            anatomy=args.anatomy,
            t1w_skull=args.t1w_skull,
            axial_fov_mm=args.axial_fov_mm,
            noise=args.noise,
            phenotype_form=args.phenotype_form,
        )
    except SimulationError as exc:
        logger.error("%s", exc)
        return EXIT_FAILURE
    finally:
        logger.removeHandler(handler)
    sys.stderr.write(f"BIDS dataset: {paths.bids_dir}\nground truth: {paths.truth_dir}\n")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
