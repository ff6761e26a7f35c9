"""petsim: synthetic baseline/challenge [11C]raclopride PET-BIDS studies with ground truth.

An independent simulator for testing the ``bids_app`` analysis: it imports nothing from
``bids_app`` (its anatomy, ROIs and reference fits are its own) and is not shipped in the
app's wheel or container.

>>> from petsim import generate_study
>>> paths = generate_study("/tmp/study", small=True)  # doctest: +SKIP
>>> paths.bids_dir, paths.truth_dir  # doctest: +SKIP

See :func:`generate_study`, ``petsim/README.md`` and ``examples/README.md``.
"""

from __future__ import annotations

from petsim._version import __version__
from petsim.design import StudyEffects
from petsim.protocol import NOISE_LEVELS, ScanProtocol, default_protocol
from petsim.study import StudyPaths, generate_study
from petsim.warp import WarpSettings

__all__ = [
    "NOISE_LEVELS",
    "ScanProtocol",
    "StudyEffects",
    "StudyPaths",
    "WarpSettings",
    "__version__",
    "default_protocol",
    "generate_study",
]
