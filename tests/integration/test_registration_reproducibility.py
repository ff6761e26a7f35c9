"""ANTs registrations are bitwise reproducible with one thread (a fresh interpreter).

A fresh interpreter sets the thread count before ANTsPy starts; the same session
co-registration run twice gives identical matrices, close to the true motion.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("ants")


@pytest.mark.integration
def test_registrations_are_bitwise_reproducible_with_one_thread(tmp_path: Path) -> None:
    tests_dir = Path(__file__).resolve().parents[1]
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(tests_dir)!r})
        from bids_app.preproc import configure_ants_threads
        configure_ants_threads(1)
        import nibabel as nib, numpy as np
        from pathlib import Path
        from helpers.preproc_phantoms import (
            SHAPE, frame_image, grid_affine, head_compartments, move,
        )
        from bids_app.preproc.registration import coregister_sessions
        from bids_app.preproc.transforms import params_to_matrix
        rng = np.random.default_rng(0)
        aff = grid_affine(); comp = head_compartments(SHAPE, aff)
        base = frame_image(comp, 30.0) + rng.normal(0, 0.05, SHAPE)
        truth = params_to_matrix([2.0, -1.0, 1.5, 0.03, -0.02, 0.04])
        chal = move(frame_image(comp, 30.0), aff, truth) + rng.normal(0, 0.05, SHAPE)
        imgs = [nib.Nifti1Image(x.astype(np.float32), aff) for x in (chal, base)]
        a = coregister_sessions(*imgs, Path({str(tmp_path)!r}) / "a", n_threads=1)
        b = coregister_sessions(*imgs, Path({str(tmp_path)!r}) / "b", n_threads=1)
        print(repr(np.array_equal(a, b)), repr(float(np.abs(a - truth).max())))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    identical, max_diff = done.stdout.strip().splitlines()[-1].split()
    assert identical == "True"
    assert float(max_diff) < 0.5
