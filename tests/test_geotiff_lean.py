"""The lean GeoTIFF writer: GDAL (rasterio) reads back from it exactly what it reads back from
the file GDAL itself writes (``fastraster.io.geotiff.write_geotiff``), for every output option."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import rasterio

from fastraster.io.geotiff import write_geotiff
from fastraster.io.geotiff_lean import LeanTiffUnsupported, predict_float, write_geotiff_lean
from fastraster.model.grid import TileGrid
from tests.conftest import assert_no_temp_files

TILES = {"WorldCRS84Quad": (1524, 910, 13), "WGS1984Quad": (1524, 910, 13),
         "WebMercatorQuad": (100, 200, 9)}
SIZES = (256, 128, (60, 100), (400, 272))  # tiles; tiles with padded edges; strips
NODATA = (None, 0, float("nan"), -9999)


def _values(bands, h, w, seed):
    rng = np.random.default_rng(seed)
    a = rng.random((bands, h, w)) * rng.choice([1.0, 1e-3, 1e6], (bands, h, w))
    a[0, :3] = np.nan
    a[-1, 3:5] = 0.0
    a[-1, 5, :7] = [np.inf, -np.inf, -1.5, 5e-324, 1e-40, -0.0, 255.0]
    a[:, h // 2:] = np.round(a[:, h // 2:] * 4)  # counts-like rows, which compress well
    return a


def _read(path):
    with rasterio.open(path) as src:
        return {
            "crs": src.crs, "wkt": src.crs.to_wkt(), "transform": src.transform,
            "nodata": src.nodata, "descriptions": src.descriptions,
            "compression": src.compression, "dtypes": src.dtypes,
            "structure": src.tags(ns="IMAGE_STRUCTURE"), "blocks": src.block_shapes,
            "shape": (src.count, src.height, src.width), "interleaving": src.interleaving,
            "tags": src.tags(), "values": src.read(),
        }


CASES = [(tms, size, dtype, nodata, 1 + k % 3) for k, (tms, size, dtype, nodata) in
         enumerate(itertools.product(TILES, SIZES, ("float32", "float64"), NODATA))]


@pytest.mark.parametrize("tms,size,dtype,nodata,bands", CASES)
def test_gdal_reads_back_what_it_reads_from_its_own_file(tmp_path, tms, size, dtype, nodata,
                                                          bands):
    grid = TileGrid.from_tile(TILES[tms], tms, size)
    arr = _values(bands, grid.height, grid.width, seed=bands)
    names = [f"band {b}" for b in range(bands)]
    write_geotiff(tmp_path / "gdal.tif", arr, grid, names, dtype=dtype, nodata=nodata,
                  engine="gdal")
    write_geotiff_lean(tmp_path / "lean.tif", arr, grid, names, dtype=dtype, nodata=nodata)
    want, got = _read(tmp_path / "gdal.tif"), _read(tmp_path / "lean.tif")
    for key in ("crs", "wkt", "transform", "descriptions", "compression", "dtypes",
                "structure", "blocks", "shape", "interleaving", "tags"):
        assert got[key] == want[key], key
    assert got["structure"]["PREDICTOR"] == "3"
    assert (got["nodata"] == want["nodata"]
            or (math.isnan(got["nodata"]) and math.isnan(want["nodata"])))
    assert np.array_equal(got["values"], want["values"], equal_nan=True)
    # ... and what was written is the input at that dtype, bit for bit.
    assert np.array_equal(got["values"].view(np.uint8), arr.astype(dtype).view(np.uint8))
    assert_no_temp_files(tmp_path)


def test_projected_crs_is_gdal_own_object(tmp_path):
    grid = TileGrid.from_tile((100, 200, 9), "WebMercatorQuad", 64)
    write_geotiff_lean(tmp_path / "a.tif", np.ones((1, 64, 64)), grid, ["x"])
    with rasterio.open(tmp_path / "a.tif") as src:
        assert src.crs.to_epsg() == 3857
        assert src.transform == grid.transform


def test_unsupported_outputs_write_nothing(tmp_path):
    grid = TileGrid.from_tile((0, 0, 1), "WGS1984Quad", 16)
    with pytest.raises(LeanTiffUnsupported, match="float bands"):
        write_geotiff_lean(tmp_path / "a.tif", np.ones((1, 16, 16)), grid, ["x"], dtype="uint8")
    with pytest.raises(ValueError, match="does not match the grid"):
        write_geotiff_lean(tmp_path / "a.tif", np.ones((1, 8, 16)), grid, ["x"])
    assert not list(tmp_path.iterdir())


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    import fastraster.io.geotiff_lean as lt

    grid = TileGrid.from_tile((0, 0, 1), "WGS1984Quad", 16)
    write_geotiff_lean(tmp_path / "a.tif", np.ones((1, 16, 16)), grid, ["x"])
    before = (tmp_path / "a.tif").read_bytes()

    def boom(fd, data):
        raise OSError("disk full")

    monkeypatch.setattr(lt.os, "write", boom)
    with pytest.raises(OSError, match="disk full"):
        write_geotiff_lean(tmp_path / "a.tif", np.zeros((1, 16, 16)), grid, ["x"])
    assert (tmp_path / "a.tif").read_bytes() == before  # the old file is untouched
    assert_no_temp_files(tmp_path)


# ---------------------------------------------------------------------------------------------
# write_geotiff's choice of writer
# ---------------------------------------------------------------------------------------------


def _bytes_by_engine(tmp_path, engine, **kw):
    grid = TileGrid.from_tile((1524, 910, 13), "WorldCRS84Quad", 64)
    arr = _values(2, 64, 64, seed=3)
    if np.dtype(kw.get("dtype", "float32")).kind != "f":
        arr = np.clip(np.nan_to_num(arr), 0, 1000)
    path = tmp_path / f"{engine}-{len(list(tmp_path.iterdir()))}.tif"
    write_geotiff(path, arr, grid, ["a", "b"], engine=engine, **kw)
    return path.read_bytes()


def test_auto_writes_float_tiles_lean_and_the_rest_with_gdal(tmp_path, monkeypatch):
    monkeypatch.delenv("FASTRASTER_LEAN_IO", raising=False)
    lean, gdal = _bytes_by_engine(tmp_path, "lean"), _bytes_by_engine(tmp_path, "gdal")
    assert lean != gdal  # the two writers are told apart by their bytes
    assert _bytes_by_engine(tmp_path, "auto") == lean
    assert _bytes_by_engine(tmp_path, "auto", dtype="float64", nodata=0) == _bytes_by_engine(
        tmp_path, "lean", dtype="float64", nodata=0)
    # Integer samples: the lean writer declines, GDAL writes.
    assert _bytes_by_engine(tmp_path, "auto", dtype="uint16") == _bytes_by_engine(
        tmp_path, "gdal", dtype="uint16")
    with pytest.raises(LeanTiffUnsupported):
        _bytes_by_engine(tmp_path, "lean", dtype="uint16")
    # COGs: always GDAL's COG driver.
    cog = _bytes_by_engine(tmp_path, "auto", cog=True)
    assert cog == _bytes_by_engine(tmp_path, "gdal", cog=True)
    (tmp_path / "cog.tif").write_bytes(cog)
    with rasterio.open(tmp_path / "cog.tif") as src:
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    with pytest.raises(LeanTiffUnsupported, match="COG"):
        _bytes_by_engine(tmp_path, "lean", cog=True)
    with pytest.raises(ValueError, match="engine"):
        _bytes_by_engine(tmp_path, "tifffile")
    assert_no_temp_files(tmp_path)


def test_environment_switches_the_lean_writer_off(tmp_path, monkeypatch):
    gdal = _bytes_by_engine(tmp_path, "gdal")
    monkeypatch.setenv("FASTRASTER_LEAN_IO", "0")
    assert _bytes_by_engine(tmp_path, "auto") == gdal
    monkeypatch.setenv("FASTRASTER_LEAN_IO", "1")
    assert _bytes_by_engine(tmp_path, "auto") == _bytes_by_engine(tmp_path, "lean")


def _kernel_block(bands_arr, r0, c0, bh, bw):
    from fastraster.io.geotiff_lean import predict_block, sample_words

    words = sample_words(bands_arr, bands_arr.dtype)
    shape = (bh, bw * bands_arr.shape[0] * bands_arr.dtype.itemsize)
    planes, out = np.full(shape, 9, np.uint8), np.full(shape, 7, np.uint8)
    return predict_block(words, r0, c0, planes, out)


def _reference_block(bands_arr, r0, c0, bh, bw):
    """The numpy predictor on the block cut out of the pixel-interleaved, zero-padded bands."""
    b, h, w = bands_arr.shape
    padded = np.zeros((b, r0 + bh, c0 + bw), bands_arr.dtype)
    padded[:, :h, :w] = bands_arr[:, :r0 + bh, :c0 + bw]
    block = np.moveaxis(padded[:, r0:, c0:], 0, -1).reshape(bh, bw * b)
    return predict_float(np.ascontiguousarray(block), b)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_predictor_kernel_nojit_small(dtype):
    rng = np.random.default_rng(5)
    for bands, h, w, r0, c0, bh, bw in ((1, 5, 6, 0, 0, 5, 6), (2, 5, 6, 0, 0, 3, 6),
                                        (3, 5, 6, 2, 4, 4, 4), (2, 7, 3, 4, 0, 4, 8),
                                        (2, 4, 4, 8, 8, 2, 2)):
        arr = (rng.normal(size=(bands, h, w)) * 100).astype(dtype)
        arr[0, 0, :2] = [np.nan, -0.0]
        got = _kernel_block(arr, r0, c0, bh, bw)
        assert np.array_equal(got, _reference_block(arr, r0, c0, bh, bw)), (bands, r0, c0)


def test_predictor_kernel_on_whole_tiles():
    rng = np.random.default_rng(6)
    arr = _values(3, 300, 260, seed=2).astype(np.float32)
    for r0, c0 in ((0, 0), (0, 256), (256, 0), (256, 256)):
        assert np.array_equal(_kernel_block(arr, r0, c0, 256, 256),
                              _reference_block(arr, r0, c0, 256, 256))
    big = rng.normal(size=(2, 64, 64))
    assert np.array_equal(_kernel_block(big, 0, 0, 64, 64), _reference_block(big, 0, 0, 64, 64))


def test_predictor_inverts_like_libtiff():
    """Undo the predictor as libtiff's fpAcc does (independent loop code) and compare."""
    rng = np.random.default_rng(1)
    for dtype, spp in (("float32", 1), ("float32", 2), ("float64", 3)):
        rows = rng.normal(size=(3, 5 * spp)).astype(dtype)
        enc = predict_float(rows, spp)
        size = np.dtype(dtype).itemsize
        for r in range(rows.shape[0]):
            cp = [int(v) for v in enc[r]]
            for j in range(spp, len(cp)):  # libtiff: cp[stride] += cp[0], byte by byte
                cp[j] = (cp[j] + cp[j - spp]) & 0xFF
            wc = len(cp) // size
            out = bytearray(len(cp))
            for i in range(wc):
                for b in range(size):  # little-endian host: tmp[(bps - byte - 1) * wc + i]
                    out[size * i + b] = cp[(size - b - 1) * wc + i]
            assert bytes(out) == rows[r].tobytes()
