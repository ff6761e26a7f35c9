"""An independent, analytic TAC simulator for the kinetic-model tests.

The simulator does not share code with :mod:`bids_app.kinetics`. Plasma input: Feng et al.
(1993) tri-exponential ``Cp(t) = (A1 t - A2 - A3) e^{-λ1 t} + A2 e^{-λ2 t} + A3 e^{-λ3 t}``.
Reference tissue: one compartment (K1', k2'). Target: one compartment with the apparent efflux
``k2a = k2/(1 + BPnd)``, the fast-exchange limit of a two-tissue target, for which SRTM is exact
(``R1 = K1/K1'``, ``k2 = R1·k2'``). Tissue curves are closed-form convolutions, and frame averages
come from 48-point Gauss-Legendre quadrature of the closed forms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

# Feng input (kBq/mL, minutes)
_A = (851.1, 21.88, 20.81)
_LAMBDA = (4.134, 0.1191, 0.01043)
K1_REF = 0.1  # mL/cm3/min
K2_REF = 0.15  # 1/min (true k2')

#: Frame durations (s) of a 60-min [11C]raclopride schedule with 26 frames.
RACLOPRIDE_DURATIONS_S = np.array([15.0] * 8 + [30.0] * 4 + [60.0] * 4 + [180.0] * 4 + [400.0] * 6)


def _conv_exp(a: float, k: float, t: FloatArray) -> FloatArray:
    """∫_0^t e^{-a s} e^{-k (t-s)} ds."""
    d = k - a
    if abs(d) < 1e-12:
        return t * np.exp(-k * t)
    return (np.exp(-a * t) - np.exp(-k * t)) / d


def _conv_texp(a: float, k: float, t: FloatArray) -> FloatArray:
    """∫_0^t s e^{-a s} e^{-k (t-s)} ds."""
    d = k - a
    if abs(d) < 1e-12:
        return 0.5 * t**2 * np.exp(-k * t)
    return (t / d - 1.0 / d**2) * np.exp(-a * t) + np.exp(-k * t) / d**2


def tissue_curve(
    k1: float,
    k2: float,
    t: FloatArray,
    amplitudes: tuple[float, float, float] = _A,
    rates: tuple[float, float, float] = _LAMBDA,
) -> FloatArray:
    """One-tissue response K1 · Cp ⊗ exp(-k2 t) to a Feng input at times t (min)."""
    a1, a2, a3 = amplitudes
    l1, l2, l3 = rates
    out = a1 * _conv_texp(l1, k2, t) - (a2 + a3) * _conv_exp(l1, k2, t)
    out += a2 * _conv_exp(l2, k2, t) + a3 * _conv_exp(l3, k2, t)
    return k1 * out


def frame_average(
    curve: Callable[[FloatArray], FloatArray], start: FloatArray, end: FloatArray
) -> FloatArray:
    """Average of curve over each [start, end] (minutes) by Gauss-Legendre quadrature."""
    nodes, wts = np.polynomial.legendre.leggauss(48)
    half = 0.5 * (end - start)
    t = 0.5 * (end + start)[:, None] + half[:, None] * nodes[None, :]
    return (curve(t) * wts[None, :]).sum(axis=1) * 0.5


@dataclass(frozen=True)
class Simulated:
    """Simulated noise-free study: frames in seconds, TACs per frame."""

    frame_start_s: FloatArray
    frame_end_s: FloatArray
    ref: FloatArray
    target: FloatArray  # (n_frames,) or (n_frames, n)
    bp_nd: FloatArray
    r1: FloatArray
    k2prime: float

    @property
    def k2(self) -> FloatArray:
        return self.r1 * self.k2prime

    @property
    def k2a(self) -> FloatArray:
        return self.k2 / (1.0 + self.bp_nd)


def simulate(
    bp_nd: float | FloatArray,
    r1: float | FloatArray,
    durations_s: FloatArray = RACLOPRIDE_DURATIONS_S,
    *,
    first_start_s: float = 0.0,
    sampling: str = "frame_average",
    k2prime: float = K2_REF,
    input_amplitudes: tuple[float, float, float] = _A,
    input_rates: tuple[float, float, float] = _LAMBDA,
) -> Simulated:
    """Simulate reference and target TACs (frame averages or mid-time samples).

    ``input_amplitudes`` and ``input_rates`` change the Feng plasma input (another session).
    """
    start_s = first_start_s + np.concatenate([[0.0], np.cumsum(durations_s)[:-1]])
    end_s = start_s + durations_s
    start, end = start_s / 60.0, end_s / 60.0
    bp = np.atleast_1d(np.asarray(bp_nd, dtype=float))
    r1a = np.atleast_1d(np.asarray(r1, dtype=float))
    bp, r1a = np.broadcast_arrays(bp, r1a)

    def sample(curve: Callable[[FloatArray], FloatArray]) -> FloatArray:
        if sampling == "midpoint":
            return curve(0.5 * (start + end))
        return frame_average(curve, start, end)

    feng = {"amplitudes": input_amplitudes, "rates": input_rates}
    ref = sample(lambda t: tissue_curve(K1_REF, k2prime, t, **feng))
    cols = []
    for b, r in zip(bp, r1a, strict=True):
        k2a = r * k2prime / (1.0 + b)
        cols.append(sample(lambda t, r=r, k2a=k2a: tissue_curve(r * K1_REF, k2a, t, **feng)))
    target = np.stack(cols, axis=1)
    if np.ndim(bp_nd) == 0 and np.ndim(r1) == 0:
        target = target[:, 0]
    return Simulated(start_s, end_s, ref, target, bp, r1a, k2prime)
