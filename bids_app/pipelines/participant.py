"""Participant level: validate every input, then process each participant.

Validation of the whole run happens first (cheap checks, then the official BIDS validator);
any problem stops the run before anything but logs is written, except a participant lacking
its baseline or challenge session: it is skipped, with its reason in the log and in
``logs/summary.tsv`` (status ``skipped``), so that the group level can name it. Participants are
then processed independently (:func:`bids_app.pipelines.participant_run.process_participant`):
a failure is logged and recorded in ``logs/summary.tsv`` and the others go on; the exit code is 1
when any participant failed. Notes about the inputs (frames excluded, a late scan start, decay
correction applied) go to the log and to each session's ``summary.tsv`` row.
"""

from __future__ import annotations

import fcntl
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from bids_app import __version__
from bids_app.bidsio.filters import ScanFilterValue, read_bids_filter_file
from bids_app.bidsio.layout import ParticipantInput, Study, check_output_dir, discover_study
from bids_app.bidsio.validator import (
    Finding,
    run_bids_validator,
    summarise_findings,
    triage_findings,
)
from bids_app.config import Config, QcPolicy
from bids_app.errors import EXIT_FAILURE, EXIT_OK, ValidationError
from bids_app.log import setup_logging
from bids_app.outputs.io import write_json, write_tsv
from bids_app.outputs.names import logs_dir, report_name, summary_path
from bids_app.outputs.sidecars import write_dataset_description
from bids_app.pipelines.executor import map_tasks
from bids_app.pipelines.participant_run import ParticipantOutcome, process_participant
from bids_app.pipelines.stages import StageTiming

LOGGER = logging.getLogger(__name__)
#: Seconds per group of stages in ``logs/summary.tsv``: column -> stage names (the part before
#: ``:``) it adds up. ``outputs_s`` is writing the derivatives, publishing them and the report.
TIMING_COLUMNS: dict[str, tuple[str, ...]] = {
    "motion_s": ("motion",),
    "means_s": ("means",),
    "coregistration_s": ("coregistration",),
    "normalisation_s": ("normalisation",),
    "resample_s": ("resample",),
    "model_s": ("tacs", "k2prime", "fit"),
    "outputs_s": ("outputs", "report"),
}
SUMMARY_COLUMNS = [
    "participant_id",
    "session_id",
    "status",
    "message",
    "qc",
    "elapsed_s",
    *TIMING_COLUMNS,
    "peak_rss_mb",
    "from_checkpoint",
]


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
    outcomes = [
        ParticipantOutcome(subject, "skipped", f"not processed: {reason}")
        for subject, reason in study.skipped
    ]
    for outcome in outcomes:
        LOGGER.warning("sub-%s skipped: %s", outcome.participant_id, outcome.message)
    for outcome in map_tasks(
        _run_task,
        tasks,
        nprocs=config.nprocs,
        dask_scheduler=config.dask_scheduler,
        threads_per_task=config.omp_nthreads,
        memory_mb=config.mem_mb,
    ):
        outcome = apply_qc_policy(outcome, config.qc_fail)
        outcomes.append(outcome)
        LOGGER.info(
            "sub-%s: %s (%d/%d)%s",
            outcome.participant_id,
            outcome.status,
            len(outcomes) - len(study.skipped),
            len(tasks),
            f": {outcome.message}" if outcome.message else "",
        )
    update_summary(summary_path(config.output_dir), outcomes, session_notes(study))
    failed = [o for o in outcomes if o.status == "failed"]
    if study.skipped:
        LOGGER.warning(
            "%d participant(s) skipped for missing sessions: %s (details in %s)",
            len(study.skipped),
            ", ".join(f"sub-{subject}" for subject, _ in study.skipped),
            summary_path(config.output_dir),
        )
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


def apply_qc_policy(outcome: ParticipantOutcome, policy: QcPolicy) -> ParticipantOutcome:
    """Apply ``--qc-fail`` at the participant level.

    With ``error`` a participant whose quality control failed counts as failed (exit code 1;
    its outputs stay in place for inspection). Otherwise the outcome is unchanged: the QC
    verdict was already logged as a warning, and the group level decides (``exclude`` leaves
    the participant out there).

    Parameters
    ----------
    outcome : ParticipantOutcome
        A processed (or skipped) participant with its QC verdict.
    policy : {"warn", "exclude", "error"}
        ``--qc-fail``.

    Returns
    -------
    ParticipantOutcome
    """
    qc = outcome.qc
    if policy != "error" or outcome.status == "failed" or qc is None or qc.status != "fail":
        return outcome
    reasons = "; ".join(c.describe() for c in qc.flagged("fail"))
    message = (
        f"quality control failed ({reasons}) and --qc-fail error counts that as a failure; "
        f"the outputs were kept for inspection (sub-{outcome.participant_id}.html)"
    )
    LOGGER.error("sub-%s: %s", outcome.participant_id, message)
    return replace(outcome, status="failed", message=message)


def published_reports(output_dir: Path, outcomes: list[ParticipantOutcome]) -> list[Path]:
    """The participant reports present in OUTPUT_DIR for this run's participants."""
    paths = (output_dir / report_name(o.participant_id) for o in outcomes)
    return [p for p in paths if p.is_file()]


def _run_task(task: _Task) -> ParticipantOutcome:
    return process_participant(task.participant, task.config, run_id=task.run_id)


def scan_filters(
    config: Config,
) -> tuple[dict[str, ScanFilterValue], dict[str, ScanFilterValue]]:
    """PET and T1w entity filters from ``--bids-filter-file`` and ``--pet-run``."""
    filters: dict[str, dict[str, ScanFilterValue]] = {"pet": {}, "t1w": {}}
    if config.bids_filter_file is not None:
        filters = read_bids_filter_file(config.bids_filter_file)
    pet = dict(filters["pet"])
    if config.pet_run is not None:
        pet["run"] = (config.pet_run,)
    return pet, dict(filters["t1w"])


def validate_inputs(config: Config) -> Study:
    """Discover the study and collect every input problem, BIDS validator errors included.

    Participants lacking a session are skipped (:attr:`Study.skipped`), not problems, unless
    no participant is left.

    Raises
    ------
    ValidationError
        With one line per problem, when anything is wrong.
    """
    problems: list[str] = []
    study: Study | None = None
    pet_filters, t1w_filters = scan_filters(config)
    try:
        study = discover_study(
            config.bids_dir,
            participant_labels=config.participant_label,
            baseline_session=config.baseline_session,
            challenge_session=config.challenge_session,
            pet_filters=pet_filters,
            t1w_filters=t1w_filters,
            skip_incomplete=True,
            exclude_bad_frames=config.exclude_bad_frames,
        )
    except ValidationError as exc:
        problems.extend(exc.problems)
    if not config.skip_bids_validation:
        problems.extend(validator_problems(config.bids_dir))
    if problems or study is None:
        raise ValidationError(problems)
    return study


def validator_problems(bids_dir: Path) -> list[str]:
    """The official validator's errors, grouped by code, and one summary line.

    Findings the app accepts (:func:`~bids_app.bidsio.validator.triage_findings`) and the
    warnings are summarised in one log line each (every group at debug level).

    Returns
    -------
    list of str
        Empty when the validator found no error the app does not accept (or could not run).
    """
    result = run_bids_validator(bids_dir)
    if not result.available:
        LOGGER.warning(
            "The official BIDS validator could not run (%s); continuing with the app's own "
            "PET checks. Pass --skip-bids-validation to silence this.",
            result.reason,
        )
        return []
    errors, accepted = triage_findings(Path(bids_dir), result.findings)
    warnings = [f for f in result.findings if f.severity != "error"]
    for kind, found in (("warning", warnings), ("accepted", [f for f, _ in accepted])):
        for line in summarise_findings(found):
            LOGGER.debug("BIDS validator %s: %s", kind, line)
    if warnings:
        LOGGER.info(
            "BIDS validator: %d warning(s) (%s); -vv lists them",
            len(warnings),
            _count_by_code(warnings),
        )
    if accepted:
        reasons = dict.fromkeys(reason for _, reason in accepted)
        LOGGER.info(
            "BIDS validator: %d error(s) accepted (%s): %s",
            len(accepted),
            _count_by_code([f for f, _ in accepted]),
            "; ".join(reasons),
        )
    if not errors:
        return []
    lines = [f"BIDS validator: {line}" for line in summarise_findings(errors)]
    lines.append(
        f"BIDS validator {result.version} (schema {result.schema_version}): {len(errors)} "
        f"error(s) of {len({f.code for f in errors})} kind(s), listed above"
        + (f" ({len(accepted)} more accepted)" if accepted else "")
        + ". Fix the dataset (the validator's full report: `bids-validator-deno "
        f"{bids_dir}`), or pass --skip-bids-validation to rely on the app's own checks."
    )
    return lines


def _count_by_code(findings: Sequence[Finding]) -> str:
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.code] = counts.get(finding.code, 0) + 1
    return ", ".join(f"{code} x{n}" for code, n in counts.items())


def session_notes(study: Study) -> dict[tuple[str, str], str]:
    """``(participant, session) -> "; "-joined notes`` of every scan with notes."""
    return {
        (p.subject, scan.session): "; ".join(scan.notes)
        for p in study.participants
        for scan in (p.baseline, p.challenge)
        if scan.notes
    }


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
            excluded = (
                f", frame(s) {', '.join(map(str, scan.excluded_frames))} excluded"
                if scan.excluded_frames
                else ""
            )
            lines.append(
                f"    {role:9s} ses-{scan.session}: {scan.path.relative_to(config.bids_dir)}"
                f" | {t.n_frames} frames{excluded}, {t.start_s[0]:g}-{t.end_s[-1]:g} s"
                f" (first {t.end_s[0] - t.start_s[0]:g} s, last {t.end_s[-1] - t.start_s[-1]:g} s)"
            )
        if p.t1w is not None:
            lines.append(f"    T1w: {p.t1w.relative_to(config.bids_dir)}")
    for subject, reason in study.skipped:
        lines.append(f"  skipped sub-{subject}: {reason}")
    for p in study.participants:
        for note in p.notes:
            lines.append(f"  note: {note}")
    return "\n".join(lines) + "\n"


def timing_summary(timings: Sequence[StageTiming]) -> dict[str, object]:
    """The timing columns of ``logs/summary.tsv`` for one participant.

    Parameters
    ----------
    timings : sequence of StageTiming
        The participant's stages (``ParticipantOutcome.timings``).

    Returns
    -------
    dict
        One value per :data:`TIMING_COLUMNS` entry (wall seconds, 0.1 s; stages of both
        sessions added up), ``peak_rss_mb`` (largest peak resident memory of the process that
        ran the participant, MiB) and ``from_checkpoint`` (stages loaded from a previous run's
        checkpoints, comma-separated, or ``none``); all ``n/a`` without timings.
    """
    if not timings:
        return dict.fromkeys([*TIMING_COLUMNS, "peak_rss_mb", "from_checkpoint"], "n/a")
    out: dict[str, object] = {
        column: round(sum(t.seconds for t in timings if t.name.split(":")[0] in stages), 1)
        for column, stages in TIMING_COLUMNS.items()
    }
    out["peak_rss_mb"] = round(max(t.peak_rss_mb for t in timings))
    out["from_checkpoint"] = ",".join(t.name for t in timings if t.cached) or "none"
    return out


def update_summary(
    path: Path,
    outcomes: list[ParticipantOutcome],
    notes: dict[tuple[str, str], str] | None = None,
) -> None:
    """Merge this run's outcomes into ``logs/summary.tsv`` (one row per participant/session).

    Columns: :data:`SUMMARY_COLUMNS`. ``notes`` (``(participant, session) -> text``, from
    :func:`session_notes`) are appended to the rows' messages. The timing columns repeat the
    participant's numbers on each of its session rows (stages such as normalisation serve both
    sessions).
    """
    notes = notes or {}

    def message(outcome: ParticipantOutcome, session: str) -> str:
        parts = [outcome.message, notes.get((outcome.participant_id, session), "")]
        return "; ".join(p for p in parts if p)

    rows = [
        {
            "participant_id": f"sub-{o.participant_id}",
            "session_id": f"ses-{session}" if session else "n/a",
            "status": o.status,
            "message": message(o, session),
            "qc": o.qc.summary() if o.qc is not None else "n/a",
            "elapsed_s": round(o.elapsed_s, 1) if o.status == "success" else "n/a",
            **timing_summary(o.timings if o.status == "success" else ()),
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
            # a summary written by an older version lacks columns: they read n/a there
            extra = [c for c in new.columns if c not in SUMMARY_COLUMNS]
            new = new.reindex(columns=[*SUMMARY_COLUMNS, *extra])
        new = new.sort_values(["participant_id", "session_id"], kind="stable")
        write_tsv(path, new)


__all__ = [
    "SUMMARY_COLUMNS",
    "TIMING_COLUMNS",
    "apply_qc_policy",
    "format_plan",
    "run_participant_level",
    "session_notes",
    "timing_summary",
    "update_summary",
    "validate_inputs",
]
