"""Frame weights for weighted least-squares kinetic fits.

The variance of a reconstructed frame value falls with the number of counts the frame
collected. Three schemes are offered, all normalised to a mean of 1 over the frames (the scale
of the weights does not change any estimate, only the reported residual sum of squares):

``"duration"`` (the default of every fit in :mod:`bids_app.kinetics`)
    ``w_i ∝ Δt_i``. Counts grow with the frame length, so long late frames are trusted more
    than the short, noisy early frames. This ignores decay and the activity level.
``"uniform"``
    ``w_i = 1`` (ordinary least squares, as PMOD's SRTM2 and kinfitr without weights).
``"duration_decay"``
    ``w_i ∝ ∫_frame exp(-λ t) dt = exp(-λ t_start,i) (1 - exp(-λ Δt_i)) / λ`` with
    ``λ = ln 2 / half-life`` (≈ ``Δt_i · exp(-λ t_mid,i)``). This is the fraction of the
    injected nuclei that decay during the frame, i.e. the relative number of true counts of
    decay-corrected data at constant (decay-corrected) activity. It models the larger noise of
    late frames of short-lived tracers (C-11: half-life 20.4 min) but, like the other schemes,
    leaves out the concentration factor of a Poisson variance, so it stays the same for every
    voxel and can be used by the vectorised voxel fits.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bids_app.errors import ModelError
from bids_app.timing import FrameTiming

logger = logging.getLogger(__name__)

WeightScheme = Literal["duration", "uniform", "duration_decay"]
WEIGHT_SCHEMES: tuple[str, ...] = ("duration", "uniform", "duration_decay")
#: Schemes that need no extra argument, accepted by name in ``weights=`` of the fits.
_NAMED_SCHEMES: dict[str, WeightScheme] = {"duration": "duration", "uniform": "uniform"}


def frame_weights(
    timing: FrameTiming,
    scheme: WeightScheme = "duration",
    half_life_min: float | None = None,
) -> NDArray[np.float64]:
    """Return normalised per-frame weights for a weighted least-squares fit.

    Parameters
    ----------
    timing : FrameTiming
        The frame schedule (minutes).
    scheme : {"duration", "uniform", "duration_decay"}, default "duration"
        Weighting scheme, see the module docstring.
    half_life_min : float, optional
        Radionuclide half-life in minutes (e.g. 20.4 for C-11); required by
        ``"duration_decay"`` and ignored otherwise.

    Returns
    -------
    weights : (n_frames,) ndarray
        Non-negative weights with mean 1 (dimensionless).

    Raises
    ------
    ModelError
        Unknown scheme, or a missing / non-positive half-life for ``"duration_decay"``.
    """
    duration_min = timing.duration_min
    if scheme == "uniform":
        raw = np.ones_like(duration_min)
    elif scheme == "duration":
        raw = duration_min.copy()
    elif scheme == "duration_decay":
        if half_life_min is None or not np.isfinite(half_life_min) or half_life_min <= 0:
            msg = (
                "weights scheme 'duration_decay' needs a positive half_life_min (minutes, e.g. "
                f"20.4 for C-11); got {half_life_min!r}"
            )
            raise ModelError(msg)
        decay_per_min = np.log(2.0) / half_life_min
        raw = (
            np.exp(-decay_per_min * timing.start_min)
            * -np.expm1(-decay_per_min * duration_min)
            / decay_per_min
        )
    else:
        msg = f"weights scheme must be one of {WEIGHT_SCHEMES}; got {scheme!r}"
        raise ModelError(msg)
    normalised: NDArray[np.float64] = raw / raw.mean()
    return normalised


def resolve_weights(
    weights: str | ArrayLike | None,
    timing: FrameTiming,
) -> NDArray[np.float64]:
    """Turn the ``weights`` argument of a fit function into a weight vector.

    Parameters
    ----------
    weights : None, {"duration", "uniform"} or array_like of shape (n_frames,)
        ``None`` means the documented default, ``"duration"`` (``w_i ∝ Δt_i``). A user array is
        used as given after checks (non-negative, finite, at least two positive entries) and
        normalised to mean 1; frames with weight 0 are ignored by the fit.
    timing : FrameTiming
        The frame schedule, for the default and the length check.

    Returns
    -------
    weights : (n_frames,) ndarray
        Non-negative weights with mean 1.

    Raises
    ------
    ModelError
        Wrong length, negative or non-finite entries, or fewer than two positive weights.
    """
    if weights is None:
        return frame_weights(timing, "duration")
    if isinstance(weights, str):
        if weights not in _NAMED_SCHEMES:
            msg = (
                "weights must be None, 'duration', 'uniform' or an array of n_frames values; "
                f"got {weights!r} (for 'duration_decay' pass frame_weights(timing, "
                "'duration_decay', half_life_min) as an array)"
            )
            raise ModelError(msg)
        return frame_weights(timing, _NAMED_SCHEMES[weights])
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or w.size != timing.n_frames:
        msg = f"weights must have one value per frame ({timing.n_frames}); got shape {w.shape}"
        raise ModelError(msg)
    if not np.all(np.isfinite(w)):
        raise ModelError(f"weights must be finite; got NaN/Inf at frame {_first(~np.isfinite(w))}")
    if np.any(w < 0):
        bad = _first(w < 0)
        msg = f"weights must be non-negative; frame {bad} has weight {w[bad]:g}"
        raise ModelError(msg)
    if np.count_nonzero(w) < 2:
        msg = f"at least two frames need a positive weight; got {np.count_nonzero(w)}"
        raise ModelError(msg)
    normalised: NDArray[np.float64] = w / w.mean()
    return normalised


def _first(mask: NDArray[np.bool_]) -> int:
    """Index of the first True entry."""
    return int(np.flatnonzero(mask)[0])
