#!/usr/bin/env python
"""Is a fastraster run CPU-bound, I/O-bound or overhead-bound?  Time it at several worker counts.

    python scripts/scaling_bench.py [STAGED_DIR] --workers 1,2,4,8,11,15 --files 100 \\
        --repeats 3 --backend loky --out scaling-results [--cold-cache]

A thin wrapper of :mod:`benchmarks.scaling` (which documents the method and the outputs);
see docs/scaling.md.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.scaling.analysis import (  # noqa: E402, F401  (the functions tests check)
    amdahl_fit,
    amdahl_speedup,
    classify,
    judged_points,
    karp_flatt,
)
from benchmarks.scaling.main import build_parser, main  # noqa: E402, F401
from benchmarks.scaling.probes import cpu_topology  # noqa: E402, F401

if __name__ == "__main__":
    sys.exit(main())
