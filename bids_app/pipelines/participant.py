"""Participant level: validate every input, then process each participant.

Validation of the whole run happens first (cheap checks, then the official BIDS validator);
any problem stops the run before anything but logs is written. Participants are then processed
independently (:func:`bids_app.pipelines.participant_run.process_participant`): a failure is
logged and recorded in ``logs/summary.tsv`` and the others go on; the exit code is 1 when any
participant failed.
"""

from __future__ import annotations

import fcntl
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bids_app import __version__
from bids_app.bidsio.layout import ParticipantInput, Study, check_output_dir, discover_study
from bids_app.bidsio.validator import run_bids_validator
from bids_app.config import Config
from bids_app.errors import EXIT_FAILURE, EXIT_OK, ValidationError
from bids_app.log import setup_logging
from bids_app.outputs.io import write_json, write_tsv
from bids_app.outputs.names import logs_dir, report_name, summary_path
from bids_app.outputs.sidecars import write_dataset_description
from bids_app.pipelines.executor import map_tasks
from bids_app.pipelines.participant_run import ParticipantOutcome, process_participant

LOGGER = logging.getLogger(__name__)
SUMMARY_COLUMNS = ["participant_id", "session_id", "status", "message", "qc", "elapsed_s"]


@dataclass(frozen=True)
class _Task:
    participant: ParticipantInput
    config: Config
    run_id: str


def run_participant_level(config: Config) -> int:
    """Run the participant level for the selected participants.

    Parameters
    ----------
    config : Config
        The run configuration.

    Returns
    -------
    int
        0 when every participant succeeded (or was already complete), 1 otherwise.
    """
    check_output_dir(config.bids_dir, config.output_dir)
    run_id = time.strftime("%Y%m%d-%H%M%S")
    log_dir = logs_dir(config.output_dir)
    setup_logging(config.verbosity, None if config.dry_run else log_dir / f"run-{run_id}.log")
    study = validate_inputs(config)
    if config.dry_run:
        sys.stdout.write(format_plan(study, config))
        return EXIT_OK
    write_dataset_description(config.output_dir, __version__)
    write_json(log_dir / f"run-{run_id}_config.json", config.to_dict())
    tasks = [_Task(p, config, run_id) for p in study.participants]
    LOGGER.info(
        "Processing %d participant(s) with %s",
        len(tasks),
        f"the Dask scheduler at {config.dask_scheduler}"
        if config.dask_scheduler
        else f"{config.nprocs} local process(es)",
    )
    outcomes: list[ParticipantOutcome] = []
    for outcome in map_tasks(
        _run_task,
        tasks,
        nprocs=config.nprocs,
        dask_scheduler=config.dask_scheduler,
        threads_per_task=config.omp_nthreads,
        memory_mb=config.mem_mb,
    ):
        outcomes.append(outcome)
        LOGGER.info(
            "sub-%s: %s (%d/%d)%s",
            outcome.participant_id,
            outcome.status,
            len(outcomes),
            len(tasks),
            f": {outcome.message}" if outcome.message else "",
        )
    update_summary(summary_path(config.output_dir), outcomes)
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        reports = published_reports(config.output_dir, outcomes)
        if reports:
            LOGGER.info("Participant reports: %s", ", ".join(str(p) for p in reports))
        LOGGER.error(
            "%d of %d participant(s) failed: %s (details in %s)",
            len(failed),
            len(outcomes),
            ", ".join(f"sub-{o.participant_id}" for o in failed),
            summary_path(config.output_dir),
        )
        return EXIT_FAILURE
    LOGGER.info(
        "Participant level finished; outputs in %s; reports: %s",
        config.output_dir,
        ", ".join(str(p) for p in published_reports(config.output_dir, outcomes)) or "none",
    )
    return EXIT_OK


def published_reports(output_dir: Path, outcomes: list[ParticipantOutcome]) -> list[Path]:
    """The participant reports present in OUTPUT_DIR for this run's participants."""
    paths = (output_dir / report_name(o.participant_id) for o in outcomes)
    return [p for p in paths if p.is_file()]


def _run_task(task: _Task) -> ParticipantOutcome:
    return process_participant(task.participant, task.config, run_id=task.run_id)


def validate_inputs(config: Config) -> Study:
    """Discover the study and collect every input problem, BIDS validator errors included.

    Raises
    ------
    ValidationError
        With one line per problem, when anything is wrong.
    """
    problems: list[str] = []
    study: Study | None = None
    try:
        study = discover_study(
            config.bids_dir,
            participant_labels=config.participant_label,
            baseline_session=config.baseline_session,
            challenge_session=config.challenge_session,
        )
    except ValidationError as exc:
        problems.extend(exc.problems)
    if not config.skip_bids_validation:
        problems.extend(_validator_problems(config.bids_dir))
    if problems or study is None:
        raise ValidationError(problems)
    return study


def _validator_problems(bids_dir: Path) -> list[str]:
    result = run_bids_validator(bids_dir)
    if not result.available:
        LOGGER.warning(
            "The official BIDS validator could not run (%s); continuing with the app's own "
            "PET checks. Pass --skip-bids-validation to silence this.",
            result.reason,
        )
        return []
    for warning in result.warnings:
        LOGGER.debug("BIDS validator warning: %s", warning)
    errors = []
    for err in result.errors:
        if _is_long_phenotype_index(err):
            LOGGER.info(
                "BIDS validator: %s (accepted: phenotype tables are read in long format, one "
                "row per participant, session and time point)",
                err,
            )
        else:
            errors.append(f"BIDS validator: {err}")
    return errors


def _is_long_phenotype_index(error: str) -> bool:
    """The validator's non-unique index error on ``phenotype/`` tables in long format."""
    return error.startswith("TSV_INDEX_VALUE_NOT_UNIQUE") and "/phenotype/" in error


def format_plan(study: Study, config: Config) -> str:
    """Human-readable plan of a participant run (``--dry-run``)."""
    lines = [
        "bids_app participant level: plan (dry run, nothing processed)",
        f"  BIDS dataset : {config.bids_dir}",
        f"  output       : {config.output_dir}",
        f"  work dir     : {config.work_dir}",
        f"  sessions     : baseline={study.baseline_session} challenge={study.challenge_session}"
        f" (from {study.session_source})",
        f"  tracer       : {study.tracer}",
        f"  participants : {len(study.participants)}",
    ]
    for p in study.participants:
        path = "PET -> T1w -> MNI" if p.t1w is not None else "PET-only"
        lines.append(f"  sub-{p.subject}: normalisation {path}")
        for role, scan in (("baseline", p.baseline), ("challenge", p.challenge)):
            t = scan.timing
            lines.append(
                f"    {role:9s} ses-{scan.session}: {scan.path.relative_to(config.bids_dir)}"
                f" | {t.n_frames} frames, {t.start_s[0]:g}-{t.end_s[-1]:g} s"
                f" (first {t.end_s[0] - t.start_s[0]:g} s, last {t.end_s[-1] - t.start_s[-1]:g} s)"
            )
        if p.t1w is not None:
            lines.append(f"    T1w: {p.t1w.relative_to(config.bids_dir)}")
    for subject, reason in getattr(study, "skipped", []):
        lines.append(f"  skipped sub-{subject}: {reason}")
    return "\n".join(lines) + "\n"


def update_summary(path: Path, outcomes: list[ParticipantOutcome]) -> None:
    """Merge this run's outcomes into ``logs/summary.tsv`` (one row per participant/session)."""
    rows = [
        {
            "participant_id": f"sub-{o.participant_id}",
            "session_id": f"ses-{session}" if session else "n/a",
            "status": o.status,
            "message": o.message,
            "qc": o.qc.summary() if o.qc is not None else "n/a",
            "elapsed_s": round(o.elapsed_s, 1) if o.status == "success" else "n/a",
        }
        for o in outcomes
        for session in (o.sessions or ("",))
    ]
    new = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Parallel jobs (e.g. one SLURM array task per participant) update the same summary:
    # hold an exclusive lock while reading, merging and replacing it.
    with open(path.with_name(".summary.lock"), "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.is_file():
            old = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
            old = old[~old["participant_id"].isin(set(new["participant_id"]))]
            new = pd.concat([old, new], ignore_index=True)
        new = new.sort_values(["participant_id", "session_id"], kind="stable")
        write_tsv(path, new)


__all__ = ["format_plan", "run_participant_level", "validate_inputs"]
