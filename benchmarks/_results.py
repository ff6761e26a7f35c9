"""Shared by the benchmarks: the machine they ran on, and where their numbers are stored.

Each benchmark writes ``benchmarks/results/<name>.json``::

    {"benchmark": name, "command": [...], "machine": {...}, "results": {...}}

``machine`` records what the numbers depend on: CPU model and count, the load averages before
and after the run (the development machines are shared, so timings are only comparable with
the load they were measured under), Python, numpy and bids_app versions, the git commit and
the time.
``scripts/update_readme_numbers.py`` turns these files into the README's "How well it works"
block.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def cpu_model() -> str:
    """The CPU model name (Linux ``/proc/cpuinfo``), else what :mod:`platform` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def load_average() -> list[float]:
    """1-, 5- and 15-minute load averages (empty where the OS has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def usable_cpus() -> int:
    """CPUs this process may run on (the affinity mask where available)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def git_commit() -> str:
    """The checked-out commit of this repository (``+dirty`` with local changes), if any."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "-C",
                str(root),
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":(exclude)benchmarks/results",  # the benchmarks' own output
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}+dirty" if dirty else commit


def machine_info(load_before: list[float]) -> dict[str, Any]:
    """What the numbers were measured on; call at the end of the run.

    Parameters
    ----------
    load_before : list of float
        :func:`load_average` taken when the benchmark started.
    """
    return {
        "cpu_model": cpu_model(),
        "usable_cpus": usable_cpus(),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "scipy": _version("scipy"),
        "antspyx": _version("antspyx"),
        "bids_app": _version("bids_app"),
        "git_commit": git_commit(),
        "finished_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def save_results(
    name: str,
    results: dict[str, Any],
    load_before: list[float],
    results_dir: Path | None = None,
) -> Path:
    """Write ``<results_dir>/<name>.json`` and return its path.

    Parameters
    ----------
    name : str
        Benchmark name (file stem), e.g. ``"participant"``.
    results : dict
        The benchmark's numbers (JSON-serialisable).
    load_before : list of float
        Load averages when the run started.
    results_dir : Path, optional
        Folder (default ``benchmarks/results``).
    """
    folder = RESULTS_DIR if results_dir is None else results_dir
    folder.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "machine": machine_info(load_before),
        "results": results,
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
