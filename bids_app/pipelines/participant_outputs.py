"""What a participant run writes: each session's derivatives, and its report's contents.

File names come from :mod:`bids_app.outputs.names`, sidecars from
:mod:`bids_app.outputs.sidecars`; this module only decides which value goes where.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import ndimage

from bids_app import __version__
from bids_app.bidsio.layout import ParticipantInput, PetScan
from bids_app.config import Config
from bids_app.outputs import sidecars
from bids_app.outputs.io import write_json, write_nifti, write_text, write_tsv
from bids_app.outputs.names import Role, Space, preproc_outputs, session_outputs
from bids_app.pipelines.common import template_image
from bids_app.pipelines.session_model import (
    REFERENCE_ROI,
    SessionFit,
    SessionK2Prime,
    SessionTacs,
)
from bids_app.pipelines.stages import StageTiming
from bids_app.preproc.motion import MotionEstimate
from bids_app.preproc.normalisation import Normalisation, template_brain_mask
from bids_app.preproc.registration import warp_image_to_template
from bids_app.preproc.transforms import ras_affine_to_itk
from bids_app.qc import QcVerdict
from bids_app.report.data import (
    ParticipantReport,
    Provenance,
    RegistrationCheck,
    SessionReport,
)
from bids_app.report.participant_views import EXPLORATORY_ROIS, TARGET_ROIS
from bids_app.roi.atlas import RoiAtlas


def bids_relative(scan: PetScan) -> str:
    """The scan's path from its ``sub-<p>`` folder on (BIDS-root relative)."""
    parts = scan.path.parts
    idx = max(i for i, part in enumerate(parts) if part == f"sub-{scan.subject}")
    return "/".join(parts[idx:])


def fit_description(
    scan: PetScan, k2prime: SessionK2Prime, fit: SessionFit, atlas: RoiAtlas, config: Config
) -> sidecars.FitDescription:
    """The modelling settings of one session, for its sidecars."""
    return sidecars.FitDescription(
        source=bids_relative(scan),
        reference_region=REFERENCE_ROI,
        atlas=atlas.name,
        k2prime_per_min=k2prime.value_per_min,
        k2prime_method=k2prime.method,
        k2prime_session_estimate_per_min=k2prime.session_estimate_per_min,
        n_basis=config.n_basis,
        k2a_range_per_min=fit.k2a_range_per_min,
        weights=config.weights,
    )


def write_session_outputs(
    staging: Path,
    scan: PetScan,
    motion: MotionEstimate,
    tacs: SessionTacs,
    k2prime: SessionK2Prime,
    fit: SessionFit,
    space: Space,
    affine: NDArray[np.float64],
    atlas: RoiAtlas,
    config: Config,
) -> dict[str, Path]:
    """Write one session's derivatives under ``staging``.

    Returns
    -------
    dict of str to Path
        Output kind (``confounds``, ``BPND``, ``tacs``, ..., sidecars as ``<kind>_json``) ->
        path relative to ``staging`` (and to OUTPUT_DIR once published).
    """
    names = session_outputs(scan.subject, scan.session, scan.entities, space, atlas.name)
    source = bids_relative(scan)
    description = fit_description(scan, k2prime, fit, atlas, config)

    write_tsv(staging / names["confounds"], motion.confounds)
    write_json(
        staging / names["confounds_json"],
        sidecars.confounds_sidecar(
            [str(c) for c in motion.confounds.columns],
            motion.centre_mm,
            motion.reference_frames,
            source,
        ),
    )
    for meas, volume in fit.maps.items():
        write_nifti(staging / names[meas], template_image(volume, affine))
        write_json(
            staging / names[f"{meas}_json"],
            sidecars.map_sidecar(
                meas, description, space, __version__, config.seed, config.omp_nthreads
            ),
        )
    write_nifti(staging / names["fitstatus"], template_image(fit.fit_status, affine, np.uint8))
    write_json(staging / names["fitstatus_json"], sidecars.fit_status_sidecar(space, source))

    write_tsv(staging / names["tacs"], tacs.tacs)
    regions = {
        name: (atlas.descriptions.get(name, ""), int(np.count_nonzero(mask)))
        for name, mask in atlas.masks.items()
    }
    write_json(
        staging / names["tacs_json"],
        sidecars.tacs_sidecar(scan.units, REFERENCE_ROI, atlas.name, regions, space, source),
    )
    write_tsv(staging / names["kinpar"], fit.kinpar)
    write_json(staging / names["kinpar_json"], sidecars.kinpar_sidecar(description))
    return names


def itk_transform_list(matrices_ras: NDArray[np.float64]) -> str:
    """An ITK text transform file holding one affine per matrix (a transform list).

    Parameters
    ----------
    matrices_ras : (n, 4, 4) ndarray
        RAS-mm matrices in the ANTs direction (output-grid points to input-image points).

    Returns
    -------
    str
        ``#Insight Transform File V1.0`` text with ``n`` ``AffineTransform_double_3_3``
        entries in LPS mm (what ANTs, ITK-SNAP and nitransforms read).
    """
    lines = ["#Insight Transform File V1.0"]
    for i, matrix in enumerate(np.asarray(matrices_ras, dtype=np.float64)):
        params, centre = ras_affine_to_itk(matrix)
        lines += [
            f"#Transform {i}",
            "Transform: AffineTransform_double_3_3",
            "Parameters: " + " ".join(f"{v:.10g}" for v in params),
            "FixedParameters: " + " ".join(f"{v:.10g}" for v in centre),
        ]
    return "\n".join(lines) + "\n"


def write_preproc_outputs(
    staging: Path,
    scan: PetScan,
    role: str,
    resampled: NDArray[np.float32],
    motion: MotionEstimate,
    session_transform: NDArray[np.float64] | None,
    norm: Normalisation,
    space: Space,
    affine: NDArray[np.float64],
) -> dict[str, Path]:
    """Write the ``--write-preproc`` outputs of one session under ``staging``.

    Parameters
    ----------
    staging : Path
        The participant's staging folder.
    scan : PetScan
        The session's raw PET.
    role : {"baseline", "challenge"}
        Role of the session.
    resampled : (X, Y, Z, n_frames) float32 ndarray
        Every frame on the template grid (the ``resample:<role>`` stage), source units.
    motion : MotionEstimate
        The session's per-frame motion.
    session_transform : (4, 4) ndarray or None
        ``baseline_to_challenge`` for the challenge session; None for the baseline.
    norm : Normalisation
        Template -> baseline reference space.
    space : Space
        Template space.
    affine : (4, 4) ndarray
        Template grid affine.

    Returns
    -------
    dict of str to Path
        Kind -> path relative to ``staging`` (see :func:`~bids_app.outputs.names.preproc_outputs`).
    """
    extensions = [".nii.gz" if p.name.endswith(".nii.gz") else p.suffix for p in norm.transforms]
    names = preproc_outputs(scan.subject, scan.session, scan.entities, space, role, extensions)
    source = bids_relative(scan)
    chain = "normalisation" + (", co-registration to the baseline" if role == "challenge" else "")
    write_nifti(staging / names["preproc"], template_image(resampled, affine))
    write_json(
        staging / names["preproc_json"],
        sidecars.preproc_sidecar(
            scan.metadata,
            space,
            source,
            f"Every frame motion-corrected and resampled onto the {space.name} grid with one "
            f"interpolation (motion, {chain}); source units",
        ),
    )
    write_text(staging / names["hmc"], itk_transform_list(motion.reference_to_frame))
    write_json(
        staging / names["hmc_json"],
        sidecars.transform_sidecar(
            f"Head-motion correction: one rigid transform per frame ({motion.n_frames}, in "
            f"frame order), frame i -> the motion reference ({motion.reference})",
            "orig",
            "petref",
        ),
    )
    if session_transform is not None:
        write_text(staging / names["coreg"], itk_transform_list(session_transform[None]))
        write_json(
            staging / names["coreg_json"],
            sidecars.transform_sidecar(
                "Rigid co-registration of this (challenge) session's motion reference to the "
                "baseline session's",
                "petref",
                "baseline",
            ),
        )
    else:
        kinds = [k for k in names if k.startswith("norm") and not k.endswith("_json")]
        order = [names[k].name for k in kinds]
        for kind, path in zip(kinds, norm.transforms, strict=True):
            shutil.copyfile(path, staging / names[kind])
            write_json(
                staging / names[f"{kind}_json"],
                sidecars.transform_sidecar(
                    f"Normalisation ({'via the T1w' if norm.method == 't1w' else 'PET-only'}) "
                    f"of the baseline motion reference to {space.name}, part "
                    f"{kind.removeprefix('norm')} of {len(kinds)}",
                    "petref",
                    space.name,
                    order,
                ),
            )
    return names


#: PET-BIDS sidecar fields of what was injected: label -> (value field, units field).
INJECTION_FIELDS = {
    "injected radioactivity": ("InjectedRadioactivity", "InjectedRadioactivityUnits"),
    "injected mass": ("InjectedMass", "InjectedMassUnits"),
    "molar activity": ("MolarActivity", "MolarActivityUnits"),
    "specific radioactivity": ("SpecificRadioactivity", "SpecificRadioactivityUnits"),
}


def injection_quantities(metadata: dict[str, object]) -> dict[str, tuple[float, str]]:
    """What was injected, from a PET sidecar: label -> (value, unit); NaN when ``n/a``.

    Molar activity is shown when the sidecar has it, else the specific radioactivity (PET-BIDS
    has both; scanners report one or the other).
    """
    out: dict[str, tuple[float, str]] = {}
    for label, (field, units) in INJECTION_FIELDS.items():
        if field not in metadata:
            continue
        if label == "specific radioactivity" and "molar activity" in out:
            continue
        value = metadata[field]
        number = float(value) if isinstance(value, (int, float)) else float("nan")
        out[label] = (number, str(metadata.get(units, "")))
    return out


def resample_by_matrix(
    moving: nib.spatialimages.SpatialImage,
    shape: tuple[int, ...],
    affine: NDArray[np.float64],
    target_to_moving: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """A 3-D image on another grid, linear interpolation, NaN outside it.

    Parameters
    ----------
    moving : nibabel image
        3-D image.
    shape, affine : tuple, (4, 4) ndarray
        The target grid.
    target_to_moving : (4, 4) ndarray, optional
        RAS-mm transform from target points to moving points (a registration's pull-back);
        identity (the images' headers only, i.e. no registration) by default.

    Returns
    -------
    (X, Y, Z) float64 ndarray
        On the target grid.
    """
    world = np.eye(4) if target_to_moving is None else np.asarray(target_to_moving, float)
    voxel = np.linalg.inv(moving.affine) @ world @ np.asarray(affine, dtype=np.float64)
    data = np.nan_to_num(np.asarray(moving.dataobj, dtype=np.float64))
    return ndimage.affine_transform(
        data, voxel[:3, :3], voxel[:3, 3], output_shape=shape[:3], order=1, cval=np.nan
    )


def registration_checks(
    motion_baseline: MotionEstimate,
    motion_challenge: MotionEstimate,
    coreg: NDArray[np.float64],
    norm: Normalisation,
    template_img: nib.Nifti1Image,
    space: Space,
) -> list[RegistrationCheck]:
    """Before/after views of the normalisation and the challenge -> baseline co-registration.

    "Before" is the moving image placed by its header alone; "after" the same image through
    the registration. The motion references (each session's mean of its reliable late frames)
    are the images shown, so both views show the same image.
    """
    template = np.asarray(template_img.dataobj, dtype=np.float64)
    shape, affine = template.shape, template_img.affine
    base_ref, chal_ref = motion_baseline.reference_img, motion_challenge.reference_img
    warped = warp_image_to_template(base_ref, norm, template_img)
    method = "via the T1w" if norm.method == "t1w" else "PET-only"
    return [
        RegistrationCheck(
            name=f"Normalisation to {space.name} ({method})",
            before=resample_by_matrix(base_ref, shape, affine),
            after=np.asarray(warped.dataobj, dtype=np.float64),
            target=template,
            affine=affine,
            target_label="template edges",
            caption="The baseline session's motion reference on the template grid, placed by "
            "its header only (before) and through the normalisation (after), with the "
            "template's edges.",
        ),
        RegistrationCheck(
            name="Challenge -> baseline co-registration",
            before=resample_by_matrix(chal_ref, base_ref.shape, base_ref.affine),
            after=resample_by_matrix(chal_ref, base_ref.shape, base_ref.affine, coreg),
            target=np.asarray(base_ref.dataobj, dtype=np.float64),
            affine=base_ref.affine,
            target_label="baseline PET edges",
            caption="The challenge session's motion reference on the baseline session's grid, "
            "placed by its header only (before) and through the rigid co-registration (after), "
            "with the edges of the baseline session's motion reference.",
        ),
    ]


def session_registration_metrics(
    mean_mni: NDArray[np.floating],
    template: NDArray[np.float64],
    brain: NDArray[np.bool_],
    baseline_mean: NDArray[np.floating] | None = None,
) -> dict[str, float]:
    """Registration metrics of one session's normalised mean PET.

    Parameters
    ----------
    mean_mni : (X, Y, Z) ndarray
        The session's mean PET on the template grid (NaN outside the field of view).
    template : (X, Y, Z) ndarray
        The template.
    brain : (X, Y, Z) bool ndarray
        The template's brain mask.
    baseline_mean : (X, Y, Z) ndarray, optional
        The baseline session's mean PET (for the challenge session).

    Returns
    -------
    dict of str to float
        Correlation with the template and Dice of the PET signal with the brain mask (as the
        normalisation measures them), the brain's field-of-view coverage (%), and for the
        challenge session its correlation with the baseline mean inside the brain.
    """
    mean = np.asarray(mean_mni, dtype=np.float64)
    valid = brain & np.isfinite(mean)
    metrics = {
        "correlation with the template (brain)": _correlation(mean[valid], template[valid]),
        "Dice of PET signal and template brain": _signal_dice(mean, brain),
        "brain in the field of view (%)": 100.0 * float(valid.sum()) / max(int(brain.sum()), 1),
    }
    if baseline_mean is not None:
        base = np.asarray(baseline_mean, dtype=np.float64)
        both = valid & np.isfinite(base)
        metrics["correlation with the baseline mean (brain)"] = _correlation(
            mean[both], base[both]
        )
    return metrics


def _correlation(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    if a.size < 100 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _signal_dice(mean: NDArray[np.float64], brain: NDArray[np.bool_]) -> float:
    """Dice of the PET signal (smoothed > 25 % of its 99th percentile) with the brain mask."""
    smooth = ndimage.gaussian_filter(np.nan_to_num(mean), 1.5)
    positive = smooth[smooth > 0]
    if positive.size == 0:
        return 0.0
    signal = ndimage.binary_fill_holes(smooth > 0.25 * np.percentile(positive, 99.0))
    return 2.0 * float((signal & brain).sum()) / float(signal.sum() + brain.sum())


def stage_timings_table(timings: Sequence[StageTiming]) -> pd.DataFrame:
    """Per-stage wall time and memory, in run order, for the report's provenance.

    Returns
    -------
    DataFrame
        ``stage``, ``seconds`` (s, 2 decimals), ``from_checkpoint`` (bool), ``peak_rss_mb``
        (MiB, integer), plus a ``total`` row (summed seconds, largest peak, no checkpoint
        flag).
    """
    rows = [
        {
            "stage": t.name,
            "seconds": round(t.seconds, 2),
            "from_checkpoint": t.cached,
            "peak_rss_mb": round(t.peak_rss_mb),
        }
        for t in timings
    ]
    if timings:
        rows.append(
            {
                "stage": "total",
                "seconds": round(sum(t.seconds for t in timings), 2),
                "from_checkpoint": None,
                "peak_rss_mb": round(max(t.peak_rss_mb for t in timings)),
            }
        )
    return pd.DataFrame(rows, columns=["stage", "seconds", "from_checkpoint", "peak_rss_mb"])


def participant_report(
    participant: ParticipantInput,
    sessions: list[tuple[Role, PetScan, MotionEstimate, SessionTacs, SessionK2Prime, SessionFit]],
    template_img: nib.Nifti1Image,
    space: Space,
    atlas: RoiAtlas,
    normalisation_path: str,
    norm: Normalisation,
    outputs: list[str],
    provenance: Provenance,
    qc: QcVerdict,
    coreg: NDArray[np.float64] | None = None,
) -> ParticipantReport:
    """The contents of ``sub-<p>.html``.

    ``coreg`` (``baseline_to_challenge``) adds the before/after views of the normalisation and
    the co-registration; without it the report shows the normalised means only.
    """
    template = np.asarray(template_img.dataobj, dtype=np.float64)
    brain = template_brain_mask(template_img)
    means = {role: tacs.mean_mni for role, _, _, tacs, _, _ in sessions}
    shown = [*TARGET_ROIS, REFERENCE_ROI, *EXPLORATORY_ROIS]
    reports = []
    for role, scan, motion, tacs, k2prime, fit in sessions:
        quality = session_registration_metrics(
            tacs.mean_mni, template, brain, means.get("baseline") if role != "baseline" else None
        )
        if role == "baseline":
            quality["normalisation volume scaling (det)"] = float(norm.affine_determinant)
        reports.append(
            SessionReport(
                session=scan.session,
                role=role,
                pet_file=bids_relative(scan),
                n_frames=scan.timing.n_frames,
                frame_start_s=scan.timing.start_s,
                frame_end_s=scan.timing.end_s,
                confounds=motion.confounds,
                template=template,
                affine=template_img.affine,
                mean_pet_mni=tacs.mean_mni.astype(np.float64),
                roi_masks={k: atlas.masks[k] for k in shown if k in atlas.masks},
                tacs=tacs.tacs,
                fitted=fit.fitted,
                kinpar=fit.kinpar,
                k2prime=k2prime.value_per_min,
                k2prime_method=k2prime.method,
                bp_map=fit.maps["BPND"].astype(np.float64),
                r1_map=fit.maps["R1"].astype(np.float64),
                n_fit_voxels=int(
                    np.count_nonzero(np.isin(fit.fit_status, sidecars.FIT_STATUS_FITTED))
                ),
                n_failed=int(np.count_nonzero(fit.fit_status == sidecars.FIT_STATUS_FAILED)),
                n_at_bound=int(np.count_nonzero(fit.fit_status == 2)),
                registration_quality=quality,
                warnings=[*scan.notes, *fit.warnings],
                tac_units=scan.units,
                injection=injection_quantities(scan.metadata),
            )
        )
    motions = {role: motion for role, _, motion, *_ in sessions}
    checks = []
    if coreg is not None and {"baseline", "challenge"} <= set(motions):
        checks = registration_checks(
            motions["baseline"], motions["challenge"], coreg, norm, template_img, space
        )
    return ParticipantReport(
        participant_id=participant.subject,
        sessions=reports,
        normalisation=normalisation_path,
        template_name=space.name,
        atlas_name=atlas.name,
        outputs=outputs,
        warnings=[*participant.notes, *(w for *_, fit in sessions for w in fit.warnings)],
        errors=[],
        provenance=provenance,
        qc=qc,
        registrations=checks,
    )
