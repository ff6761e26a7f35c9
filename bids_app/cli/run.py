"""Entry point: parse the command line, build the Config, dispatch, turn errors into exit codes.

This is the only module that maps exceptions to exit codes (0 success, 1 data or runtime failure,
2 usage error).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from bids_app.cli.parser import build_parser
from bids_app.config import Config
from bids_app.errors import EXIT_FAILURE, EXIT_OK, BidsAppError, InputError
from bids_app.log import setup_logging

LOGGER = logging.getLogger("bids_app.cli")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``bids_app`` and return its exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 on success, 1 when data or processing failed; usage errors exit with 2 through
        argparse (``SystemExit``).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    ns = parser.parse_args(args)
    if ns.atlas_labels is not None and ns.atlas_tsv is None:
        parser.error("--atlas-labels needs --atlas-tsv (the table naming each label)")
    if ns.atlas_tsv is not None and ns.atlas_labels is None:
        parser.error("--atlas-tsv needs --atlas-labels (the label image it describes)")
    if ns.k2a_range is not None and ns.k2a_range[0] >= ns.k2a_range[1]:
        parser.error(f"--k2a-range MIN must be below MAX; got {ns.k2a_range[0]} {ns.k2a_range[1]}")
    if ns.k2prime_pooling == "joint" and ns.k2prime_method != "roi":
        parser.error("--k2prime-pooling joint fits the striatal TACs: use --k2prime-method roi")
    if ns.bids_filter_file is not None:
        from bids_app.bidsio.filters import matches, read_bids_filter_file

        try:
            pet_filters = read_bids_filter_file(ns.bids_filter_file)["pet"]
        except InputError as exc:
            parser.error(f"--bids-filter-file: {exc}")
        runs = {"run": pet_filters.get("run")}
        if (
            ns.pet_run is not None
            and "run" in pet_filters
            and not matches({"run": ns.pet_run}, runs)
        ):
            parser.error(
                f"--pet-run {ns.pet_run} contradicts the run in {ns.bids_filter_file} "
                f"({runs['run']}); give the run in one place"
            )
    config = Config.from_namespace(ns, command_line=("bids_app", *args))
    setup_logging(config.verbosity)
    try:
        if config.analysis_level == "participant":
            from bids_app.pipelines.participant import run_participant_level

            return run_participant_level(config)
        from bids_app.pipelines.group import run_group_level

        return run_group_level(config)
    except BidsAppError as exc:
        _report_failure(str(exc))
        return EXIT_FAILURE
    except KeyboardInterrupt:
        _report_failure("interrupted by the user; outputs written so far are complete files")
        return EXIT_FAILURE


def _report_failure(message: str) -> None:
    """Show a failure once, through the log (console and, once set up, the log file)."""
    LOGGER.error(message)


__all__ = ["EXIT_OK", "main"]
