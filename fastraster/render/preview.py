"""A preview of one zoom level: the mosaic of its GeoTIFFs, each band coloured as its web
tiles are, side by side in one PNG."""

from __future__ import annotations

import os

import numpy as np

from fastraster.io.geotiff import read_geotiff
from fastraster.io.png import write_png
from fastraster.io.tilepaths import find_tiles
from fastraster.model.pyramid_math import band_stats, reduce_2x2, stat_method
from fastraster.model.stats import parse_stats
from fastraster.render.palettes import colorize, palette_table
from fastraster.render.ranges import value_range


def mosaic(geotiff_dir, z: int, *, tms=None):
    """All GeoTIFFs of zoom ``z`` as one array (bands, rows, cols) with NaN where no tile
    is; returns ``(array, band names, tms)``."""
    files = [f for f in find_tiles(geotiff_dir, ".tif", tms)
             if f.tile and f.tile[2] == int(z)]
    if not files:
        raise ValueError(f"{geotiff_dir}: no GeoTIFFs at zoom {z}")
    tms = files[0].tms
    files = [f for f in files if f.tms == tms]
    xs, ys = [f.tile[0] for f in files], [f.tile[1] for f in files]
    x0, y0 = min(xs), min(ys)
    arr = names = None
    for f in files:
        bands_of_tile = read_geotiff(f.path)
        data = bands_of_tile.data.astype(np.float64)
        if arr is None:
            names = bands_of_tile.names
            bands, h, w = data.shape
            arr = np.full((bands, (max(ys) - y0 + 1) * h, (max(xs) - x0 + 1) * w), np.nan)
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
        colors, nodata_color = stat.get("palette"), stat.get("nodata_color")
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
