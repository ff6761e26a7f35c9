"""The output contract of both levels: names, sidecars, atomic writes, publishing, manifests.

Everything the app writes under OUTPUT_DIR is named here (:mod:`~bids_app.outputs.names`), written
atomically (:mod:`~bids_app.outputs.io`), described by a sidecar built from plain values
(:mod:`~bids_app.outputs.sidecars`), moved into place all-or-nothing
(:mod:`~bids_app.outputs.publish`) and listed in a participant manifest that the group level reads
back (:mod:`~bids_app.outputs.manifest`). No other module builds an output file name.
"""
