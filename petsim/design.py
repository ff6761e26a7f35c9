"""What is simulated: population kinetics, between-subject variability and challenge effects.

:class:`StudyEffects` holds every configurable effect of the challenge session (its defaults
mirror the naloxone paper); :func:`sample_participants` draws each participant's generating
values, including a per-participant dopamine (DA) release and the derived "withdrawal
severity" that also drives the behavioural, hormonal and pituitary-flow effects.

Generating values per tissue class (population means; ``K1`` in mL/cm3/min):

============== ====== ====== ======= ==========================================
class          K1     BPnd   vB      notes
============== ====== ====== ======= ==========================================
cerebellum     0.110  0      default reference tissue (1TC)
cortex         0.110  0.25   default
insula         0.115  0.30   default R1 effect
wm             0.050  0      default
thalamus       0.120  0.45   default thalamic nuclei + pallidum
caudate        0.120  3.00   default dorsal striatum, DA release
putamen        0.130  3.15   default dorsal striatum, DA release, R1 effect
ventral        0.120  2.50   default accumbens (ventral striatum)
habenula       0.120  0.45   default R1 effect
habenula_ctrl  0.120  0.45   default no effect
pituitary      0.450  1.00   0.10    outside the BBB; R1 effect
carotid        0.050  0      0.70    arterial blood; R1 effect (K1 and vB)
extracerebral  0.025  0      0.02    scalp, skull, muscle
============== ====== ====== ======= ==========================================

The striatal values were raised 5 % (caudate, putamen) and 14 % (accumbens) when the anatomy
moved to partial-volume fractions of HCPex regions, whose boundary voxels and small accumbens
lose more signal; that keeps the measured (ideal-pipeline) striatal BPnd of the example close to
what it was.

All brain tissues share the participant's non-displaceable distribution volume
``V_ND = K1/k2`` (0.33 mL/cm3 on average) and dissociation rate ``k4`` (0.25 /min), so
``BPnd = k3/k4`` and ``R1 = K1/K1'``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from numpy.typing import NDArray

from petsim.anatomy import TISSUE_CLASSES
from petsim.errors import InputError
from petsim.kinetics_sim import CompartmentParameters

SESSIONS: tuple[str, str] = ("sal", "nal")
"""Session labels: placebo (saline) baseline, then the naloxone challenge."""

DORSAL_CLASSES: tuple[str, ...] = ("caudate", "putamen")
VENTRAL_CLASSES: tuple[str, ...] = ("ventral",)

POPULATION_V_ND = 1.0 / 3.0
POPULATION_K4_PER_MIN = 0.25


@dataclass(frozen=True)
class TissueSpec:
    """Population kinetics of one tissue class.

    Parameters
    ----------
    k1 : float
        Mean influx K1, mL/cm3/min.
    bp_nd : float
        Mean binding potential.
    vb : float or None
        Blood volume fraction; None uses the protocol default (0.04).
    v_nd_factor : float
        Multiplies the participant's V_ND (tissues outside the BBB differ).
    """

    k1: float
    bp_nd: float
    vb: float | None = None
    v_nd_factor: float = 1.0


TISSUES: dict[str, TissueSpec] = {
    "cerebellum": TissueSpec(0.110, 0.0),
    "cortex": TissueSpec(0.110, 0.25),
    "insula": TissueSpec(0.115, 0.30),
    "wm": TissueSpec(0.050, 0.0),
    "thalamus": TissueSpec(0.120, 0.45),
    "caudate": TissueSpec(0.120, 3.00),
    "putamen": TissueSpec(0.130, 3.15),
    "ventral": TissueSpec(0.120, 2.50),
    "habenula": TissueSpec(0.120, 0.45),
    "habenula_control": TissueSpec(0.120, 0.45),
    "pituitary": TissueSpec(0.450, 1.0, vb=0.10, v_nd_factor=1.5),
    "carotid": TissueSpec(0.050, 0.0, vb=0.70),
    "extracerebral": TissueSpec(0.025, 0.0, vb=0.02, v_nd_factor=1.2),
}
"""Population generating values per tissue class (see the module docstring)."""


@dataclass(frozen=True)
class StudyEffects:
    """Effects of the challenge (``ses-nal``) relative to the baseline (``ses-sal``).

    Relative changes are fractions (0.10 = 10 %). DA release lowers BPnd:
    ``BPnd_nal = BPnd_sal_like * (1 - release)``; R1 changes multiply K1 (and k2, so V_ND is
    unchanged). The participant's *severity* is ``dorsal release / dorsal_da_release_mean``
    (1 on average), and scales the behavioural, cortisol and coupled flow effects.

    Parameters
    ----------
    dorsal_da_release_mean, dorsal_da_release_sd : float
        Generating DA release in caudate and putamen (mean over participants, SD among
        responders). The default 0.115 gives a measured dorsal BPnd decrease of ~10 %.
    nonresponder_fraction : float
        Fraction of participants (rounded) whose release is ~0 (N(0, 0.01)).
    ventral_da_release_mean, ventral_da_release_sd : float
        Generating DA release in the ventral striatum (default none).
    putamen_r1_change, insula_r1_change, habenula_r1_change : float
        Mean generating relative K1 increase. Partial volume and the SRTM approximation
        roughly halve it in the measured R1: the defaults (+12 %) read as ~+6-7 % in the
        putamen ROI; the habenula's +10 % reads as ~+2.5 %.
    pituitary_r1_change, carotid_r1_change : float
        Mean generating relative K1 increase; for the carotid the blood fraction scales too.
        Defaults +25 % and +5 % read as ~+8 % and ~+7 % in the ROI R1.
    r1_change_sd : float
        Between-participant SD of every R1 change.
    pituitary_severity_coupling, carotid_severity_coupling : float
        Part of the pituitary / carotid R1 change that scales with severity (positive:
        larger with more DA release; negative: smaller), as in the paper's correlations.
    aversion_gain_points : float
        Mean change (0-10 scale) of the aversive items at 10 min post for severity 1.
    cortisol_increase : float
        Relative cortisol increase at 30 and 60 min for severity 1.
    systolic_bp_increase_mmhg, diastolic_bp_increase_mmhg, pulse_increase_bpm : float
        Peak cardiovascular increases after the challenge (severity-independent).
    """

    dorsal_da_release_mean: float = 0.115
    dorsal_da_release_sd: float = 0.045
    nonresponder_fraction: float = 0.2
    ventral_da_release_mean: float = 0.0
    ventral_da_release_sd: float = 0.0
    putamen_r1_change: float = 0.12
    insula_r1_change: float = 0.12
    habenula_r1_change: float = 0.10
    pituitary_r1_change: float = 0.25
    carotid_r1_change: float = 0.05
    r1_change_sd: float = 0.03
    pituitary_severity_coupling: float = 0.6
    carotid_severity_coupling: float = -0.5
    aversion_gain_points: float = 2.0
    cortisol_increase: float = 0.45
    systolic_bp_increase_mmhg: float = 8.0
    diastolic_bp_increase_mmhg: float = 5.0
    pulse_increase_bpm: float = 8.0

    @classmethod
    def none(cls) -> StudyEffects:
        """No effect at all (the ``null=True`` study)."""
        return cls(**{name: 0.0 for name in asdict(cls())})

    @property
    def is_null(self) -> bool:
        """True when every effect size and spread is zero (couplings do not matter then)."""
        return all(
            value == 0.0
            for name, value in asdict(self).items()
            if name != "nonresponder_fraction" and not name.endswith("_coupling")
        )

    def to_dict(self) -> dict[str, float]:
        """Plain dict (for truth.json)."""
        return {k: float(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class ParticipantDesign:
    """Generating values of one participant.

    Attributes
    ----------
    participant_id : str
        ``sub-XX``.
    age_years, weight_kg : float
        Demographics.
    da_release_dorsal, da_release_ventral : float
        Generating relative BPnd decrease in the challenge session.
    severity : float
        Withdrawal severity (dorsal release / population mean; 0 in null studies).
    sessions : dict of str to dict of str to CompartmentParameters
        Per session label, per tissue class, the micro-parameters.
    r1_change : dict of str to float
        Generating relative K1 change per tissue class in the challenge session.
    injected_mbq : dict of str to float
        Injected activity per session, MBq.
    """

    participant_id: str
    age_years: float
    weight_kg: float
    da_release_dorsal: float
    da_release_ventral: float
    severity: float
    sessions: dict[str, dict[str, CompartmentParameters]] = field(repr=False)
    r1_change: dict[str, float]
    injected_mbq: dict[str, float]


def sample_da_release(
    rng: np.random.Generator, n: int, effects: StudyEffects
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Draw per-participant dorsal and ventral DA release.

    A rounded ``nonresponder_fraction`` of participants (chosen at random) get release
    ~N(0, 0.01); the others N(m, sd) with m chosen so that the population mean is
    ``dorsal_da_release_mean``. The random numbers drawn do not depend on the effect sizes, so
    a study and its null twin share every other random stream.

    Returns
    -------
    dorsal, ventral : (n,) ndarray
        Relative BPnd decreases (fractions).
    """
    order = rng.permutation(n)
    z_dorsal = np.clip(rng.standard_normal(n), -2.0, 2.0)
    z_non = rng.standard_normal(n)
    z_ventral = rng.standard_normal(n)
    mean = effects.dorsal_da_release_mean
    n_non = min(round(effects.nonresponder_fraction * n), n - 1) if mean != 0.0 else 0
    non = np.zeros(n, dtype=bool)
    non[order[:n_non]] = True
    responder_mean = mean / (1.0 - n_non / n)
    dorsal = responder_mean + effects.dorsal_da_release_sd * z_dorsal
    dorsal[non] = 0.01 * z_non[non]
    ventral = effects.ventral_da_release_mean + effects.ventral_da_release_sd * z_ventral
    return np.clip(dorsal, -0.05, 0.5), np.clip(ventral, -0.3, 0.5)


def _r1_changes(
    rng: np.random.Generator, effects: StudyEffects, severity: float
) -> dict[str, float]:
    """Per-class relative K1 change of one participant in the challenge session."""
    z = rng.standard_normal(5)

    def draw(mean: float, z_i: float, coupling: float = 0.0) -> float:
        if mean == 0.0:
            return 0.0
        return float(mean * (1.0 + coupling * (severity - 1.0)) + effects.r1_change_sd * z_i)

    changes = dict.fromkeys(TISSUE_CLASSES, 0.0)
    changes["putamen"] = draw(effects.putamen_r1_change, z[0])
    changes["insula"] = draw(effects.insula_r1_change, z[1])
    changes["habenula"] = draw(effects.habenula_r1_change, z[2])
    changes["pituitary"] = draw(
        effects.pituitary_r1_change, z[3], effects.pituitary_severity_coupling
    )
    changes["carotid"] = draw(effects.carotid_r1_change, z[4], effects.carotid_severity_coupling)
    return changes


def _session_parameters(
    rng: np.random.Generator,
    subject_k1: dict[str, float],
    subject_bp: dict[str, float],
    v_nd: float,
    k4: float,
    default_vb: float,
    release: dict[str, float],
    r1_change: dict[str, float],
) -> dict[str, CompartmentParameters]:
    """Micro-parameters of every tissue class for one session.

    Session-to-session variability: global flow 5 %, per-class K1 2 %, per-class BPnd 3 %.
    """
    flow = float(np.exp(rng.normal(0.0, 0.05)))
    out: dict[str, CompartmentParameters] = {}
    for name in TISSUE_CLASSES:
        spec = TISSUES[name]
        k1 = subject_k1[name] * flow * float(np.exp(rng.normal(0.0, 0.02)))
        bp = subject_bp[name] * float(np.exp(rng.normal(0.0, 0.03))) if spec.bp_nd > 0 else 0.0
        k1 *= 1.0 + r1_change.get(name, 0.0)
        bp *= 1.0 - release.get(name, 0.0)
        vb = default_vb if spec.vb is None else spec.vb
        if name == "carotid":
            vb = min(vb * (1.0 + r1_change.get(name, 0.0)), 0.95)
        out[name] = CompartmentParameters.from_macro(
            k1=k1, v_nd=v_nd * spec.v_nd_factor, bp_nd=bp, k4=k4, vb=vb
        )
    return out


def sample_participants(
    rng: np.random.Generator,
    rng_effects: np.random.Generator,
    n_participants: int,
    effects: StudyEffects,
    default_vb: float,
    injected_mbq_range: tuple[float, float],
) -> list[ParticipantDesign]:
    """Draw the generating values of every participant.

    Between-participant variability: K1 12 % (10 % common flow, 4 % per class), BPnd ~11 %
    (10 % common, 5 % per class), V_ND 5 %, k4 10 %.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random generator of the participants' baseline values.
    rng_effects : numpy.random.Generator
        Random generator of the effects (DA release, R1 changes); kept separate so that a
        study and its null twin share every baseline value.
    n_participants : int
        Number of participants (>= 2).
    effects : StudyEffects
        Challenge effects.
    default_vb : float
        Blood volume fraction of brain tissue.
    injected_mbq_range : (2,) tuple of float
        Range of injected activity, MBq.

    Returns
    -------
    list of ParticipantDesign
        One per participant, ``sub-01`` ... in order.
    """
    if n_participants < 2:
        msg = f"n_participants must be >= 2 for a paired design; got {n_participants}"
        raise InputError(msg)
    dorsal, ventral = sample_da_release(rng_effects, n_participants, effects)
    mean_release = effects.dorsal_da_release_mean
    designs = []
    for i in range(n_participants):
        severity = float(dorsal[i] / mean_release) if mean_release != 0.0 else 0.0
        flow = float(np.exp(rng.normal(0.0, 0.10)))
        binding = float(np.exp(rng.normal(0.0, 0.10)))
        subject_k1 = {
            c: TISSUES[c].k1 * flow * float(np.exp(rng.normal(0.0, 0.04))) for c in TISSUE_CLASSES
        }
        subject_bp = {
            c: TISSUES[c].bp_nd * binding * float(np.exp(rng.normal(0.0, 0.05)))
            for c in TISSUE_CLASSES
        }
        v_nd = POPULATION_V_ND * float(np.exp(rng.normal(0.0, 0.05)))
        k4 = POPULATION_K4_PER_MIN * float(np.exp(rng.normal(0.0, 0.10)))
        r1_change = _r1_changes(rng_effects, effects, severity)
        release = {c: float(dorsal[i]) for c in DORSAL_CLASSES}
        release.update({c: float(ventral[i]) for c in VENTRAL_CLASSES})
        sessions = {
            SESSIONS[0]: _session_parameters(
                rng, subject_k1, subject_bp, v_nd, k4, default_vb, {}, {}
            ),
            SESSIONS[1]: _session_parameters(
                rng, subject_k1, subject_bp, v_nd, k4, default_vb, release, r1_change
            ),
        }
        designs.append(
            ParticipantDesign(
                participant_id=f"sub-{i + 1:02d}",
                age_years=float(np.clip(rng.normal(40.8, 4.3), 25.0, 60.0)),
                weight_kg=float(np.clip(rng.normal(78.0, 10.0), 55.0, 110.0)),
                da_release_dorsal=float(dorsal[i]),
                da_release_ventral=float(ventral[i]),
                severity=severity,
                sessions=sessions,
                r1_change=r1_change,
                injected_mbq={s: float(rng.uniform(*injected_mbq_range)) for s in SESSIONS},
            )
        )
    return designs
