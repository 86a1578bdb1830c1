"""Lower zoom levels: 2x2 reductions against plain references, the pyramid on disk, resume,
and parity with pdgraster's own z0-z12 GeoTIFFs."""

import csv
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastraster
from fastraster.model.grid import TileGrid
from fastraster.model.pyramid_math import (
    METHODS,
    children_of,
    parent_from_children,
    parent_of,
    reduce_2x2,
)
from fastraster.model.stats import parse_stats
from fastraster.pipelines.pyramid import build_pyramid
from tests.conftest import PDG_EXAMPLE, assert_no_temp_files, needs_pdg_example, read_tif

# ---------------------------------------------------------------------------------------------
# reduce_2x2 against a plain per-block reference
# ---------------------------------------------------------------------------------------------


def _reference_block(vals, method, nodata):
    """The documented rule for one 2x2 block, written out on a list of 4 numbers (NW, NE,
    SW, SE)."""
    def is_empty(v):
        return np.isnan(v) or (nodata is not None and v == nodata)

    data = [v for v in vals if not is_empty(v)]
    fill = np.nan if nodata is None else nodata
    if method == "nearest":
        return fill if is_empty(vals[3]) else vals[3]
    if not data:
        return fill
    if method == "sum":
        return sum(data)
    if method == "average":
        return sum(data) / 4
    if method == "mean":
        return sum(data) / len(data)
    if method == "min":
        return min(data)
    if method == "max":
        return max(data)
    best, best_n, seen = None, 0, {}
    for v in data:  # mode: scanning in block order, the value whose count first tops
        seen[v] = seen.get(v, 0) + 1
        if seen[v] > best_n:
            best, best_n = v, seen[v]
    return best


def _reference(a, method, nodata):
    h, w = a.shape[0] // 2, a.shape[1] // 2
    out = np.empty((h, w))
    for i in range(h):
        for j in range(w):
            block = a[2 * i:2 * i + 2, 2 * j:2 * j + 2]
            out[i, j] = _reference_block(list(block.ravel()), method, nodata)
    return out


def _random_raster(rng, shape, nodata, nan_share):
    # Small integers make modes and ties frequent; a share of empty pixels and NaN.
    a = rng.integers(0, 4, shape).astype(np.float64)
    a[rng.random(shape) < 0.3] = 0.0 if nodata is None else nodata
    a[rng.random(shape) < nan_share] = np.nan
    a += np.where(rng.random(shape) < 0.3, rng.random(shape), 0.0)  # some non-integers
    return a


@pytest.mark.parametrize("nodata", [None, 0.0, -1.0])
@pytest.mark.parametrize("method", METHODS)
def test_reduce_2x2_matches_per_block_reference(method, nodata):
    rng = np.random.default_rng(10 * METHODS.index(method) + [None, 0.0, -1.0].index(nodata))
    for shape, nan_share in [((2, 2), 0.05), ((8, 6), 0.05), ((32, 32), 0.05),
                             ((32, 32), 0.0)]:  # without NaN: the sum/average fast path
        a = _random_raster(rng, shape, nodata, nan_share)
        got = reduce_2x2(a, method, nodata)
        want = _reference(a, method, nodata)
        np.testing.assert_allclose(got, want, rtol=1e-15, atol=0, equal_nan=True,
                                   err_msg=f"{method} nodata={nodata} shape={shape}")


def test_reduce_2x2_leading_axes_and_errors():
    a = np.arange(2 * 4 * 4, dtype=float).reshape(2, 4, 4)
    got = reduce_2x2(a, "sum")
    assert got.shape == (2, 2, 2)
    np.testing.assert_array_equal(got[1], a[1].reshape(2, 2, 2, 2).sum(axis=(1, 3)))
    with pytest.raises(ValueError, match="even"):
        reduce_2x2(np.zeros((3, 4)), "sum")
    with pytest.raises(ValueError, match="resampling method"):
        reduce_2x2(np.zeros((4, 4)), "bilinear")


@pytest.mark.parametrize("method", ["sum", "average", "min", "max", "mode", "nearest"])
def test_reduce_2x2_equals_gdal_resampling(method):
    """Without nodata, every method is what pdgraster's rasterio.warp.reproject gives on an
    exactly aligned 2x grid (GDAL picks the SE pixel for nearest; mode ties go to the first
    value in row-major order)."""
    from affine import Affine
    from rasterio.warp import Resampling, reproject

    rng = np.random.default_rng(7)
    src = rng.integers(0, 3, (64, 64)).astype(np.float64) / 4  # dyadic: exact sums
    dst = np.zeros((32, 32))
    reproject(src, dst, src_transform=Affine(1 / 64, 0, 0, 0, -1 / 64, 1),
              dst_transform=Affine(1 / 32, 0, 0, 0, -1 / 32, 1), src_crs="EPSG:4326",
              dst_crs="EPSG:4326", resampling=Resampling[method])
    np.testing.assert_array_equal(reduce_2x2(src, method), dst)


def _numpy_parent(children, methods, fills):
    """Reference: mosaic with numpy (missing child = fill), then reshape-reduce per band."""
    bands, h, w = next(c for c in children if c is not None).shape
    out = []
    for b in range(bands):
        m = np.full((2 * h, 2 * w), fills[b])
        for k, c in enumerate(children):
            if c is not None:
                r, col = divmod(k, 2)
                m[r * h:(r + 1) * h, col * w:(col + 1) * w] = c[b]
        blocks = m.reshape(h, 2, w, 2)
        out.append(blocks.sum(axis=(1, 3)) if methods[b] == "sum"
                   else blocks.mean(axis=(1, 3)))
    return np.stack(out)


@pytest.mark.parametrize("present", [(1, 1, 1, 1), (1, 0, 0, 0), (0, 1, 1, 0), (0, 0, 0, 1)])
def test_parent_from_children_with_missing_children(present):
    rng = np.random.default_rng(sum(p << i for i, p in enumerate(present)))
    stats = parse_stats(None)  # polygon_count: sum, coverage: average, nodata 0
    children = [np.stack([rng.integers(0, 3, (16, 16)).astype(float),
                          rng.random((16, 16)) * (rng.random((16, 16)) < 0.5)])
                if p else None for p in present]
    got = parent_from_children(children, stats)
    want = _numpy_parent(children, ["sum", "average"], [0.0, 0.0])
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=1e-16)
    for k, p in enumerate(present):  # a missing child's quadrant is empty
        r, c = divmod(k, 2)
        quadrant = got[:, r * 8:(r + 1) * 8, c * 8:(c + 1) * 8]
        if not p:
            assert (quadrant == 0).all()


def test_parent_from_children_fills_nodata_and_rejects_bad_input():
    stats = parse_stats([{"name": "m", "weight_by": "count", "property": "v",
                          "aggregation_method": "max", "resampling_method": "max",
                          "nodata_val": -9999}])
    child = np.full((1, 4, 4), -9999.0)
    child[0, 0, 0] = 5
    got = parent_from_children([child, None, None, None], stats)
    assert got[0, 0, 0] == 5
    assert (got[0].ravel()[1:] == -9999).all()
    with pytest.raises(ValueError, match="at least one child"):
        parent_from_children([None] * 4, stats)
    with pytest.raises(ValueError, match="differ in shape"):
        parent_from_children([child, np.zeros((1, 2, 2)), None, None], stats)


def test_tile_family():
    assert children_of((3, 1, 4)) == [(6, 2, 5), (7, 2, 5), (6, 3, 5), (7, 3, 5)]
    assert {parent_of(c) for c in children_of((3, 1, 4))} == {(3, 1, 4)}
    with pytest.raises(ValueError):
        parent_of((0, 0, 0))


# ---------------------------------------------------------------------------------------------
# The pyramid on disk
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_z13(sample_staged, tmp_path_factory):
    out = tmp_path_factory.mktemp("z13")
    report = fastraster.rasterize_dir(sample_staged, out, progress=False)
    assert [r["status"] for r in report] == ["ok", "ok"]
    return out


def _tifs(root, z=None):
    return sorted(p for p in root.rglob("*.tif") if z is None or p.parts[-3] == str(z))


def test_build_pyramid_writes_every_level_and_conserves_totals(sample_z13, tmp_path):
    import shutil

    root = tmp_path / "gt"
    shutil.copytree(sample_z13, root)
    report = build_pyramid(root, (0, 13), progress=False)
    assert report.n("ok") == 13 and not report.errors, report.errors
    assert [r["tile"][2] for r in report] == list(range(12, -1, -1))
    children = [read_tif(p)[0] for p in _tifs(root, 13)]
    total_count = sum(c[0].astype(np.float64).sum() for c in children)
    total_cov = sum(c[1].astype(np.float64).sum() for c in children)
    for z in range(13):
        (path,) = _tifs(root, z)
        data, prof, names, transform = read_tif(path)
        x, y = int(path.parts[-2]), int(path.stem)
        assert names == ("polygon_count", "coverage")
        assert prof["dtype"] == "float32" and prof["nodata"] == 0  # the children's
        g = TileGrid.from_tile((x, y, z), "WorldCRS84Quad")
        assert tuple(transform)[:6] == tuple(g.transform)[:6]
        d = data.astype(np.float64)
        # Counts are sums (exact integers in float32); coverage averages: x 4**(13 - z).
        assert d[0].sum() == total_count
        assert d[1].sum() * 4 ** (13 - z) == pytest.approx(total_cov, rel=1e-6)
    with open(root / "rasters_summary.csv") as fh:
        zs = sorted({int(r["z"]) for r in csv.DictReader(fh)})
    assert zs == list(range(14))
    assert_no_temp_files(root)


def test_build_pyramid_resumes(sample_z13, tmp_path):
    import shutil

    root = tmp_path / "gt"
    shutil.copytree(sample_z13, root)
    build_pyramid(root, (5, 13), progress=False)
    before = {p: (p.stat().st_mtime_ns, read_tif(p)[0]) for p in _tifs(root)}
    again = build_pyramid(root, (5, 13), progress=False)
    assert again.n("skipped") == 8 and again.n("ok") == 0
    victim = _tifs(root, 9)[0]
    victim.unlink()
    resumed = build_pyramid(root, (5, 13), progress=False)
    assert [r["tile"][2] for r in resumed if r["status"] == "ok"] == [9]
    for p, (mtime, data) in before.items():
        np.testing.assert_array_equal(read_tif(p)[0], data)
        if p != victim:
            assert p.stat().st_mtime_ns == mtime
    forced = build_pyramid(root, (12, 13), progress=False, overwrite=True)
    assert forced.n("ok") == 1
    assert not _tifs(root, 4)


def test_build_pyramid_reports_errors_and_goes_on(sample_z13, tmp_path):
    import shutil

    root = tmp_path / "gt"
    shutil.copytree(sample_z13, root)
    bad = _tifs(root, 13)[0]
    bad.write_bytes(b"not a tiff")
    from fastraster import RunFailures

    with pytest.warns(RunFailures, match=r"1 of 1 files failed in step pyramid"):
        report = build_pyramid(root, (11, 13), progress=False)
    (rec,) = report
    assert rec["status"] == "error" and str(bad) in rec["error"]
    assert not _tifs(root, 12)
    with pytest.warns(UserWarning, match="nothing to build"):
        assert len(build_pyramid(root, (0, 7), progress=False)) == 0


@pytest.mark.parametrize("summary", [True, "custom"])
def test_build_pyramid_streamed_records_equal_kept_ones(sample_z13, tmp_path, summary):
    """``keep_records=False`` (the CLI's): the same files and CSV rows as keeping every
    record, the counts in the report, only the failed records kept; a custom summary path
    gets the rows, the events CSV beside it; resuming keeps the earlier rows."""
    import shutil

    from fastraster import RunFailures

    def rows(path, drop=("seconds", "read_s", "compute_s", "write_s", "read_cpu_s",
                         "compute_cpu_s", "write_cpu_s")):
        with open(path) as fh:
            return sorted(tuple(v for k, v in r.items() if k not in drop)
                          for r in csv.DictReader(fh))

    reports = {}
    for keep in (True, False):
        root = tmp_path / f"keep-{keep}" / "gt"
        shutil.copytree(sample_z13, root)
        where = True if summary is True else tmp_path / f"keep-{keep}" / "s" / "summary.csv"
        first = build_pyramid(root, (6, 13), progress=False, keep_records=keep, summary=where)
        assert first.n("ok") == 7 and len(first) == (7 if keep else 0)
        # resume: z12 and z11 kept, z10 fails on its damaged child, so nothing further
        for p in _tifs(root, 9) + _tifs(root, 10):
            p.unlink()
        damaged = _tifs(root, 11)[0]
        damaged.write_bytes(b"not a tiff")
        with pytest.warns(RunFailures, match="1 of 3 files failed in step pyramid"):
            reports[keep] = build_pyramid(root, (6, 13), progress=False, keep_records=keep,
                                          summary=where)
        csvs = (root / "rasters_summary.csv" if summary is True else where,
                (root if summary is True else where.parent) / "rasterization_events.csv")
        reports[keep].rows = [[tuple(v.replace(str(root), "<gt>") for v in r) for r in rows(c)]
                              for c in csvs]
        reports[keep].tifs = {p.relative_to(root): read_tif(p)[0] for p in _tifs(root)
                              if p != damaged}
        assert not [p for p in root.parent.rglob(".*")]  # no part file left
    kept, streamed = reports[True], reports[False]
    # summary: the children's rows, if any, + 7 parents x 2 bands of the first run (z10's
    # rows stay: its output was not redone); events: + 7 + 3 rows
    before = [len(rows(c)) if c.exists() else 0 for c in
              (sample_z13 / "rasters_summary.csv", sample_z13 / "rasterization_events.csv")]
    if summary is not True:
        before = [0, 0]
    assert streamed.rows == kept.rows
    assert [len(r) for r in kept.rows] == [before[0] + 2 * 7, before[1] + 10]
    assert streamed.tifs.keys() == kept.tifs.keys()
    for k in kept.tifs:
        np.testing.assert_array_equal(streamed.tifs[k], kept.tifs[k])
    assert len(kept) == 3 and len(streamed) == 1  # only the failed record kept
    assert [streamed.n(s) for s in ("ok", "skipped", "error")] == \
        [kept.n(s) for s in ("ok", "skipped", "error")] == [0, 2, 1]
    assert streamed.errors[0]["error"].replace("keep-False", "keep-True") == \
        kept.errors[0]["error"]
    assert streamed.summary_line().split(" in ")[0] == kept.summary_line().split(" in ")[0]



def test_build_pyramid_sweeps_the_folder_of_a_custom_summary(sample_z13, tmp_path):
    """A killed ``build_pyramid(keep_records=False, summary=<path>)`` leaves its streamed CSV
    parts (summary, events, skipped outputs) beside that path, out of the tree: the next run
    writing there removes them, as it removes those in the tree."""
    import shutil

    from fastraster.io.atomic import HOST
    from tests.conftest import dead_pid

    root = tmp_path / "gt"
    shutil.copytree(sample_z13, root)
    where = tmp_path / "s" / "summary.csv"
    where.parent.mkdir()
    dead = dead_pid()
    for name, c in (("summary.csv", "a"), ("rasterization_events.csv", "b"),
                    ("skipped.csv", "c")):
        (where.parent / f".{name}.{HOST}.{dead}.{c * 32}.tmp").write_text("x\n")
    report = build_pyramid(root, (10, 13), progress=False, keep_records=False, summary=where)
    assert report.n("ok") == 3 and report.litter_removed == 3
    assert sorted(p.name for p in where.parent.iterdir()) == [
        "rasterization_events.csv", "summary.csv"]

def test_build_pyramid_parallel_equals_serial(sample_z13, tmp_path):
    import shutil

    for name, kw in (("serial", {}), ("threads", {"n_jobs": 2, "backend": "threading",
                                                 "batch_size": 1})):
        shutil.copytree(sample_z13, tmp_path / name)
        build_pyramid(tmp_path / name, (8, 13), progress=False, **kw)
    a, b = _tifs(tmp_path / "serial"), _tifs(tmp_path / "threads")
    assert [p.relative_to(tmp_path / "serial") for p in a] == \
        [p.relative_to(tmp_path / "threads") for p in b]
    for p, q in zip(a, b):
        np.testing.assert_array_equal(read_tif(p)[0], read_tif(q)[0])


def test_cli_pyramid(sample_z13, tmp_path):
    import shutil

    from click.testing import CliRunner

    from fastraster.cli import main

    root = tmp_path / "gt"
    shutil.copytree(sample_z13, root)
    result = CliRunner().invoke(main, ["pyramid", str(root), "--min-z", "10", "--workers",
                                       "1", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "3 tiles: 3 ok, 0 skipped, 0 failed" in result.output
    assert len(_tifs(root)) == 2 + 3


# ---------------------------------------------------------------------------------------------
# Parity with pdgraster's own lower zoom levels
# ---------------------------------------------------------------------------------------------

#: pdgraster made its parents with rasterio merge + reproject on a grid ~1e-13 degree off
#: its children's, so GDAL's sum/average weights are not exactly 1: its counts are like
#: 6200.99999997 and up to 1.3e-7 of a count leaks into empty neighbours. Counts: 1e-6
#: relative, plus 1e-6 absolute for those leaks (ours are exact integers, and pdgraster's
#: round to them exactly). Coverage: 1e-8 absolute (SPEC §7; pdgraster's z13 coverage is
#: itself up to 4.2e-9 off exact; measured at z12-z0: <= 1.4e-9).
COUNT_RTOL, COUNT_ATOL, COVERAGE_TOL = 1e-6, 1e-6, 1e-8


@pytest.fixture(scope="module")
def pdg_pyramid(tmp_path_factory):
    if not (PDG_EXAMPLE / "staged").is_dir():
        pytest.skip(f"pdgraster reference data not found at {PDG_EXAMPLE}")
    out = tmp_path_factory.mktemp("pdg")
    fastraster.rasterize_dir(PDG_EXAMPLE / "staged", out, dtype="float64", progress=False)
    report = build_pyramid(out, (0, 13), progress=False)
    assert report.n("ok") == 13, report.errors
    return out


@needs_pdg_example
@pytest.mark.parametrize("z", range(13))
def test_lower_zooms_match_pdgraster(pdg_pyramid, z):
    refs = sorted((PDG_EXAMPLE / "geotiff" / "WorldCRS84Quad" / str(z)).rglob("*.tif"))
    assert refs, z
    for ref in refs:
        ours = pdg_pyramid / ref.relative_to(PDG_EXAMPLE / "geotiff")
        assert ours.exists(), ours
        a, prof, names, transform = read_tif(ours)
        b, rprof, rnames, rtransform = read_tif(ref)
        assert names == rnames and a.shape == b.shape and prof["dtype"] == rprof["dtype"]
        np.testing.assert_allclose(a[0], b[0], rtol=COUNT_RTOL, atol=COUNT_ATOL)
        np.testing.assert_array_equal(a[0], np.round(b[0]))
        assert np.abs(a[1] - b[1]).max() <= COVERAGE_TOL
        assert np.allclose(tuple(transform)[:6], tuple(rtransform)[:6], atol=1e-9)


@needs_pdg_example
def test_pdgraster_average_counts_empty_pixels_as_zero(pdg_pyramid):
    """Which rule pdgraster's coverage follows: empty (0) pixels count in the average
    ("average"); averaging only non-empty pixels ("mean") is far off."""
    ref = PDG_EXAMPLE / "geotiff" / "WorldCRS84Quad" / "12" / "762" / "455.tif"
    b = read_tif(ref)[0][1]
    mosaic = np.zeros((512, 512))
    for k, child in enumerate(children_of((762, 455, 12))):
        path = pdg_pyramid / "WorldCRS84Quad" / "13" / str(child[0]) / f"{child[1]}.tif"
        r, c = divmod(k, 2)
        mosaic[r * 256:(r + 1) * 256, c * 256:(c + 1) * 256] = read_tif(path)[0][1]
    assert np.abs(reduce_2x2(mosaic, "average", 0) - b).max() <= COVERAGE_TOL
    assert np.abs(reduce_2x2(mosaic, "mean", 0) - b).max() > 0.1


def test_geotiff_dir_paths_are_strings_or_pathlike(sample_z13, tmp_path):
    import shutil

    root = tmp_path / "gt"
    shutil.copytree(sample_z13, root)
    report = build_pyramid(os.fspath(root), (12, 13), progress=False, summary=False)
    assert report.n("ok") == 1
    assert report[0]["output"] == os.path.join(os.fspath(root), "WorldCRS84Quad", "12",
                                               "762", "455.tif")


@given(st.lists(st.tuples(st.integers(0, 2**15), st.integers(0, 2**15)), max_size=60),
       st.integers(1, 23))
@settings(max_examples=100, deadline=None)
def test_parents_of_a_level_are_parent_of_each_tile_sorted(xys, z):
    from fastraster.pipelines.pyramid import _parents

    tiles = np.array([(x, y, z) for x, y in xys], dtype=np.int64).reshape(-1, 3)
    want = sorted({parent_of((x, y, z)) for x, y in xys})
    assert [tuple(t) for t in _parents(tiles).tolist()] == want
