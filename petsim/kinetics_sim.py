"""Forward kinetics of the simulation: plasma input -> compartment models -> frame means.

The generator does **not** use a reference-tissue model: tissue curves come from a metabolite-
corrected plasma input through the standard one- and two-tissue compartment models, solved
by exact recursive convolution on a fine time grid, mixed with a whole-blood fraction and then
averaged over each frame the way a scanner does (counts integrated with radioactive decay,
then decay-corrected).

Model (all times in minutes, concentrations decay-corrected, kBq/mL):

* plasma input, Feng et al. (Int J Biomed Comput 1993) form with delay ``tau``::

      Cp(t) = (a1 s - a2 - a3) exp(-l1 s) + a2 exp(-l2 s) + a3 exp(-l3 s),  s = t - tau >= 0

* reference tissue (1TC): ``dC/dt = K1' Cp - k2' C``;
* targets (2TC): ``dCnd/dt = K1 Cp - (k2 + k3) Cnd + k4 Cs``, ``dCs/dt = k3 Cnd - k4 Cs``,
  with ``BPnd = k3 / k4`` and ``K1/k2 = K1'/k2'`` (same non-displaceable distribution volume);
* measured voxel: ``(1 - vB) C_tissue + vB C_blood`` with whole blood = plasma (documented
  approximation for [11C]raclopride, whose blood/plasma ratio is close to 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray
from scipy.signal import lfilter

from petsim.errors import ModelError
from petsim.timing import FrameTiming

REFERENCE_INJECTED_MBQ = 370.0
"""Injected activity the population plasma-input amplitudes refer to, MBq."""


@dataclass(frozen=True)
class PlasmaInput:
    """Feng-type metabolite-corrected arterial plasma input (decay-corrected).

    Parameters
    ----------
    a1 : float
        Amplitude of the bolus term, kBq/mL/min.
    a2, a3 : float
        Amplitudes of the intermediate and slow exponentials, kBq/mL.
    l1, l2, l3 : float
        Positive clearance rates of the three terms, 1/min (l1 > l2 > l3).
    delay_min : float
        Arrival delay of the bolus after the injection start, minutes.
    """

    a1: float = 200.0
    a2: float = 8.0
    a3: float = 10.0
    l1: float = 1.5
    l2: float = 0.25
    l3: float = 0.015
    delay_min: float = 0.25

    def __call__(self, t_min: NDArray[np.float64]) -> NDArray[np.float64]:
        """Evaluate the input function.

        Parameters
        ----------
        t_min : (n,) ndarray
            Times after injection start, minutes.

        Returns
        -------
        (n,) ndarray
            Plasma concentration, kBq/mL (0 before the arrival of the bolus).
        """
        s = np.asarray(t_min, dtype=np.float64) - self.delay_min
        s_pos = np.maximum(s, 0.0)
        cp = (
            (self.a1 * s_pos - self.a2 - self.a3) * np.exp(-self.l1 * s_pos)
            + self.a2 * np.exp(-self.l2 * s_pos)
            + self.a3 * np.exp(-self.l3 * s_pos)
        )
        return np.where(s > 0.0, cp, 0.0)

    def scaled(self, factor: float) -> PlasmaInput:
        """Return the same input with all amplitudes multiplied by ``factor``."""
        return replace(self, a1=self.a1 * factor, a2=self.a2 * factor, a3=self.a3 * factor)


def sample_plasma_input(
    rng: np.random.Generator, injected_mbq: float, variability: float = 1.0
) -> PlasmaInput:
    """Draw one session's plasma input around the population input.

    Amplitudes vary by ~15 % (log-normal), clearance rates by ~10 %, the arrival delay is
    uniform in 0.15-0.40 min; the amplitudes scale with the injected activity.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random generator.
    injected_mbq : float
        Injected activity, MBq.
    variability : float
        Multiplies the log-normal SDs (0 returns the population input, scaled).

    Returns
    -------
    PlasmaInput
        The session's input function.
    """
    base = PlasmaInput()
    amp = np.exp(rng.normal(0.0, 0.15 * variability, size=3))
    rate = np.exp(rng.normal(0.0, 0.10 * variability, size=3))
    delay = base.delay_min if variability == 0 else float(rng.uniform(0.15, 0.40))
    scale = injected_mbq / REFERENCE_INJECTED_MBQ
    return PlasmaInput(
        a1=base.a1 * amp[0] * scale,
        a2=base.a2 * amp[1] * scale,
        a3=base.a3 * amp[2] * scale,
        l1=base.l1 * rate[0],
        l2=base.l2 * rate[1],
        l3=base.l3 * rate[2],
        delay_min=delay,
    )


@dataclass(frozen=True)
class CompartmentParameters:
    """Rate constants of one tissue (1TC when ``k3 == 0``), plus its blood volume.

    Parameters
    ----------
    k1 : float
        Influx rate constant K1, mL/cm3/min.
    k2 : float
        Efflux rate constant, 1/min.
    k3, k4 : float
        Specific binding association / dissociation rates, 1/min (``BPnd = k3 / k4``).
    vb : float
        Fractional blood volume (0-1).
    """

    k1: float
    k2: float
    k3: float = 0.0
    k4: float = 0.0
    vb: float = 0.04

    def __post_init__(self) -> None:
        values = (self.k1, self.k2, self.k3, self.k4, self.vb)
        if not all(math.isfinite(v) and v >= 0.0 for v in values):
            msg = f"rate constants and vB must be finite and >= 0; got {self}"
            raise ModelError(msg)
        if self.k3 > 0.0 and self.k4 <= 0.0:
            msg = f"k4 must be > 0 when k3 > 0 (BPnd = k3/k4); got k3={self.k3}, k4={self.k4}"
            raise ModelError(msg)
        if self.vb > 1.0:
            msg = f"blood volume fraction must be within [0, 1]; got vb={self.vb}"
            raise ModelError(msg)

    @property
    def bp_nd(self) -> float:
        """Binding potential ``k3 / k4`` (0 for a 1TC tissue)."""
        return self.k3 / self.k4 if self.k4 > 0.0 else 0.0

    @property
    def v_nd(self) -> float:
        """Non-displaceable distribution volume ``K1 / k2``, mL/cm3."""
        return self.k1 / self.k2 if self.k2 > 0.0 else math.inf

    @classmethod
    def from_macro(
        cls, k1: float, v_nd: float, bp_nd: float, k4: float, vb: float
    ) -> CompartmentParameters:
        """Build from K1, V_ND = K1/k2, BPnd and k4 (k3 = BPnd k4).

        Parameters
        ----------
        k1 : float
            Influx, mL/cm3/min.
        v_nd : float
            Non-displaceable distribution volume, mL/cm3.
        bp_nd : float
            Binding potential (dimensionless, >= 0).
        k4 : float
            Dissociation rate, 1/min.
        vb : float
            Blood volume fraction.

        Returns
        -------
        CompartmentParameters
            The micro-parameters.
        """
        k3 = max(bp_nd, 0.0) * k4
        return cls(k1=k1, k2=k1 / v_nd, k3=k3, k4=k4 if k3 > 0.0 else 0.0, vb=vb)


def convolve_exponential(
    signal: NDArray[np.float64], rate_per_min: float, dt_min: float
) -> NDArray[np.float64]:
    """Convolve a uniformly sampled signal with ``exp(-rate t)`` (exact for linear segments).

    Parameters
    ----------
    signal : (n,) ndarray
        Input sampled at ``t = 0, dt, 2 dt, ...``; assumed linear between samples.
    rate_per_min : float
        Decay rate of the kernel, 1/min (>= 0).
    dt_min : float
        Sampling step, minutes.

    Returns
    -------
    (n,) ndarray
        ``(signal * exp(-rate t))(t_n)``, same units as ``signal`` times minutes.
    """
    a = math.exp(-rate_per_min * dt_min)
    x = rate_per_min * dt_min
    if x < 1e-8:  # kernel is a step: trapezoidal running integral
        b0 = b1 = 0.5 * dt_min
    else:
        # Exact integral of a linear segment against the exponential kernel.
        b0 = dt_min * (x - 1.0 + a) / (x * x)
        b1 = dt_min * (1.0 - a - x * a) / (x * x)
    signal = np.asarray(signal, dtype=np.float64)
    out = lfilter([b0, b1], [1.0, -a], signal)
    # lfilter starts with y[0] = b0 * x[0]; the integral over [0, 0] is 0: remove that term.
    if signal.size and signal[0] != 0.0:
        out -= b0 * signal[0] * a ** np.arange(signal.size)
    return out


def tissue_curve(
    params: CompartmentParameters, cp: NDArray[np.float64], dt_min: float
) -> NDArray[np.float64]:
    """Tissue concentration (excluding blood) of a 1TC/2TC model driven by ``cp``.

    Parameters
    ----------
    params : CompartmentParameters
        Rate constants.
    cp : (n,) ndarray
        Plasma input on the fine grid, kBq/mL.
    dt_min : float
        Fine-grid step, minutes.

    Returns
    -------
    (n,) ndarray
        Tissue concentration, kBq/mL.
    """
    if params.k1 == 0.0:
        return np.zeros_like(cp)
    if params.k3 == 0.0:
        return params.k1 * convolve_exponential(cp, params.k2, dt_min)
    s = params.k2 + params.k3 + params.k4
    disc = math.sqrt(max(s * s - 4.0 * params.k2 * params.k4, 0.0))
    alpha1 = 0.5 * (s - disc)
    alpha2 = 0.5 * (s + disc)
    if alpha2 - alpha1 < 1e-9:
        msg = f"degenerate 2TC eigenvalues for {params}"
        raise ModelError(msg)
    w1 = (params.k3 + params.k4 - alpha1) / (alpha2 - alpha1)
    w2 = (alpha2 - params.k3 - params.k4) / (alpha2 - alpha1)
    return params.k1 * (
        w1 * convolve_exponential(cp, alpha1, dt_min)
        + w2 * convolve_exponential(cp, alpha2, dt_min)
    )


def voxel_curve(
    params: CompartmentParameters, cp: NDArray[np.float64], dt_min: float
) -> NDArray[np.float64]:
    """Measured concentration of a tissue including its blood volume (blood = plasma).

    Returns
    -------
    (n,) ndarray
        ``(1 - vB) C_tissue + vB Cp``, kBq/mL.
    """
    return (1.0 - params.vb) * tissue_curve(params, cp, dt_min) + params.vb * cp


def fine_time_grid(end_min: float, dt_min: float) -> NDArray[np.float64]:
    """Uniform grid ``0, dt, ..., >= end`` (minutes)."""
    n = math.ceil(end_min / dt_min - 1e-9) + 1
    return np.arange(n, dtype=np.float64) * dt_min


def frame_means(
    t_fine_min: NDArray[np.float64],
    curves: NDArray[np.float64],
    frames: FrameTiming,
    decay_constant_per_min: float,
) -> NDArray[np.float64]:
    """Decay-corrected frame means, as a scanner reports them.

    Counts in a frame are proportional to ``int C(t) exp(-lambda t) dt``; the image is then
    multiplied by the frame's decay-correction factor, giving the decay-weighted mean
    ``int C e^{-lambda t} dt / int e^{-lambda t} dt``.

    Parameters
    ----------
    t_fine_min : (n,) ndarray
        Uniform fine grid, minutes, starting at 0 and covering the last frame end.
    curves : (..., n) ndarray
        Decay-corrected concentrations on the fine grid, kBq/mL.
    frames : FrameTiming
        Frame schedule.
    decay_constant_per_min : float
        lambda, 1/min (0 gives plain frame means).

    Returns
    -------
    (..., n_frames) ndarray
        Decay-corrected frame means, kBq/mL.
    """
    if t_fine_min[-1] < frames.end_min[-1] - 1e-9:
        msg = (
            f"fine grid ends at {t_fine_min[-1]:g} min, before the last frame end "
            f"{frames.end_min[-1]:g} min"
        )
        raise ModelError(msg)
    weight = np.exp(-decay_constant_per_min * t_fine_min)
    dt = t_fine_min[1] - t_fine_min[0]
    weighted = np.asarray(curves, dtype=np.float64) * weight
    cum = np.concatenate(
        [
            np.zeros((*weighted.shape[:-1], 1)),
            np.cumsum(0.5 * (weighted[..., 1:] + weighted[..., :-1]), axis=-1) * dt,
        ],
        axis=-1,
    )
    cum_w = np.concatenate([[0.0], np.cumsum(0.5 * (weight[1:] + weight[:-1])) * dt])

    def at(values: NDArray[np.float64], t: NDArray[np.float64]) -> NDArray[np.float64]:
        flat = values.reshape(-1, values.shape[-1])
        out = np.stack([np.interp(t, t_fine_min, row) for row in flat])
        return out.reshape(*values.shape[:-1], t.size)

    num = at(cum, frames.end_min) - at(cum, frames.start_min)
    den = np.interp(frames.end_min, t_fine_min, cum_w) - np.interp(
        frames.start_min, t_fine_min, cum_w
    )
    return num / den


def decay_correction_factors(frames: FrameTiming, decay_constant_per_min: float) -> NDArray:
    """Per-frame decay-correction factor to injection time (PET-BIDS DecayCorrectionFactor).

    ``DCF = lambda dt / (exp(-lambda t_start) - exp(-lambda t_end))``.

    Returns
    -------
    (n_frames,) ndarray
        Dimensionless factors >= 1.
    """
    lam = decay_constant_per_min
    if lam == 0.0:
        return np.ones(frames.n_frames)
    return (lam * frames.duration_min) / (
        np.exp(-lam * frames.start_min) - np.exp(-lam * frames.end_min)
    )
