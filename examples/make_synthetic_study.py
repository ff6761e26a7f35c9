#!/usr/bin/env python
"""Generate the synthetic [11C]raclopride example study (thin wrapper of ``python -m petsim``).

Usage::

    python examples/make_synthetic_study.py OUT_DIR [--small] [--null] [--n-participants N]
        [--seed S] [--with-t1w] [--n-jobs J] [--overwrite] [-v]
        [--anatomy {template,individual}] [--t1w-skull] [--axial-fov-mm MM] [--noise LEVEL]

Writes OUT_DIR/bids (the PET-BIDS dataset) and OUT_DIR/truth (ground truth); see
examples/README.md.
"""

from __future__ import annotations

from petsim.__main__ import main

if __name__ == "__main__":
    raise SystemExit(main())
