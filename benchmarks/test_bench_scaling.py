"""Regression tracking of parallel rasterization: N small staged tiles at 1 and 2 workers.

    pytest benchmarks/test_bench_scaling.py --benchmark-enable [--benchmark-autosave]
    pytest benchmarks/test_bench_scaling.py --benchmark-enable --benchmark-compare

Opt-in (``benchmarks/`` is outside the default ``testpaths``). Each case runs one untimed
warm-up round (loky workers started, numba cache loaded) and then 3 timed rounds of
``rasterize_dir(n_jobs=workers, batch_size=1, overwrite=True)``. For the question *why* it
scales as it does, use ``scripts/scaling_bench.py`` (docs/scaling.md).
"""

import pytest

#: A 4 x 2 block of z13 tiles of synthetic ice-wedge polygons (25 m spacing).
TILES = [(1524 + i, 910 + j, 13) for i in range(4) for j in range(2)]


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    from fastraster.sample import make_sample

    root = tmp_path_factory.mktemp("scaling") / "staged"
    make_sample(root, tiles=TILES, spacing_m=25.0, seed=0)
    return root


@pytest.mark.parametrize("workers", [1, 2])
def test_rasterize_tiles_workers(benchmark, staged, tmp_path, workers):
    import fastraster

    def run():
        return fastraster.rasterize_dir(staged, tmp_path / "out", n_jobs=workers, batch_size=1,
                                        overwrite=True, progress=False, summary=False)

    report = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    assert report.n("ok") == len(TILES), report.errors
    benchmark.extra_info.update(workers=workers, tiles=len(TILES),
                                polygons=sum(r["polygons"] for r in report))
