"""The map pass of ``rasterize_sources``: one executor item per scene (:func:`map_job`; a dead
worker costs only its scene, retried alone), staged in memory, its countable rows written,
sorted by tile, to one Arrow file (:mod:`fastraster.io.intermediate`).

Per chunk of features (bounded memory for any file size), PDG's steps in PDG's order
(:mod:`fastraster.model.staging`), the tiles each polygon intersects
(:mod:`fastraster.model.assign`) and its footprint-overlap bits (:mod:`fastraster.model.dedup`).
"""

from __future__ import annotations

import gc
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import shapely

from fastraster.execution.tasks import proc_self_value, safe_task
from fastraster.execution.worker import prepare_worker
from fastraster.io.intermediate import SceneWriter, make_batch
from fastraster.io.scenes import Footprint, Scene, decode_chunk, input_bytes, open_scene
from fastraster.io.staged import InputError
from fastraster.model import dedup, staging
from fastraster.model.assign import TileScheme, assign_tiles
from fastraster.model.geometry import centroids
from fastraster.model.repair import repair_invalid
from fastraster.model.stats import attribute_columns
from fastraster.pipelines.source_options import PdgSourceRules

#: Phase timers of a scene record (seconds, summed over its chunks).
PHASES = ("read_s", "filter_s", "simplify_s", "clip_s", "reproject_s", "centroid_s",
          "assign_s", "dedup_s", "validate_s", "store_s")


@dataclass(frozen=True)
class SceneJob:
    """What a map task needs about one scene (plain data, pickled to workers)."""

    scene: Scene
    footprint: Footprint | None
    neighbours: tuple  # preferred neighbours' scene ids, ascending
    neighbour_names: tuple
    neighbour_wkb: tuple  # their footprints in the tile matrix set CRS
    out_path: str


def map_scene(job: SceneJob, rules: PdgSourceRules, chunk_size: int) -> dict:
    """Stage one scene in memory and write its countable rows; never raises.

    Returns a record (:func:`~fastraster.execution.tasks.safe_task`) with, when ok,
    ``present`` (tile keys with any row of the scene, flagged or not), ``index`` (per
    written batch: tile keys and row ranges), counts and phase times (seconds).
    """
    scene = job.scene

    def work(rec):
        chars = read_chars()
        writer = SceneWriter(job.out_path)
        try:
            with gc_paused():
                _stage_scene(job, rules, chunk_size, rec, writer)
        except BaseException as exc:
            writer.close(exc)
            raise
        writer.close()
        after = read_chars()
        rec.update(status="ok", bytes_written=writer.nbytes,
                   read_chars=None if chars is None or after is None else after - chars)

    return safe_task(work, scene.label, None, output=job.out_path, scene=scene.id,
                     name=scene.name, **dict.fromkeys(PHASES, 0.0))


@contextmanager
def gc_paused():
    """Python's cyclic garbage collector paused while a scene is staged.

    A chunk makes tens of thousands of shapely objects (GEOS simplifies and clips them), and
    each allocation burst triggers collections that scan every live object; none of them
    is in a reference cycle (refcounting frees them), so the scans find nothing. Paused:
    map pass 14.1 instead of 16.5 us per polygon on the staging example (z13, one core,
    medians of 6 interleaved runs)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def read_chars() -> int | None:
    """Bytes this process has read through ``read()`` so far (Linux's ``rchar``; None where
    ``/proc`` cannot tell): the map task's difference is what reading its scene cost, so
    that benchmarks can show each scene file is read once."""
    return proc_self_value("io", "rchar")


def map_job(job: SceneJob, rules: PdgSourceRules, chunk_size: int) -> dict:
    """:func:`map_scene` of one scene (the executor's item task). Run again after a fault,
    it writes its intermediate anew (atomically), so no ``rerun`` variant is needed."""
    prepare_worker()
    return map_scene(job, rules, chunk_size)


def describe_scene(job: SceneJob):
    """``(path, tile, outputs)`` of a scene, for the executor: its label, no tile, its
    intermediate file (whose folder, the run's work folder, is swept of dead workers'
    temporary files)."""
    return job.scene.label, None, (job.out_path,)


def _stage_scene(job, rules, chunk_size, rec, writer):
    scene = job.scene
    label = scene.label
    if rules.clip_to_footprint and job.footprint is None:
        raise InputError(f"{label}: no footprint (clip_to_footprint needs one)")
    attr_cols = attribute_columns(rules.stats)
    t = time.perf_counter()
    with open_scene(scene, attr_cols, chunk_size) as (file_crs, chunks):
        # PDG clips in the CRS the file declares (input_crs is applied after the clip) and
        # reprojects from input_crs when it is set.
        clip_crs = file_crs or rules.input_crs
        src_crs = rules.input_crs or file_crs
        if src_crs is None:
            raise InputError(f"{label}: has no CRS; pass input_crs")
        scheme = TileScheme.create(rules.tms, rules.z)
        fp_clip = None
        if rules.clip_to_footprint:
            fp = job.footprint
            fp_clip = staging.transform_geometry(fp.geometry, fp.crs, clip_crs)
        overlaps = []
        if rules.deduplicate and job.footprint is not None and job.neighbours:
            own = job.footprint.geometry_tms
            overlaps = [dedup.overlap_geometry(scene.name, own, name, shapely.from_wkb(wkb))
                        for name, wkb in zip(job.neighbour_names, job.neighbour_wkb)]
        present = []
        index = []
        n_features = n_polygons = n_clipped = n_rows = 0
        rec["read_s"] += time.perf_counter() - t
        while True:
            t = time.perf_counter()
            chunk = next(chunks, None)
            rec["read_s"] += time.perf_counter() - t
            if chunk is None:
                break
            n_features += len(chunk)
            out = _stage_chunk(chunk, label, rules, scheme, fp_clip, overlaps, src_crs,
                               attr_cols, rec)
            if out is None:
                continue
            n_polygons += out["n"]
            n_clipped += out["clipped"]
            present.append(out["present"])
            if out["batch"] is not None:
                t = time.perf_counter()
                bi = writer.write(out["batch"])
                rec["store_s"] += time.perf_counter() - t
                index.append((bi, *out["tiles"]))
                n_rows += out["batch"].num_rows
    present = np.unique(np.concatenate(present)) if present else np.empty(0, np.int64)
    rec.update(polygons=n_polygons, features=n_features, clip_flagged=n_clipped, rows=n_rows,
               tiles=int(present.size), present=present, index=index,
               bytes_read=input_bytes(scene))


def _stage_chunk(chunk, label, rules, scheme, fp_clip, overlaps, src_crs, attr_cols, times):
    t = time.perf_counter()
    polys, feature = decode_chunk(chunk, label)
    if len(polys) == 0:
        times["filter_s"] += time.perf_counter() - t
        return None
    geoms = None
    if rules.simplify_tolerance is not None or fp_clip is not None:
        geoms = staging.to_polygons(polys)
    t1 = time.perf_counter()
    times["filter_s"] += t1 - t
    if rules.simplify_tolerance is not None:
        geoms = staging.simplify(geoms, rules.simplify_tolerance)
        polys = staging.from_polygons(geoms)
    t2 = time.perf_counter()
    times["simplify_s"] += t2 - t1
    clip = (staging.clip_flags(geoms, fp_clip) if fp_clip is not None
            else np.zeros(len(polys), bool))
    t3 = time.perf_counter()
    times["clip_s"] += t3 - t2
    try:
        polys = staging.reproject(polys, src_crs, scheme.crs)
    except ValueError as exc:
        raise InputError(f"{label}: {exc}") from exc
    t4 = time.perf_counter()
    times["reproject_s"] += t4 - t3
    cx, cy = centroids(polys)  # planar, in the tile matrix set's CRS (degrees), GEOS's
    t5 = time.perf_counter()
    times["centroid_s"] += t5 - t4
    pidx, keys = assign_tiles(polys, scheme)
    present = np.unique(keys)
    t6 = time.perf_counter()
    times["assign_s"] += t6 - t5
    # Only rows that can count are stored; clip-flagged polygons matter only through the
    # tiles they make their scene present in.
    sel = ~clip[pidx]
    pidx, keys = pidx[sel], keys[sel]
    out = {"n": len(polys), "clipped": int(clip.sum()), "present": present, "batch": None}
    if pidx.size == 0:
        return out
    used = np.unique(pidx)  # polygons with a row, ascending
    sub = polys.take(used)
    bits = dedup.overlap_bits(staging.bounds(sub),
                              lambda i: staging.to_polygons(sub.take(i)), overlaps)
    t7 = time.perf_counter()
    times["dedup_s"] += t7 - t6
    # Invalid polygons are repaired (or refused) for the coverage, as the staged path does;
    # the centroid stays that of the polygon as staged (PDG computes it before pdgraster
    # repairs anything).
    try:
        sub, _ = repair_invalid(sub, rules.validate, features=feature[used])
    except ValueError as exc:
        raise InputError(f"{label}: {exc}") from exc
    t8 = time.perf_counter()
    times["validate_s"] += t8 - t7
    # Rows sorted by tile, then feature: a tile's rows are one slice, in feature order.
    local = np.searchsorted(used, pidx)
    order = np.lexsort((local, keys))
    local, keys = local[order], keys[order]
    rows_attr = {c: chunk.attributes[c][feature[used] - chunk.start][local] for c in attr_cols}
    g = used[local]
    out["batch"] = make_batch(feature[g], cx[g], cy[g], bits[local], rows_attr,
                              sub.take(local))
    ukeys, starts = np.unique(keys, return_index=True)
    stops = np.append(starts[1:], keys.size)
    out["tiles"] = (ukeys, starts, stops)
    times["store_s"] += time.perf_counter() - t8
    return out

