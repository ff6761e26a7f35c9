#!/usr/bin/env python
"""Generate the synthetic [11C]raclopride example study (thin wrapper of bids_app.simulation).

Usage::

    python examples/make_synthetic_study.py OUT_DIR [--small] [--null] [--n-participants N]
        [--seed S] [--with-t1w] [--n-jobs J] [--overwrite] [-v]

Writes OUT_DIR/bids (the PET-BIDS dataset) and OUT_DIR/truth (ground truth). Same flags as
``python -m bids_app.simulation``; see examples/README.md.
"""

from __future__ import annotations

from petsim.__main__ import main

if __name__ == "__main__":
    raise SystemExit(main())
