"""Comparing the staged-file readers: ``read_staged`` (pyogrio, the reference), the lean
sqlite3 reader and ``read_staged_auto`` must give the same TileData, errors and warnings."""

from __future__ import annotations

import warnings

import numpy as np

from fastraster.io.gpkg_lean import LeanGpkgUnsupported, read_staged_auto, read_staged_lean
from fastraster.io.staged import InputError, read_staged


def assert_same_tile_data(a, b):
    for u, v in zip(a.polygons.arrays, b.polygons.arrays):
        assert u.dtype == v.dtype and np.array_equal(u, v)
    assert (a.centroids is None) == (b.centroids is None)
    if a.centroids is not None:
        for u, v in zip(a.centroids, b.centroids):
            assert np.array_equal(u, v, equal_nan=True)
    assert (a.duplicated is None) == (b.duplicated is None)
    if a.duplicated is not None:
        assert np.array_equal(a.duplicated, b.duplicated)
    assert a.attributes.keys() == b.attributes.keys()
    for k in a.attributes:
        assert np.array_equal(a.attributes[k], b.attributes[k], equal_nan=True)
    assert a.crs == b.crs  # as pyogrio reports it (the lean reader asks GDAL)
    assert a.bytes_read == b.bytes_read
    assert a.warnings == b.warnings


def outcome(reader, path, **kw):
    """("ok", TileData), ("error", message) or ("handed over", reason) of one reader."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # GDAL's own remarks on damaged files
            return "ok", reader(path, **kw)
    except InputError as exc:
        return "error", str(exc)
    except LeanGpkgUnsupported as exc:
        return "handed over", str(exc)


def assert_same_outcome(a, b):
    assert a[0] == b[0], (a, b)
    if a[0] == "ok":
        assert_same_tile_data(a[1], b[1])
    else:
        assert a[1] == b[1]


def assert_readers_agree(path, lean_reads: bool, **kw):
    """read_staged_auto gives read_staged's outcome; the lean reader gives it too, or (only
    where ``lean_reads`` is False) hands the file over."""
    ref = outcome(read_staged, path, **kw)
    assert_same_outcome(outcome(read_staged_auto, path, **kw), ref)
    lean = outcome(read_staged_lean, path, **kw)
    if lean_reads:
        assert_same_outcome(lean, ref)
    else:
        assert lean[0] == "handed over", lean
    return ref
