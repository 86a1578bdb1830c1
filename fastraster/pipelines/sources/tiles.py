"""The reduce pass of ``rasterize_sources``: one executor item per tile, sent in batches of
nearby tiles; per tile, the rows of the scenes present in it (memory-mapped slices of the map
pass's Arrow files), flagged with the tile's set of present scenes (PDG's per-tile footprint
dedup, one AND per row), through the package's statistics
(:func:`~fastraster.model.compute.compute_bands`), written as a GeoTIFF through the same
:func:`~fastraster.io.geotiff.write_geotiff` as the staged pipeline.

:func:`plan_tiles` turns the map pass's records into compact arrays (no Python object per
tile or slice in the driver); :meth:`TileTask.jobs` hands the supervised executor one
:class:`TileJob` at a time, built from them on demand, so a dead worker costs only the tile
it was running and a failed tile is retried alone (:func:`reduce_job`). The tiles of a batch
share their open scene files (:func:`close_readers` after each batch).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from dataclasses import dataclass

import numpy as np

from fastraster.execution.executor import LazyItems
from fastraster.execution.tasks import safe_task
from fastraster.execution.worker import prepare_worker
from fastraster.io.geotiff import write_geotiff
from fastraster.io.intermediate import Rows, SceneReader
from fastraster.io.summary import band_summary
from fastraster.io.tilepaths import tile_path
from fastraster.model import dedup
from fastraster.model.assign import key_xy, morton
from fastraster.model.compute import compute_bands
from fastraster.model.geometry import RaggedPolygons, concat
from fastraster.model.grid import TileGrid
from fastraster.model.stats import attribute_columns
from fastraster.pipelines.source_options import PdgSourceRules


@dataclass(frozen=True)
class TileJob:
    """One output tile: where its rows are and which scenes are present in it."""

    tile: tuple
    out_path: str
    present: frozenset  # scene ids with any row in the tile (flagged or not)
    slices: tuple  # (scene id, intermediate path, neighbours, batch, start, stop), sorted
    redo: bool = False  # write even if the output exists (run again after a fault)


def tile_rows(job: TileJob, readers: dict) -> tuple[Rows | None, int]:
    """The tile's rows that PDG counts (unflagged), in scene then feature order, and the
    number of rows flagged by footprint overlaps."""
    parts = []
    sids = []
    n_flagged = 0
    for sid, path, neighbours, batch, start, stop in job.slices:
        reader = readers.get(path)
        if reader is None:
            reader = readers[path] = SceneReader(path)
        rows = reader.rows(batch, start, stop)
        mask = dedup.tile_mask(neighbours, job.present, rows.bits.shape[1])
        f = dedup.flagged(rows.bits, mask)
        if f.any():
            n_flagged += int(f.sum())
            rows = rows.take(~f)
        parts.append(rows)
        sids.append(np.full(len(rows), sid, np.int64))
    if not parts:
        return None, n_flagged
    polys = concat([r.polys for r in parts])
    # Fresh, writable arrays: the kernels then see one array type whatever the source (the
    # slices are read-only views of the mapped files).
    polys = RaggedPolygons(*(np.array(a) for a in polys.arrays))
    cat = [np.concatenate([getattr(r, k) for r in parts]) for k in ("feature", "cx", "cy")]
    attrs = {k: np.concatenate([r.attrs[k] for r in parts]) for k in parts[0].attrs}
    return Rows(cat[0], cat[1], cat[2], None, attrs, polys, np.concatenate(sids)), n_flagged


def reduce_tile(job: TileJob, rules: PdgSourceRules, overwrite: bool, readers: dict) -> dict:
    """Rasterize one tile from its rows and write it; never raises, returns a record.

    An existing output is skipped unless ``overwrite`` (a killed run resumes); the CSV
    writer reads the summary rows of a skipped output back from the file when the summary
    lacks them (:func:`fastraster.io.records.write_summary`: the killed run never wrote its
    CSVs), as for every pipeline.
    """
    names = [s.name for s in rules.stats]

    def work(rec):
        if not overwrite and os.path.exists(job.out_path):
            rec["status"] = "skipped"
            return
        grid = TileGrid.from_tile(job.tile, rules.tms, rules.tile_size)
        rec["bounds"] = [grid.left, grid.right, grid.bottom, grid.top]
        t0 = time.perf_counter()
        rows, n_flagged = tile_rows(job, readers)
        t1 = time.perf_counter()
        if rows is None:
            rows = Rows(np.empty(0, np.int64), np.empty(0), np.empty(0), None,
                        {c: np.empty(0) for c in attribute_columns(rules.stats)},
                        RaggedPolygons.empty())
        array = compute_bands(rows.polys, grid, rules.stats, centroids=(rows.cx, rows.cy),
                              attributes=rows.attrs)
        t2 = time.perf_counter()
        written = array.astype(rules.dtype, copy=False)  # summaries describe the file
        write_geotiff(job.out_path, written, grid, names, dtype=rules.dtype,
                      nodata=rules.nodata)
        t3 = time.perf_counter()
        rec.update(status="ok", polygons=len(rows.polys), flagged=n_flagged,
                   read_s=t1 - t0, compute_s=t2 - t1, write_s=t3 - t2,
                   summary=[dict(stat=n, **band_summary(written[b]))
                            for b, n in enumerate(names)],
                   summary_s=time.perf_counter() - t3)

    return safe_task(work, job.out_path, job.tile, output=job.out_path, summary=None)


#: Per thread (threads of the threading backend run batches side by side): the scene files
#: the tiles of the current batch opened, by path.
_OPEN = threading.local()


def _readers() -> dict:
    readers = getattr(_OPEN, "readers", None)
    if readers is None:
        readers = _OPEN.readers = {}
    return readers


def reduce_job(job: TileJob, rules: PdgSourceRules, overwrite: bool) -> dict:
    """:func:`reduce_tile` of one tile (the executor's item task). The scene files it opens
    stay open for the next tiles of its batch (nearby tiles read the same scenes; each
    record batch is turned into numpy arrays once) until :func:`close_readers`."""
    prepare_worker()
    return reduce_tile(job, rules, overwrite or job.redo, _readers())


def close_readers() -> None:
    """Close the scene files this thread's batch opened (the executor's ``after_batch``)."""
    readers = _readers()
    for r in readers.values():
        r.close()
    readers.clear()


def describe_tile(job: TileJob):
    """``(path, tile, outputs)`` of a tile, for the executor."""
    return job.out_path, job.tile, (job.out_path,)


def redo_tile(job: TileJob) -> TileJob:
    """The tile run again after a fault: written even if its output exists (the earlier
    execution may have written it and died before its record was kept)."""
    return dataclasses.replace(job, redo=True)


@dataclass(frozen=True)
class TileTask:
    """A reduce task: consecutive tiles (Z-order) and, as compact arrays, the scenes present
    in each and where each tile's rows are (no Python object per tile or slice, so the
    driver's plan of a 10^9-polygon run stays numpy-sized)."""

    keys: np.ndarray  # tile keys (m,)
    present_offsets: np.ndarray  # (m + 1,) into present
    present: np.ndarray  # scene ids present, per tile ascending
    slice_offsets: np.ndarray  # (m + 1,) into slices
    slices: np.ndarray  # (k, 4): scene id, batch, start, stop; per tile by scene, batch
    paths: dict  # scene id -> intermediate file
    neighbours: dict  # scene id -> preferred neighbours

    def __len__(self) -> int:
        return self.keys.shape[0]

    def jobs(self, rules: PdgSourceRules, out_dir) -> LazyItems:
        """The tiles as :class:`TileJob` s (a sequence building each on access)."""
        out_dir = os.fspath(out_dir)
        return LazyItems(range(len(self)), lambda i: self.job(i, rules, out_dir))

    def job(self, i: int, rules: PdgSourceRules, out_dir) -> TileJob:
        """Tile ``i`` as a :class:`TileJob`."""
        tx, ty = key_xy(self.keys[i:i + 1])
        tile = (int(tx[0]), int(ty[0]), rules.z)
        sl = self.slices[self.slice_offsets[i]:self.slice_offsets[i + 1]]
        present = self.present[self.present_offsets[i]:self.present_offsets[i + 1]]
        return TileJob(tile, tile_path(out_dir, rules.tms, tile), frozenset(present.tolist()),
                       tuple((sid, self.paths[sid], self.neighbours.get(sid, ()), b, a, e)
                             for sid, b, a, e in sl.tolist()))


def tile_jobs(scene_recs, neighbours: dict, rules: PdgSourceRules, out_dir) -> LazyItems:
    """Every tile any scene is present in, in Z-order, as :class:`TileJob` s built on
    access (:meth:`TileTask.jobs`)."""
    tasks = plan_tiles(scene_recs, neighbours, tiles_per_task=n_tiles(scene_recs))
    return tasks[0].jobs(rules, out_dir) if tasks else LazyItems((), None)


def plan_tiles(scene_recs, neighbours: dict, tiles_per_task: int = 64) -> list[TileTask]:
    """The reduce tasks: every tile any scene is present in (flagged rows included), in
    Z-order, ``tiles_per_task`` at a time."""
    ok = [r for r in scene_recs if r["status"] == "ok"]
    pres_key = np.concatenate([r["present"] for r in ok] or [np.empty(0, np.int64)])
    if pres_key.size == 0:
        return []
    pres_sid = np.concatenate([np.full(r["present"].size, r["scene"], np.int64) for r in ok])
    parts = [(keys, np.full(keys.size, r["scene"], np.int64), np.full(keys.size, bi, np.int64),
              starts, stops) for r in ok for bi, keys, starts, stops in r["index"]]
    if parts:
        sk, ssid, sb, s0, s1 = (np.concatenate(a).astype(np.int64) for a in zip(*parts))
    else:
        sk = ssid = sb = s0 = s1 = np.empty(0, np.int64)
    keys = np.unique(pres_key)
    tx, ty = key_xy(keys)
    order = np.argsort(morton(tx, ty), kind="stable")
    keys = keys[order]
    rank = np.empty(keys.size, np.int64)
    rank[order] = np.arange(keys.size)  # position in Z-order of each sorted key

    def csr(k, *cols):
        r = rank[np.searchsorted(np.sort(keys), k)]
        o = np.lexsort((*reversed(cols), r))  # by tile, then the columns in order
        offsets = np.zeros(keys.size + 1, np.int64)
        np.cumsum(np.bincount(r, minlength=keys.size), out=offsets[1:])
        return offsets, [c[o] for c in cols]

    po, (psid,) = csr(pres_key, pres_sid)
    so, (ssid, sb, s0, s1) = csr(sk, ssid, sb, s0, s1)
    slices = np.column_stack([ssid, sb, s0, s1])
    paths = {r["scene"]: r["output"] for r in ok}
    tasks = []
    step = max(int(tiles_per_task), 1)
    for a in range(0, keys.size, step):
        b = min(a + step, keys.size)
        sl = slices[so[a]:so[b]]
        sids = np.unique(sl[:, 0]).tolist()
        tasks.append(TileTask(keys[a:b], po[a:b + 1] - po[a], psid[po[a]:po[b]],
                              so[a:b + 1] - so[a], sl, {i: paths[i] for i in sids},
                              {i: tuple(neighbours.get(i, ())) for i in sids}))
    return tasks


def n_tiles(scene_recs) -> int:
    """How many tiles the scenes are present in (the reduce pass's outputs)."""
    keys = [r["present"] for r in scene_recs if r["status"] == "ok"]
    return int(np.unique(np.concatenate(keys)).size) if keys else 0
