"""Benchmark fixtures: one dense IWP-like tile (fixed seed), loaded once, kernels compiled."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import dense_tile, loaded  # noqa: E402


@pytest.fixture(scope="session")
def dense():
    from fastraster.pipelines.staged import warm_up

    warm_up()  # compile / load kernels outside every timing
    path = dense_tile()
    grid, polys, centroids, geoms, df = loaded(path)
    return {"path": path, "grid": grid, "polys": polys, "centroids": centroids,
            "geoms": geoms, "df": df}
