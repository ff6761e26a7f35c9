"""Individual anatomy: a smooth, invertible deformation of the template head.

A participant's head is the template deformed by an anisotropic scaling about the head centre
and a smooth displacement field. The random field is drawn in the direction the renderer needs,
from the participant's head space (mm) to the template (MNI mm):

``psi(y) = c + S^-1 (y - c) + v(y)``

(``c`` the head centre, ``S = diag(s_x, s_y, s_z)`` the head's size relative to the template,
``v`` the displacement field). Every image of the participant (PET tissue fractions, T1w) is
rendered by sampling the template at ``psi(y)``. The opposite map, template -> head,
``phi = psi^-1``, is what the truth needs (where an MNI voxel sits in the head); it is computed
numerically at exactly the points asked for (:meth:`IndividualWarp.to_head`: fixed-point
iterations ``y <- c + S (x - c - v(y))``, then Newton iterations with step halving for the
points that do not contract, to 1e-4 mm), never interpolated.

``v`` is white noise on a control grid (:data:`CONTROL_SPACING_MM`) smoothed by a Gaussian of
standard deviation ``smoothness_mm`` (periodic boundary, so the field statistics are the same
everywhere), shifted to mean 0 over the brain's control points and scaled so that the RMS
length of the displacement vector there is ``sd_mm`` (each component ``sd_mm / sqrt(3)``).
Between control points it is the cubic B-spline interpolant of those samples
(``scipy.ndimage.map_coordinates(order=3)``, ``mode="nearest"``), so the control grid defines
``v`` exactly; it is what the truth records. The Jacobian determinant ``det(S^-1 + grad v)`` is
checked on the control grid; a field with a determinant outside
[:data:`MIN_JACOBIAN`, 1 / :data:`MIN_JACOBIAN`] anywhere (a fold, or an implausible 5-fold
local volume change) is redrawn from the same random stream and the number of draws recorded.
With the default ranges the log Jacobian determinant over the brain has an SD of 0.1-0.25.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import ndimage

from petsim.atlas import Grid
from petsim.errors import InputError, ModelError

CONTROL_SPACING_MM = 4.0
"""Spacing of the displacement field's control grid, mm."""

CONTROL_BOUNDS_MM: tuple[tuple[float, float], ...] = (
    (-116.0, 116.0),
    (-156.0, 144.0),
    (-192.0, 132.0),
)
"""Extent of the control grid (x, y, z), mm: the whole head with the neck and a margin."""

BRAIN_BOX_MM: tuple[tuple[float, float], ...] = ((-72.0, 72.0), (-107.0, 73.0), (-72.0, 82.0))
"""Brain extent in the template (x, y, z), mm: where the field is normalised."""

MIN_JACOBIAN = 0.2
"""Smallest acceptable Jacobian determinant (its inverse is the largest); else redrawn."""

MAX_DRAWS = 50
"""Fields drawn at most before giving up."""

INVERSE_TOLERANCE_MM = 1e-4
"""Accuracy of the numerical inverse, mm."""

_FIXED_POINT_ITERATIONS = 30
_NEWTON_ITERATIONS = 50
_JACOBIAN_STEP_MM = 0.05


@dataclass(frozen=True)
class WarpSettings:
    """Ranges the individual deformation parameters are drawn from (uniformly).

    Parameters
    ----------
    sd_range_mm : (2,) tuple of float
        RMS length of the displacement vectors over the brain, mm.
    smoothness_range_mm : (2,) tuple of float
        Standard deviation of the Gaussian smoothing kernel of the field, mm.
    scale_range : (2,) tuple of float
        Per-axis head size relative to the template (scaling about the head centre).
    """

    sd_range_mm: tuple[float, float] = (2.0, 4.0)
    smoothness_range_mm: tuple[float, float] = (10.0, 20.0)
    scale_range: tuple[float, float] = (0.95, 1.05)


def control_grid() -> Grid:
    """The control grid of the displacement fields (mm, :data:`CONTROL_SPACING_MM`)."""
    return Grid.from_bounds(CONTROL_BOUNDS_MM, CONTROL_SPACING_MM)


def _spline(samples: NDArray[np.float64]) -> NDArray[np.float64]:
    """Cubic B-spline coefficients of each component, shape (3, nx, ny, nz)."""
    return np.stack([ndimage.spline_filter(s, order=3, mode="nearest") for s in samples])


@dataclass(frozen=True)
class IndividualWarp:
    """One participant's head <-> template maps (see the module docstring).

    Attributes
    ----------
    centre_mm : (3,) ndarray
        Centre ``c`` of the scaling, mm.
    scale : (3,) ndarray
        ``(s_x, s_y, s_z)``: head size relative to the template.
    grid : Grid
        Control grid of ``v`` (voxel -> head-space mm).
    displacement_mm : (3, nx, ny, nz) ndarray or None
        ``v`` at the control points, mm (None: no displacement).
    sd_mm, smoothness_mm : float
        Drawn field parameters (0 without displacement).
    n_draws : int
        Fields drawn until one passed the Jacobian check (0 without displacement).
    jacobian_range : (2,) tuple of float
        Minimum and maximum of ``det(S^-1 + grad v)`` over the control grid.
    """

    centre_mm: NDArray[np.float64]
    scale: NDArray[np.float64]
    grid: Grid
    displacement_mm: NDArray[np.float64] | None
    sd_mm: float
    smoothness_mm: float
    n_draws: int
    jacobian_range: tuple[float, float]
    _coefficients: NDArray[np.float64] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        samples = self.displacement_mm
        object.__setattr__(self, "_coefficients", None if samples is None else _spline(samples))

    @classmethod
    def identity(cls, centre_mm: NDArray[np.float64]) -> IndividualWarp:
        """No deformation (the template anatomy)."""
        return cls(
            centre_mm=np.asarray(centre_mm, dtype=np.float64),
            scale=np.ones(3),
            grid=control_grid(),
            displacement_mm=None,
            sd_mm=0.0,
            smoothness_mm=0.0,
            n_draws=0,
            jacobian_range=(1.0, 1.0),
        )

    @property
    def is_identity(self) -> bool:
        """True for the template anatomy."""
        return self.displacement_mm is None and bool(np.all(self.scale == 1.0))

    def displacement(self, head_mm: NDArray[np.float64]) -> NDArray[np.float64]:
        """``v`` at head-space points (n, 3), mm (zeros without a field)."""
        pts = np.asarray(head_mm, dtype=np.float64).reshape(-1, 3)
        if self._coefficients is None:
            return np.zeros_like(pts)
        inv = np.linalg.inv(self.grid.affine)
        ijk = inv[:3, :3] @ pts.T + inv[:3, 3:4]
        return np.stack(
            [
                ndimage.map_coordinates(c, ijk, order=3, prefilter=False, mode="nearest")
                for c in self._coefficients
            ],
            axis=1,
        )

    def to_template(self, head_mm: NDArray[np.float64]) -> NDArray[np.float64]:
        """``psi``: head-space mm -> template (MNI) mm, points (n, 3)."""
        pts = np.asarray(head_mm, dtype=np.float64).reshape(-1, 3)
        return self.centre_mm + (pts - self.centre_mm) / self.scale + self.displacement(pts)

    def to_head(self, template_mm: NDArray[np.float64]) -> NDArray[np.float64]:
        """``phi = psi^-1``: template (MNI) mm -> head-space mm, points (n, 3).

        Raises
        ------
        ModelError
            The iterations did not reach :data:`INVERSE_TOLERANCE_MM` (a folded field).
        """
        x = np.asarray(template_mm, dtype=np.float64).reshape(-1, 3)
        c, s = self.centre_mm, self.scale
        y = c + (x - c) * s
        if self._coefficients is None:
            return y
        active = np.arange(x.shape[0])
        for _ in range(_FIXED_POINT_ITERATIONS):
            update = c + (x[active] - c - self.displacement(y[active])) * s - y[active]
            y[active] += update
            active = active[np.sqrt(np.sum(update**2, axis=1)) > 0.1 * INVERSE_TOLERANCE_MM]
            if active.size == 0:
                return y
        return self._newton(x, y, active)

    def _newton(
        self, x: NDArray[np.float64], y: NDArray[np.float64], active: NDArray[np.intp]
    ) -> NDArray[np.float64]:
        """Newton iterations on ``psi(y) = x`` for the points in ``active`` (in place)."""
        res = self.to_template(y[active]) - x[active]
        for _ in range(_NEWTON_ITERATIONS):
            norm = np.sqrt(np.sum(res**2, axis=1))
            keep = norm > INVERSE_TOLERANCE_MM
            active, res, norm = active[keep], res[keep], norm[keep]
            if active.size == 0:
                return y
            jac = np.repeat(np.diag(1.0 / self.scale)[None], active.size, axis=0)
            for j in range(3):
                step = np.zeros(3)
                step[j] = _JACOBIAN_STEP_MM
                diff = self.displacement(y[active] + step) - self.displacement(y[active] - step)
                jac[:, :, j] += diff / (2.0 * _JACOBIAN_STEP_MM)
            newton = np.linalg.solve(jac, res[..., None])[..., 0]
            length = np.ones(active.size)
            for _halving in range(30):
                trial = y[active] - length[:, None] * newton
                trial_res = self.to_template(trial) - x[active]
                worse = np.sqrt(np.sum(trial_res**2, axis=1)) > norm
                if not worse.any():
                    break
                length[worse] *= 0.5
            y[active] = trial
            res = trial_res
        msg = (
            f"inverting the individual warp did not converge at {active.size} points (largest "
            f"residual {np.abs(res).max():.3g} mm); the field folds there"
        )
        raise ModelError(msg)


def smooth_field(
    rng: np.random.Generator, grid: Grid, sd_mm: float, smoothness_mm: float
) -> NDArray[np.float64]:
    """Draw ``v`` at the control points (see the module docstring).

    Returns
    -------
    (3, nx, ny, nz) ndarray
        Displacement samples, mm; mean 0 and RMS vector length ``sd_mm`` over the brain.
    """
    sigma_vox = smoothness_mm / grid.voxel_mm
    centres = grid.centres_mm().reshape(*grid.shape, 3)
    in_brain = np.ones(grid.shape, dtype=bool)
    for axis, (lo, hi) in enumerate(BRAIN_BOX_MM):
        in_brain &= (centres[..., axis] >= lo) & (centres[..., axis] <= hi)
    samples = np.empty((3, *grid.shape))
    for i in range(3):
        smooth = ndimage.gaussian_filter(rng.standard_normal(grid.shape), sigma_vox, mode="wrap")
        smooth -= smooth[in_brain].mean()
        samples[i] = smooth * (sd_mm / np.sqrt(3.0) / smooth[in_brain].std())
    return samples


def jacobian_determinant(
    field_mm: NDArray[np.float64], scale: NDArray[np.float64], spacing_mm: float
) -> NDArray[np.float64]:
    """``det(S^-1 + grad v)`` at the control points (central differences), (nx, ny, nz)."""
    jac = np.empty((*field_mm.shape[1:], 3, 3))
    for i in range(3):
        grads = np.gradient(field_mm[i], spacing_mm)
        for j in range(3):
            jac[..., i, j] = grads[j] + (1.0 / scale[i] if i == j else 0.0)
    return np.linalg.det(jac)


def sample_warp(
    rng: np.random.Generator, centre_mm: NDArray[np.float64], settings: WarpSettings
) -> IndividualWarp:
    """Draw one participant's deformation and check its Jacobian.

    Parameters
    ----------
    rng : numpy.random.Generator
        The participant's anatomy stream.
    centre_mm : (3,) ndarray
        Head centre (centre of the scaling), mm.
    settings : WarpSettings
        Parameter ranges.

    Returns
    -------
    IndividualWarp
        The participant's maps.

    Raises
    ------
    ModelError
        No field passed the Jacobian check in :data:`MAX_DRAWS` draws.
    """
    sd_mm = float(rng.uniform(*settings.sd_range_mm))
    smoothness_mm = float(rng.uniform(*settings.smoothness_range_mm))
    scale = rng.uniform(*settings.scale_range, size=3)
    grid = control_grid()
    n_draws = 0
    while True:
        n_draws += 1
        samples = smooth_field(rng, grid, sd_mm, smoothness_mm)
        det = jacobian_determinant(samples, scale, grid.voxel_mm)
        if MIN_JACOBIAN <= det.min() and det.max() <= 1.0 / MIN_JACOBIAN:
            break
        if n_draws == MAX_DRAWS:
            msg = (
                f"no individual warp within the Jacobian limits in {MAX_DRAWS} draws (SD "
                f"{sd_mm:.2f} mm, smoothness {smoothness_mm:.1f} mm). Use a smaller sd_range_mm "
                "or a larger smoothness_range_mm in WarpSettings."
            )
            raise ModelError(msg)
    return IndividualWarp(
        centre_mm=np.asarray(centre_mm, dtype=np.float64),
        scale=scale,
        grid=grid,
        displacement_mm=samples,
        sd_mm=sd_mm,
        smoothness_mm=smoothness_mm,
        n_draws=n_draws,
        jacobian_range=(float(det.min()), float(det.max())),
    )


def load_warp(truth_dir: str | Path, participant_id: str) -> IndividualWarp:
    """Read a participant's head <-> template maps back from a study's truth folder.

    Parameters
    ----------
    truth_dir : path-like
        ``<study>/truth`` (``truth.json``, ``individual_anatomy.tsv``, ``warps/``).
    participant_id : str
        ``sub-XX``.

    Returns
    -------
    IndividualWarp
        The maps used to render the participant (identity for the template anatomy); use
        :meth:`IndividualWarp.to_head` to place MNI points in the participant's head.

    Raises
    ------
    InputError
        The participant or a file is missing.
    """
    folder = Path(truth_dir)
    table_path = folder / "individual_anatomy.tsv"
    try:
        centre = np.asarray(json.loads((folder / "truth.json").read_text())["head_centre_mm"])
        table = pd.read_csv(table_path, sep="\t", na_values="n/a").set_index("participant_id")
    except FileNotFoundError as exc:
        msg = f"{exc.filename} not found; pass the truth folder of a petsim study"
        raise InputError(msg) from None
    if participant_id not in table.index:
        msg = f"{participant_id} is not in {table_path}; participants: {list(table.index)}"
        raise InputError(msg)
    row = table.loc[participant_id]
    if pd.isna(row["warp_file"]):
        return IndividualWarp.identity(centre)
    img = nib.load(folder / str(row["warp_file"]))
    samples = np.moveaxis(np.asarray(img.dataobj, dtype=np.float64), -1, 0)
    affine = np.asarray(img.affine, dtype=np.float64)
    return IndividualWarp(
        centre_mm=centre,
        scale=row[["scale_x", "scale_y", "scale_z"]].to_numpy(dtype=np.float64),
        grid=Grid(tuple(int(n) for n in samples.shape[1:]), affine),  # type: ignore[arg-type]
        displacement_mm=samples,
        sd_mm=float(row["displacement_sd_mm"]),
        smoothness_mm=float(row["smoothness_mm"]),
        n_draws=int(row["field_draws"]),
        jacobian_range=(float(row["jacobian_min"]), float(row["jacobian_max"])),
    )
