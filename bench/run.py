#!/usr/bin/env python3
"""Entry point of the benchmark driver (see bench/README.md); bench/run.sh prepares the tools
and the Python environment, then runs this."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lunarbench.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
