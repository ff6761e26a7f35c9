"""Run configuration: one frozen object built from the command line, passed explicitly."""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

AnalysisLevel = Literal["participant", "group"]
#: ``--qc-fail``: what a participant whose quality control failed does (see the CLI help).
QcPolicy = Literal["warn", "exclude", "error"]

#: Options that shape participant-level results (recorded in each participant's manifest; a
#: change makes a rerun recompute). Input files (PET, T1w, a custom atlas) are hashed separately.
PARTICIPANT_OPTIONS: tuple[str, ...] = (
    "baseline_session",
    "challenge_session",
    "pet_normalisation",
    "k2prime_method",
    "k2prime_pooling",
    "weights",
    "n_basis",
    "k2a_range_per_min",
    "seed",
    "exclude_bad_frames",
    "write_preproc",
)


#: Participant options that may differ between participants without mixing methods (the
#: session labels: participants processed separately may name their sessions differently).
PER_PARTICIPANT_OPTIONS: tuple[str, ...] = ("baseline_session", "challenge_session")


def _by_value(values: Mapping[str, object], *, as_json: bool = True) -> str | None:
    """``"<value> for sub-01, sub-02; <value> for sub-03"``, or None when all agree.

    Values are shown as JSON (``as_json``, e.g. option values) or as text (versions).
    """
    groups: dict[str, list[str]] = {}
    for subject in sorted(values):
        value = values[subject]
        key = json.dumps(value, sort_keys=True, default=str) if as_json else str(value)
        groups.setdefault(key, []).append(f"sub-{subject}")
    if len(groups) < 2:
        return None
    return "; ".join(f"{value} for {', '.join(subjects)}" for value, subjects in groups.items())


def settings_differences(
    options: Mapping[str, Mapping[str, Any]], versions: Mapping[str, str]
) -> list[str]:
    """What differs between participants' participant-level settings and app versions.

    The group level compares participants; results computed with different methods or versions
    are not comparable without saying so. Session labels (:data:`PER_PARTICIPANT_OPTIONS`) are
    not compared.

    Parameters
    ----------
    options : mapping of str to mapping
        Participant label -> the options recorded in its manifest (``Manifest.options``).
    versions : mapping of str to str
        Participant label -> the bids_app version that wrote its outputs.

    Returns
    -------
    list of str
        One line per differing option (and one for the version), naming every value and its
        participants and how to fix it; empty when all agree.
    """
    fix = (
        "Re-run the participant level for the odd participants with the same options and "
        "version (their outputs are recomputed), or leave them out with --participant-label."
    )
    keys = sorted(
        {k for values in options.values() for k in values} - set(PER_PARTICIPANT_OPTIONS)
    )
    lines = [
        f"participants were processed with different settings: option {key} is {shown}. "
        f"The group comparison mixes them. {fix}"
        for key in keys
        if (shown := _by_value({s: o.get(key, "(not recorded)") for s, o in options.items()}))
    ]
    shown = _by_value(versions, as_json=False)
    if shown is not None:
        lines.append(
            f"participants were processed with different bids_app versions: {shown}. "
            f"Results may differ between versions. {fix}"
        )
    return lines


def default_work_dir(output_dir: Path) -> Path:
    """Scratch folder of a run: in the system temporary folder, one per OUTPUT_DIR.

    The temporary folder is writable in containers run with ``--read-only --tmpfs /tmp``;
    the name carries a hash of OUTPUT_DIR so that concurrent runs into different outputs do
    not share staging folders.
    """
    digest = hashlib.sha1(str(output_dir).encode("utf-8")).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"bids_app_work_{digest}"


@dataclass(frozen=True)
class Config:
    """Everything a run needs to know, built once from the command line.

    Attributes mirror the command-line options (see ``bids_app --help``); paths are absolute.
    """

    bids_dir: Path
    output_dir: Path
    analysis_level: AnalysisLevel
    work_dir: Path
    participant_label: tuple[str, ...] | None = None
    baseline_session: str | None = None
    challenge_session: str | None = None
    skip_bids_validation: bool = False
    pet_run: str | None = None
    bids_filter_file: Path | None = None
    exclude_bad_frames: bool = False
    pet_normalisation: Literal["affine", "syn"] = "affine"
    k2prime_method: Literal["roi", "voxel_median"] = "roi"
    k2prime_pooling: Literal["per_session", "mean", "joint"] = "per_session"
    weights: Literal["duration", "uniform"] = "duration"
    n_basis: int = 100
    k2a_range_per_min: tuple[float, float] | None = None
    atlas_labels: Path | None = None
    atlas_tsv: Path | None = None
    write_preproc: bool = False
    smoothing_fwhm_mm: float = 5.0
    cluster_forming_p: float = 0.01
    n_permutations: int | Literal["exact"] = "exact"
    variance_regularisation: bool = True
    explicit_mask: Path | None = None
    cluster_masks: Literal["significant", "all"] = "significant"
    behavior_config: Path | None = None
    qc_fail: QcPolicy = "exclude"
    min_participants: int = 3
    nprocs: int = 1
    omp_nthreads: int = 1
    mem_mb: int = 4000
    dask_scheduler: str | None = None
    overwrite: bool = False
    seed: int = 1234
    dry_run: bool = False
    verbosity: int = 0
    command_line: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_namespace(cls, ns: argparse.Namespace, command_line: tuple[str, ...] = ()) -> Config:
        """Build from parsed arguments.

        Parameters
        ----------
        ns : argparse.Namespace
            The result of :func:`bids_app.cli.parser.build_parser` ``.parse_args``.
        command_line : tuple of str
            The original argv, kept for provenance.
        """
        work_dir = ns.work_dir or default_work_dir(ns.output_dir)
        verbosity = -1 if ns.quiet else ns.verbose
        k2a_range = (
            None if ns.k2a_range is None else (float(ns.k2a_range[0]), float(ns.k2a_range[1]))
        )
        return cls(
            bids_dir=ns.bids_dir,
            output_dir=ns.output_dir,
            analysis_level=ns.analysis_level,
            work_dir=work_dir,
            participant_label=tuple(dict.fromkeys(ns.participant_label))
            if ns.participant_label
            else None,
            baseline_session=ns.baseline_session,
            challenge_session=ns.challenge_session,
            skip_bids_validation=ns.skip_bids_validation,
            pet_run=ns.pet_run,
            bids_filter_file=ns.bids_filter_file,
            exclude_bad_frames=ns.exclude_bad_frames,
            pet_normalisation=ns.pet_normalisation,
            k2prime_method=ns.k2prime_method,
            k2prime_pooling=ns.k2prime_pooling,
            weights=ns.weights,
            n_basis=ns.n_basis,
            k2a_range_per_min=k2a_range,
            atlas_labels=ns.atlas_labels,
            atlas_tsv=ns.atlas_tsv,
            write_preproc=ns.write_preproc,
            smoothing_fwhm_mm=ns.smoothing_fwhm,
            cluster_forming_p=ns.cluster_forming_p,
            n_permutations=ns.n_permutations,
            variance_regularisation=ns.variance_regularisation,
            explicit_mask=ns.explicit_mask,
            cluster_masks=ns.cluster_masks,
            behavior_config=ns.behavior_config,
            qc_fail=ns.qc_fail,
            min_participants=ns.min_participants,
            nprocs=ns.nprocs,
            omp_nthreads=ns.omp_nthreads,
            mem_mb=ns.mem_mb,
            dask_scheduler=ns.dask_scheduler,
            overwrite=ns.overwrite,
            seed=ns.seed,
            dry_run=ns.dry_run,
            verbosity=verbosity,
            command_line=tuple(command_line),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dictionary (paths as strings) for provenance."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = [str(v) if isinstance(v, Path) else v for v in value]
            out[f.name] = value
        return out

    def participant_options(self) -> dict[str, Any]:
        """The options that shape participant-level results (:data:`PARTICIPANT_OPTIONS`)."""
        everything = self.to_dict()
        return {name: everything[name] for name in PARTICIPANT_OPTIONS}

    def to_json(self) -> str:
        """Provenance dump of the configuration."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


__all__ = ["PARTICIPANT_OPTIONS", "AnalysisLevel", "Config", "QcPolicy", "settings_differences"]
