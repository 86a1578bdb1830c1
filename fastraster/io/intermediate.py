"""The intermediate of ``rasterize_sources`` between its map pass (per scene) and its reduce
pass (per tile).

One Arrow IPC file per scene, one record batch per chunk read. A batch holds one row per
(unflagged-by-clip polygon, tile) pair, sorted by tile, so a tile's rows are one contiguous
slice; the map pass returns each batch's tile index (tile keys with row ranges). Columns:

* ``feature`` (int64): the polygon's feature index in its scene;
* ``cx``, ``cy`` (float64): its centroid (tile matrix set CRS, GEOS's doubles);
* ``overlap_<w>`` (uint64): its footprint-overlap bits (:mod:`fastraster.model.dedup`);
* ``attr:<column>`` (float64): attribute columns the statistics read;
* ``geometry``: the polygon (repaired if invalid) in the tile matrix set's CRS, GeoArrow's
  native MultiPolygon layout ``list<list<list<struct<x: double, y: double>>>>`` (float64
  coordinates, int64 offsets), so it comes back as :class:`RaggedPolygons` without copying.

Uncompressed and memory-mapped: a tile reads its slice in place, whatever the batch size
(compressed IPC buffers would be decompressed whole for every slice).
"""

from __future__ import annotations

import os

import numpy as np

from fastraster.io.atomic import atomic_path
from fastraster.model.geometry import RaggedPolygons

ATTR = "attr:"


def _geometry_array(polys: RaggedPolygons):
    import pyarrow as pa

    coords = pa.StructArray.from_arrays([pa.array(polys.x), pa.array(polys.y)],
                                        names=["x", "y"])
    rings = pa.LargeListArray.from_arrays(pa.array(polys.ring_offsets), coords)
    parts = pa.LargeListArray.from_arrays(pa.array(polys.part_offsets), rings)
    return pa.LargeListArray.from_arrays(pa.array(polys.geom_offsets), parts)


def make_batch(feature, cx, cy, bits, attrs: dict, polys: RaggedPolygons):
    """One record batch of rows (see the module docstring)."""
    import pyarrow as pa

    cols = {"feature": pa.array(np.asarray(feature, np.int64)),
            "cx": pa.array(np.asarray(cx, np.float64)),
            "cy": pa.array(np.asarray(cy, np.float64))}
    for w in range(bits.shape[1]):
        cols[f"overlap_{w}"] = pa.array(np.ascontiguousarray(bits[:, w]))
    for name, v in attrs.items():
        cols[ATTR + name] = pa.array(np.asarray(v, np.float64))
    cols["geometry"] = _geometry_array(polys)
    return pa.RecordBatch.from_pydict(cols)


class SceneWriter:
    """Write a scene's batches to ``path`` (atomically: complete or absent)."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self._ctx = None
        self._writer = None
        self.n_batches = 0
        self.nbytes = 0

    def write(self, batch) -> int:
        """Append a batch; returns its index in the file."""
        import pyarrow as pa

        if self._writer is None:
            self._ctx = atomic_path(self.path)
            tmp = self._ctx.__enter__()
            self._writer = pa.ipc.new_file(tmp, batch.schema)
        self._writer.write_batch(batch)
        self.n_batches += 1
        return self.n_batches - 1

    def close(self, error=None):
        if self._writer is None:
            return
        self._writer.close()
        if error is None:
            self._ctx.__exit__(None, None, None)
            self.nbytes = os.path.getsize(self.path)
        else:
            self._ctx.__exit__(type(error), error, error.__traceback__)


class SceneReader:
    """Read row ranges of a scene's intermediate file (memory-mapped, zero-copy).

    Each record batch is turned into numpy arrays once (views into the mapped file, but the
    overlap words, stacked once per batch) and sliced per tile: a reduce task reads the
    consecutive tiles of a batch without going through Arrow per slice.
    """

    def __init__(self, path):
        import pyarrow as pa

        self.path = os.fspath(path)
        self._source = pa.memory_map(self.path, "r")
        self._file = pa.ipc.open_file(self._source)
        self._batches = {}

    def rows(self, batch_index: int, start: int, stop: int) -> Rows:
        b = self._batches.get(batch_index)
        if b is None:
            b = self._batches[batch_index] = BatchArrays(self._file.get_batch(batch_index))
        return b.rows(start, stop)

    def close(self):
        self._batches.clear()
        self._file = None
        self._source.close()


class BatchArrays:
    """The columns of one record batch as numpy arrays (see the module docstring)."""

    def __init__(self, batch):
        names = batch.schema.names

        def col(name):
            return batch.column(name).to_numpy()

        self.feature, self.cx, self.cy = col("feature"), col("cx"), col("cy")
        words = sorted((c for c in names if c.startswith("overlap_")),
                       key=lambda c: int(c[len("overlap_"):]))
        self.bits = np.column_stack([col(c) for c in words]) if words else None
        self.attrs = {c[len(ATTR):]: col(c) for c in names if c.startswith(ATTR)}
        geom = batch.column("geometry")
        parts = geom.values
        rings = parts.values
        coords = rings.values
        self.go = np.asarray(geom.offsets)
        self.po = np.asarray(parts.offsets)
        self.ro = np.asarray(rings.offsets)
        self.x = np.asarray(coords.field("x"))
        self.y = np.asarray(coords.field("y"))

    def rows(self, start: int, stop: int) -> Rows:
        bits = (self.bits[start:stop] if self.bits is not None
                else np.zeros((stop - start, 1), np.uint64))
        # The polygons of rows start:stop, offsets rebased to 0 (coordinates stay views).
        go = self.go[start:stop + 1]
        po = self.po[go[0]:go[-1] + 1]
        ro = self.ro[po[0]:po[-1] + 1]
        polys = RaggedPolygons(self.x[ro[0]:ro[-1]], self.y[ro[0]:ro[-1]],
                               (ro - ro[0]).astype(np.int64), (po - po[0]).astype(np.int64),
                               (go - go[0]).astype(np.int64))
        return Rows(self.feature[start:stop], self.cx[start:stop], self.cy[start:stop], bits,
                    {k: v[start:stop] for k, v in self.attrs.items()}, polys)


class Rows:
    """Rows of one scene: the columns as numpy arrays and the polygons as ragged arrays."""

    __slots__ = ("feature", "cx", "cy", "bits", "attrs", "polys", "scene")

    def __init__(self, feature, cx, cy, bits, attrs, polys, scene=None):
        self.feature = feature
        self.cx = cx
        self.cy = cy
        self.bits = bits
        self.attrs = attrs
        self.polys = polys
        self.scene = scene  # scene id of each row, when rows of several scenes are joined

    def __len__(self):
        return self.feature.shape[0]

    @classmethod
    def from_batch(cls, batch, start: int, stop: int) -> Rows:
        """Rows ``start:stop`` of a record batch."""
        return BatchArrays(batch).rows(start, stop)

    def take(self, index) -> Rows:
        return Rows(self.feature[index], self.cx[index], self.cy[index], self.bits[index],
                    {k: v[index] for k, v in self.attrs.items()}, self.polys.take(index))
