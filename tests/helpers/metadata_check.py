"""Check the PET sidecars of a dataset shipped without image data (the bids-examples).

A test helper built from the app's own checks: ``dataset_description.json``, each ``*_pet.json``
with the sidecars it inherits (valid JSON, REQUIRED fields, types, units, frame schedule) and,
where the image exists, its header's frame count (and optionally its data). Missing images are
not reported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bids_app.bidsio import messages
from bids_app.bidsio.imagedata import check_image_data
from bids_app.bidsio.inheritance import resolve_metadata
from bids_app.bidsio.layout import build_layout, check_dataset_description
from bids_app.bidsio.metadata import check_frame_count, check_pet_sidecar, read_image_header


def validate_metadata_only(bids_dir: Path, *, check_data: bool = False) -> list[str]:
    """One line per problem of every PET sidecar of ``bids_dir``; empty when all pass."""
    root = Path(bids_dir).resolve()
    problems = check_dataset_description(root)
    layout = build_layout(root)
    for subject in sorted(layout.get_subjects()):
        sessions = sorted(
            layout.get_sessions(subject=subject, datatype="pet", suffix="pet", return_type="id")
        )
        for session in sessions or [None]:
            problems += _check_session(layout, subject, session, check_data)
    return problems


def _check_session(layout: Any, subject: str, session: str | None, check_data: bool) -> list[str]:
    prefix = messages.where(subject, session)
    query: dict[str, Any] = {"subject": subject, "datatype": "pet", "suffix": "pet"}
    if session is not None:
        query["session"] = session
    problems: list[str] = []
    for name in sorted(layout.get(extension=".json", return_type="filename", **query)):
        sidecar = Path(name)
        image = sidecar.with_name(sidecar.name.removesuffix(".json") + ".nii.gz")
        if not image.exists() and image.with_suffix("").exists():
            image = image.with_suffix("")
        resolved, found = resolve_metadata(Path(layout.root), image, prefix)
        problems += found
        if resolved is None:
            continue
        problems += check_pet_sidecar(resolved, prefix)
        if not image.exists():
            continue
        header, found = read_image_header(image, prefix)
        problems += found
        if header is not None:
            problems += check_frame_count(resolved, prefix, image, header.n_frames)
        if header is not None and not found and check_data:
            problems += check_image_data(image, prefix)[1]
    return problems
