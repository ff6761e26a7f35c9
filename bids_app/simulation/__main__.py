"""Command line: ``python -m bids_app.simulation OUT_DIR [--small] [--null] ...``."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from bids_app.errors import EXIT_FAILURE, EXIT_OK, BidsAppError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"must be a positive integer; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of the generator CLI."""
    parser = argparse.ArgumentParser(
        prog="python -m bids_app.simulation",
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
    parser.add_argument(
        "--n-jobs", type=_positive_int, default=1, help="worker processes (default 1)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the contents of a non-empty OUT_DIR"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the generator; returns the exit code (0 success, 1 failure, 2 usage via argparse)."""
    from bids_app.log import setup_logging
    from bids_app.simulation.study import generate_study

    args = build_parser().parse_args(argv)
    setup_logging(0 if args.verbose else -1)
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
        )
    except BidsAppError as exc:
        logging.getLogger("bids_app.simulation").error("%s", exc)
        return EXIT_FAILURE
    logging.getLogger("bids_app.simulation").info(
        "BIDS dataset: %s; ground truth: %s", paths.bids_dir, paths.truth_dir
    )
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
