r"""ROI statistics: paired tests, effect sizes, corrections and net DA release / rCBF change.

Pure functions on arrays and tidy tables (numpy, scipy, pandas); no file I/O.

Conventions (shared with :mod:`bids_app.stats.behavior`)
--------------------------------------------------------
* Paired differences are always ``challenge - baseline``: a negative ``t`` means the
  challenge lowered the measure (for BPND this is dopamine release).
* Cohen's d of a paired design is :math:`d_z = \bar{\Delta} / s_{\Delta}`, the mean paired
  difference over the sample SD (``ddof=1``) of the differences, with the same sign as ``t``
  (``t = d_z \sqrt{n}``).
* ``mean_change_pct`` of a paired test is the relative change of the group means,
  ``100 * (mean(challenge) - mean(baseline)) / mean(baseline)``, computed on the pairs that
  enter the test, so that it can be read off the ``baseline_mean`` and ``challenge_mean``
  columns of ``roi_stats.tsv``. (The per-participant relative changes are reported separately
  in ``participant_measures.tsv``.)
* Pairs with a non-finite value in either condition are dropped; ``n`` counts the pairs used.
* Numerical failures (fewer than two pairs, zero variance of the differences) give NaN and a
  ``status`` string, never 0.

Net DA release and net rCBF change
----------------------------------
The paper (Methods): "DA release was calculated by subtracting the BPnd in the drug condition
from that in the SAL condition and dividing the result by BPnd in the SAL condition [...] Net
DA release was calculated by averaging DA release across the striatum". The quantity is
therefore the mean over striatal voxels of :math:`r_v = (BP_{b,v} - BP_{c,v}) / BP_{b,v}`
(the CONTRACT's ``net_da_release``; rCBF: :math:`(R1_{c,v} - R1_{b,v}) / R1_{b,v}`).

Computed literally on voxel maps (``method="voxel_ratio"``) this is biased towards zero by the
voxel noise: :math:`E[BP_c / BP_b] \approx (\mu_c / \mu_b)(1 + CV_b^2)`; with spatially
correlated noise the simulation below gives about :math:`-1.5\,CV^2`: a true 9.3 % release
reads 3.2 % at the 20 % voxel COV of ECAT-era raclopride maps, and a null study reads -6.7 %.
The pipeline uses two estimators that are free of this bias:

* ``net_da_release`` / ``net_rcbf_change`` (``method="symmetric"``, the default): the
  symmetric relative change of each voxel, :math:`s_v = (BP_{b,v} - BP_{c,v}) /
  ((BP_{b,v} + BP_{c,v}) / 2)`, averaged over the striatum and put back on the baseline
  scale with :math:`r = 2\bar{s} / (2 + \bar{s})` (for an increase: :math:`s_v = (c - b) /
  ((b + c) / 2)` and :math:`r = 2\bar{s} / (2 - \bar{s})`). For one voxel the transform is
  exact (:math:`2s / (2 + s) = (b - c) / b`), so on noise-free maps the result is the mean
  voxelwise relative change, exactly for a uniform release and otherwise to about
  :math:`0.4\,\mathrm{Var}_v(s)` (the curvature of the back-transform): +0.0004 for a
  dorsal-only 11.5 % release, +0.005 for voxels releasing 5 % and 25 % in equal numbers.
  Averaging :math:`s` instead of :math:`r` removes the noise bias: :math:`s` is antisymmetric in
  the two sessions, so with exchangeable noise :math:`E[\bar{s}] = 0` exactly in a null study
  (the back-transform adds about :math:`-\mathrm{Var}(\bar{s})/2`, a participant's sampling
  variance, > -0.002 at 20 % COV), and its second-order noise bias, :math:`2(b\sigma_c^2 -
  c\sigma_b^2)/(b + c)^3`, is about 0.001 at 20 % COV (against :math:`-(c/b) CV_b^2 \approx
  -0.036` for :math:`r`). Voxels are used when both values are finite and their mean exceeds
  ``baseline_floor`` (a symmetric rule, so that the selection itself does not favour either
  session).
* ``net_da_release_roi`` / ``net_rcbf_change_roi`` (``method="roi_mean"``): the relative change
  of the regional means, :math:`(\overline{BP_b} - \overline{BP_c}) / \overline{BP_b}` over
  the striatal voxels finite in both sessions. Its noise bias is :math:`CV^2` of the regional
  mean (< 0.001); it weights each voxel's change by its baseline BPND, so it differs from the
  voxel mean when the release is not uniform (+0.004 for a dorsal-only release).

Bias on simulated maps (``tests/unit/stats/test_roi.py``: a 2 mm striatum of caudate, putamen
and nucleus accumbens, 6 mm partial-volume blur, Gaussian noise smoothed to 4 mm FWHM with SD
= COV x the striatal mean, antithetic Monte Carlo), against the estimator on the noise-free
maps:

=================  =====  ===========  ==============  ========  =========
release (truth)    COV    voxel_ratio  voxel_ratio on  roi_mean  symmetric
                          (old)        5 mm-smoothed
=================  =====  ===========  ==============  ========  =========
dorsal 11.5 %      5 %    -0.003       -0.004          +0.004    +0.001
(0.1006)           10 %   -0.013       -0.007          +0.004    +0.001
                   20 %   -0.061       -0.020          +0.004    +0.002
uniform 10 %       5 %    -0.003       -0.004          +0.001    +0.000
(0.0932)           10 %   -0.013       -0.007          +0.001    +0.000
                   20 %   -0.061       -0.020          +0.001    +0.002
null (0)           5 %    -0.003       -0.001          -0.000    -0.000
                   10 %   -0.014       -0.004          -0.000    -0.000
                   20 %   -0.067       -0.019          -0.000    -0.001
=================  =====  ===========  ==============  ========  =========

(Monte Carlo standard errors <= 0.0006; with 6 mm noise the smoothed estimator's bias grows
to -0.038 at 20 %, the symmetric one stays within 0.002.) Smoothing the maps before taking
voxel ratios, as the voxelwise analysis does, does not remove the bias: the 5 mm kernel
leaves much of the spatially correlated noise and mixes in low-BPND neighbours. On the
example study (its striatal voxel noise is about 4 %) the three estimators agree with the
ideal-pipeline truth to a mean of +0.001 (voxel_ratio), +0.002 (symmetric) and +0.005
(roi_mean).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats as sps

from bids_app.errors import StatsError

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_BASELINE_FLOOR",
    "DEFAULT_CORRECTION_FAMILIES",
    "DEFAULT_ROIS",
    "ROI_DEFINITIONS",
    "ROI_STATS_COLUMNS",
    "STRIATAL_CONTRASTS",
    "CorrectionFamily",
    "NetChange",
    "OneSampleResult",
    "PairedTestResult",
    "describe_net_change",
    "dorsal_vs_ventral_test",
    "net_da_release",
    "net_rcbf_change",
    "one_sample_test",
    "paired_roi_test",
    "relative_change_voxelwise",
    "relative_changes_by_roi",
    "roi_participant_measures",
    "roi_statistics",
]

Direction = Literal["decrease", "increase"]
NetMethod = Literal["symmetric", "roi_mean", "voxel_ratio"]
CorrectionMethod = Literal["none", "bonferroni"]

#: Columns of ``roi_stats.tsv`` fixed by the CONTRACT (``status`` is an extra, last column).
ROI_STATS_COLUMNS: tuple[str, ...] = (
    "measure",
    "roi",
    "n",
    "baseline_mean",
    "baseline_sd",
    "challenge_mean",
    "challenge_sd",
    "mean_change_pct",
    "t",
    "df",
    "p",
    "cohen_d",
    "p_corrected",
    "correction",
    "status",
    "definition",
)

#: Striatal definitions and their dorsal-vs-ventral contrast rows of ``roi_stats.tsv``:
#: (definition, contrast row name, dorsal ROI, ventral ROI). ``AAL3`` is the CONTRACT's
#: ``dorsal_vs_ventral`` row; ``Mawlawi2001`` uses the Mawlawi et al. 2001 / Martinez et al.
#: 2003 subdivisions built by :mod:`bids_app.roi.atlas`.
STRIATAL_CONTRASTS: tuple[tuple[str, str, str, str], ...] = (
    ("AAL3", "dorsal_vs_ventral", "dorsal_striatum", "ventral_striatum"),
    ("Mawlawi2001", "dorsal_vs_ventral_mawlawi", "dst_mawlawi", "vst_mawlawi"),
)

#: ``definition`` column of ``roi_stats.tsv``: which striatal definition a row belongs to.
ROI_DEFINITIONS: dict[str, str] = {
    "dorsal_striatum": "AAL3",
    "ventral_striatum": "AAL3",
    "striatum": "AAL3",
    "dorsal_vs_ventral": "AAL3",
    "vst_mawlawi": "Mawlawi2001",
    "dst_mawlawi": "Mawlawi2001",
    "pre_dca": "Mawlawi2001",
    "post_ca": "Mawlawi2001",
    "pre_dpu": "Mawlawi2001",
    "post_pu": "Mawlawi2001",
    "dorsal_vs_ventral_mawlawi": "Mawlawi2001",
}

#: ROI names of the CONTRACT, in report order.
DEFAULT_ROIS: tuple[str, ...] = (
    "dorsal_striatum",
    "ventral_striatum",
    "striatum",
    "pituitary",
    "carotid",
    "habenula",
    "habenula_control",
)

#: Voxels whose reference value (baseline; the two sessions' mean for ``"symmetric"``) is at or
#: below this floor are excluded from net changes: a near-zero denominator would dominate.
DEFAULT_BASELINE_FLOOR = 0.1


def describe_net_change(method: NetMethod, direction: Direction, quantity: str) -> str:
    """One-sentence definition of a net-change estimator, for sidecars and reports.

    Parameters
    ----------
    method : {"symmetric", "roi_mean", "voxel_ratio"}
        The estimator (see the module docstring).
    direction : {"decrease", "increase"}
        ``"decrease"`` for DA release (BPND), ``"increase"`` for rCBF change (R1).
    quantity : str
        Name of the mapped quantity, e.g. ``"BPND"``.

    Returns
    -------
    str
        E.g. for ``("roi_mean", "decrease", "BPND")``: ``"(mean BPND_baseline - mean
        BPND_challenge) / mean BPND_baseline over the striatal voxels finite in both sessions
        (ratio of regional means; unsmoothed maps)"``.
    """
    b, c = f"{quantity}_baseline", f"{quantity}_challenge"
    up = direction == "increase"
    change = f"({c} - {b})" if up else f"({b} - {c})"
    if method == "symmetric":
        back = "2 s_mean / (2 - s_mean)" if up else "2 s_mean / (2 + s_mean)"
        return (
            f"mean over the striatal voxels of the symmetric relative change s = {change} / "
            f"(({b} + {c}) / 2), put back on the baseline scale as {back}: the mean voxelwise "
            f"{change} / {b} without the bias that voxel noise gives a mean of voxel ratios "
            f"(unsmoothed maps; voxels whose session mean exceeds {DEFAULT_BASELINE_FLOOR:g})"
        )
    if method == "roi_mean":
        mean_change = f"(mean {c} - mean {b})" if up else f"(mean {b} - mean {c})"
        return (
            f"{mean_change} / mean {b} over the striatal voxels finite in both sessions "
            "(ratio of regional means; unsmoothed maps)"
        )
    if method == "voxel_ratio":
        return (
            f"mean over the striatal voxels of {change} / {b}, voxels with {b} > "
            f"{DEFAULT_BASELINE_FLOOR:g} (biased towards zero by voxel noise)"
        )
    msg = f"method must be one of 'symmetric', 'roi_mean', 'voxel_ratio'; got {method!r}."
    raise StatsError(msg)


_MEASURES: tuple[str, ...] = ("BPND", "R1")
_TABLE_COLUMNS: tuple[str, ...] = ("participant_id", "measure", "roi", "baseline", "challenge")


@dataclass(frozen=True)
class PairedTestResult:
    """Result of a paired t-test of challenge versus baseline.

    Attributes
    ----------
    n : int
        Number of complete pairs used.
    baseline_mean, baseline_sd, challenge_mean, challenge_sd : float
        Mean and sample SD (``ddof=1``) per condition over the complete pairs, in the
        measure's units.
    mean_change_pct : float
        ``100 * (challenge_mean - baseline_mean) / baseline_mean`` (percent).
    t, df, p : float
        Paired t statistic of ``challenge - baseline``, its degrees of freedom (``n - 1``)
        and the two-sided p-value.
    cohen_d : float
        Mean difference over the SD of the differences (``d_z``; sign of ``t``).
    status : str
        ``"ok"``, ``"too_few_pairs"`` (n < 2) or ``"zero_variance"`` (constant differences).
    """

    n: int
    baseline_mean: float
    baseline_sd: float
    challenge_mean: float
    challenge_sd: float
    mean_change_pct: float
    t: float
    df: float
    p: float
    cohen_d: float
    status: str = "ok"

    def as_dict(self) -> dict[str, float | int | str]:
        """Return the fields as a plain dict (column name -> value)."""
        return asdict(self)


@dataclass(frozen=True)
class OneSampleResult:
    """Result of a one-sample t-test of ``mean == 0``.

    Attributes
    ----------
    n : int
        Number of finite values used.
    mean, sd : float
        Sample mean and SD (``ddof=1``) of the values.
    t, df, p : float
        t statistic, degrees of freedom (``n - 1``) and two-sided p-value.
    cohen_d : float
        ``mean / sd`` (sign of ``t``).
    status : str
        ``"ok"``, ``"too_few_values"`` (n < 2) or ``"zero_variance"``.
    """

    n: int
    mean: float
    sd: float
    t: float
    df: float
    p: float
    cohen_d: float
    status: str = "ok"

    def as_dict(self) -> dict[str, float | int | str]:
        """Return the fields as a plain dict (name -> value)."""
        return asdict(self)


@dataclass(frozen=True)
class NetChange:
    """A relative change averaged over a region (fraction, 0.10 = 10 %).

    Attributes
    ----------
    value : float
        The net relative change (NaN when no voxel is valid).
    n_voxels : int
        Number of mask voxels that entered the average.
    n_excluded : int
        Number of mask voxels excluded (non-finite in either session, or the reference value
        at or below the floor).
    method : str
        ``"symmetric"``, ``"roi_mean"`` or ``"voxel_ratio"`` (see the module docstring).
    direction : str
        ``"decrease"``: ``(baseline - challenge) / baseline`` (positive = decrease, e.g. DA
        release); ``"increase"``: ``(challenge - baseline) / baseline``.
    """

    value: float
    n_voxels: int
    n_excluded: int
    method: str
    direction: str


@dataclass(frozen=True)
class CorrectionFamily:
    """A family of ROI tests corrected together for multiple comparisons.

    Attributes
    ----------
    members : tuple of (str, str)
        ``(measure, roi)`` pairs of the family, e.g. ``(("R1", "habenula"), ("R1",
        "habenula_control"))``.
    method : {"bonferroni", "none"}
        ``"bonferroni"`` multiplies p by the family size ``len(members)`` (capped at 1); the
        family size is fixed by design, even if a member is missing from the data.
    """

    members: tuple[tuple[str, str], ...]
    method: CorrectionMethod = "bonferroni"

    @property
    def label(self) -> str:
        """Return the value written to the ``correction`` column (e.g. ``bonferroni_n2``)."""
        if self.method == "none":
            return "none"
        return f"{self.method}_n{len(self.members)}"

    def adjust(self, p: float) -> float:
        """Return the corrected p-value of one member's uncorrected ``p``."""
        if self.method == "none" or not np.isfinite(p):
            return float(p)
        return float(min(1.0, p * len(self.members)))


#: The paper's correction scheme: the a-priori BPND ROIs (dorsal, ventral, striatum) and the
#: exploratory R1 ROIs (pituitary, carotid) are reported uncorrected; the habenula and its
#: control ROI are Bonferroni-corrected as a pair ("corrected for multiple comparisons for
#: these two ROIs (n = 2, p < 0.025)"), for either measure. Unlisted tests are uncorrected.
DEFAULT_CORRECTION_FAMILIES: tuple[CorrectionFamily, ...] = (
    CorrectionFamily((("R1", "habenula"), ("R1", "habenula_control")), "bonferroni"),
    CorrectionFamily((("BPND", "habenula"), ("BPND", "habenula_control")), "bonferroni"),
)


def _as_float_array(values: npt.ArrayLike, name: str) -> npt.NDArray[np.float64]:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        msg = f"{name} must be numeric; got values that cannot be converted to float ({exc})."
        raise StatsError(msg) from exc
    return arr.ravel()


def _sd(x: npt.NDArray[np.float64]) -> float:
    return float(np.std(x, ddof=1)) if x.size >= 2 else float("nan")


def _mean(x: npt.NDArray[np.float64]) -> float:
    return float(np.mean(x)) if x.size >= 1 else float("nan")


def _degenerate(values: npt.NDArray[np.float64]) -> str | None:
    """Why a one-sample t-test of ``values`` is undefined (None when it is defined)."""
    if values.size < 2:
        return "too_few"
    if not np.isfinite(values).all() or float(np.ptp(values)) == 0.0:
        return "zero_variance"
    return None


def paired_roi_test(baseline: npt.ArrayLike, challenge: npt.ArrayLike) -> PairedTestResult:
    """Paired t-test of challenge versus baseline values, NaN-robust.

    Parameters
    ----------
    baseline, challenge : (n_participants,) array_like
        One value per participant and condition, in the measure's units (e.g. BPND,
        unitless). Pairs with a non-finite value in either array are dropped.

    Returns
    -------
    PairedTestResult
        Means, SDs, ``mean_change_pct``, ``t``, ``df``, two-sided ``p`` and Cohen's ``d_z``
        of ``challenge - baseline`` (see the module docstring for the conventions).

    Raises
    ------
    StatsError
        If the arrays differ in length or are not numeric.
    """
    b = _as_float_array(baseline, "baseline")
    c = _as_float_array(challenge, "challenge")
    if b.shape != c.shape:
        msg = (
            f"paired test needs one baseline and one challenge value per participant; got "
            f"{b.size} baseline and {c.size} challenge values. Pass aligned arrays."
        )
        raise StatsError(msg)
    keep = np.isfinite(b) & np.isfinite(c)
    b, c = b[keep], c[keep]
    n = int(b.size)
    diff = c - b
    nan = float("nan")
    problem = _degenerate(diff)
    if problem is None:
        test = sps.ttest_rel(c, b)
        t, p = float(test.statistic), float(test.pvalue)
        df, d = float(n - 1), _mean(diff) / _sd(diff)
        status = "ok"
    else:
        t = p = d = nan
        df = float(n - 1) if n >= 2 else nan
        status = "too_few_pairs" if problem == "too_few" else problem
    b_mean, c_mean = _mean(b), _mean(c)
    change_pct = 100.0 * (c_mean - b_mean) / b_mean if n and b_mean != 0 else float("nan")
    return PairedTestResult(
        n=n,
        baseline_mean=b_mean,
        baseline_sd=_sd(b),
        challenge_mean=c_mean,
        challenge_sd=_sd(c),
        mean_change_pct=float(change_pct),
        t=t,
        df=df,
        p=p,
        cohen_d=d,
        status=status,
    )


def one_sample_test(values: npt.ArrayLike) -> OneSampleResult:
    """One-sample t-test of ``mean(values) == 0`` (e.g. net DA release across participants).

    Parameters
    ----------
    values : (n_participants,) array_like
        One value per participant (e.g. net DA release, a fraction). Non-finite values are
        dropped.

    Returns
    -------
    OneSampleResult
        ``n``, ``mean``, ``sd``, ``t``, ``df = n - 1``, two-sided ``p`` and Cohen's
        ``d = mean / sd``.
    """
    x = _as_float_array(values, "values")
    x = x[np.isfinite(x)]
    n = int(x.size)
    mean, sd = _mean(x), _sd(x)
    nan = float("nan")
    problem = _degenerate(x)
    if problem is None:
        test = sps.ttest_1samp(x, 0.0)
        t, p, d, status = float(test.statistic), float(test.pvalue), mean / sd, "ok"
    else:
        t = p = d = nan
        status = "too_few_values" if problem == "too_few" else problem
    df = float(n - 1) if n >= 2 else nan
    return OneSampleResult(n=n, mean=mean, sd=sd, t=t, df=df, p=p, cohen_d=d, status=status)


def _relative_change(
    baseline: npt.NDArray[np.float64],
    challenge: npt.NDArray[np.float64],
    direction: Direction,
) -> npt.NDArray[np.float64]:
    if direction == "decrease":
        return (baseline - challenge) / baseline
    if direction == "increase":
        return (challenge - baseline) / baseline
    msg = f"direction must be one of 'decrease', 'increase'; got {direction!r}."
    raise StatsError(msg)


def _check_maps(
    baseline_map: npt.ArrayLike, challenge_map: npt.ArrayLike, mask: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    b = np.asarray(baseline_map, dtype=np.float64)
    c = np.asarray(challenge_map, dtype=np.float64)
    m = np.asarray(mask)
    if not (b.shape == c.shape == m.shape):
        msg = (
            f"baseline map, challenge map and mask must have the same shape; got "
            f"{b.shape}, {c.shape} and {m.shape}. Resample them to one grid first."
        )
        raise StatsError(msg)
    if m.dtype != np.bool_:
        m = np.isfinite(m.astype(np.float64)) & (m.astype(np.float64) > 0)
    return b, c, m


def relative_change_voxelwise(
    baseline_map: npt.ArrayLike,
    challenge_map: npt.ArrayLike,
    mask: npt.ArrayLike,
    direction: Direction,
    baseline_floor: float = DEFAULT_BASELINE_FLOOR,
) -> npt.NDArray[np.float64]:
    """Voxelwise relative change between two parameter maps.

    Parameters
    ----------
    baseline_map, challenge_map : ndarray, shape (X, Y, Z) or any shape
        Parameter maps of the two sessions on the same grid (e.g. BPND, unitless; R1,
        unitless). NaN marks voxels without a fit.
    mask : ndarray of bool (or numeric, > 0 = in), same shape
        The region (e.g. the striatum).
    direction : {"decrease", "increase"}
        ``"decrease"``: ``(baseline - challenge) / baseline`` (DA release: positive when BPND
        falls); ``"increase"``: ``(challenge - baseline) / baseline`` (rCBF change).
    baseline_floor : float, default 0.1
        Voxels whose baseline value is at or below this floor are invalid (a near-zero
        denominator would dominate any average).

    Returns
    -------
    ndarray of float64, same shape
        The relative change (fraction) in valid mask voxels, NaN elsewhere.
    """
    b, c, m = _check_maps(baseline_map, challenge_map, mask)
    valid = m & np.isfinite(b) & np.isfinite(c) & (b > baseline_floor)
    out = np.full(b.shape, np.nan)
    out[valid] = _relative_change(b[valid], c[valid], direction)
    return out


def _symmetric_net(
    b: npt.NDArray[np.float64], c: npt.NDArray[np.float64], direction: Direction
) -> float:
    """Mean symmetric relative change over the voxels, on the baseline-relative scale."""
    centre = (b + c) / 2.0
    s = (b - c) / centre if direction == "decrease" else (c - b) / centre
    s_mean = float(np.mean(s))
    if direction == "decrease":
        return 2.0 * s_mean / (2.0 + s_mean)
    return 2.0 * s_mean / (2.0 - s_mean)


def _net_change(
    baseline_map: npt.ArrayLike,
    challenge_map: npt.ArrayLike,
    mask: npt.ArrayLike,
    direction: Direction,
    method: NetMethod,
    baseline_floor: float,
) -> NetChange:
    b, c, m = _check_maps(baseline_map, challenge_map, mask)
    n_mask = int(m.sum())
    if n_mask == 0:
        msg = "the region mask is empty: no voxel to average. Check the atlas/mask resampling."
        raise StatsError(msg)
    if direction not in ("decrease", "increase"):
        msg = f"direction must be one of 'decrease', 'increase'; got {direction!r}."
        raise StatsError(msg)
    both = m & np.isfinite(b) & np.isfinite(c)
    nan = float("nan")
    if method == "symmetric":
        with np.errstate(invalid="ignore"):
            valid = both & ((b + c) / 2.0 > baseline_floor)
        value = _symmetric_net(b[valid], c[valid], direction) if valid.any() else nan
    elif method == "roi_mean":
        valid = both
        b_mean = float(np.mean(b[valid])) if valid.any() else nan
        c_mean = float(np.mean(c[valid])) if valid.any() else nan
        ok = np.isfinite(b_mean) and b_mean > baseline_floor
        value = (
            float(_relative_change(np.array([b_mean]), np.array([c_mean]), direction)[0])
            if ok
            else nan
        )
    elif method == "voxel_ratio":
        rel = relative_change_voxelwise(b, c, m, direction, baseline_floor)
        valid = np.isfinite(rel)
        value = float(np.mean(rel[valid])) if valid.any() else nan
    else:
        msg = f"method must be one of 'symmetric', 'roi_mean', 'voxel_ratio'; got {method!r}."
        raise StatsError(msg)
    n_used = int(valid.sum())
    if n_used == 0:
        logger.warning(
            "No valid voxel in the region (of %d mask voxels): net change is NaN.", n_mask
        )
    return NetChange(
        value=value,
        n_voxels=n_used,
        n_excluded=n_mask - n_used,
        method=method,
        direction=direction,
    )


def net_da_release(
    bp_baseline: npt.ArrayLike,
    bp_challenge: npt.ArrayLike,
    striatum_mask: npt.ArrayLike,
    method: NetMethod = "symmetric",
    baseline_floor: float = DEFAULT_BASELINE_FLOOR,
) -> NetChange:
    """Net DA release: mean over the striatum of ``(BP_baseline - BP_challenge) / BP_baseline``.

    Parameters
    ----------
    bp_baseline, bp_challenge : ndarray, shape (X, Y, Z)
        Unsmoothed BPND maps of the baseline and challenge sessions on one grid (NaN = no fit).
    striatum_mask : ndarray of bool, same shape
        The striatum.
    method : {"symmetric", "roi_mean", "voxel_ratio"}, default "symmetric"
        ``"symmetric"``: mean of the voxels' symmetric relative changes, put back on the
        baseline scale (unbiased by voxel noise; ``net_da_release``); ``"roi_mean"``: relative
        change of the striatal mean BPND (``net_da_release_roi``); ``"voxel_ratio"``: the
        literal mean of voxel ratios, biased towards zero by voxel noise (kept to reproduce
        earlier results). See the module docstring.
    baseline_floor : float, default 0.1
        Voxels whose reference BPND (mean of the sessions for ``"symmetric"``, baseline for
        ``"voxel_ratio"``) is at or below the floor are excluded; for ``"roi_mean"`` the result
        is NaN when the regional baseline mean is at or below it.

    Returns
    -------
    NetChange
        ``value`` is a fraction; positive = BPND decrease = DA release.
    """
    return _net_change(
        bp_baseline, bp_challenge, striatum_mask, "decrease", method, baseline_floor
    )


def net_rcbf_change(
    r1_baseline: npt.ArrayLike,
    r1_challenge: npt.ArrayLike,
    striatum_mask: npt.ArrayLike,
    method: NetMethod = "symmetric",
    baseline_floor: float = DEFAULT_BASELINE_FLOOR,
) -> NetChange:
    """Net rCBF change: mean over the striatum of ``(R1_challenge - R1_baseline) / R1_baseline``.

    Parameters
    ----------
    r1_baseline, r1_challenge : ndarray, shape (X, Y, Z)
        Unsmoothed R1 maps (unitless, K1/K1') of the two sessions on one grid.
    striatum_mask : ndarray of bool, same shape
        The striatum.
    method : {"symmetric", "roi_mean", "voxel_ratio"}, default "symmetric"
        See :func:`net_da_release` (``net_rcbf_change`` and ``net_rcbf_change_roi``).
    baseline_floor : float, default 0.1
        See :func:`net_da_release`.

    Returns
    -------
    NetChange
        ``value`` is a fraction; positive = R1 increase.
    """
    return _net_change(
        r1_baseline, r1_challenge, striatum_mask, "increase", method, baseline_floor
    )


def dorsal_vs_ventral_test(
    dorsal_b: npt.ArrayLike,
    dorsal_c: npt.ArrayLike,
    ventral_b: npt.ArrayLike,
    ventral_c: npt.ArrayLike,
) -> PairedTestResult:
    """Paired t-test of the relative changes of two regions (dorsal vs ventral striatum).

    The relative change ``(challenge - baseline) / baseline`` is computed per participant in
    each region, and the test is on ``dorsal - ventral`` across participants.

    Parameters
    ----------
    dorsal_b, dorsal_c, ventral_b, ventral_c : (n_participants,) array_like
        Regional values (e.g. BPND) per participant in the baseline (``_b``) and challenge
        (``_c``) sessions, aligned by participant.

    Returns
    -------
    PairedTestResult
        ``t``, ``df``, ``p`` and ``cohen_d`` of ``rel_dorsal - rel_ventral`` (negative when
        the dorsal region decreases more); ``mean_change_pct`` holds
        ``100 * mean(rel_dorsal - rel_ventral)`` (percentage points); the per-condition
        mean/SD fields are NaN (there is no baseline/challenge value for a contrast).
    """
    arrays = [
        _as_float_array(a, name)
        for a, name in zip(
            (dorsal_b, dorsal_c, ventral_b, ventral_c),
            ("dorsal_b", "dorsal_c", "ventral_b", "ventral_c"),
            strict=True,
        )
    ]
    if len({a.size for a in arrays}) != 1:
        msg = (
            "dorsal_vs_ventral_test needs the same participants in all four arrays; got sizes "
            f"{[a.size for a in arrays]}."
        )
        raise StatsError(msg)
    db, dc, vb, vc = arrays
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_d = np.where(db != 0, (dc - db) / db, np.nan)
        rel_v = np.where(vb != 0, (vc - vb) / vb, np.nan)
    # The contrast is a paired test of rel_ventral (as "baseline") vs rel_dorsal.
    res = paired_roi_test(rel_v, rel_d)
    keep = np.isfinite(rel_d) & np.isfinite(rel_v)
    mean_pp = 100.0 * float(np.mean(rel_d[keep] - rel_v[keep])) if keep.any() else float("nan")
    nan = float("nan")
    return PairedTestResult(
        n=res.n,
        baseline_mean=nan,
        baseline_sd=nan,
        challenge_mean=nan,
        challenge_sd=nan,
        mean_change_pct=mean_pp,
        t=res.t,
        df=res.df,
        p=res.p,
        cohen_d=res.cohen_d,
        status=res.status,
    )


def _check_table(table: pd.DataFrame) -> None:
    missing = [c for c in _TABLE_COLUMNS if c not in table.columns]
    if missing:
        msg = (
            f"ROI table is missing column(s) {missing}; expected {list(_TABLE_COLUMNS)}, got "
            f"{list(table.columns)}."
        )
        raise StatsError(msg)
    dup = table.duplicated(subset=["participant_id", "measure", "roi"])
    if dup.any():
        first = table.loc[dup, ["participant_id", "measure", "roi"]].iloc[0].tolist()
        msg = (
            f"ROI table has {int(dup.sum())} duplicate (participant_id, measure, roi) row(s), "
            f"e.g. {first}; each participant needs one row per measure and ROI."
        )
        raise StatsError(msg)


def _family_lookup(
    families: Iterable[CorrectionFamily],
) -> dict[tuple[str, str], CorrectionFamily]:
    lookup: dict[tuple[str, str], CorrectionFamily] = {}
    for family in families:
        for member in family.members:
            if member in lookup:
                msg = f"{member} belongs to more than one correction family; give it one."
                raise StatsError(msg)
            lookup[member] = family
    return lookup


def _row(
    measure: str, roi: str, res: PairedTestResult, family: CorrectionFamily | None
) -> dict[str, object]:
    row: dict[str, object] = {"measure": measure, "roi": roi, **res.as_dict()}
    row["p_corrected"] = family.adjust(res.p) if family else res.p
    row["correction"] = family.label if family else "none"
    row["definition"] = ROI_DEFINITIONS.get(roi)
    return row


def _pairs(sub: pd.DataFrame, roi: str) -> pd.DataFrame:
    return sub.loc[sub["roi"] == roi].set_index("participant_id")[["baseline", "challenge"]]


def roi_statistics(
    table: pd.DataFrame,
    rois: Sequence[str] | None = None,
    measures: Sequence[str] | None = None,
    corrections: Sequence[CorrectionFamily] = DEFAULT_CORRECTION_FAMILIES,
    contrast_measures: Sequence[str] = ("BPND",),
) -> pd.DataFrame:
    """ROI statistics table (``roi_stats.tsv``) from a tidy table of regional values.

    Parameters
    ----------
    table : pandas.DataFrame
        Tidy input, one row per participant, measure and ROI, with columns
        ``participant_id``, ``measure`` (``"BPND"`` | ``"R1"``), ``roi``, ``baseline`` and
        ``challenge`` (regional values in each session; NaN allowed).
    rois : sequence of str, optional
        ROIs to test, in output order. Default: the CONTRACT ROIs present in ``table`` (in
        :data:`DEFAULT_ROIS` order) followed by any other ROI in the table (sorted).
    measures : sequence of str, optional
        Measures to test, in output order. Default: ``BPND`` then ``R1`` (those present).
    corrections : sequence of CorrectionFamily, default :data:`DEFAULT_CORRECTION_FAMILIES`
        Multiple-comparison families. Tests not in any family are uncorrected
        (``p_corrected = p``, ``correction = "none"``), as the paper reports its a-priori
        BPND ROIs and the exploratory pituitary/carotid R1 ROIs.
    contrast_measures : sequence of str, default ("BPND",)
        Measures for which the dorsal-vs-ventral rows of :data:`STRIATAL_CONTRASTS` (see
        :func:`dorsal_vs_ventral_test`) are added after the measure's ROI rows, each when both
        of its regions are in the table: ``dorsal_vs_ventral`` (AAL3, the CONTRACT's row) and
        ``dorsal_vs_ventral_mawlawi``. Uncorrected (a-priori).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`ROI_STATS_COLUMNS`, one row per (measure, roi) tested; ``definition``
        names the striatal definition of a row (:data:`ROI_DEFINITIONS`; None otherwise).

    Raises
    ------
    StatsError
        If columns are missing, rows are duplicated, or a ROI belongs to two families.
    """
    _check_table(table)
    lookup = _family_lookup(corrections)
    present_rois = list(dict.fromkeys(table["roi"].astype(str)))
    if rois is None:
        rois = [r for r in DEFAULT_ROIS if r in present_rois]
        rois += sorted(r for r in present_rois if r not in DEFAULT_ROIS)
    present_measures = set(table["measure"].astype(str))
    if measures is None:
        measures = [m for m in _MEASURES if m in present_measures]
        measures += sorted(m for m in present_measures if m not in _MEASURES)
    rows: list[dict[str, object]] = []
    for measure in measures:
        sub = table.loc[table["measure"] == measure]
        for roi in rois:
            pairs = _pairs(sub, roi)
            if pairs.empty:
                logger.info("No %s values for ROI %r: row skipped.", measure, roi)
                continue
            res = paired_roi_test(pairs["baseline"], pairs["challenge"])
            rows.append(_row(measure, roi, res, lookup.get((measure, roi))))
        if measure not in contrast_measures:
            continue
        for _, name, dorsal_roi, ventral_roi in STRIATAL_CONTRASTS:
            dorsal, ventral = _pairs(sub, dorsal_roi), _pairs(sub, ventral_roi)
            if dorsal.empty or ventral.empty:
                continue
            both = dorsal.join(ventral, how="inner", lsuffix="_d", rsuffix="_v")
            res = dorsal_vs_ventral_test(
                both["baseline_d"],
                both["challenge_d"],
                both["baseline_v"],
                both["challenge_v"],
            )
            rows.append(_row(measure, name, res, None))
    out = pd.DataFrame(rows, columns=list(ROI_STATS_COLUMNS))
    return out.astype({"n": "int64"}) if len(out) else out


def relative_changes_by_roi(
    table: pd.DataFrame, measure: str, direction: Direction
) -> pd.DataFrame:
    """Per-participant relative change of each ROI (wide table, fractions).

    Parameters
    ----------
    table : pandas.DataFrame
        Tidy table as in :func:`roi_statistics`.
    measure : str
        ``"BPND"`` or ``"R1"``.
    direction : {"decrease", "increase"}
        See :func:`relative_change_voxelwise`.

    Returns
    -------
    pandas.DataFrame
        Index ``participant_id``, one column per ROI; NaN where a value is missing or the
        baseline is 0.
    """
    _check_table(table)
    sub = table.loc[table["measure"] == measure]
    b = sub.pivot(index="participant_id", columns="roi", values="baseline").astype(float)
    c = sub.pivot(index="participant_id", columns="roi", values="challenge").astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = _relative_change(b.to_numpy(), c.to_numpy(), direction)
    rel[~np.isfinite(rel)] = np.nan
    out = pd.DataFrame(rel, index=b.index, columns=b.columns)
    out.columns.name = None
    return out


def roi_participant_measures(table: pd.DataFrame) -> pd.DataFrame:
    """ROI-based columns of ``participant_measures.tsv``.

    Parameters
    ----------
    table : pandas.DataFrame
        Tidy table as in :func:`roi_statistics`.

    Returns
    -------
    pandas.DataFrame
        Index ``participant_id``; columns (when the ROI exists) ``dorsal_da_release`` and
        ``ventral_da_release`` (``(BP_b - BP_c) / BP_b`` of the regional BPND, fractions),
        ``pituitary_r1_change`` and ``carotid_r1_change`` (``(R1_c - R1_b) / R1_b``).
    """
    parts: list[pd.Series] = []
    names: dict[tuple[str, Direction, str], str] = {
        ("BPND", "decrease", "dorsal_striatum"): "dorsal_da_release",
        ("BPND", "decrease", "ventral_striatum"): "ventral_da_release",
        ("R1", "increase", "pituitary"): "pituitary_r1_change",
        ("R1", "increase", "carotid"): "carotid_r1_change",
    }
    for (measure, direction, roi), name in names.items():
        if not ((table["measure"] == measure) & (table["roi"] == roi)).any():
            continue
        rel = relative_changes_by_roi(table, measure, direction)
        parts.append(rel[roi].rename(name))
    if not parts:
        return pd.DataFrame(index=pd.Index([], name="participant_id"))
    out = pd.concat(parts, axis=1)
    out.index.name = "participant_id"
    return out
