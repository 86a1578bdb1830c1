"""Lower zoom levels: each parent tile from its four children, reduced 2×2 per statistic.

A parent tile at zoom ``z`` covers the four tiles ``(2x + i, 2y + j, z + 1)``; with the same
pixel count per tile, each parent pixel is exactly one 2×2 block of one child, so the
reduction is plain array arithmetic (no resampling weights, no grid misalignment).
"""

from __future__ import annotations

import os
import time
import traceback
import warnings
from dataclasses import dataclass

import numpy as np

from fastraster.grid import TileGrid
from fastraster.io import band_summary, write_geotiff
from fastraster.pipeline import (
    Report,
    batched_records,
    find_staged,
    output_path,
    write_events,
    write_summary,
)
from fastraster.stats import RESAMPLING, Stat, parse_stats

#: 2×2 reductions, by a statistic's ``resampling_method``.
METHODS = RESAMPLING


# ---------------------------------------------------------------------------------------------
# The reduction
# ---------------------------------------------------------------------------------------------


def _empty_mask(q: np.ndarray, nodata) -> np.ndarray:
    empty = np.isnan(q)
    if nodata is not None and not np.isnan(nodata):
        empty |= q == nodata
    return empty


def reduce_2x2(a, method: str, nodata=None) -> np.ndarray:
    """Reduce each 2×2 block of the last two axes of ``a`` to one value (float64).

    A pixel is *empty* when it is NaN or equals ``nodata`` (when ``nodata`` is not None).

    ``sum``
        Σ of the non-empty pixels.
    ``average``
        Σ of the non-empty pixels / 4: an empty pixel counts as 0 (the area average that
        coverage needs, and what pdgraster's GDAL ``average`` gives on its GeoTIFFs, which
        carry no nodata tag).
    ``mean``
        Σ / number of non-empty pixels (GDAL ``average`` over a nodata-tagged raster).
    ``min``, ``max``
        Over the non-empty pixels.
    ``mode``
        The most frequent non-empty value; of tied values, the one whose count reaches the
        maximum first when the block is scanned in row-major order (north-west, north-east,
        south-west, south-east), as GDAL's mode does (so NW, NE, NE, NW gives the NE value).
    ``nearest``
        The south-east pixel of the block (GDAL's choice for an exact 2× reduction).

    A block with no non-empty pixel gets ``nodata`` (NaN when ``nodata`` is None).
    """
    a = np.asarray(a, dtype=np.float64)
    if a.ndim < 2 or a.shape[-1] % 2 or a.shape[-2] % 2:
        raise ValueError(f"need an array whose last two axes are even, not {a.shape}")
    if method not in METHODS:
        raise ValueError(f"resampling method must be one of {METHODS}, not {method!r}")
    nw, ne, sw, se = (a[..., 0::2, 0::2], a[..., 0::2, 1::2],
                      a[..., 1::2, 0::2], a[..., 1::2, 1::2])
    if method in ("sum", "average") and (nodata is None or nodata == 0) \
            and not np.isnan(a).any():
        # Fast path (PDG's counts and coverage): empty pixels are 0, so they add nothing,
        # and an all-empty block sums to 0 = the fill. Same arithmetic as below.
        total = ((nw + ne) + sw) + se
        return total / 4.0 if method == "average" else total
    # q[k]: the k-th pixel of every block, k in row-major order within the block.
    q = np.stack([a[..., 0::2, 0::2], a[..., 0::2, 1::2],
                  a[..., 1::2, 0::2], a[..., 1::2, 1::2]])
    empty = _empty_mask(q, nodata)
    fill = np.nan if nodata is None else float(nodata)
    n = 4 - empty.sum(axis=0)
    if method == "nearest":
        return np.where(empty[3], fill, q[3])
    if method in ("sum", "average", "mean"):
        data = np.where(empty, 0.0, q)
        total = ((data[0] + data[1]) + data[2]) + data[3]
        if method == "average":
            total = total / 4.0
        elif method == "mean":
            total = total / np.maximum(n, 1)
        return np.where(n > 0, total, fill)
    if method in ("min", "max"):
        if method == "min":
            out = np.where(empty, np.inf, q).min(axis=0)
        else:
            out = np.where(empty, -np.inf, q).max(axis=0)
        return np.where(n > 0, out, fill)
    # mode: the running count of each pixel's value up to and including it; the first
    # pixel whose running count is the block's maximum holds the value GDAL picks.
    counts = np.zeros(q.shape, dtype=np.int8)
    for k in range(4):
        for j in range(k + 1):
            counts[k] += (q[j] == q[k]) & ~empty[j]
    counts[empty] = 0
    pick = np.argmax(counts, axis=0)
    out = np.take_along_axis(q, pick[None], axis=0)[0]
    return np.where(n > 0, out, fill)


def stat_method(stat: Stat) -> str:
    """A statistic's 2×2 method (``sum`` for counts, ``average`` otherwise, if unset)."""
    if stat.resampling_method:
        return stat.resampling_method
    if stat.weight_by == "count" and stat.aggregation_method in ("sum", "count"):
        return "sum"
    return "average"


def band_stats(descriptions, stats) -> list[Stat]:
    """The statistic of each band of a GeoTIFF, matched by band description (= stat name).

    Bands without descriptions are matched by position when the counts agree.

    Raises
    ------
    ValueError
        If a band names no configured statistic.
    """
    stats = parse_stats(stats)
    by_name = {s.name: s for s in stats}
    descriptions = list(descriptions)
    if all(d is None for d in descriptions) and len(descriptions) == len(stats):
        return list(stats)
    out = []
    for i, d in enumerate(descriptions):
        if d not in by_name:
            raise ValueError(f"band {i + 1} ({d!r}) is none of the statistics "
                             f"{sorted(by_name)}; pass stats= (or --config) naming it")
        out.append(by_name[d])
    return out


def children_of(tile) -> list[tuple[int, int, int]]:
    """The four children of ``(x, y, z)``: NW, NE, SW, SE."""
    x, y, z = tile
    return [(2 * x, 2 * y, z + 1), (2 * x + 1, 2 * y, z + 1),
            (2 * x, 2 * y + 1, z + 1), (2 * x + 1, 2 * y + 1, z + 1)]


def parent_of(tile) -> tuple[int, int, int]:
    x, y, z = tile
    if z <= 0:
        raise ValueError(f"tile {tuple(tile)} has no parent")
    return (x // 2, y // 2, z - 1)


def parent_from_children(children, stats) -> np.ndarray:
    """The parent array (bands, h, w) from its children, a list of 4 arrays or None (NW,
    NE, SW, SE; each (bands, h, w)). Missing children count as empty."""
    present = [c for c in children if c is not None]
    if not present:
        raise ValueError("a parent needs at least one child")
    bands, h, w = present[0].shape
    stats = list(stats)
    if len(stats) != bands:
        raise ValueError(f"{bands} bands but {len(stats)} statistics")
    if h % 2 or w % 2:
        raise ValueError(f"tiles of {h} x {w} pixels cannot be halved")
    hh, hw = h // 2, w // 2
    out = np.empty((bands, h, w), dtype=np.float64)
    for b, stat in enumerate(stats):
        # Each parent pixel is a 2x2 block of one child: reduce each child into its
        # quadrant; a missing child's quadrant is what an all-empty child reduces to.
        fill = 0.0 if stat.nodata_val is None else float(stat.nodata_val)
        method = stat_method(stat)
        for k, child in enumerate(children):
            r, c = divmod(k, 2)
            quadrant = out[b, r * hh:(r + 1) * hh, c * hw:(c + 1) * hw]
            if child is None:
                quadrant[...] = reduce_2x2(np.full((2, 2), fill), method, stat.nodata_val)
                continue
            if child.shape != (bands, h, w):
                raise ValueError(f"children differ in shape: {child.shape} and "
                                 f"{(bands, h, w)}")
            quadrant[...] = reduce_2x2(child[b], method, stat.nodata_val)
    return out


# ---------------------------------------------------------------------------------------------
# One parent tile (runs in workers)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PyramidSettings:
    """What every parent of a run shares (plain data: it goes to the workers)."""

    stats: tuple
    overwrite: bool
    cog: bool


def _read_child(path):
    import rasterio

    with rasterio.open(path) as src:
        return src.read(), src.descriptions, src.dtypes[0], src.nodata


def build_parent(geotiff_dir, tms: str, tile, settings: PyramidSettings) -> dict:
    """Build one parent GeoTIFF from the children present; never raises, returns a record."""
    t0 = time.perf_counter()
    out = output_path(geotiff_dir, tms, tile)
    rec = {"path": out, "tile": tuple(tile), "status": "error", "error": None,
           "seconds": 0.0, "polygons": None, "output": out, "summary": None}
    try:
        if not settings.overwrite and os.path.exists(out):
            rec["status"] = "skipped"
            return rec
        children, meta = [], None
        for child in children_of(tile):
            path = output_path(geotiff_dir, tms, child)
            if not os.path.exists(path):
                children.append(None)
                continue
            try:
                data, names, dtype, nodata = _read_child(path)
            except Exception as exc:
                raise ValueError(f"cannot read child {path}: {exc}") from exc
            meta = meta or (names, dtype, nodata)
            children.append(data)
        if meta is None:
            raise ValueError(f"{out}: no child GeoTIFF of tile {tuple(tile)} exists")
        names, dtype, nodata = meta
        t1 = time.perf_counter()
        stats = band_stats(names, settings.stats)
        array = parent_from_children(children, stats)
        h, w = array.shape[1:]
        grid = TileGrid.from_tile(tile, tms, (h, w))
        t2 = time.perf_counter()
        band_names = [s.name for s in stats]
        write_geotiff(out, array, grid, band_names, dtype=dtype, nodata=nodata,
                      cog=settings.cog)
        written = array.astype(dtype, copy=False)
        rec.update(status="ok", children=sum(c is not None for c in children),
                   read_s=t1 - t0, compute_s=t2 - t1, write_s=time.perf_counter() - t2,
                   bounds=[grid.left, grid.right, grid.bottom, grid.top],
                   summary=[dict(stat=n, **band_summary(written[b]))
                            for b, n in enumerate(band_names)])
    except Exception as exc:  # one failing tile must never stop the run
        msg = str(exc)
        rec["error"] = msg if msg.startswith(out) else f"{out}: {type(exc).__name__}: {msg}"
        rec["traceback"] = traceback.format_exc()
    rec["seconds"] = time.perf_counter() - t0
    return rec


def _run_batch(jobs, geotiff_dir, settings):
    return [build_parent(geotiff_dir, tms, tile, settings) for tms, tile in jobs]


# ---------------------------------------------------------------------------------------------
# The public entry point
# ---------------------------------------------------------------------------------------------


def _existing(geotiff_dir, tms=None) -> dict[str, set]:
    """{tms: {(x, y, z), ...}} of the GeoTIFFs below ``geotiff_dir``."""
    found: dict[str, set] = {}
    for f in find_staged(geotiff_dir, tms=tms, ext=".tif"):
        if f.tile is not None:
            found.setdefault(f.tms, set()).add(f.tile)
    return found


def pyramid_levels(geotiff_dir, tms: str, parents, z_min: int, settings: PyramidSettings, *,
                   n_jobs=None, backend="loky", batch_size=8, progress=False,
                   recursive=True) -> list[dict]:
    """Build ``parents`` (tiles of one zoom), then, if ``recursive``, their parents down to
    ``z_min``. Returns the records of every tile tried, level by level."""
    records: list[dict] = []
    level = sorted({tuple(t) for t in parents})
    while level and level[0][2] >= z_min:
        z = level[0][2]
        if any(t[2] != z for t in level):
            raise ValueError("parent tiles must all be of one zoom level")
        jobs = [(tms, t) for t in level]
        done = {rec["tile"]: rec for rec in batched_records(
            _run_batch, jobs, (geotiff_dir, settings), batch_size=batch_size, n_jobs=n_jobs,
            backend=backend, progress=progress, desc=f"pyramid z{z}")}
        records.extend(done[t] for t in level)
        if not recursive or z == 0:
            break
        # Next level: parents of every tile of this level that exists (built or kept).
        level = sorted({parent_of(t) for t in level
                        if os.path.exists(output_path(geotiff_dir, tms, t))})
    return records


def build_pyramid(geotiff_dir, z_range=(0, 13), *, stats=None, n_jobs=None,
                  overwrite=False, backend="loky", batch_size=8, progress=True, tms=None,
                  summary=True, cog=False) -> Report:
    """Build the lower zoom levels of a GeoTIFF tree from its tiles at ``z_range[1]``.

    For every tile at ``z_range[1]`` its parent is made from the four children (missing
    children count as empty), each band reduced 2×2 by its statistic's
    ``resampling_method`` (:func:`reduce_2x2`); then the parents of those, level by level,
    down to ``z_range[0]``. Tiles of one level are built in parallel (joblib), each written
    atomically with the children's dtype and nodata tag. Existing parents are kept (status
    ``"skipped"``) unless ``overwrite``, so an interrupted run resumes; a kept parent is not
    rebuilt even if its children changed, so pass ``overwrite=True`` after re-rasterizing.

    Parameters
    ----------
    geotiff_dir : path
        Root of ``<TMS>/<z>/<x>/<y>.tif`` (what :func:`fastraster.rasterize_dir` writes).
    z_range : (int, int)
        (lowest zoom to build, zoom of the existing tiles).
    stats : list of dict, optional
        PDG statistic configurations naming the bands (default: polygon_count, coverage);
        band descriptions are matched to statistic names.
    n_jobs, backend, batch_size :
        joblib parallelism, as in :func:`fastraster.rasterize_dir`.
    tms : str, optional
        Only this tile matrix set (default: every TMS folder found).
    summary : bool or path
        Merge the parents' rows into ``rasters_summary.csv`` (and ``rasterization_events.csv``)
        in ``geotiff_dir`` (or the given summary path), as pdgraster does; needed for the
        per-zoom value ranges of web tiles.

    Returns
    -------
    Report
        One record per parent tile tried (``status`` ok / skipped / error); an error never
        stops the run (its parent is made from the other children).
    """
    t0 = time.perf_counter()
    z_min, z_max = (int(v) for v in z_range)
    if z_min > z_max:
        raise ValueError(f"z_range must be (low, high), not {tuple(z_range)}")
    settings = PyramidSettings(parse_stats(stats), overwrite, cog)
    geotiff_dir = os.fspath(geotiff_dir)
    records: list[dict] = []
    for tms_id, tiles in sorted(_existing(geotiff_dir, tms).items()):
        top = {t for t in tiles if t[2] == z_max}
        if not top or z_max == 0:
            continue
        parents = {parent_of(t) for t in top}
        records += pyramid_levels(geotiff_dir, tms_id, parents, z_min, settings,
                                  n_jobs=n_jobs, backend=backend, batch_size=batch_size,
                                  progress=progress)
    if not records:
        warnings.warn(f"{geotiff_dir}: no GeoTIFFs at zoom {z_max}; nothing to build",
                      stacklevel=2)
    report = Report(records)
    report.wall_seconds = time.perf_counter() - t0
    if summary and records:
        path = (os.path.join(geotiff_dir, "rasters_summary.csv") if summary is True
                else os.fspath(summary))
        write_summary(path, report)
        write_events(os.path.join(os.path.dirname(path) or ".", "rasterization_events.csv"),
                     report, append=True)
    return report
