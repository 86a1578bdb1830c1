"""malloc tuning of worker processes (fastraster.execution.allocator)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# Two 24 MiB buffers alive at once (like a tile's WKB column and its coordinates), freed,
# then the same again: with the settings the second round reuses the heap pages of the
# first (no page faults); with glibc's defaults each round faults in fresh pages again.
PROBE = r"""
import resource, sys
import numpy as np
from fastraster.execution.allocator import tune_allocator
tuned = tune_allocator()
faults = []
for _ in range(5):
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = np.ones(3 * 1024 * 1024)  # 24 MiB each, written in full
    b = np.ones(3 * 1024 * 1024)
    del a, b
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
print(tuned, min(faults[1:]), max(faults[1:]))
"""


def _probe(flag):
    env = {**os.environ, "FASTRASTER_TUNE_MALLOC": flag}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return out[0] == "True", int(out[1]), int(out[2])


@pytest.mark.skipif(not GLIBC, reason="malloc tuning applies to glibc (Linux) only")
def test_tuned_process_reuses_freed_tile_sized_buffers():
    tuned, _, most = _probe("1")
    assert tuned
    assert most < 100  # 48 MiB is ~12,000 pages


@pytest.mark.skipif(not GLIBC, reason="malloc tuning applies to glibc (Linux) only")
def test_opt_out_leaves_glibc_defaults():
    tuned, least, _ = _probe("0")
    assert not tuned
    assert least > 500  # glibc's default trims the heap and faults pages in again


def test_pipeline_tunes_its_worker(sample_staged, tmp_path):
    code = ("import sys; from fastraster import rasterize_dir; "
            "from fastraster.execution import allocator;"
            f"rasterize_dir({str(sample_staged)!r}, {str(tmp_path)!r}, n_jobs=1);"
            "print(allocator._TUNED)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, env={**os.environ, "FASTRASTER_TUNE_MALLOC": "1"}).stdout
    assert out.strip().splitlines()[-1] == f"[{GLIBC}]"
