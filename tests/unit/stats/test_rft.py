"""Random field theory against SPM12's own numbers (every table row) and analytic cases."""

from __future__ import annotations

import csv
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage, stats

from bids_app.errors import StatsError
from bids_app.stats import rft
from bids_app.stats.voxelwise import smooth_volume

# SPM12's own numbers, copied into tests/data/reference/rft (see its README for the source)
RFT_DIR = Path(__file__).resolve().parents[2] / "data" / "reference" / "rft"
RTOL = 1e-6


def _rows(name: str) -> list[dict[str, str]]:
    with (RFT_DIR / name).open(newline="") as handle:
        return list(csv.DictReader(handle))


P_RF_ROWS = _rows("spm12_p_rf_reference.csv")
EC_ROWS = _rows("spm12_ECdensity_reference.csv")
RESELS_ROWS = _rows("spm12_resels_reference.csv")
RESELS_VOL_ROWS = _rows("spm12_resels_vol_reference.csv")


def _f(row: dict[str, str], key: str) -> float:
    return float(row[key])


def _resels(row: dict[str, str]) -> list[float]:
    return [_f(row, f"R{i}") for i in range(4)]


def _fwhm(row: dict[str, str]) -> list[float]:
    return [_f(row, f"fwhm_{a}_vox") for a in "xyz"]


def _threshold_groups() -> list[
    tuple[str, tuple[float, float], tuple[float, ...], int, float, float]
]:
    groups: dict[tuple[object, ...], tuple[float, float]] = {}
    for row in P_RF_ROWS:
        key = (
            row["STAT"],
            (_f(row, "df1"), _f(row, "df2")),
            tuple(_resels(row)),
            int(_f(row, "S_voxels")),
        )
        value = (_f(row, "u_FWE05_RF_only"), _f(row, "u_FWE05_spm_uc_min_RF_Bonf"))
        assert groups.setdefault(key, value) == value, "table inconsistent within a search volume"
    return [(*key, *value) for key, value in groups.items()]  # type: ignore[misc]


# ----------------------------------------------------------------------------------------------
# SPM12 tables
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("row", P_RF_ROWS, ids=[r["case"] for r in P_RF_ROWS])
def test_p_rf_matches_spm12_table(row: dict[str, str]) -> None:
    df = (_f(row, "df1"), _f(row, "df2"))
    stat = row["STAT"]
    resels = _resels(row)
    u = _f(row, "u_height")
    big_p, p, ec, ek = rft.p_rf(1, _f(row, "k_resels"), u, df, stat, resels)
    # exact zeros (Pk below double resolution in SPM's 1 - CDF) must be reproduced as zeros
    np.testing.assert_allclose(big_p, _f(row, "Pk_cluster_FWE"), rtol=RTOL, atol=0)
    np.testing.assert_allclose(p, _f(row, "Pn_cluster_uncorr"), rtol=RTOL, atol=0)
    np.testing.assert_allclose(ec, _f(row, "Ec_expected_clusters"), rtol=RTOL)
    np.testing.assert_allclose(ek, _f(row, "Ek_expected_resels_per_cluster"), rtol=RTOL)
    np.testing.assert_allclose(ek / _f(row, "V2R"), _f(row, "Ek_voxels"), rtol=RTOL)
    # the voxel-unit convenience (k_voxels / prod(FWHM)) gives SPM's cluster p-values too
    p_fwe, p_unc = rft.p_cluster(_f(row, "k_voxels"), u, df, resels, _fwhm(row), stat)
    np.testing.assert_allclose(p_fwe, _f(row, "Pk_cluster_FWE"), rtol=RTOL, atol=0)
    np.testing.assert_allclose(p_unc, _f(row, "Pn_cluster_uncorr"), rtol=RTOL, atol=0)
    assert rft.p_cluster_fwe(_f(row, "k_voxels"), u, df, resels, _fwhm(row), stat) == p_fwe
    # peak level: spm_P(1, 0, u, ..., S) and the "uncorrected" spm_P with R = 1
    peak = rft.p_peak_fwe(u, df, resels, int(_f(row, "S_voxels")), stat)
    np.testing.assert_allclose(peak, _f(row, "Pu_peak_FWE_at_u"), rtol=RTOL)
    p_unc_peak = rft.p_spm(1, 0, u, df, stat, [1.0], 1, int(_f(row, "S_voxels")))[0]
    np.testing.assert_allclose(p_unc_peak, _f(row, "Pz_peak_uncorr_at_u"), rtol=RTOL)


THRESHOLD_GROUPS = _threshold_groups()


@pytest.mark.parametrize(
    ("stat", "df", "resels", "n_voxels", "u_rf", "u_min"),
    THRESHOLD_GROUPS,
    ids=[f"{g[0]}{g[1][1]:g}-R3={g[2][3]:.0f}-S={g[3]}" for g in THRESHOLD_GROUPS],
)
def test_threshold_fwe_matches_spm_uc(
    stat: str,
    df: tuple[float, float],
    resels: tuple[float, ...],
    n_voxels: int,
    u_rf: float,
    u_min: float,
) -> None:
    np.testing.assert_allclose(rft.threshold_fwe(0.05, df, resels, stat), u_rf, rtol=RTOL)  # type: ignore[arg-type]
    got = rft.threshold_fwe(0.05, df, resels, stat, n_voxels=n_voxels)  # type: ignore[arg-type]
    np.testing.assert_allclose(got, u_min, rtol=RTOL)


@pytest.mark.parametrize("row", EC_ROWS, ids=[f"{r['STAT']}{r['df2']}-t{r['t']}" for r in EC_ROWS])
def test_ec_density_matches_spm12_table(row: dict[str, str]) -> None:
    got = rft.ec_density(row["STAT"], [_f(row, "t")], (_f(row, "df1"), _f(row, "df2")))  # type: ignore[arg-type]
    expected = [_f(row, f"EC{i}") for i in range(4)]
    assert got.shape == (4, 1)
    np.testing.assert_allclose(got[:, 0], expected, rtol=RTOL, atol=1e-15)


@pytest.mark.parametrize(
    "row", RESELS_ROWS, ids=[f"{r['shape']}{r['size']}-fwhm{r['fwhm_x']}" for r in RESELS_ROWS]
)
def test_resels_analytic_match_spm12_table(row: dict[str, str]) -> None:
    fwhm = [_f(row, k) for k in ("fwhm_x", "fwhm_y", "fwhm_z")]
    if row["shape"] == "B":
        got = rft.resels_box(fwhm, [float(s) for s in row["size"].split("x")])
    else:
        got = rft.resels_sphere(fwhm, float(row["size"].removeprefix("radius")))
    np.testing.assert_allclose(got, _resels(row), rtol=RTOL)


@pytest.mark.parametrize(
    "row",
    RESELS_VOL_ROWS,
    ids=[f"{r['mask'].split('_')[0]}-fwhm{r['fwhm_x_vox']}" for r in RESELS_VOL_ROWS],
)
def test_resel_counts_match_spm_resels_vol(row: dict[str, str]) -> None:
    nib = pytest.importorskip("nibabel")
    img = nib.load(RFT_DIR / "masks" / f"{row['mask']}.gz")
    data = np.asarray(img.dataobj)
    assert data.shape == (int(row["dim_x"]), int(row["dim_y"]), int(row["dim_z"]))
    got = rft.resel_counts(data, _fwhm(row))
    np.testing.assert_allclose(got, _resels(row), rtol=RTOL)


# ----------------------------------------------------------------------------------------------
# Lattice resel counts: analytic expectations
# ----------------------------------------------------------------------------------------------
def test_resel_counts_box_equals_lattice_count() -> None:
    mask = np.zeros((30, 40, 50), dtype=bool)
    mask[3:23, 5:35, 4:44] = True  # 20 x 30 x 40
    r0, r1, r2, r3 = rft.resel_counts(mask, [1.0, 1.0, 1.0])
    assert r3 == 19 * 29 * 39
    assert r2 == 19 * 29 + 19 * 39 + 29 * 39
    assert r1 == 19 + 29 + 39
    assert r0 == 1
    # with FWHM (2, 3, 4) each lattice length is divided by the FWHM along it
    got = rft.resel_counts(mask, [2.0, 3.0, 4.0])
    s = np.array([19 / 2, 29 / 3, 39 / 4])
    expected = [1, s.sum(), s[0] * s[1] + s[0] * s[2] + s[1] * s[2], s.prod()]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_resel_counts_euler_characteristic_of_shapes() -> None:
    single = np.zeros((3, 3, 3), dtype=bool)
    single[1, 1, 1] = True
    assert rft.resel_counts(single, [1, 1, 1]) == (1.0, 0.0, 0.0, 0.0)

    two_boxes = np.zeros((12, 6, 6), dtype=bool)
    two_boxes[1:4, 1:4, 1:4] = True
    two_boxes[7:11, 1:5, 1:5] = True
    assert rft.resel_counts(two_boxes, [1, 1, 1])[0] == 2

    hollow = np.zeros((9, 9, 9), dtype=bool)
    hollow[1:8, 1:8, 1:8] = True
    hollow[3:6, 3:6, 3:6] = False  # closed cavity: sphere-like shell, chi = 2
    assert rft.resel_counts(hollow, [1, 1, 1])[0] == 2

    ring = np.zeros((9, 9, 3), dtype=bool)
    ring[1:8, 1:8, :] = True
    ring[3:6, 3:6, :] = False  # a tunnel through: torus-like, chi = 0
    assert rft.resel_counts(ring, [1, 1, 1])[0] == 0

    two_rings = np.concatenate([ring, np.zeros((9, 9, 2), bool), ring], axis=2)
    assert rft.resel_counts(two_rings, [1, 1, 1])[0] == 0


def test_resel_counts_treats_nan_and_zero_as_outside() -> None:
    values = np.zeros((6, 6, 6))
    values[1:5, 1:5, 1:5] = 2.5
    values[1, 1, 1] = np.nan
    as_bool = np.isfinite(values) & (values != 0)
    assert rft.resel_counts(values, [2, 2, 2]) == rft.resel_counts(as_bool, [2, 2, 2])


def test_resel_counts_rejects_bad_input() -> None:
    with pytest.raises(StatsError, match="3-D"):
        rft.resel_counts(np.ones((4, 4)), [1, 1, 1])
    with pytest.raises(StatsError, match="fwhm_vox"):
        rft.resel_counts(np.ones((4, 4, 4)), [1, 0, 1])


# ----------------------------------------------------------------------------------------------
# EC densities and p-values: independent expectations
# ----------------------------------------------------------------------------------------------
def test_ec_density_rho0_is_tail_probability() -> None:
    t = np.array([-2.0, 0.0, 1.5, 3.0, 4.5])
    np.testing.assert_allclose(rft.ec_density("T", t, (1, 9))[0], stats.t.sf(t, 9), rtol=1e-12)
    np.testing.assert_allclose(rft.ec_density("Z", t, (1, 1))[0], stats.norm.sf(t), rtol=1e-9)


def test_ec_density_t_tends_to_gaussian_for_large_df() -> None:
    t = np.linspace(2.0, 5.0, 7)
    np.testing.assert_allclose(
        rft.ec_density("T", t, (1, 1e6)), rft.ec_density("Z", t, 1), rtol=1e-3
    )


def test_p_rf_peak_on_a_unit_search_volume_is_poisson_of_tail() -> None:
    # R = 1 (a single resel, 0-D): Ec = rho0, P = 1 - exp(-rho0)
    big_p, p, ec, _ = rft.p_rf(1, 0, 3.0, (1, 20), "T", [1])
    rho0 = stats.t.sf(3.0, 20)
    assert p == 1.0
    np.testing.assert_allclose(ec, rho0, rtol=1e-10)
    np.testing.assert_allclose(big_p, -math.expm1(-rho0), rtol=1e-9)


def test_p_rf_expected_ec_is_sum_of_resels_times_densities() -> None:
    resels = [1.0, 30.0, 300.0, 1000.0]
    _, _, ec, ek = rft.p_rf(1, 0, 3.5, (1, 15), "T", resels)
    rho = rft.ec_density("T", [3.5], 15)[:, 0]
    np.testing.assert_allclose(ec, np.dot(resels, rho), rtol=1e-12)
    # Ek = expected suprathreshold resels / expected clusters from the 3-D term
    np.testing.assert_allclose(ek, rho[0] * resels[3] / (resels[3] * rho[3]), rtol=1e-12)


def test_p_rf_cluster_p_decreases_with_extent_and_multiple_clusters() -> None:
    resels = rft.resels_box([4, 4, 4], [60, 70, 50])
    sizes = [0.0, 0.5, 1.0, 2.0, 4.0]
    pk = [rft.p_rf(1, k, 3.1, (1, 9), "T", resels)[0] for k in sizes]
    assert all(a > b for a, b in itertools.pairwise(pk))
    assert rft.p_rf(2, 1.0, 3.1, (1, 9), "T", resels)[0] < pk[2]
    assert rft.p_rf(0, 1.0, 3.1, (1, 9), "T", resels)[0] == 1.0


def test_threshold_fwe_inverts_peak_p() -> None:
    resels = rft.resels_sphere([3, 3, 3], 30)
    u = rft.threshold_fwe(0.05, (1, 12), resels, "T")
    np.testing.assert_allclose(rft.p_rf(1, 0, u, (1, 12), "T", resels)[0], 0.05, rtol=1e-9)
    assert rft.threshold_fwe(0.01, (1, 12), resels, "T") > u


def test_rft_rejects_bad_arguments() -> None:
    with pytest.raises(StatsError, match="'T' or 'Z'"):
        rft.ec_density("F", [1.0], (2, 10))  # type: ignore[arg-type]
    with pytest.raises(StatsError, match="all zero"):
        rft.p_rf(1, 0, 3.0, 10, "T", [0, 0, 0, 0])
    with pytest.raises(StatsError, match="degrees of freedom"):
        rft.p_rf(1, 0, 3.0, (1, 0), "T", [1, 2, 3, 4])
    with pytest.raises(StatsError, match="alpha"):
        rft.threshold_fwe(1.5, 10, [1, 2, 3, 4])


# ----------------------------------------------------------------------------------------------
# Smoothness estimation
# ----------------------------------------------------------------------------------------------
def _smoothed_noise(
    rng: np.random.Generator, shape: tuple[int, int, int], n: int, fwhm: list[float]
) -> np.ndarray:
    sigma = np.asarray(fwhm) / (2 * math.sqrt(2 * math.log(2)))
    vols = np.stack(
        [ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap") for _ in range(n)]
    )
    # standardise over scans like SPM's residuals (mean 0, ResMS with n - 1 df)
    resid = vols - vols.mean(axis=0)
    return resid / np.sqrt((resid**2).sum(axis=0) / (n - 1))


@pytest.mark.parametrize("fwhm", [[4.0, 4.0, 4.0], [3.0, 4.0, 5.0]])
def test_estimate_smoothness_recovers_known_fwhm(
    rng: np.random.Generator, fwhm: list[float]
) -> None:
    shape = (40, 44, 36)
    res = _smoothed_noise(rng, shape, 8, fwhm)
    mask = np.zeros(shape, dtype=bool)
    mask[4:-4, 4:-4, 4:-4] = True
    got = rft.estimate_smoothness(res, mask, dof=7)
    np.testing.assert_allclose(got, fwhm, rtol=0.10)
    # without the df correction the estimate is biased high by sqrt(n / df) per resel
    uncorrected = rft.estimate_smoothness(res, mask)
    np.testing.assert_allclose(np.prod(uncorrected) / np.prod(got), (8 / 7) ** 1.5, rtol=1e-10)


def test_estimate_smoothness_ignores_voxels_outside_mask(rng: np.random.Generator) -> None:
    shape = (32, 32, 32)
    res = _smoothed_noise(rng, shape, 6, [3.0, 3.0, 3.0])
    mask = np.zeros(shape, dtype=bool)
    mask[2:30, 2:30, 2:30] = True
    reference = rft.estimate_smoothness(res, mask, dof=5)
    polluted = res.copy()
    polluted[:, ~mask] = np.nan  # NaN outside must not leak in
    np.testing.assert_allclose(rft.estimate_smoothness(polluted, mask, dof=5), reference)
    polluted[:, ~mask] = 1e6  # nor huge values (differences need both voxels in the mask)
    np.testing.assert_allclose(rft.estimate_smoothness(polluted, mask, dof=5), reference)


def test_estimate_smoothness_of_white_noise_smoothed_by_smooth_volume(
    rng: np.random.Generator,
) -> None:
    shape = (36, 36, 36)
    vols = np.stack([smooth_volume(rng.standard_normal(shape), 2.0, 10.0) for _ in range(10)])
    resid = vols - vols.mean(axis=0)
    res = resid / np.sqrt((resid**2).sum(axis=0) / 9)
    mask = np.ones(shape, dtype=bool)
    np.testing.assert_allclose(
        rft.estimate_smoothness(res, mask, dof=9), [5.0, 5.0, 5.0], rtol=0.10
    )


FIELD_SHAPE = (96, 96, 96)


@pytest.fixture(scope="module")
def white_noise_spectrum() -> np.ndarray:
    """Spectrum of 10 white-noise volumes of 96^3 voxels (shared by the smoothness tests)."""
    noise = np.random.default_rng(96).standard_normal((10, *FIELD_SHAPE))
    return np.fft.rfftn(noise, axes=(1, 2, 3))


def _periodic_gaussian_fields(spectrum: np.ndarray, fwhm_vox: float) -> np.ndarray:
    """Stationary fields: the white noise convolved (periodically) with a Gaussian kernel."""
    sigma = fwhm_vox / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    shape = FIELD_SHAPE
    freqs = (np.fft.fftfreq(shape[0]), np.fft.fftfreq(shape[1]), np.fft.rfftfreq(shape[2]))
    gain = [np.exp(-2.0 * (math.pi * f * sigma) ** 2) for f in freqs]
    transfer = gain[0][:, None, None] * gain[1][None, :, None] * gain[2][None, None, :]
    return np.fft.irfftn(spectrum * transfer, s=shape, axes=(1, 2, 3))


@pytest.mark.parametrize(
    ("fwhm_vox", "tolerance_nominal"), [(3.0, 0.08), (5.0, 0.04), (8.0, 0.02)]
)
def test_estimate_smoothness_of_a_known_gaussian_field(
    white_noise_spectrum: np.ndarray, fwhm_vox: float, tolerance_nominal: float
) -> None:
    # 10 scans standardised with 9 df: the residuals of a 10-pair paired t-test
    fields = _periodic_gaussian_fields(white_noise_spectrum, fwhm_vox)
    resid = fields - fields.mean(axis=0)
    res = resid / np.sqrt((resid**2).sum(axis=0) / 9)
    mask = np.zeros(FIELD_SHAPE, dtype=bool)
    mask[2:-2, 2:-2, 2:-2] = True
    got = rft.estimate_smoothness(res, mask, dof=9)
    # what forward differences measure on the lattice: lag-1 correlation exp(-1 / (4 sigma^2))
    sigma = fwhm_vox / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    rho = math.exp(-1.0 / (4.0 * sigma**2))
    lattice = math.sqrt(4.0 * math.log(2.0) / (2.0 * (1.0 - rho)))
    np.testing.assert_allclose(got, lattice, rtol=0.04)
    np.testing.assert_allclose(got, fwhm_vox, rtol=tolerance_nominal)
    assert np.all(got > fwhm_vox)  # SPM's estimator errs on the smooth side at low FWHM


def _trilinear_sample_with_gradient(
    image: np.ndarray, i: int, j: int, k: int
) -> tuple[float, float, float, float]:
    """Value and gradient of the trilinear interpolant of ``image`` at voxel centre (i, j, k).

    Written from the definition: the interpolant on the cell [i, i+1] x [j, j+1] x [k, k+1]
    is the weighted sum of its 8 corners with weights (1 - f) or f per axis (f = 0 here); its
    partial derivative along x swaps that axis's weights for -1 / +1. Corner indices beyond the
    last voxel are clamped, and every corner enters the sums (0 * NaN is NaN, as in IEEE).
    """
    last = np.asarray(image.shape) - 1
    weight = {0: 1.0, 1: 0.0}  # (1 - f, f) at f = 0
    slope = {0: -1.0, 1: 1.0}
    value = gx = gy = gz = 0.0
    for a, b, c in itertools.product((0, 1), repeat=3):
        corner = image[min(i + a, last[0]), min(j + b, last[1]), min(k + c, last[2])]
        value += weight[a] * weight[b] * weight[c] * corner
        gx += slope[a] * weight[b] * weight[c] * corner
        gy += weight[a] * slope[b] * weight[c] * corner
        gz += weight[a] * weight[b] * slope[c] * corner
    return value, gx, gy, gz


def test_estimate_smoothness_follows_spm_sampling_rule_voxel_by_voxel(
    rng: np.random.Generator,
) -> None:
    # an irregular mask touching the image border, residuals NaN outside it (as SPM writes them)
    shape = (9, 10, 11)
    mask = ndimage.gaussian_filter(rng.standard_normal(shape), 1.2) > -0.05
    mask[-1, 3:7, 2:9] = True  # voxels on the last x plane: their x difference is 0
    n, dof = 6, 5
    res = rng.standard_normal((n, *shape))
    res[:, ~mask] = np.nan
    # reference: SPM's procedure written out voxel by voxel
    lam_rows, ssq_rows = [], []
    for i, j, k in zip(*np.nonzero(mask), strict=True):
        samples = np.array([_trilinear_sample_with_gradient(r, i, j, k) for r in res])
        value, grad = samples[:, 0], samples[:, 1:]
        ssq_rows.append(np.sum(value**2))
        lam_rows.append(grad.T @ grad / n * (n / dof))
    lam = np.array(lam_rows)
    ssq = np.array(ssq_rows)
    use = ~np.isnan(ssq) & (ssq >= math.sqrt(np.finfo(float).eps))
    four_ln2 = 4.0 * math.log(2.0)
    resel_img = np.sqrt(np.maximum(np.linalg.det(lam[use]), 0.0) / four_ln2**3).mean()
    resel_xyz = np.sqrt(np.diagonal(lam[use], axis1=1, axis2=2) / four_ln2).mean(axis=0)
    expected = 1.0 / (resel_img ** (1 / 3) * resel_xyz / np.prod(resel_xyz) ** (1 / 3))
    assert 0 < use.sum() < mask.sum()  # some mask voxels lack a complete forward cube
    np.testing.assert_allclose(rft.estimate_smoothness(res, mask, dof=dof), expected, rtol=1e-12)


def test_estimate_smoothness_rejects_unusable_input() -> None:
    with pytest.raises(StatsError, match="shape"):
        rft.estimate_smoothness(np.zeros((3, 4, 4, 4)), np.ones((4, 4, 5), bool))
    sparse = np.zeros((6, 6, 6), dtype=bool)
    sparse[::2, ::2, ::2] = True
    with pytest.raises(StatsError, match="forward 2x2x2 cube"):
        rft.estimate_smoothness(np.ones((3, 6, 6, 6)), sparse)
