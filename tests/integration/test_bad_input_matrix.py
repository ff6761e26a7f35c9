"""Bad-input matrix, end to end through ``main([...])``.

Each case corrupts a private copy of the small synthetic study (or the command line, or the
participant-level outputs the group level reads) and checks, through the real command:

- the exit code (1 data problem, 2 usage error);
- one clear message: a distinctive part of it is on stderr;
- nothing half-written: a failure found by validation leaves nothing but ``logs/`` under
  OUTPUT_DIR; a failure during processing leaves only complete files (every NIfTI loads, every
  TSV/JSON parses, no temporary names);
- the input BIDS tree byte-identical (hashed before and after).

The library-level checks behind these messages are unit-tested in
``tests/unit/bidsio/test_bidsio_bad_inputs.py``; this matrix proves the command wires them up.
"""

from __future__ import annotations

import errno
import gzip
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from helpers.globbing import glob_some
from helpers.tree_hash import hash_tree, incomplete_files, non_log_files, tree_diff

from bids_app.cli.run import main
from bids_app.outputs.names import DATASET_FILES
from bids_app.roi.template import load_template

pytestmark = pytest.mark.integration

Stage = Literal["validation", "processing", "usage"]


# ----------------------------------------------------------------------------- case plumbing
@dataclass
class Ctx:
    """What a case may change: the BIDS copy, the output folder and the command line."""

    bids: Path
    tmp: Path
    out: Path
    level: str = "participant"
    args: list[str] = field(default_factory=lambda: ["--participant-label", "01"])
    validator: bool = False


@dataclass(frozen=True)
class Case:
    """One bad input: how to make it, the message fragment (regex) and the exit code."""

    id: str
    setup: Callable[[Ctx], None]
    message: str
    code: int = 1
    stage: Stage = "validation"


def pet_path(ctx: Ctx, sub: str = "01", ses: str = "sal", ext: str = ".nii.gz") -> Path:
    """Path of a PET image (``ext=".nii.gz"``) or sidecar (``ext=".json"``) of the copy."""
    return (
        ctx.bids
        / f"sub-{sub}"
        / f"ses-{ses}"
        / "pet"
        / f"sub-{sub}_ses-{ses}_trc-raclopride_pet{ext}"
    )


def edit_sidecar(path: Path, edit: Callable[[dict], None]) -> None:
    meta = json.loads(path.read_text(encoding="utf-8"))
    edit(meta)
    path.write_text(json.dumps(meta, indent=2), encoding="utf-8")


def edit_image(path: Path, edit: Callable[[np.ndarray], np.ndarray]) -> None:
    """Replace a PET image's data by ``edit(data)`` (float32, same affine)."""
    img = nib.load(path)
    data = edit(np.asarray(img.dataobj, dtype=np.float32))
    new = nib.Nifti1Image(data.astype(np.float32), img.affine)
    new.header.set_xyzt_units("mm", "sec")
    nib.save(new, path)


def both_schedule(ctx: Ctx, ses: str, start: list[float], dur: list[float]) -> None:
    """A new frame schedule; the per-frame DecayCorrectionFactor (RECOMMENDED) is dropped."""

    def set_schedule(meta: dict) -> None:
        meta["FrameTimesStart"] = start
        meta["FrameDuration"] = dur
        meta.pop("DecayCorrectionFactor", None)

    edit_sidecar(pet_path(ctx, ses=ses, ext=".json"), set_schedule)


# ----------------------------------------------------------------------------- participant level
def truncated_gzip(ctx: Ctx) -> None:
    path = pet_path(ctx, ses="nal")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


def garbage_inside_gzip(ctx: Ctx) -> None:
    path = pet_path(ctx)
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(3)
    middle = len(data) // 2
    data[middle : middle + 4096] = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


def not_gzip_at_all(ctx: Ctx) -> None:
    pet_path(ctx, ses="nal").write_bytes(b"this is not a NIfTI file\n" * 100)


def image_3d(ctx: Ctx) -> None:
    edit_image(pet_path(ctx), lambda d: d[..., -1])


def nan_frame(ctx: Ctx) -> None:
    def put_nan(d: np.ndarray) -> np.ndarray:
        d[..., 4] = np.nan
        return d

    edit_image(pet_path(ctx, ses="nal"), put_nan)


def inf_voxels(ctx: Ctx) -> None:
    def put_inf(d: np.ndarray) -> np.ndarray:
        d[10:12, 10:12, 10:12, -1] = np.inf
        return d

    edit_image(pet_path(ctx), put_inf)


def all_zero_session(ctx: Ctx) -> None:
    edit_image(pet_path(ctx, ses="nal"), np.zeros_like)


def negative_image(ctx: Ctx) -> None:
    edit_image(pet_path(ctx, ses="nal"), lambda d: -np.abs(d))


def frames_in_wrong_order(ctx: Ctx) -> None:
    def swap(meta: dict) -> None:
        start, dur = meta["FrameTimesStart"], meta["FrameDuration"]
        start[5], start[6] = start[6], start[5]
        dur[5], dur[6] = dur[6], dur[5]

    edit_sidecar(pet_path(ctx, ext=".json"), swap)


def times_in_minutes(ctx: Ctx) -> None:
    def to_minutes(meta: dict) -> None:
        meta["FrameTimesStart"] = [t / 60 for t in meta["FrameTimesStart"]]
        meta["FrameDuration"] = [t / 60 for t in meta["FrameDuration"]]

    edit_sidecar(pet_path(ctx, ses="nal", ext=".json"), to_minutes)


def durations_as_end_times(ctx: Ctx) -> None:
    def to_ends(meta: dict) -> None:
        meta["FrameDuration"] = [
            s + d for s, d in zip(meta["FrameTimesStart"], meta["FrameDuration"], strict=True)
        ]

    edit_sidecar(pet_path(ctx, ext=".json"), to_ends)


def one_frame_missing_in_sidecar(ctx: Ctx) -> None:
    def drop_last(meta: dict) -> None:
        meta["FrameTimesStart"] = meta["FrameTimesStart"][:-1]
        meta["FrameDuration"] = meta["FrameDuration"][:-1]

    edit_sidecar(pet_path(ctx, ses="nal", ext=".json"), drop_last)


def injection_after_scan_start(ctx: Ctx) -> None:
    def late(meta: dict) -> None:
        meta["InjectionStart"] = 120

    edit_sidecar(pet_path(ctx, ext=".json"), late)


def sidecar_not_json(ctx: Ctx) -> None:
    pet_path(ctx, ext=".json").write_text("FrameTimesStart: [0, 30, 60]\nUnits: kBq/mL\n")


def sidecar_is_a_list(ctx: Ctx) -> None:
    pet_path(ctx, ses="nal", ext=".json").write_text("[1, 2, 3]\n")


def required_fields_missing(ctx: Ctx) -> None:
    def drop(meta: dict) -> None:
        del meta["TracerName"], meta["FrameDuration"]

    edit_sidecar(pet_path(ctx, ses="nal", ext=".json"), drop)


def tracer_differs(ctx: Ctx) -> None:
    def other(meta: dict) -> None:
        meta["TracerName"] = "fallypride"

    edit_sidecar(pet_path(ctx, ses="nal", ext=".json"), other)


def session_missing(ctx: Ctx) -> None:
    shutil.rmtree(ctx.bids / "sub-01" / "ses-nal")


def sidecar_without_image(ctx: Ctx) -> None:
    pet_path(ctx, ses="nal").rename(ctx.bids / "sub-01" / "image_moved_away.nii.gz")


def unknown_participant(ctx: Ctx) -> None:
    ctx.args = ["--participant-label", "99"]


def one_unknown_among_known(ctx: Ctx) -> None:
    ctx.args = ["--participant-label", "sub-01", "sub-77"]


def no_participants(ctx: Ctx) -> None:
    for folder in glob_some(ctx.bids, "sub-*"):
        shutil.rmtree(folder)
    ctx.args = []


def no_dataset_description(ctx: Ctx) -> None:
    (ctx.bids / "dataset_description.json").unlink()
    ctx.validator = True


def dataset_description_not_json(ctx: Ctx) -> None:
    (ctx.bids / "dataset_description.json").write_text('{"Name": "x", BIDSVersion: 1.10}')


def output_under_a_file(ctx: Ctx) -> None:
    blocker = ctx.tmp / "file.txt"
    blocker.write_text("a regular file\n")
    ctx.out = blocker / "out"


def output_inside_bids(ctx: Ctx) -> None:
    ctx.out = ctx.bids / "derivatives" / "bids_app"


def output_is_bids(ctx: Ctx) -> None:
    ctx.out = ctx.bids


def baseline_session_absent(ctx: Ctx) -> None:
    ctx.args += ["--baseline-session", "pre", "--challenge-session", "nal"]


def session_flags_equal(ctx: Ctx) -> None:
    ctx.args += ["--baseline-session", "ses-sal", "--challenge-session", "sal"]


def one_session_flag(ctx: Ctx) -> None:
    ctx.args += ["--challenge-session", "nal"]


def unnamed_sessions(ctx: Ctx) -> None:
    """Sessions renamed ses-a/ses-b and no sessions.tsv: the app cannot tell which is which."""
    for sub_dir in glob_some(ctx.bids, "sub-*"):
        for tsv in sub_dir.glob("*_sessions.*"):
            tsv.unlink()
        for old, new in (("sal", "a"), ("nal", "b")):
            ses_dir = sub_dir / f"ses-{old}"
            for path in ses_dir.rglob("*"):
                if path.is_file():
                    path.rename(path.with_name(path.name.replace(f"_ses-{old}_", f"_ses-{new}_")))
            ses_dir.rename(sub_dir / f"ses-{new}")


def corrupt_t1w(ctx: Ctx) -> None:
    anat = ctx.bids / "sub-01" / "anat"
    anat.mkdir()
    (anat / "sub-01_T1w.nii.gz").write_bytes(gzip.compress(b"\x00" * 200))
    (anat / "sub-01_T1w.json").write_text("{}\n")


def singular_affine(ctx: Ctx) -> None:
    """An sform whose z column is zero (nibabel would silently fix a zero pixdim instead)."""
    path = pet_path(ctx, ses="nal")
    img = nib.load(path)
    header = img.header.copy()
    affine = img.affine.copy()
    affine[:, 2] = 0.0
    header.set_sform(affine, code=2)
    header.set_qform(None, code=0)
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), None, header), path)


def custom_atlas_without_cerebellum(ctx: Ctx) -> None:
    template = load_template(2)
    labels = np.zeros(template.shape, dtype=np.int16)
    labels[40:60, 60:80, 40:55] = 1
    atlas = ctx.tmp / "atlas"
    atlas.mkdir()
    nib.save(nib.Nifti1Image(labels, template.affine), atlas / "labels.nii.gz")
    (atlas / "labels.tsv").write_text("index\tname\n1\tstriatum\n")
    ctx.args += [
        "--atlas-labels",
        str(atlas / "labels.nii.gz"),
        "--atlas-tsv",
        str(atlas / "labels.tsv"),
    ]


def times_in_milliseconds(ctx: Ctx) -> None:
    def to_ms(meta: dict) -> None:
        meta["FrameTimesStart"] = [t * 1000 for t in meta["FrameTimesStart"]]
        meta["FrameDuration"] = [t * 1000 for t in meta["FrameDuration"]]

    edit_sidecar(pet_path(ctx, ses="nal", ext=".json"), to_ms)


def decay_fields_contradict(ctx: Ctx) -> None:
    def ones(meta: dict) -> None:
        meta["DecayCorrectionFactor"] = [1.0] * len(meta["FrameDuration"])

    edit_sidecar(pet_path(ctx, ext=".json"), ones)


def uncorrected_unknown_radionuclide(ctx: Ctx) -> None:
    def unknown(meta: dict) -> None:
        meta["ImageDecayCorrected"] = False
        meta["TracerRadionuclide"] = "X-99"
        del meta["DecayCorrectionFactor"]

    edit_sidecar(pet_path(ctx, ses="nal", ext=".json"), unknown)


def zero_frame(ctx: Ctx) -> None:
    def zero(d: np.ndarray) -> np.ndarray:
        d[..., 7] = 0.0
        return d

    edit_image(pet_path(ctx, ses="nal"), zero)


def sign_flipped_frame(ctx: Ctx) -> None:
    def flip(d: np.ndarray) -> np.ndarray:
        d[..., 9] *= -1.0
        return d

    edit_image(pet_path(ctx), flip)


def scaled_frame(ctx: Ctx) -> None:
    def scale(d: np.ndarray) -> np.ndarray:
        d[..., 8] *= 10.0
        return d

    edit_image(pet_path(ctx), scale)


def nan_outside_head_and_frame(ctx: Ctx) -> None:
    """NaN outside the head in every frame (accepted) plus one all-NaN frame (not)."""

    def nan(d: np.ndarray) -> np.ndarray:
        d[:3] = np.nan
        d[..., 10] = np.nan
        return d

    edit_image(pet_path(ctx, ses="nal"), nan)


def challenge_copy_of_baseline(ctx: Ctx) -> None:
    shutil.copyfile(pet_path(ctx), pet_path(ctx, ses="nal"))


def participants_share_a_scan(ctx: Ctx) -> None:
    shutil.copyfile(pet_path(ctx, sub="02"), pet_path(ctx, ses="nal"))
    ctx.args = ["--participant-label", "01", "02"]


def sessions_tsv_contradicts_labels(ctx: Ctx) -> None:
    path = ctx.bids / "sub-01" / "sub-01_sessions.tsv"
    text = path.read_text(encoding="utf-8")
    swapped = text.replace("\tbaseline\t", "\tPLACEHOLDER\t").replace(
        "\tchallenge\t", "\tbaseline\t"
    )
    path.write_text(swapped.replace("\tPLACEHOLDER\t", "\tchallenge\t"), encoding="utf-8")


def two_runs_unselected(ctx: Ctx) -> None:
    folder = pet_path(ctx).parent
    for ext in (".nii.gz", ".json"):
        src = pet_path(ctx, ext=ext)
        shutil.copyfile(src, folder / src.name.replace("_pet", "_run-2_pet"))
        src.rename(folder / src.name.replace("_pet", "_run-1_pet"))


def inherited_field_missing(ctx: Ctx) -> None:
    """Shared fields moved to a root pet.json (valid BIDS), one of them then deleted."""
    shared: dict = {}
    for sidecar in glob_some(ctx.bids, "sub-*/ses-*/pet/*_pet.json"):
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        keep = ("FrameTimesStart", "FrameDuration", "DecayCorrectionFactor", "TimeZero")
        shared = {k: v for k, v in meta.items() if k not in keep}
        sidecar.write_text(json.dumps({k: meta[k] for k in keep}), encoding="utf-8")
    del shared["AttenuationCorrection"]
    (ctx.bids / "pet.json").write_text(json.dumps(shared), encoding="utf-8")


def bad_filter_file(ctx: Ctx) -> None:
    path = ctx.tmp / "filters.json"
    path.write_text(json.dumps({"pet": {"subject": "01"}}))
    ctx.args += ["--bids-filter-file", str(path)]


# ----------------------------------------------------------------------------- usage errors
def atlas_labels_alone(ctx: Ctx) -> None:
    labels = ctx.tmp / "labels.nii.gz"
    labels.write_bytes(b"")
    ctx.args += ["--atlas-labels", str(labels)]


def bids_dir_absent(ctx: Ctx) -> None:
    ctx.bids = ctx.tmp / "no_such_dataset"


def reversed_k2a_range(ctx: Ctx) -> None:
    ctx.args += ["--k2a-range", "0.6", "0.006"]


# ----------------------------------------------------------------------------- group level
def group_outputs(
    ctx: Ctx, source: Path, keep: tuple[str, ...] = ("01", "02", "03", "04")
) -> None:
    shutil.copytree(source, ctx.out)
    for manifest in glob_some(ctx.out / "logs", "sub-*_outputs.json"):
        if manifest.name.split("_")[0].removeprefix("sub-") not in keep:
            manifest.unlink()
    ctx.level = "group"
    ctx.args = ["--n-permutations", "0"]


def edit_phenotype(ctx: Ctx, name: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    path = ctx.bids / "phenotype" / f"{name}.tsv"
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    edit(table).to_csv(path, sep="\t", index=False, lineterminator="\n")


@dataclass(frozen=True)
class GroupCase:
    """A group-level case: which fake participants exist, and what else goes wrong."""

    id: str
    setup: Callable[[Ctx], None]
    message: str
    keep: tuple[str, ...] = ("01", "02", "03", "04")
    code: int = 1


def group_no_outputs(ctx: Ctx) -> None:
    shutil.rmtree(ctx.out)


def group_truncated_map(ctx: Ctx) -> None:
    manifest = json.loads((ctx.out / "logs" / "sub-02_outputs.json").read_text())
    rel = next(r for r in manifest["files"] if r.endswith(".nii.gz"))
    path = ctx.out / rel
    path.write_bytes(path.read_bytes()[:100])


def phenotype_unknown_participant(ctx: Ctx) -> None:
    def add_row(table: pd.DataFrame) -> pd.DataFrame:
        row = table.iloc[[0]].copy()
        row["participant_id"] = "sub-99"
        return pd.concat([table, row], ignore_index=True)

    edit_phenotype(ctx, "subjective", add_row)


def phenotype_text_cell(ctx: Ctx) -> None:
    def text(table: pd.DataFrame) -> pd.DataFrame:
        table.loc[3, "cortisol"] = "high"
        return table

    edit_phenotype(ctx, "physiology", text)


def phenotype_without_participant_column(ctx: Ctx) -> None:
    edit_phenotype(ctx, "subjective", lambda t: t.rename(columns={"participant_id": "subject"}))


def behaviour_config_unknown_key(ctx: Ctx) -> None:
    path = ctx.tmp / "behaviour.json"
    path.write_text(json.dumps({"fdr_q": 0.05, "hormone_windows": [10, 30]}))
    ctx.args += ["--behavior-config", str(path)]


def behaviour_config_not_json(ctx: Ctx) -> None:
    path = ctx.tmp / "behaviour.json"
    path.write_text("fdr_q = 0.05\n")
    ctx.args += ["--behavior-config", str(path)]


PARTICIPANT_CASES = [
    Case(
        "truncated-nii-gz", truncated_gzip, r"sub-01 ses-nal: cannot read .*truncated or corrupt"
    ),
    Case(
        "garbage-inside-gzip",
        garbage_inside_gzip,
        r"sub-01 ses-sal: cannot read .*truncated or corrupt",
    ),
    Case("not-a-nifti", not_gzip_at_all, r"sub-01 ses-nal: cannot read .*truncated or corrupt"),
    Case(
        "3d-image",
        image_3d,
        r"has shape \(52, 60, 50\) \(3-D\) but a dynamic PET image must be 4-D",
    ),
    Case(
        "nan-frame",
        nan_frame,
        r"sub-01 ses-nal: .*has 1 unusable frame\(s\): frame 4: NaN in \d+ voxel\(s\) \(100 % "
        r"of the field of view\) that hold data in other frames",
    ),
    Case("inf-voxels", inf_voxels, r"sub-01 ses-sal: .*frame 11: 8 infinite voxel value\(s\)"),
    Case("all-zero-session", all_zero_session, r"sub-01 ses-nal: all-zero image"),
    Case("negative-image", negative_image, r"sub-01 ses-nal: .*has no net positive signal"),
    Case(
        "frames-in-wrong-order",
        frames_in_wrong_order,
        r"sub-01 ses-sal: frame start times must be increasing; frame 6 starts at 300 s, not "
        r"after frame 5 at 420 s\. Fix FrameTimesStart/FrameDuration in the sidecar JSON",
    ),
    Case(
        "frame-times-in-minutes",
        times_in_minutes,
        r"sub-01 ses-nal: the frame schedule lasts 60 s in total.*multiply them by 60",
    ),
    Case(
        "durations-as-end-times",
        durations_as_end_times,
        r"FrameDuration looks like frame end times",
    ),
    Case(
        "sidecar-one-frame-short",
        one_frame_missing_in_sidecar,
        r"FrameDuration has 11 entries but .* has 12 frames",
    ),
    Case(
        "injection-after-first-frame",
        injection_after_scan_start,
        r"sub-01 ses-sal: the first frame starts at 0 s, before the injection "
        r"\(InjectionStart=120 s\)",
    ),
    Case(
        "sidecar-not-json",
        sidecar_not_json,
        r"sub-01 ses-sal: sub-01_ses-sal_trc-raclopride_pet.json is not valid JSON",
    ),
    Case("sidecar-is-a-list", sidecar_is_a_list, r"must hold a JSON object .*found a list"),
    Case(
        "required-fields-missing",
        required_fields_missing,
        r"(?s)field TracerName is missing.*field FrameDuration is missing",
    ),
    Case(
        "tracer-differs-between-sessions",
        tracer_differs,
        r"sub-01: TracerName differs between sessions",
    ),
    Case(
        "session-missing",
        session_missing,
        r"sub-01: challenge session ses-nal not found \(sessions present: sal\)",
    ),
    Case("image-missing", sidecar_without_image, r"sub-01 ses-nal: PET image file missing"),
    Case(
        "participant-99",
        unknown_participant,
        r"participant label\(s\) not found in the dataset: 99\. Available: 01, 02, 03, 04",
    ),
    Case("one-unknown-participant", one_unknown_among_known, r"not found in the dataset: 77\."),
    Case("no-participants", no_participants, r"no participants \(sub-<label> folders\) found"),
    Case(
        "no-dataset-description", no_dataset_description, r"dataset_description\.json not found in"
    ),
    Case(
        "dataset-description-not-json",
        dataset_description_not_json,
        r"dataset_description\.json is not valid JSON",
    ),
    Case("output-under-a-file", output_under_a_file, r"file\.txt is a file, not a folder"),
    Case("output-inside-bids", output_inside_bids, r"is inside the BIDS directory"),
    Case("output-is-bids", output_is_bids, r"is the BIDS directory itself"),
    Case(
        "baseline-session-absent",
        baseline_session_absent,
        r"sub-01: baseline session ses-pre not found",
    ),
    Case(
        "session-flags-equal",
        session_flags_equal,
        r"are both 'sal'; they must name two different sessions",
    ),
    Case(
        "one-session-flag",
        one_session_flag,
        r"--challenge-session was given without --baseline-session",
    ),
    Case(
        "sessions-not-named",
        unnamed_sessions,
        r"cannot tell which session is baseline .*--baseline-session a --challenge-session b",
    ),
    Case("corrupt-t1w", corrupt_t1w, r"sub-01: the T1w image sub-01_T1w\.nii\.gz is unusable"),
    Case(
        "singular-affine",
        singular_affine,
        r"sub-01 ses-nal: .* has an invalid geometry \(the voxel-to-world matrix is singular",
    ),
    Case(
        "frame-times-in-milliseconds",
        times_in_milliseconds,
        r"sub-01 ses-nal: implausible frame times: the scan lasts 3\.6e\+06 s .*divide "
        r"FrameTimesStart and FrameDuration by 1000 in the sidecar JSON \(.*_pet\.json\)",
    ),
    Case(
        "decay-fields-contradict",
        decay_fields_contradict,
        r"sub-01 ses-sal: ImageDecayCorrected is true but DecayCorrectionFactor is 1 for every "
        r"frame.*set ImageDecayCorrected to false",
    ),
    Case(
        "uncorrected-unknown-radionuclide",
        uncorrected_unknown_radionuclide,
        r"sub-01 ses-nal: ImageDecayCorrected is false, so the app must decay-correct the images, "
        r"but TracerRadionuclide 'X-99' is not a radionuclide it knows",
    ),
    Case(
        "zero-frame",
        zero_frame,
        r"sub-01 ses-nal: .*_pet\.nii\.gz has 1 unusable frame\(s\): frame 7: every finite voxel "
        r"is 0\..*--exclude-bad-frames",
    ),
    Case(
        "sign-flipped-frame",
        sign_flipped_frame,
        r"sub-01 ses-sal: .*frame 9: no net positive signal \(sum -",
    ),
    Case(
        "scaled-frame",
        scaled_frame,
        r"sub-01 ses-sal: .*frame 8: its whole-image mean \(.*\) is [\d.]+ x the level",
    ),
    Case(
        "nan-frame-with-nan-outside-head",
        nan_outside_head_and_frame,
        r"sub-01 ses-nal: .*has 1 unusable frame\(s\): frame 10: NaN in \d+ voxel\(s\) "
        r"\(100 % of the field of view\)",
    ),
    Case(
        "challenge-copy-of-baseline",
        challenge_copy_of_baseline,
        r"sub-01 ses-sal \(.*\) and sub-01 ses-nal \(.*\) hold the same image .*drug effect "
        r"of exactly 0",
    ),
    Case(
        "participants-share-a-scan",
        participants_share_a_scan,
        r"sub-01 ses-nal \(.*\) and sub-02 ses-sal \(.*\) hold the same image .*two "
        r"participants cannot share a scan",
    ),
    Case(
        "sessions-tsv-contradicts-labels",
        sessions_tsv_contradicts_labels,
        r"sub-01: sub-01_sessions\.tsv gives the condition ses-nal: 'baseline', ses-sal: "
        r"'challenge'.*--baseline-session nal --challenge-session sal",
    ),
    Case(
        "two-runs-unselected",
        two_runs_unselected,
        r"sub-01 ses-sal: 2 PET scans found .*--pet-run <index>",
    ),
    Case(
        "inherited-field-missing",
        inherited_field_missing,
        r"sub-01 ses-sal: required PET-BIDS field AttenuationCorrection is missing from "
        r"sub-01_ses-sal_trc-raclopride_pet\.json \(and inherited pet\.json\)",
    ),
    Case(
        "bad-filter-file",
        bad_filter_file,
        r"--bids-filter-file: .*filter on 'subject' is not supported",
        code=2,
        stage="usage",
    ),
    Case(
        "atlas-without-cerebellum",
        custom_atlas_without_cerebellum,
        r"cerebellum",
        stage="processing",
    ),
    Case(
        "atlas-labels-without-tsv",
        atlas_labels_alone,
        r"--atlas-labels needs --atlas-tsv",
        code=2,
        stage="usage",
    ),
    Case(
        "bids-dir-absent",
        bids_dir_absent,
        r"folder not found: .*no_such_dataset",
        code=2,
        stage="usage",
    ),
    Case(
        "k2a-range-reversed",
        reversed_k2a_range,
        r"--k2a-range MIN must be below MAX",
        code=2,
        stage="usage",
    ),
]

GROUP_CASES = [
    GroupCase(
        "group-before-participant",
        group_no_outputs,
        r"needs at least 3 participants .* found 0\. Run `bids_app",
    ),
    GroupCase(
        "group-two-complete",
        lambda ctx: None,
        r"needs at least 3 participants .* found 2",
        keep=("01", "02"),
    ),
    GroupCase(
        "group-truncated-map",
        group_truncated_map,
        r"found 2 \(sub-01, sub-03\)\. Left out: sub-02 \(incomplete\): .*missing or changed",
        keep=("01", "02", "03"),
    ),
    GroupCase(
        "phenotype-unknown-participant",
        phenotype_unknown_participant,
        r"subjective\.tsv: unknown participant\(s\) 99; expected one of 01, 02, 03, 04",
    ),
    GroupCase("phenotype-text-cell", phenotype_text_cell, r"physiology\.tsv.*cortisol.*'high'"),
    GroupCase(
        "phenotype-no-participant-column",
        phenotype_without_participant_column,
        r"subjective\.tsv.*participant_id",
    ),
    GroupCase(
        "behaviour-config-unknown-key",
        behaviour_config_unknown_key,
        r"unknown key\(s\) \['hormone_windows'\]",
    ),
    GroupCase(
        "behaviour-config-not-json",
        behaviour_config_not_json,
        r"behaviour config .* is not valid JSON",
    ),
]


# ----------------------------------------------------------------------------- checks
def run_case(ctx: Ctx, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    argv = [str(ctx.bids), str(ctx.out), ctx.level, *ctx.args, "--work-dir", str(ctx.tmp / "work")]
    if not ctx.validator and ctx.level == "participant":
        argv.append("--skip-bids-validation")
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def check_outcome(
    ctx: Ctx, code: int, err: str, expected_code: int, message: str, stage: Stage, before: dict
) -> None:
    assert code == expected_code, err[-3000:]
    assert re.search(message, err), f"expected /{message}/ in stderr:\n{err[-3000:]}"
    if stage == "usage" or not ctx.out.exists() or ctx.out == ctx.bids:
        pass
    elif stage == "validation":
        assert non_log_files(ctx.out) == []
    else:
        assert set(non_log_files(ctx.out)) <= set(DATASET_FILES)
    if ctx.out != ctx.bids:
        assert incomplete_files(ctx.out) == []
    if ctx.bids.is_dir():
        assert tree_diff(before, hash_tree(ctx.bids)) == []


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize("case", PARTICIPANT_CASES, ids=[c.id for c in PARTICIPANT_CASES])
def test_participant_bad_input(
    case: Case, bids_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx = Ctx(bids=bids_copy, tmp=tmp_path, out=tmp_path / "out")
    case.setup(ctx)
    before = hash_tree(ctx.bids) if ctx.bids.is_dir() else {}
    code, err = run_case(ctx, capsys)
    check_outcome(ctx, code, err, case.code, case.message, case.stage, before)


@pytest.mark.parametrize("case", GROUP_CASES, ids=[c.id for c in GROUP_CASES])
def test_group_bad_input(
    case: GroupCase,
    bids_copy: Path,
    fake_participant_outputs: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ctx = Ctx(bids=bids_copy, tmp=tmp_path, out=tmp_path / "out")
    group_outputs(ctx, fake_participant_outputs, case.keep)
    case.setup(ctx)
    before_out = (
        {k: v for k, v in hash_tree(ctx.out).items() if not k.startswith("logs")}
        if ctx.out.is_dir()
        else {}
    )
    before = hash_tree(ctx.bids)
    code, err = run_case(ctx, capsys)
    assert code == case.code, err[-3000:]
    assert re.search(case.message, err), f"expected /{case.message}/ in stderr:\n{err[-3000:]}"
    assert not (ctx.out / "group").exists()
    after_out = {k: v for k, v in hash_tree(ctx.out).items() if not k.startswith("logs")}
    assert tree_diff(before_out, after_out) == []
    assert tree_diff(before, hash_tree(ctx.bids)) == []


# ----------------------------------------------------------------------------- failures mid-run
def run_participant(ctx: Ctx, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, dict]:
    before = hash_tree(ctx.bids)
    code, err = run_case(ctx, capsys)
    return code, err, before


def check_failed_run(ctx: Ctx, code: int, err: str, message: str, before: dict) -> None:
    """A participant failed during processing: exit 1, message, only complete files."""
    check_outcome(ctx, code, err, 1, message, "processing", before)
    summary = pd.read_csv(ctx.out / "logs" / "summary.tsv", sep="\t")
    assert set(summary["status"]) == {"failed"}
    assert not (ctx.out / "logs" / "sub-01_outputs.json").exists()


def test_cerebellum_outside_field_of_view(
    bids_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bottom slices of every ses-nal frame are zero: no signal in the reference region."""
    ctx = Ctx(bids=bids_copy, tmp=tmp_path, out=tmp_path / "out")
    path = pet_path(ctx, ses="nal")
    world_z = nib.affines.apply_affine(nib.load(path).affine, [[0, 0, k] for k in range(50)])[:, 2]
    bottom = int(np.count_nonzero(world_z < -10.0))  # everything below z = -10 mm

    def cut(d: np.ndarray) -> np.ndarray:
        d[:, :, :bottom, :] = 0.0
        return d

    edit_image(path, cut)
    code, err, before = run_participant(ctx, capsys)
    check_failed_run(
        ctx,
        code,
        err,
        r"sub-01 ses-nal: only \d+% of the cerebellar reference region has PET signal",
        before,
    )


def test_flat_reference_tac(
    bids_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every frame equal to the scan mean: flat TACs everywhere, no kinetics to fit."""
    ctx = Ctx(bids=bids_copy, tmp=tmp_path, out=tmp_path / "out")

    def flatten(d: np.ndarray) -> np.ndarray:
        return np.repeat(d.mean(axis=3, keepdims=True), d.shape[3], axis=3)

    edit_image(pet_path(ctx, ses="nal"), flatten)
    code, err, before = run_participant(ctx, capsys)
    check_failed_run(
        ctx, code, err, r"sub-01 ses-nal: .*(flat|k2' could not be estimated)", before
    )


def test_disk_full_while_writing(
    bids_copy: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ENOSPC half-way through writing a NIfTI: the participant fails, nothing partial shows."""
    ctx = Ctx(bids=bids_copy, tmp=tmp_path, out=tmp_path / "out")
    real_save = nib.save

    def full_disk_save(img: nib.Nifti1Image, filename: str | os.PathLike[str]) -> None:
        real_save(img, filename)
        target = Path(filename)
        target.write_bytes(target.read_bytes()[:1000])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(filename))

    monkeypatch.setattr(nib, "save", full_disk_save)
    code, err, before = run_participant(ctx, capsys)
    check_failed_run(ctx, code, err, r"sub-01: .*No space left on device", before)


def test_disk_full_while_publishing_across_file_systems(
    bids_copy: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Work dir on another file system (rename gives EXDEV) and the copy fills the disk."""
    ctx = Ctx(bids=bids_copy, tmp=tmp_path, out=tmp_path / "out")
    staging = str(tmp_path / "work")
    real_replace, real_copyfile = os.replace, shutil.copyfile
    copies = []

    def cross_device_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if str(src).startswith(staging) and str(dst).startswith(str(ctx.out)):
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(src))
        real_replace(src, dst)

    def filling_copyfile(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> object:
        copies.append(dst)
        if len(copies) < 3:
            return real_copyfile(src, dst)
        Path(dst).write_bytes(Path(src).read_bytes()[:500])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))

    monkeypatch.setattr(os, "replace", cross_device_replace)
    monkeypatch.setattr(shutil, "copyfile", filling_copyfile)
    code, err, _ = run_participant(ctx, capsys)
    monkeypatch.undo()
    assert code == 1
    assert re.search(r"No space left on device", err)
    assert not (ctx.out / "logs" / "sub-01_outputs.json").exists()
    assert incomplete_files(ctx.out) == []


def test_different_frame_schedules_between_sessions(
    bids_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ses-nal has its first two 30 s frames merged (11 frames): legitimate, processed."""
    ctx = Ctx(bids=bids_copy, tmp=tmp_path, out=tmp_path / "out")
    sidecar = pet_path(ctx, ses="nal", ext=".json")
    meta = json.loads(sidecar.read_text())
    start, dur = meta["FrameTimesStart"], meta["FrameDuration"]
    assert dur[0] == dur[1] == 30.0

    def merge(d: np.ndarray) -> np.ndarray:
        first = d[..., :2].mean(axis=3, keepdims=True)
        return np.concatenate([first, d[..., 2:]], axis=3)

    edit_image(pet_path(ctx, ses="nal"), merge)
    both_schedule(ctx, "nal", [start[0], *start[2:]], [dur[0] + dur[1], *dur[2:]])
    code, err, before = run_participant(ctx, capsys)
    assert code == 0, err[-3000:]
    assert tree_diff(before, hash_tree(ctx.bids)) == []
    assert incomplete_files(ctx.out) == []
    manifest = json.loads((ctx.out / "logs" / "sub-01_outputs.json").read_text())
    tacs = pd.read_csv(ctx.out / manifest["sessions"]["challenge"]["tacs"], sep="\t")
    assert tacs["frame_start"].tolist() == [start[0], *start[2:]]
    assert tacs["frame_end"].iloc[0] == 60.0
    base = pd.read_csv(ctx.out / manifest["sessions"]["baseline"]["tacs"], sep="\t")
    assert len(base) == 12
    assert len(tacs) == 11
    kinpar = pd.read_csv(ctx.out / manifest["sessions"]["challenge"]["kinpar"], sep="\t")
    striatum = kinpar.set_index("roi").loc["striatum", "BPND"]
    assert 0.5 < striatum < 5.0
