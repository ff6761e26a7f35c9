"""Group statistics: pure functions on arrays (numpy/scipy only, no I/O).

Submodules: ``voxelwise`` (smoothing, paired t maps), ``rft`` (SPM12-compatible random field
theory), ``clusters`` (18-connected cluster labelling), ``permutation`` (sign-flip FWE),
``inference`` (the paired cluster-inference entry point), ``roi`` and ``behavior``.
Import them explicitly, e.g. ``from bids_app.stats import rft``.
"""
