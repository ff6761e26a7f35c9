"""petsim must not depend on the analysis it tests (bids_app), nor ship inside it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from helpers.globbing import glob_some

REPO_ROOT = Path(__file__).resolve().parents[2]
PETSIM = REPO_ROOT / "petsim"


def test_no_petsim_module_imports_bids_app() -> None:
    offenders = []
    for path in glob_some(PETSIM, "*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "bids_app"]
    assert offenders == []


def test_importing_every_module_and_fitting_never_imports_bids_app() -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        "import numpy as np\n"
        "import petsim\n"
        "modules = [m.name for m in pkgutil.iter_modules(petsim.__path__, 'petsim.')]\n"
        "for name in modules:\n"
        "    importlib.import_module(name)\n"
        "from petsim.protocol import default_protocol\n"
        "from petsim.srtm import fit_srtm\n"
        "frames = default_protocol().frames()\n"
        "ref = 10 * np.exp(-0.03 * frames.mid_min) * (1 - np.exp(-2 * frames.mid_min))\n"
        "assert fit_srtm(frames, ref, 1.5 * ref).ok\n"
        "assert len(modules) >= 15, modules\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'bids_app')\n"
        "print('BIDS_APP_MODULES=' + ','.join(loaded))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "BIDS_APP_MODULES=\n" in proc.stdout


def test_the_wheel_and_the_image_leave_petsim_out() -> None:
    pyproject = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    wheel = pyproject.split("[tool.hatch.build.targets.wheel]", 1)[1].split("\n[", 1)[0]
    assert 'packages = ["bids_app"]' in wheel
    allowed = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip().startswith("!")
    ]
    assert allowed
    assert not any("petsim" in line for line in allowed)
    dockerfile = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "petsim" not in dockerfile
