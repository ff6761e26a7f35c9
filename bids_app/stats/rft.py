"""SPM12-compatible random field theory (RFT) for T and Z statistic images.

The functions reproduce the numbers of SPM12's ``spm_ECdensity``, ``spm_P_RF``, ``spm_P``,
``spm_uc_RF``/``spm_uc``, ``spm_resels``, ``spm_resels_vol`` and ``spm_est_smoothness`` so that
cluster- and peak-level p-values agree with an SPM analysis of the same images.

Conventions (as in SPM):

- ``df = (df1, df2)``: degrees of freedom of interest and of error; a T field uses ``df2`` only.
  A bare number is taken as the error degrees of freedom.
- ``resels = (R0, R1, R2, R3)``: resel counts of the search volume (R0 is its Euler
  characteristic, R3 its volume in resels).
- Cluster extents ``k`` given to :func:`p_rf` are in resels; the convenience functions take voxels
  and convert with ``V2R = 1 / prod(fwhm_vox)``.

Agreement with SPM12 (``tests/unit/stats/test_rft.py``, reference numbers produced by SPM12's
own functions in ``tests/data/rft``): over the 672 tabulated cases the cluster-level P and p,
Ec, Ek and the peak-level P agree to a relative 2e-8 at most (median 1e-10, the precision of the
table), ``ec_density`` and ``threshold_fwe`` within the tests' 1e-6; ``resel_counts`` equals
``spm_resels_vol`` for a box and a sphere at five FWHMs; ``estimate_smoothness`` follows
``spm_est_smoothness`` voxel by voxel (1e-12 against a re-derivation of its trilinear-sampling
rule) and, on Gaussian fields smoothed to FWHM 3, 5 and 8 voxels (96^3, 10 scans, 9 df), gives
3.22, 5.14 and 8.09 voxels: the finite-difference formula's own excess (3.12, 5.07, 8.04 for
infinitely many scans) plus a small-df part; see :func:`estimate_smoothness`.

References
----------
Worsley KJ, Marrett S, Neelin P, Vandal AC, Friston KJ, Evans AC (1996). A unified statistical
approach for determining significant signals in images of cerebral activation. Human Brain Mapping
4:58-73.

Friston KJ, Worsley KJ, Frackowiak RSJ, Mazziotta JC, Evans AC (1994). Assessing the significance
of focal activations using their spatial extent. Human Brain Mapping 1:210-220.

Kiebel SJ, Poline JB, Friston KJ, Holmes AP, Worsley KJ (1999). Robust smoothness estimation in
statistical parametric maps using standardized residuals from the general linear model.
NeuroImage 10:756-766.

Hayasaka S, Phan KL, Liberzon I, Worsley KJ, Nichols TE (2004). Nonstationary cluster-size
inference with random field and permutation methods. NeuroImage 22:676-687.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special, stats
from scipy.linalg import toeplitz

from bids_app.errors import StatsError

logger = logging.getLogger(__name__)

Stat = Literal["T", "Z"]
DegreesOfFreedom = float | Sequence[float]
Resels = Sequence[float] | NDArray[np.float64]

#: MATLAB's ``eps`` (spacing of doubles at 1.0), used by SPM as a floor.
EPS = float(np.finfo(np.float64).eps)
#: ``4 ln 2``: converts a Gaussian's variance of derivatives to FWHM units.
FOUR_LN2 = 4.0 * math.log(2.0)

__all__ = [
    "ec_density",
    "estimate_smoothness",
    "p_cluster",
    "p_cluster_fwe",
    "p_peak_fwe",
    "p_rf",
    "p_spm",
    "resel_counts",
    "resels_box",
    "resels_sphere",
    "threshold_fwe",
]


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------
def _check_stat(stat: str) -> Stat:
    if stat not in ("T", "Z"):
        msg = f"stat must be one of 'T' or 'Z'; got {stat!r}."
        raise StatsError(msg)
    return "T" if stat == "T" else "Z"


def _error_df(df: DegreesOfFreedom) -> float:
    """Return the error degrees of freedom ``df2`` from a scalar or a ``(df1, df2)`` pair."""
    values = np.atleast_1d(np.asarray(df, dtype=np.float64))
    if values.size not in (1, 2):
        msg = f"df must be a number or a (df1, df2) pair; got {values.size} values."
        raise StatsError(msg)
    v = float(values[-1])
    if not np.isfinite(v) or v <= 0:
        msg = f"error degrees of freedom must be positive and finite; got {v}."
        raise StatsError(msg)
    return v


def _as_resels(resels: Resels) -> NDArray[np.float64]:
    r = np.asarray(resels, dtype=np.float64).ravel()
    if r.size == 0 or r.size > 4 or not np.all(np.isfinite(r)):
        msg = f"resels must be 1 to 4 finite numbers (R0, R1, R2, R3); got {r.tolist()}."
        raise StatsError(msg)
    if not np.any(r):
        msg = "resels are all zero: the search volume is empty."
        raise StatsError(msg)
    return np.concatenate([r, np.zeros(4 - r.size)])


# --------------------------------------------------------------------------------------------
# Distribution tails computed like SPM (spm_Ncdf / spm_Tcdf), so extreme values agree too
# --------------------------------------------------------------------------------------------
def _spm_upper_tail(stat: Stat, t: NDArray[np.float64], v: float) -> NDArray[np.float64]:
    """``1 - CDF(t)`` computed the way SPM12 does (``1 - spm_Ncdf`` / ``1 - spm_Tcdf``).

    SPM subtracts the CDF from one instead of calling a survival function, which rounds tiny
    tail probabilities; matching that keeps the EC densities equal to SPM's to the last digits.
    Use :func:`scipy.stats.t.sf` for accurate p-value maps instead.
    """
    if stat == "Z":
        cdf = 0.5 + 0.5 * special.erf(t / math.sqrt(2.0))
    elif v == 1.0:
        cdf = 0.5 + np.arctan(t) / math.pi
    else:
        positive = (t > 0).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            half_tail = 0.5 * special.betainc(v / 2.0, 0.5, v / (v + t**2))
        cdf = np.where(t == 0, 0.5, positive - (2.0 * positive - 1.0) * half_tail)
    return 1.0 - cdf


def ec_density(stat: Stat, t: ArrayLike, df: DegreesOfFreedom) -> NDArray[np.float64]:
    """Euler characteristic densities of a T or Gaussian random field, like ``spm_ECdensity``.

    Parameters
    ----------
    stat : {'T', 'Z'}
        Statistic field type.
    t : float or (n,) array_like
        Thresholds (statistic values).
    df : float or (df1, df2)
        Degrees of freedom; only the error df (``df2``) is used for T fields.

    Returns
    -------
    (4, n) ndarray
        Rows rho_0..rho_3: rho_0 is the tail probability P(stat > t); rho_d (d >= 1) the EC
        density per resel^d (FWHM units, Worsley et al. 1996, Table 2).
    """
    stat = _check_stat(stat)
    tt = np.atleast_1d(np.asarray(t, dtype=np.float64)).ravel()
    a = FOUR_LN2
    ec = np.empty((4, tt.size), dtype=np.float64)
    if stat == "Z":
        b = np.exp(-(tt**2) / 2.0)
        ec[0] = _spm_upper_tail("Z", tt, math.inf)
        ec[1] = math.sqrt(a) / (2.0 * math.pi) * b
        ec[2] = a / (2.0 * math.pi) ** 1.5 * b * tt
        ec[3] = a**1.5 / (2.0 * math.pi) ** 2 * b * (tt**2 - 1.0)
        return ec
    v = _error_df(df)
    gamma_ratio = math.exp(special.gammaln((v + 1.0) / 2.0) - special.gammaln(v / 2.0))
    c = (1.0 + tt**2 / v) ** ((1.0 - v) / 2.0)
    ec[0] = _spm_upper_tail("T", tt, v)
    ec[1] = math.sqrt(a) / (2.0 * math.pi) * c
    ec[2] = a / (2.0 * math.pi) ** 1.5 * c * tt / math.sqrt(v / 2.0) * gamma_ratio
    ec[3] = a**1.5 / (2.0 * math.pi) ** 2 * c * ((v - 1.0) * tt**2 / v - 1.0)
    return ec


# --------------------------------------------------------------------------------------------
# P values (spm_P_RF, spm_P)
# --------------------------------------------------------------------------------------------
def p_rf(
    c: int,
    k: float,
    u: float,
    df: DegreesOfFreedom,
    stat: Stat,
    resels: Resels,
    n: int = 1,
) -> tuple[float, float, float, float]:
    """Corrected and uncorrected RFT p-values, exactly like SPM12's ``spm_P_RF``.

    Parameters
    ----------
    c : int
        Number of clusters (1 for cluster- and peak-level inference).
    k : float
        Cluster extent, resels (0 for peak-level inference).
    u : float
        Height threshold (statistic value).
    df : float or (df1, df2)
        Degrees of freedom.
    stat : {'T', 'Z'}
        Statistic field type.
    resels : (R0, R1, R2, R3)
        Resel counts of the search volume (trailing zeros lower the dimension, as in SPM).
    n : int
        Number of conjoint SPMs (1 for an ordinary analysis).

    Returns
    -------
    P : float
        Corrected p-value: probability of ``c`` or more clusters of ≥ ``k`` resels above ``u``.
    p : float
        Uncorrected p-value of a cluster of ≥ ``k`` resels (1 when ``k`` is 0).
    Ec : float
        Expected number of clusters (maxima) above ``u``.
    Ek : float
        Expected number of resels per cluster.

    Notes
    -----
    EC densities are floored at ``eps``; the corrected p-value uses the Poisson clumping
    heuristic ``P = 1 - PoissonCDF(c - 1, (Ec + eps) p)`` computed, like SPM, as one minus the
    CDF (so it rounds to 0 when it is below ~1e-16). Where ``exp(-beta k^(2/D))`` underflows to 0,
    SPM's Poisson CDF returns NaN with a warning; here P is 0, its limit.
    """
    stat = _check_stat(stat)
    r = _as_resels(resels)
    if n < 1:
        msg = f"n (number of conjoint SPMs) must be >= 1; got {n}."
        raise StatsError(msg)
    d = int(np.flatnonzero(r)[-1]) + 1
    r = r[:d]
    g = math.sqrt(math.pi) / special.gamma(np.arange(1, d + 1) / 2.0)
    ec = np.maximum(ec_density(stat, [u], df)[:d, 0], EPS)

    power = np.linalg.matrix_power(np.triu(toeplitz(ec * g)), n)[0]
    em = r / g * power  # expected maxima contributed by each dimension
    ec_total = float(em.sum())
    en = float(power[0] * r[d - 1])  # expected resels above u
    ek = en / float(em[d - 1])

    dim = d - 1
    if k == 0 or dim == 0:
        p = 1.0
    else:
        beta = (special.gamma(dim / 2.0 + 1.0) / ek) ** (2.0 / dim)
        p = math.exp(-beta * k ** (2.0 / dim))

    lam = (ec_total + EPS) * p
    if c < 1:
        big_p = 1.0
    elif lam <= 0.0:
        big_p = 0.0
    else:
        poisson_cdf = 1.0 - special.gammainc(float(c), lam)
        big_p = float(1.0 - poisson_cdf)
    return big_p, float(p), ec_total, float(ek)


def p_spm(
    c: int,
    k: float,
    u: float,
    df: DegreesOfFreedom,
    stat: Stat,
    resels: Resels,
    n: int = 1,
    n_voxels: int | None = None,
) -> tuple[float, float, float, float]:
    """Like SPM12's ``spm_P``: :func:`p_rf`, capped by Bonferroni for peak heights.

    When ``n_voxels`` (SPM's ``S``) is given, ``c == 1``, ``k == 0`` and the search volume is not
    the single resel ``R = 1``, the corrected p-value is ``min(P_RF, S * p_uncorrected)``.

    Returns
    -------
    tuple of float
        ``(P, p, Ec, Ek)`` as in :func:`p_rf`.
    """
    big_p, p, ec_total, ek = p_rf(c, k, u, df, stat, resels, n)
    r = np.asarray(resels, dtype=np.float64).ravel()
    is_unit = r.size >= 1 and r[0] == 1 and not np.any(r[1:])
    if n_voxels is not None and c == 1 and k == 0 and not is_unit:
        tail = float(
            _spm_upper_tail(stat, np.array([u], dtype=np.float64), _df_or_inf(stat, df))[0]
        )
        big_p = min(big_p, min(n_voxels * tail**n, 1.0))
    return big_p, p, ec_total, ek


def _df_or_inf(stat: Stat, df: DegreesOfFreedom) -> float:
    return math.inf if stat == "Z" else _error_df(df)


def _voxels_to_resels(k_voxels: float, fwhm_vox: ArrayLike) -> float:
    fwhm = np.asarray(fwhm_vox, dtype=np.float64).ravel()
    if fwhm.size != 3 or not np.all(np.isfinite(fwhm)) or np.any(fwhm <= 0):
        msg = f"fwhm_vox must be 3 positive finite numbers; got {fwhm.tolist()}."
        raise StatsError(msg)
    return float(k_voxels) / float(np.prod(fwhm))


def p_cluster(
    k_voxels: float,
    u: float,
    df: DegreesOfFreedom,
    resels: Resels,
    fwhm_vox: ArrayLike,
    stat: Stat = "T",
) -> tuple[float, float]:
    """SPM's cluster-level p-values of a cluster of ``k_voxels`` voxels above ``u``.

    Parameters
    ----------
    k_voxels : float
        Cluster size, voxels.
    u : float
        Cluster-forming threshold (statistic value).
    df : float or (df1, df2)
        Degrees of freedom.
    resels : (R0, R1, R2, R3)
        Resel counts of the search volume.
    fwhm_vox : (3,) array_like
        Smoothness, FWHM in voxels (gives ``V2R = 1 / prod(fwhm_vox)``).
    stat : {'T', 'Z'}
        Statistic field type.

    Returns
    -------
    p_fwe : float
        SPM's "cluster-level p(FWE-corr)" = ``spm_P(1, k V2R, u, df, STAT, R, 1, S)``.
    p_unc : float
        SPM's "cluster-level p(unc)".
    """
    k_resels = _voxels_to_resels(k_voxels, fwhm_vox)
    big_p, p, _, _ = p_rf(1, k_resels, u, df, stat, resels, 1)
    return big_p, p


def p_cluster_fwe(
    k_voxels: float,
    u: float,
    df: DegreesOfFreedom,
    resels: Resels,
    fwhm_vox: ArrayLike,
    stat: Stat = "T",
) -> float:
    """SPM's cluster-level p(FWE-corr) of a cluster of ``k_voxels`` voxels above ``u``.

    See :func:`p_cluster` for the parameters.

    Returns
    -------
    float
        Family-wise error corrected cluster p-value.
    """
    return p_cluster(k_voxels, u, df, resels, fwhm_vox, stat)[0]


def p_peak_fwe(
    t: float,
    df: DegreesOfFreedom,
    resels: Resels,
    n_voxels: int | None = None,
    stat: Stat = "T",
) -> float:
    """SPM's peak-level p(FWE-corr) of a maximum of height ``t``.

    ``spm_P(1, 0, t, df, STAT, R, 1, S)``: the RFT p-value, capped by Bonferroni over
    ``n_voxels`` search voxels when given.

    Returns
    -------
    float
        Family-wise error corrected peak p-value.
    """
    return p_spm(1, 0.0, t, df, stat, resels, 1, n_voxels)[0]


def threshold_fwe(
    alpha: float,
    df: DegreesOfFreedom,
    resels: Resels,
    stat: Stat = "T",
    n_voxels: int | None = None,
    n: int = 1,
) -> float:
    """FWE-corrected height threshold, like ``spm_uc_RF`` (and ``spm_uc`` with ``n_voxels``).

    Solves ``p_rf(1, 0, u, ...)[0] == alpha`` for ``u`` (Brent's method, tolerance 1e-12; SPM
    uses Newton steps to 1e-6). With ``n_voxels`` the result is the smaller of the RFT and the
    Bonferroni thresholds, like ``spm_uc``.

    Returns
    -------
    float
        Critical statistic value; ``inf`` when no finite threshold reaches ``alpha``.
    """
    stat = _check_stat(stat)
    if not 0.0 < alpha < 1.0:
        msg = f"alpha must be in (0, 1); got {alpha}."
        raise StatsError(msg)
    r = _as_resels(resels)
    v = _df_or_inf(stat, df)

    def excess(u: float) -> float:
        return p_rf(1, 0.0, u, df, stat, r, n)[0] - alpha

    start = _inverse_tail(stat, (alpha / float(np.max(r))) ** (1.0 / n), v)
    lo, hi = start - 1.0, start + 1.0
    while excess(lo) < 0.0 and lo > -50.0:
        lo -= 2.0
    steps = 0
    while excess(hi) > 0.0:
        hi *= 2.0
        steps += 1
        if steps > 60:
            return math.inf
    u = float(optimize.brentq(excess, lo, hi, xtol=1e-12, rtol=1e-14, maxiter=500))
    if n_voxels is not None and not (r[0] == 1 and not np.any(r[1:])):
        u = min(u, _inverse_tail(stat, (alpha / n_voxels) ** (1.0 / n), v))
    return u


def _inverse_tail(stat: Stat, a: float, v: float) -> float:
    """Uncorrected threshold ``u`` with P(stat > u) = a (``spm_u``)."""
    if stat == "Z":
        return float(stats.norm.isf(a))
    return float(stats.t.isf(a, v))


# --------------------------------------------------------------------------------------------
# Resel counts
# --------------------------------------------------------------------------------------------
def resels_box(fwhm_vox: ArrayLike, shape_vox: ArrayLike) -> NDArray[np.float64]:
    """Analytic resel counts of a box, like ``spm_resels(FWHM, L, 'B')``.

    Parameters
    ----------
    fwhm_vox : (3,) array_like
        FWHM per axis, voxels.
    shape_vox : (3,) array_like
        Box side lengths, voxels (a zero side lowers the dimension: rectangle or line).

    Returns
    -------
    (4,) ndarray
        R0..R3.
    """
    s = np.asarray(shape_vox, dtype=np.float64).ravel() / np.asarray(fwhm_vox, np.float64).ravel()
    s = s[s > 0]
    if s.size == 3:
        return np.array([1.0, s.sum(), s[0] * s[1] + s[1] * s[2] + s[0] * s[2], s.prod()])
    if s.size == 2:
        return np.array([1.0, s.sum(), s.prod(), 0.0])
    if s.size == 1:
        return np.array([1.0, s[0], 0.0, 0.0])
    msg = "resels_box needs at least one side longer than zero."
    raise StatsError(msg)


def resels_sphere(fwhm_vox: ArrayLike, radius_vox: float) -> NDArray[np.float64]:
    """Analytic resel counts of a sphere, like ``spm_resels(FWHM, radius, 'S')``.

    The radius is expressed in resels per axis and their geometric mean is used, as in SPM.

    Returns
    -------
    (4,) ndarray
        R0..R3 (sphere: ``[1, 4s, 2πs², 4/3 πs³]``; 2-D and 1-D FWHMs give a disc or a line).
    """
    fwhm = np.asarray(fwhm_vox, dtype=np.float64).ravel()
    s = radius_vox / fwhm
    s = s[s > 0]
    if s.size == 3:
        g = float(np.prod(s) ** (1.0 / 3.0))
        return np.array([1.0, 4.0 * g, 2.0 * math.pi * g**2, 4.0 / 3.0 * math.pi * g**3])
    if s.size == 2:
        g = float(np.prod(s) ** 0.5)
        return np.array([1.0, math.pi * g, math.pi * g**2, 0.0])
    if s.size == 1:
        return np.array([1.0, float(s[0]), 0.0, 0.0])
    msg = "resels_sphere needs a positive radius."
    raise StatsError(msg)


def _lattice_counts(
    inside: NDArray[np.bool_],
) -> tuple[int, NDArray[np.int64], NDArray[np.int64], int]:
    """Count the vertices, edges, faces and cubes of the voxel lattice inside a 3-D mask.

    A voxel is a vertex; two face-adjacent in-mask voxels form an edge along their axis; four
    in-mask voxels at the corners of a unit square form a face in that plane; eight at the
    corners of a unit cube form a cube.

    Returns
    -------
    n_vertices : int
    edges : (3,) ndarray
        Edges along x, y, z.
    faces : (3,) ndarray
        Faces in the xy, xz and yz planes.
    n_cubes : int
    """
    m = inside
    ex = m[1:, :, :] & m[:-1, :, :]
    ey = m[:, 1:, :] & m[:, :-1, :]
    ez = m[:, :, 1:] & m[:, :, :-1]
    fxy = ex[:, 1:, :] & ex[:, :-1, :]
    fxz = ex[:, :, 1:] & ex[:, :, :-1]
    fyz = ey[:, :, 1:] & ey[:, :, :-1]
    cube = fxy[:, :, 1:] & fxy[:, :, :-1]
    edges = np.array([ex.sum(), ey.sum(), ez.sum()], dtype=np.int64)
    faces = np.array([fxy.sum(), fxz.sum(), fyz.sum()], dtype=np.int64)
    return int(m.sum()), edges, faces, int(cube.sum())


def resel_counts(mask: ArrayLike, fwhm_vox: ArrayLike) -> tuple[float, float, float, float]:
    """Resel counts of a mask on the voxel lattice, like SPM12's ``spm_resels_vol``.

    The mask is treated as a union of lattice cells (Worsley et al. 1996): with ``P`` in-mask
    voxels, ``E_a`` edges along axis ``a``, ``F_ab`` faces in plane ``ab`` and ``C`` complete
    2x2x2 cubes, and ``r_a = 1 / FWHM_a``, the intrinsic volumes in resels are::

        R0 = P - (Ex + Ey + Ez) + (Fxy + Fxz + Fyz) - C            (Euler characteristic)
        R1 = (Ex - Fxy - Fxz + C) rx + (Ey - Fxy - Fyz + C) ry + (Ez - Fxz - Fyz + C) rz
        R2 = (Fxy - C) rx ry + (Fxz - C) rx rz + (Fyz - C) ry rz
        R3 = C rx ry rz

    Each term counts the lattice elements not interior to a higher-dimensional element
    (e.g. a face that is not part of a cube contributes area). A 20x30x40 box at FWHM 1 has
    R3 = 19·29·39 cubes. R0 can be negative for masks with handles or cavities.

    Parameters
    ----------
    mask : (X, Y, Z) array_like
        Search volume; like SPM, a voxel is inside when its value is finite and non-zero.
    fwhm_vox : (3,) array_like
        Smoothness, FWHM per axis in voxels.

    Returns
    -------
    tuple of 4 float
        (R0, R1, R2, R3).
    """
    values = np.asarray(mask)
    if values.ndim != 3:
        msg = f"mask must be a 3-D array; got shape {values.shape}."
        raise StatsError(msg)
    if values.dtype == np.bool_:
        inside = values
    else:
        inside = np.isfinite(values) & (values != 0)
    fwhm = np.asarray(fwhm_vox, dtype=np.float64).ravel()
    if fwhm.size != 3 or not np.all(np.isfinite(fwhm)) or np.any(fwhm <= 0):
        msg = f"fwhm_vox must be 3 positive finite numbers; got {fwhm.tolist()}."
        raise StatsError(msg)
    rx, ry, rz = 1.0 / fwhm
    p, (ex, ey, ez), (fxy, fxz, fyz), c = _lattice_counts(inside)
    r0 = float(p - (ex + ey + ez) + (fxy + fxz + fyz) - c)
    r1 = float((ex - fxy - fxz + c) * rx + (ey - fxy - fyz + c) * ry + (ez - fxz - fyz + c) * rz)
    r2 = float((fxy - c) * rx * ry + (fxz - c) * rx * rz + (fyz - c) * ry * rz)
    r3 = float(c * rx * ry * rz)
    return r0, r1, r2, r3


# --------------------------------------------------------------------------------------------
# Smoothness
# --------------------------------------------------------------------------------------------
def _forward_cube(finite: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Voxels whose forward 2x2x2 cube (the voxel and its +x/+y/+z neighbours) is all finite.

    At the last index along an axis the voxel is its own forward neighbour (edge replication),
    as in SPM's trilinear sampling.
    """
    padded = np.pad(finite, ((0, 1), (0, 1), (0, 1)), mode="edge")
    nx, ny, nz = finite.shape
    out = finite.copy()
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                if dx or dy or dz:
                    out &= padded[dx : dx + nx, dy : dy + ny, dz : dz + nz]
    return out


def estimate_smoothness(
    residuals: ArrayLike,
    mask: ArrayLike,
    dof: float | None = None,
) -> NDArray[np.float64]:
    """Smoothness (FWHM, voxels) of standardised residuals, like SPM12's ``spm_est_smoothness``.

    Procedure (Kiebel et al. 1999; Hayasaka et al. 2004), as SPM12 implements it:

    1. SPM samples each standardised residual image ``e_i / sqrt(ResMS)`` (NaN outside the
       analysis mask) with trilinear interpolation at every mask voxel and takes the gradient of
       the interpolant: at a voxel centre these are the forward differences along x, y and z.
       Trilinear sampling touches the whole forward 2x2x2 cube, so a voxel whose cube has a
       missing (NaN) corner gets a NaN value and is left out of the averages; here: a mask voxel
       contributes only when all 8 corners of its forward cube are in the mask and finite. At the
       last index of an axis the voxel is its own neighbour (difference 0), as in SPM.
    2. Per voxel, the roughness matrix is the average over scans of the outer product of the
       gradient, scaled by ``n / dof`` (SPM's df correction: standardised residuals divide by
       ``sqrt(RSS / dof)``): ``Λ = (n / dof) · mean_i(∇e_i ∇e_iᵀ)``.
    3. Per voxel, resels per voxel ``sqrt(det Λ / (4 ln 2)^3)`` (negative determinants count as
       0) and per axis ``sqrt(Λ_aa / (4 ln 2))``; both are averaged over the contributing voxels
       whose residual sum of squares is at least ``sqrt(eps)``.
    4. The global FWHM has components proportional to ``1 / mean(sqrt(Λ_aa / 4 ln 2))``, scaled
       so that ``1 / prod(FWHM)`` equals the mean resels per voxel. For a stationary Gaussian
       field, ``FWHM_a = sqrt(4 ln 2 / λ_a)`` with ``λ_a`` the variance of the derivative.

    SPM's optional non-stationary smoothing of the resels-per-voxel image
    (``stats.rft.nonstat``) is off by default and not implemented.

    Agreement with the documented method (``test_rft.py``, seeded): on stationary Gaussian white
    noise convolved with a Gaussian of FWHM 3, 5 and 8 voxels (periodic 96^3 field, 10 scans
    standardised with 9 df, i.e. the residuals of a 10-pair study), the estimates (mean of the
    three axes) are 3.22, 5.14 and 8.09 voxels: +7.2 %, +2.7 % and +1.1 % above the kernel.
    Most of it is the finite-difference formula itself: forward differences of a field whose
    lag-1 correlation is ``rho = exp(-1 / (4 sigma^2))`` give ``sqrt(4 ln 2 / (2 (1 - rho)))``
    = 3.12, 5.07 and 8.04 voxels for infinitely many scans; the remainder (+3.3 %, +1.4 %,
    +0.6 %) is the small-df bias of the mean of ``sqrt(det Λ)``, which falls below 1 % with 40
    scans. SPM12 shares both, as it uses the same formula; a voxel-by-voxel re-derivation of
    SPM's trilinear sampling (NaN corners, clamped edges) agrees with this function to 1e-12.

    Parameters
    ----------
    residuals : (n, X, Y, Z) array_like
        Standardised residuals (mean zero, unit variance over scans), NaN allowed outside the mask.
    mask : (X, Y, Z) array_like of bool
        Analysis mask.
    dof : float, optional
        Error degrees of freedom of the model (``n - 1`` for a one-sample test); default ``n``.

    Returns
    -------
    (3,) ndarray
        FWHM per axis, voxels.

    Raises
    ------
    StatsError
        When the shapes disagree or no mask voxel has a complete forward 2x2x2 cube in the mask.
    """
    res = np.asarray(residuals, dtype=np.float64)
    inside = np.asarray(mask, dtype=bool)
    if res.ndim != 4 or res.shape[1:] != inside.shape:
        msg = (
            f"residuals must have shape (n, X, Y, Z) matching the mask {inside.shape}; "
            f"got {res.shape}."
        )
        raise StatsError(msg)
    if min(inside.shape) < 2:
        msg = f"smoothness estimation needs at least 2 voxels along each axis; got {inside.shape}."
        raise StatsError(msg)
    n_scans = res.shape[0]
    edf = float(n_scans) if dof is None else float(dof)
    if n_scans < 1 or not edf > 0:
        msg = f"need at least one residual image and dof > 0; got n={n_scans}, dof={dof}."
        raise StatsError(msg)

    finite = inside & np.all(np.isfinite(res), axis=0)
    valid = _forward_cube(finite)
    if not valid.any():
        msg = (
            "cannot estimate smoothness: no mask voxel has its forward 2x2x2 cube (the voxel "
            "and its +x, +y, +z neighbours) inside the mask. Use a larger analysis mask."
        )
        raise StatsError(msg)

    nx, ny, nz = inside.shape
    lam = np.zeros((6, int(valid.sum())), dtype=np.float64)  # xx, yy, zz, xy, xz, yz
    ssq = np.zeros(lam.shape[1], dtype=np.float64)
    for scan in res:
        padded = np.pad(scan, ((0, 1), (0, 1), (0, 1)), mode="edge")
        centre = scan[valid]
        dx = padded[1 : nx + 1, :ny, :nz][valid] - centre
        dy = padded[:nx, 1 : ny + 1, :nz][valid] - centre
        dz = padded[:nx, :ny, 1 : nz + 1][valid] - centre
        ssq += centre**2
        lam[0] += dx * dx
        lam[1] += dy * dy
        lam[2] += dz * dz
        lam[3] += dx * dy
        lam[4] += dx * dz
        lam[5] += dy * dz
    lam *= (n_scans / edf) / n_scans

    xx, yy, zz, xy, xz, yz = lam
    det = xx * yy * zz + 2.0 * xy * yz * xz - xx * yz**2 - xy**2 * zz - xz**2 * yy
    det = np.maximum(det, 0.0)
    resel_img = np.sqrt(det / FOUR_LN2**3)
    resel_xyz = np.sqrt(np.stack([xx, yy, zz]) / FOUR_LN2)

    use = ssq >= math.sqrt(EPS)
    if not use.any():
        msg = "cannot estimate smoothness: the residuals are zero everywhere in the mask."
        raise StatsError(msg)
    mean_img = float(resel_img[use].mean())
    mean_xyz = resel_xyz[:, use].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        resel = mean_img ** (1.0 / 3.0) * (mean_xyz / np.prod(mean_xyz) ** (1.0 / 3.0))
        fwhm: NDArray[np.float64] = 1.0 / resel
    fwhm[~np.isfinite(fwhm)] = np.nan
    logger.debug("estimated smoothness FWHM = %s voxels from %d voxels", fwhm, int(use.sum()))
    return fwhm
