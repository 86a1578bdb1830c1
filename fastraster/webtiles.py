"""Web tiles: one RGBA PNG per statistic per GeoTIFF, coloured as pdgraster colours them.

pdgraster (``WebImage`` + ``Palette``) maps a band to colours like this, and so does this
module:

* the palette is a list of colour strings interpolated in CIE LCh (D50; coloraide's
  ``Color.interpolate(colors, space="lch")``), or the name of a colormap; 256 colours are
  sampled at ``i / 256`` (i = 0..255), each channel rounded to coloraide's 3 significant
  digits and then truncated to an integer, plus the nodata colour as entry 256;
* a value is clipped to ``[min, max]`` and becomes entry ``int((v - min) * (255 / (max -
  min)))``; pixels equal to the statistic's ``nodata_val`` (and NaN, which pdgraster cannot
  handle) get the nodata colour;
* ``min`` / ``max`` come from the statistic's ``val_range``, its ``z_config[z]["val_range"]``,
  and, where those are ``None``, from the run's per-zoom minimum / maximum in
  ``rasters_summary.csv`` (pdgraster's ``update_ranges``); without any of these, from the tile
  itself.
"""

from __future__ import annotations

import csv
import os
import time
import traceback
from dataclasses import dataclass

import numpy as np

from fastraster.io import atomic_path
from fastraster.pipeline import Report, batched_records, find_staged, output_path
from fastraster.pyramid import band_stats
from fastraster.render.palettes import (  # noqa: F401 - public names of this module too
    DEFAULT_COLORS,
    DEFAULT_NODATA_COLOR,
    PALETTE_SIZE,
    color_indices,
    colorize,
    palette_table,
    parse_color,
)
from fastraster.stats import parse_stats

# ---------------------------------------------------------------------------------------------
# Value ranges per zoom
# ---------------------------------------------------------------------------------------------


def zoom_ranges(summary_csv) -> dict[str, dict[int, tuple[float, float]]]:
    """``{stat: {z: (min, max)}}`` over the rows of a ``rasters_summary.csv`` (pdgraster's
    ``get_z_ranges``: the minimum of the rows' minima and maximum of their maxima)."""
    out: dict[str, dict[int, list[float]]] = {}
    with open(summary_csv, newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                z, lo, hi = int(float(row["z"])), float(row["min"]), float(row["max"])
            except (KeyError, TypeError, ValueError):
                continue
            cur = out.setdefault(row["stat"], {}).setdefault(z, [lo, hi])
            cur[0], cur[1] = min(cur[0], lo), max(cur[1], hi)
    return {s: {z: (v[0], v[1]) for z, v in zs.items()} for s, zs in out.items()}


def ranges_from_geotiffs(paths) -> dict[str, dict[int, tuple[float, float]]]:
    """The same as :func:`zoom_ranges`, computed by reading the GeoTIFFs."""
    import rasterio

    out: dict[str, dict[int, list[float]]] = {}
    for f in paths:
        with rasterio.open(f.path) as src:
            data, names = src.read(), src.descriptions
        for b, name in enumerate(names):
            lo, hi = float(np.nanmin(data[b])), float(np.nanmax(data[b]))
            cur = out.setdefault(name, {}).setdefault(f.tile[2], [lo, hi])
            cur[0], cur[1] = min(cur[0], lo), max(cur[1], hi)
    return {s: {z: (v[0], v[1]) for z, v in zs.items()} for s, zs in out.items()}


def _stat_value(stat, key):
    if key in stat.raw:
        return stat.raw[key]
    return getattr(stat, key, None)


def value_range(stat, z: int, ranges=None) -> tuple:
    """``(min, max)`` for a statistic at zoom ``z``, as pdgraster resolves it.

    pdgraster's ``update_ranges`` fills ``z_config[z]["val_range"]`` entries that are
    missing (neither set for ``z`` nor in the statistic's general ``val_range``) from the
    run's per-zoom ranges; ``get_min`` / ``get_max`` then substitute the general value for a
    ``None`` at ``z``. ``z_config`` keys may be ints or strings. An entry still ``None``
    (no summary) is taken from each tile's own data.
    """
    general = list(_stat_value(stat, "val_range") or (None, None))
    z_config = _stat_value(stat, "z_config") or {}
    entry = z_config.get(z, z_config.get(str(z))) or {}
    at_z = entry.get("val_range")
    run = (ranges or {}).get(stat.name, {}).get(int(z))
    if at_z is not None:
        vr = list(at_z)
        for i in (0, 1):  # pdgraster fills a None at z from the run, then the general value
            if vr[i] is None:
                vr[i] = run[i] if run is not None else general[i]
    else:
        vr = [general[i] if general[i] is not None else (run[i] if run else None)
              for i in (0, 1)]
    return (None if vr[0] is None else float(vr[0]), None if vr[1] is None else float(vr[1]))


# ---------------------------------------------------------------------------------------------
# Rendering (runs in workers)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Settings:
    web_dir: str
    stats: tuple
    ranges: dict
    overwrite: bool
    compress_level: int


def web_tile_path(web_dir, stat_name: str, tms: str, tile, ext=".png") -> str:
    """``<web_dir>/<stat>/<TMS>/<z>/<x>/<y>.png``."""
    return output_path(os.path.join(os.fspath(web_dir), stat_name), tms, tile, ext)


def write_png(path, rgba: np.ndarray, compress_level: int = 6) -> None:
    """Write an RGBA PNG atomically (temp file in the same folder, then ``os.replace``)."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(rgba, dtype=np.uint8), "RGBA").save(
            tmp, format="PNG", compress_level=compress_level)


def render_one(path: str, tms: str, tile, settings: _Settings) -> dict:
    """All web tiles of one GeoTIFF; never raises, returns a report record."""
    import rasterio

    t0 = time.perf_counter()
    rec = {"path": path, "tile": tuple(tile), "status": "error", "error": None,
           "seconds": 0.0, "polygons": None, "output": None, "outputs": []}
    try:
        stats = settings.stats
        todo = [s for s in stats
                if settings.overwrite or not os.path.exists(
                    web_tile_path(settings.web_dir, s.name, tms, tile))]
        if not todo:
            rec["status"] = "skipped"
            return rec
        with rasterio.open(path) as src:
            data, names = src.read(), src.descriptions
        per_band = band_stats(names, stats)
        z = tile[2]
        for b, stat in enumerate(per_band):
            if stat not in todo:
                continue
            vmin, vmax = value_range(stat, z, settings.ranges)
            rgba = colorize(data[b], vmin, vmax, colors=_stat_value(stat, "palette"),
                            nodata_color=_stat_value(stat, "nodata_color"),
                            nodata_val=stat.nodata_val)
            out = web_tile_path(settings.web_dir, stat.name, tms, tile)
            write_png(out, rgba, settings.compress_level)
            rec["outputs"].append(out)
        rec["output"] = rec["outputs"][0] if rec["outputs"] else None
        rec["status"] = "ok"
    except Exception as exc:  # a failing file must never stop the run
        rec["error"] = f"{path}: {type(exc).__name__}: {exc}"
        rec["traceback"] = traceback.format_exc()
    rec["seconds"] = time.perf_counter() - t0
    return rec


def _run_batch(jobs, settings):
    return [render_one(path, tms, tile, settings) for path, tms, tile in jobs]


def render_web_tiles(geotiff_dir, web_dir, *, stats=None, z_range=None, paths=None,
                     summary=None, n_jobs=None, backend="loky", batch_size=16,
                     overwrite=False, progress=True, tms=None, wmts=True, base_url=None,
                     compress_level=6) -> Report:
    """Render every GeoTIFF below ``geotiff_dir`` into ``<web_dir>/<stat>/<TMS>/<z>/<x>/<y>.png``.

    One RGBA PNG (tile-sized) per statistic per GeoTIFF, coloured with the statistic's
    ``palette`` over its value range at that zoom (:func:`value_range`), ``nodata_val``
    pixels in ``nodata_color``. Written atomically; existing PNGs are kept unless
    ``overwrite``. Then, if ``wmts``, ``WMTSCapabilities.xml`` for everything in ``web_dir``.

    Parameters
    ----------
    stats : list of dict, optional
        PDG statistic configurations (``palette``, ``val_range``, ``z_config``,
        ``nodata_val``, ``nodata_color``); default pdgraster's two.
    z_range : (int, int), optional
        Only GeoTIFFs with zoom in this range.
    paths : list of paths, optional
        Only these GeoTIFFs (``<TMS>/<z>/<x>/<y>.tif`` paths).
    summary : None, False or path
        Where the per-zoom ranges for ``None`` in ``val_range`` come from: None —
        ``<geotiff_dir>/rasters_summary.csv`` if it exists, else a pass over the GeoTIFFs;
        a path — that CSV; False — none (each tile's own min / max, pdgraster's ``WebImage``
        fallback).
    wmts, base_url :
        Write the capabilities document; tile URLs start with ``base_url`` (default: the
        ``file://`` URL of ``web_dir``).

    Returns
    -------
    Report
        One record per GeoTIFF; ``outputs`` lists the PNGs written.
    """
    t0 = time.perf_counter()
    stats = parse_stats(stats)
    geotiff_dir, web_dir = os.fspath(geotiff_dir), os.fspath(web_dir)
    if paths is None:
        files = [f for f in find_staged(geotiff_dir, tms=tms, ext=".tif") if f.tile]
    else:
        from fastraster.pipeline import parse_tile_path

        files = [parse_tile_path(p, tms=tms) for p in paths]
        bad = [f for f in files if f.tile is None]
        if bad:
            raise ValueError(f"{bad[0].path}: {bad[0].problem}")
    if z_range is not None:
        files = [f for f in files if z_range[0] <= f.tile[2] <= z_range[1]]
    if summary is None:
        csv_path = os.path.join(geotiff_dir, "rasters_summary.csv")
        ranges = zoom_ranges(csv_path) if os.path.exists(csv_path) else \
            ranges_from_geotiffs(files)
    elif summary is False:
        ranges = {}
    else:
        ranges = zoom_ranges(summary)
    settings = _Settings(web_dir, stats, ranges, overwrite, int(compress_level))
    jobs = [(f.path, f.tms, f.tile) for f in files]
    records = {rec["path"]: rec for rec in batched_records(
        _run_batch, jobs, (settings,), batch_size=batch_size, n_jobs=n_jobs, backend=backend,
        progress=progress, desc="webtiles")}
    report = Report(records[f.path] for f in files)
    report.wmts = None
    if wmts and os.path.isdir(web_dir):
        from fastraster.wmts import scan, write_capabilities

        if scan(web_dir):
            report.wmts = write_capabilities(web_dir, base_url=base_url)
    report.wall_seconds = time.perf_counter() - t0
    return report


# ---------------------------------------------------------------------------------------------
# A preview of one zoom level
# ---------------------------------------------------------------------------------------------


def mosaic(geotiff_dir, z: int, *, tms=None):
    """All GeoTIFFs of zoom ``z`` as one array (bands, rows, cols) with NaN where no tile
    is; returns ``(array, band names, tms)``."""
    import rasterio

    files = [f for f in find_staged(geotiff_dir, tms=tms, ext=".tif")
             if f.tile and f.tile[2] == int(z)]
    if not files:
        raise ValueError(f"{geotiff_dir}: no GeoTIFFs at zoom {z}")
    tms = files[0].tms
    files = [f for f in files if f.tms == tms]
    xs, ys = [f.tile[0] for f in files], [f.tile[1] for f in files]
    x0, y0 = min(xs), min(ys)
    arr = names = None
    for f in files:
        with rasterio.open(f.path) as src:
            data = src.read().astype(np.float64)
            if arr is None:
                names = src.descriptions
                bands, h, w = data.shape
                arr = np.full((bands, (max(ys) - y0 + 1) * h, (max(xs) - x0 + 1) * w),
                              np.nan)
        r, c = f.tile[1] - y0, f.tile[0] - x0
        arr[:, r * h:(r + 1) * h, c * w:(c + 1) * w] = data
    return arr, list(names), tms


def mosaic_preview(geotiff_dir, z: int, out_png, *, stats=None, tms=None, max_size=1024,
                   background=(255, 255, 255)) -> str:
    """A side-by-side PNG of every band of the zoom-``z`` mosaic (e.g. count | coverage),
    each coloured as its web tiles are (palette over ``val_range``, a ``None`` end taken
    from the data), composited on ``background``, labelled with name, total or mean, and
    range. A mosaic larger than ``max_size`` pixels is reduced 2×2 by each statistic's
    resampling method until it fits."""
    from PIL import Image, ImageDraw

    from fastraster.pyramid import reduce_2x2, stat_method

    arr, names, _ = mosaic(geotiff_dir, z, tms=tms)
    per_band = band_stats(names, parse_stats(stats))
    pad, label_h, bar_h = 12, 22, 12
    panels = []
    for b, stat in enumerate(per_band):
        data, shown_z = arr[b], int(z)
        total = float(np.nansum(data))
        while max(data.shape) > max_size and data.shape[0] % 2 == 0 \
                and data.shape[1] % 2 == 0:
            data, shown_z = reduce_2x2(data, stat_method(stat), stat.nodata_val), shown_z - 1
        h, w = data.shape
        method = stat_method(stat)
        what = f"total {total:,.6g}" if method == "sum" else \
            f"mean {float(np.nanmean(arr[b])):.4g}"
        finite = data[np.isfinite(data)]
        vmin, vmax = value_range(stat, shown_z)
        vmin = float(finite.min()) if vmin is None and finite.size else (vmin or 0.0)
        vmax = float(finite.max()) if vmax is None and finite.size else (vmax or 0.0)
        colors, nodata_color = _stat_value(stat, "palette"), _stat_value(stat, "nodata_color")
        rgba = colorize(data, vmin, vmax, colors=colors,
                        nodata_color=nodata_color, nodata_val=stat.nodata_val)
        tile_img = Image.fromarray(rgba, "RGBA")
        panel = Image.new("RGB", (w, h + label_h + bar_h + label_h), background)
        panel.paste(tile_img, (0, label_h), tile_img)
        ramp = palette_table(colors, nodata_color)[:-1]
        ramp = ramp[np.linspace(0, len(ramp) - 1, w).astype(int)][None].repeat(bar_h, 0)
        ramp_img = Image.fromarray(np.ascontiguousarray(ramp), "RGBA")
        panel.paste(ramp_img, (0, label_h + h), ramp_img)
        draw = ImageDraw.Draw(panel)
        draw.rectangle([0, label_h, w - 1, label_h + h - 1], outline=(160, 160, 160))
        draw.rectangle([0, label_h + h, w - 1, label_h + h + bar_h - 1],
                       outline=(160, 160, 160))
        draw.text((2, 4), f"{stat.name}, z{z}" + (f" shown at z{shown_z}" if shown_z != z
                                                   else "") + f": {what}", fill=(0, 0, 0))
        draw.text((2, label_h + h + bar_h + 4), f"{vmin:g}", fill=(0, 0, 0))
        hi = f"{vmax:g}"
        draw.text((w - 7 * len(hi) - 2, label_h + h + bar_h + 4), hi, fill=(0, 0, 0))
        panels.append(panel)
    width = sum(p.width for p in panels) + pad * (len(panels) + 1)
    height = max(p.height for p in panels) + 2 * pad
    sheet = Image.new("RGB", (width, height), background)
    x = pad
    for p in panels:
        sheet.paste(p, (x, pad))
        x += p.width + pad
    out_png = os.fspath(out_png)
    write_png(out_png, np.asarray(sheet.convert("RGBA")))
    return out_png
