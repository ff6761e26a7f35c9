"""What a participant run writes: each session's derivatives, and its report's contents.

File names come from :mod:`bids_app.outputs.names`, sidecars from
:mod:`bids_app.outputs.sidecars`; this module only decides which value goes where.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
from numpy.typing import NDArray

from bids_app import __version__
from bids_app.bidsio.layout import ParticipantInput, PetScan
from bids_app.config import Config
from bids_app.outputs import sidecars
from bids_app.outputs.io import write_json, write_nifti, write_text, write_tsv
from bids_app.outputs.names import Space, preproc_outputs, session_outputs
from bids_app.pipelines.common import template_image
from bids_app.pipelines.session_model import (
    REFERENCE_ROI,
    SessionFit,
    SessionK2Prime,
    SessionTacs,
)
from bids_app.preproc.motion import MotionEstimate
from bids_app.preproc.registration import Normalisation
from bids_app.preproc.transforms import ras_affine_to_itk
from bids_app.qc import QcVerdict
from bids_app.report.data import ParticipantReport, Provenance, SessionReport
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
            list(motion.confounds), motion.centre_mm, motion.reference_frames, source
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


def participant_report(
    participant: ParticipantInput,
    sessions: list[tuple[str, PetScan, MotionEstimate, SessionTacs, SessionK2Prime, SessionFit]],
    template_img: nib.Nifti1Image,
    space: Space,
    atlas: RoiAtlas,
    normalisation_path: str,
    norm: Normalisation,
    outputs: list[str],
    provenance: Provenance,
    qc: QcVerdict,
) -> ParticipantReport:
    """The contents of ``sub-<p>.html``."""
    template = np.asarray(template_img.dataobj, dtype=np.float64)
    quality = {
        "correlation with template": norm.correlation,
        "brain-mask Dice": norm.brain_overlap,
        "affine determinant": norm.affine_determinant,
    }
    shown = ("cerebellum", "dorsal_striatum", "ventral_striatum")
    reports = [
        SessionReport(
            session=scan.session,
            role=role,  # type: ignore[arg-type]
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
            n_fit_voxels=int(np.count_nonzero(fit.fit_status)),
            n_failed=int(np.count_nonzero(fit.fit_status == 3)),
            n_at_bound=int(np.count_nonzero(fit.fit_status == 2)),
            registration_quality={k: float(v) for k, v in quality.items()},
            warnings=fit.warnings,
            tac_units=scan.units,
        )
        for role, scan, motion, tacs, k2prime, fit in sessions
    ]
    return ParticipantReport(
        participant_id=participant.subject,
        sessions=reports,
        normalisation=normalisation_path,
        template_name=space.name,
        atlas_name=atlas.name,
        outputs=outputs,
        warnings=[w for *_, fit in sessions for w in fit.warnings],
        errors=[],
        provenance=provenance,
        qc=qc,
    )
