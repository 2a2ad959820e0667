"""`python -m bench`: the sweep benchmark (see bench/sweep.py for its options)."""

import sys

from bench.sweep import main

sys.exit(main())
