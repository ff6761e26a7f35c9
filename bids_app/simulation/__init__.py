"""Synthetic baseline/challenge [11C]raclopride PET-BIDS studies with known ground truth.

>>> from bids_app.simulation import generate_study
>>> paths = generate_study("/tmp/study", small=True)  # doctest: +SKIP
>>> paths.bids_dir, paths.truth_dir  # doctest: +SKIP

See :func:`generate_study` and ``examples/README.md``.
"""

from __future__ import annotations

from bids_app.simulation.design import StudyEffects
from bids_app.simulation.protocol import ScanProtocol, default_protocol
from bids_app.simulation.study import StudyPaths, generate_study

__all__ = ["ScanProtocol", "StudyEffects", "StudyPaths", "default_protocol", "generate_study"]
