"""pytest-benchmark suite (opt-in): ``pytest benchmarks --benchmark-enable``.

Each group holds fastraster and its baselines on the same in-memory data or files, so the
saved JSON gives side-by-side ratios. The dense tile: ~25k IWP-like polygons, ~30 vertices,
256 x 256 pixels (``common.dense_tile``). For one table with ratios, run
``python benchmarks/compare.py`` instead.
"""

import numpy as np
import pytest
from common import (
    exactextract_coverage,
    ours_kernels,
    rasterio_count,
    read_floor,
    shapely_clip_coverage,
    write_floor,
)


@pytest.mark.benchmark(group="kernels: coverage + count, dense tile")
def test_kernels_fastraster(benchmark, dense):
    out = benchmark(ours_kernels, dense["grid"], dense["polys"], dense["centroids"])
    assert out.shape == (2, 256, 256) and out[0].sum() > 0


@pytest.mark.benchmark(group="kernels: coverage + count, dense tile")
def test_kernels_rasterio_count_only(benchmark, dense):
    out = benchmark.pedantic(rasterio_count, (dense["grid"], dense["geoms"]), rounds=3)
    assert out.sum() > 0


@pytest.mark.benchmark(group="kernels: coverage + count, dense tile")
def test_kernels_exactextract(benchmark, dense):
    out = benchmark.pedantic(exactextract_coverage, (dense["grid"], dense["df"]), rounds=1)
    ours = ours_kernels(dense["grid"], dense["polys"], dense["centroids"])[1]
    assert np.abs(out - ours).max() < 1e-6  # the same quantity, so the comparison is fair


@pytest.mark.benchmark(group="kernels: coverage + count, dense tile")
def test_kernels_shapely_strtree_clip(benchmark, dense):
    out = benchmark.pedantic(shapely_clip_coverage, (dense["grid"], dense["geoms"]), rounds=1)
    ours = ours_kernels(dense["grid"], dense["polys"], dense["centroids"])[1]
    assert np.abs(out - ours).max() < 1e-9


@pytest.mark.benchmark(group="read: dense tile")
def test_read_fastraster(benchmark, dense):
    from fastraster.io.staged import read_staged

    data = benchmark(read_staged, dense["path"])
    assert len(data.polygons) == len(dense["polys"])


@pytest.mark.benchmark(group="read: dense tile")
def test_read_floor_pyogrio_arrow(benchmark, dense):
    benchmark(read_floor, dense["path"])


@pytest.mark.benchmark(group="read: dense tile")
def test_read_pyogrio_dataframe_ragged(benchmark, dense):
    import pyogrio

    from fastraster.model.geometry import RaggedPolygons

    def read():
        df = pyogrio.read_dataframe(dense["path"])
        return RaggedPolygons.from_shapely(df.geometry.values)

    assert len(benchmark(read)) == len(dense["polys"])


@pytest.mark.benchmark(group="write: 2-band float32 GeoTIFF")
def test_write_fastraster_atomic(benchmark, dense, tmp_path):
    from fastraster.io.geotiff import write_geotiff

    arr = ours_kernels(dense["grid"], dense["polys"], dense["centroids"])
    benchmark(write_geotiff, tmp_path / "a.tif", arr, dense["grid"], ["c", "v"], nodata=0)


@pytest.mark.benchmark(group="write: 2-band float32 GeoTIFF")
def test_write_floor_rasterio(benchmark, dense, tmp_path):
    arr = ours_kernels(dense["grid"], dense["polys"], dense["centroids"])
    benchmark(write_floor, dense["grid"], arr, tmp_path / "b.tif")


@pytest.mark.benchmark(group="end to end: one dense tile")
def test_end_to_end_fastraster(benchmark, dense, tmp_path):
    from fastraster.io.tilepaths import parse_tile_path
    from fastraster.pipelines.options import RasterizeOptions
    from fastraster.pipelines.staged import rasterize_one

    s = RasterizeOptions.create(overwrite=True)
    job = parse_tile_path(dense["path"])
    rec = benchmark(rasterize_one, job, str(tmp_path / "e.tif"), s)
    assert rec["status"] == "ok"


@pytest.mark.benchmark(group="end to end: one dense tile")
def test_end_to_end_io_floor(benchmark, dense, tmp_path):
    arr = ours_kernels(dense["grid"], dense["polys"], dense["centroids"])

    def floor():
        read_floor(dense["path"])
        write_floor(dense["grid"], arr, tmp_path / "f.tif")

    benchmark(floor)


@pytest.fixture(scope="module")
def dense_bands(dense):
    """The dense tile's two output bands as written (float32), flattened."""
    arr = ours_kernels(dense["grid"], dense["polys"], dense["centroids"]).astype(np.float32)
    return [np.ascontiguousarray(b).ravel() for b in arr]


@pytest.mark.parametrize("band", [0, 1], ids=["count", "coverage"])
@pytest.mark.benchmark(group="summary median: one float32 band")
def test_median_fastraster_radix(benchmark, dense_bands, band):
    from fastraster import kernels as K

    a = dense_bands[band]
    assert benchmark(K.float32_median, a) == np.median(a.astype(np.float64))


@pytest.mark.parametrize("band", [0, 1], ids=["count", "coverage"])
@pytest.mark.benchmark(group="summary median: one float32 band")
def test_median_numpy(benchmark, dense_bands, band):
    a = dense_bands[band]
    benchmark(lambda: np.median(a.astype(np.float64)))
