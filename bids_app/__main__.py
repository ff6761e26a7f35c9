"""Allow ``python -m bids_app``."""

from __future__ import annotations

import sys

from bids_app.cli.run import main

if __name__ == "__main__":
    sys.exit(main())
