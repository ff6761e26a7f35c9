"""scripts/update_readme_numbers.py: README numbers come from the benchmarks' JSON files."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return _load(ROOT / "scripts" / "update_readme_numbers.py", "update_readme_numbers")


@pytest.fixture(scope="module")
def results_module() -> ModuleType:
    return _load(ROOT / "benchmarks" / "_results.py", "_bench_results")


PARTICIPANT_RUN = {
    "exit_code": 0,
    "wall_s": 51.4,
    "elapsed_s": 47.0,
    "motion_s": 9.6,
    "means_s": 1.2,
    "coregistration_s": 3.1,
    "normalisation_s": 14.9,
    "resample_s": 2.8,
    "model_s": 2.2,
    "outputs_s": 6.0,
    "peak_rss_mb": 1012,
    "target_s": 60.0,
    "target_peak_rss_mb": 2048.0,
    "motion_rms_mm": {"ses-nal": 0.378, "ses-sal": 0.466},
    "roi_bpnd_max_error_pct": 1.18,
}


def _write_results(results_module: ModuleType, folder: Path) -> None:
    results_module.save_results(
        "participant",
        {"settings": {"threads": 2}, "pet": PARTICIPANT_RUN, "t1w": {"exit_code": 1}},
        [3.5, 3.0, 2.5],
        folder,
    )
    results_module.save_results(
        "group_stats",
        {
            "measures": {
                "BPND": {"sign_flips_s": 2.0, "ms_per_flip": 1.95},
                "R1": {"sign_flips_s": 1.5, "ms_per_flip": 1.46},
            },
            "total_s": 6.25,
            "target_s": 15.0,
        },
        [1.0, 1.0, 1.0],
        folder,
    )
    results_module.save_results(
        "kinetics",
        {
            "threads": 1,
            "n_voxels": 230000,
            "n_frames": 26,
            "srtm2_basis_230k_voxels_s": "0.066",
            "srtm2_basis_230k_voxels_no_fitted_s": "0.050",
            "srtm2_previous_s": "0.160",
            "srtm2_speedup_vs_previous": "2.42",
            "curve_fit_loop_voxels": 300,
            "curve_fit_loop_scaled_to_230k_s": "455.3",
            "speedup_vs_curve_fit": "6898",
        },
        [2.0, 2.0, 2.0],
        folder,
    )


def test_block_is_built_from_the_results_files(
    script: ModuleType, results_module: ModuleType, tmp_path: Path
) -> None:
    _write_results(results_module, tmp_path)
    block = script.render_block(script.load_results(tmp_path))
    assert block.startswith(script.START)
    assert block.endswith(script.END)
    assert "  - PET-only: **51 s** wall (target ≤ 60 s): motion 10 s, means 1 s" in block
    assert "  - With a T1w: the run failed (exit code 1)" in block
    assert "peak memory 1012 MB" in block
    assert "within 0.47 mm RMS" in block
    assert "load average 3.5 at the start" in block
    assert "**6.2 s** (target ≤ 15 s)" in block
    assert "both measures take 3.5 s (1.5-1.9 ms per flip)" in block
    assert f"230,000 voxels {script.TIMES} 26 frames, 1 thread" in block
    assert "**0.07 s**" in block
    assert f"the previous solver 0.16 s (2.4{script.TIMES} slower)" in block
    assert f"6,898{script.TIMES} slower" in block


def test_missing_results_say_which_benchmark_to_run(script: ModuleType, tmp_path: Path) -> None:
    block = script.render_block(script.load_results(tmp_path))
    assert "run `python benchmarks/bench_participant.py`" in block
    assert "run `python benchmarks/bench_kinetics.py`" in block


def test_only_the_marked_block_changes_and_check_detects_staleness(
    script: ModuleType, results_module: ModuleType, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    _write_results(results_module, results)
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n{script.START}\nold\n{script.END}\nafter\n")
    args = ["--readme", str(readme), "--results", str(results)]
    assert script.main([*args, "--check"]) == 1
    assert script.main(args) == 0
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n<!-- numbers:start -->")
    assert text.endswith("<!-- numbers:end -->\nafter\n")
    assert "old" not in text
    assert script.main([*args, "--check"]) == 0


def test_readme_without_markers_is_an_error(script: ModuleType, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("no block here\n")
    with pytest.raises(SystemExit, match="has no '<!-- numbers:start -->'"):
        script.main(["--readme", str(readme), "--results", str(tmp_path)])


def test_the_project_readme_has_the_block(script: ModuleType) -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.count(script.START) == 1
    assert text.count(script.END) == 1


ACCURACY_RUN = {
    "striatal_median_abs_error_pct": 3.25,
    "median_abs_error_pct": {"dorsal_striatum": 1.1, "caudate": 2.1, "ventral_striatum": 11.7},
    "dorsal_change_max_abs_difference": 0.0123,
    "clusters": {"dorsal_decrease_found": True, "n_far_from_striatum": 0, "n_significant": 2},
    "qc": {"pass": 7, "warn": 3},
}


def test_accuracy_lines_give_both_paths_and_the_null_study(
    script: ModuleType, results_module: ModuleType, tmp_path: Path
) -> None:
    null = {**ACCURACY_RUN, "clusters": {**ACCURACY_RUN["clusters"], "n_significant": 0}}
    missed = {
        **ACCURACY_RUN,
        "clusters": {**ACCURACY_RUN["clusters"], "dorsal_decrease_found": False},
    }
    results_module.save_results(
        "accuracy",
        {
            "settings": {"n": 10},
            "effect_t1w": ACCURACY_RUN,
            "null_t1w": null,
            "effect_pet": missed,
        },
        [1.0, 1.0, 1.0],
        tmp_path,
    )
    payload = script.load_results(tmp_path)["accuracy"]
    lines = script.accuracy_lines(payload)
    assert lines[0].startswith("- **Accuracy on realistic anatomy**, 10 participants")
    t1w, pet = lines[1], lines[2]
    assert "With a T1w: striatal BPND median |error| **3.2 %**" in t1w
    assert "dorsal 1.1 %, caudate 2.1 %, ventral 11.7 %" in t1w
    assert "within 0.012 of the ideal" in t1w
    assert "null study: 0 significant cluster(s)" in t1w
    assert "QC 7 pass, 3 warn." in t1w
    assert "PET-only" in pet
    assert "**not found**" in pet
    assert "null study" not in pet
    assert script.accuracy_lines(None) == [
        "- **Accuracy on realistic anatomy**: not measured yet: run "
        "`python benchmarks/bench_accuracy.py`."
    ]
