"""A small runner of named processing stages with checkpoints in the work dir.

Each stage is a function of the results of the stages it depends on. Its **key** is a hash of
the run context (input file contents, options, version), its own parameters and the keys of its
dependencies, so it can be computed without running anything. A stage marked ``persist`` stores
its result in ``<checkpoint_dir>/<name>.pkl`` together with its key; a later run with the same
key loads it instead of recomputing, and any change upstream (an input file, an option, the
version) changes the key of every stage below it. Results are computed lazily: a stage whose
result is loaded from its checkpoint never asks for its dependencies, so a rerun resumes at the
first stage whose inputs changed. Non-persisted stages (large arrays, e.g. resampled frames) are
recomputed when something downstream needs them.

The checkpoints live in the work dir, which belongs to the user running the app; they are only
ever read back by the same version (the version is part of every key).
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import resource
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bids_app.outputs.io import atomic_write, jsonable

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageTiming:
    """How one stage ran.

    Attributes
    ----------
    name : str
        Stage name.
    seconds : float
        Wall time, s (loading the checkpoint when ``cached``).
    cached : bool
        Loaded from its checkpoint instead of computed.
    peak_rss_mb : float
        Peak resident memory of the process after the stage, MiB.
    """

    name: str
    seconds: float
    cached: bool
    peak_rss_mb: float


@dataclass(frozen=True)
class _Stage:
    name: str
    func: Callable[..., Any]
    depends: tuple[str, ...]
    params: Mapping[str, Any]
    persist: bool
    still_valid: Callable[[Any], bool] | None


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclass
class StageRunner:
    """Run registered stages lazily, with checkpoints.

    Parameters
    ----------
    checkpoint_dir : Path
        Folder of the ``<stage>.pkl`` checkpoints (inside the work dir).
    context_key : str
        Hash of everything the stages depend on besides their parameters (inputs, options,
        version).
    label : str
        Prefix of the progress log lines (e.g. ``"sub-01"``).

    Attributes
    ----------
    timings : list of StageTiming
        How each stage ran, in the order they finished.
    failed_stage : str or None
        The stage whose function raised (None while nothing failed); crash files name it.
    """

    checkpoint_dir: Path
    context_key: str
    label: str
    timings: list[StageTiming] = field(default_factory=list)
    failed_stage: str | None = field(default=None, init=False)
    _stages: dict[str, _Stage] = field(default_factory=dict)
    _results: dict[str, Any] = field(default_factory=dict)
    _started: float = field(default_factory=time.perf_counter)

    def add(
        self,
        name: str,
        func: Callable[..., Any],
        *,
        depends: Sequence[str] = (),
        params: Mapping[str, Any] | None = None,
        persist: bool = True,
        still_valid: Callable[[Any], bool] | None = None,
    ) -> None:
        """Register a stage.

        Parameters
        ----------
        name : str
            Unique stage name (also the checkpoint file name).
        func : callable
            Called with the results of ``depends``, in order.
        depends : sequence of str
            Stages whose results ``func`` takes (registered before this one).
        params : mapping, optional
            JSON-able parameters that shape the result (part of the key).
        persist : bool
            Keep a checkpoint of the result.
        still_valid : callable, optional
            Check of a loaded result (e.g. that transform files it points to still exist);
            ``False`` recomputes the stage.
        """
        if name in self._stages:
            msg = f"stage {name!r} is registered twice"
            raise ValueError(msg)
        unknown = [d for d in depends if d not in self._stages]
        if unknown:
            msg = f"stage {name!r} depends on unregistered stage(s) {unknown}"
            raise ValueError(msg)
        self._stages[name] = _Stage(
            name, func, tuple(depends), dict(params or {}), persist, still_valid
        )

    def key(self, name: str) -> str:
        """The stage's key: context, name, parameters and the keys of its dependencies."""
        stage = self._stages[name]
        payload = json.dumps(
            {
                "context": self.context_key,
                "stage": name,
                "params": jsonable(stage.params),
                "depends": [self.key(d) for d in stage.depends],
            },
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def result(self, name: str) -> Any:
        """The stage's result: from memory, from its checkpoint, or computed now."""
        if name in self._results:
            return self._results[name]
        stage = self._stages[name]
        key = self.key(name)
        path = self.checkpoint_dir / f"{name.replace(':', '_')}.pkl"
        start = time.perf_counter()
        value, cached = self._load(stage, path, key), True
        if value is _MISSING:
            cached = False
            inputs = [self.result(d) for d in stage.depends]
            start = time.perf_counter()
            LOGGER.info("%s: %s ...", self.label, name)
            try:
                value = stage.func(*inputs)
            except Exception:
                # dependencies were computed above, outside this block: this is the stage
                # whose own code raised
                self.failed_stage = name
                raise
            if stage.persist:
                self._save(path, key, value)
        seconds = time.perf_counter() - start
        self.timings.append(StageTiming(name, seconds, cached, peak_rss_mb()))
        LOGGER.info(
            "%s: %s %s in %.1f s (%.0f s elapsed)",
            self.label,
            name,
            "loaded from its checkpoint" if cached else "done",
            seconds,
            time.perf_counter() - self._started,
        )
        self._results[name] = value
        return value

    def forget(self, name: str) -> None:
        """Drop a result from memory (a large array no later stage needs)."""
        self._results.pop(name, None)

    @staticmethod
    def _load(stage: _Stage, path: Path, key: str) -> Any:
        if not stage.persist or not path.is_file():
            return _MISSING
        try:
            with open(path, "rb") as handle:
                stored_key, value = pickle.load(handle)  # our own work dir (module docstring)
        except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError):
            return _MISSING
        if stored_key != key:
            return _MISSING
        if stage.still_valid is not None and not stage.still_valid(value):
            return _MISSING
        return value

    @staticmethod
    def _save(path: Path, key: str, value: Any) -> None:
        with atomic_write(path) as tmp, open(tmp, "wb") as handle:
            pickle.dump((key, value), handle, protocol=pickle.HIGHEST_PROTOCOL)


class _Missing:
    """Marker of an absent checkpoint."""


_MISSING = _Missing()
