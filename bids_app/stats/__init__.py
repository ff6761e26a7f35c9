"""Group statistics: pure functions on arrays (numpy/scipy only, no I/O).

Submodules: ``voxelwise`` (SPM's implicit search mask, smoothing, paired t maps), ``rft``
(SPM12-compatible random field theory, smoothness and resels), ``clusters`` (18-connected
cluster labelling, SPM's local maxima per cluster, cluster means and label shares),
``permutation`` (sign-flip FWE), ``inference`` (the paired cluster-inference entry point),
``roi`` (ROI tests and the net DA release / rCBF change estimators) and ``behavior``.
Import them explicitly, e.g. ``from bids_app.stats import rft``.
"""
