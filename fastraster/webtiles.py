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
import math
import os
import re
import time
import traceback
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from fastraster.io import atomic_path
from fastraster.pipeline import Report, batched_records, find_staged, output_path
from fastraster.pyramid import band_stats
from fastraster.stats import parse_stats

DEFAULT_COLORS = ("#FFFFFF", "#000000")
DEFAULT_NODATA_COLOR = "#ffffff00"
PALETTE_SIZE = 256

# ---------------------------------------------------------------------------------------------
# Colours
# ---------------------------------------------------------------------------------------------

_HEX = re.compile(r"^#([0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")


def parse_color(value) -> tuple[float, float, float, float]:
    """A colour string (``#rgb[a]``, ``#rrggbb[aa]``, a CSS name, ``rgb()``, ``hsl()``, ...)
    as sRGB + alpha floats in [0, 1]."""
    if isinstance(value, (tuple, list)) and len(value) in (3, 4):
        vals = [float(v) for v in value]
        if max(vals[:3]) > 1:
            vals[:3] = [v / 255 for v in vals[:3]]
        return (*vals[:3], vals[3] if len(vals) == 4 else 1.0)
    if not isinstance(value, str):
        raise ValueError(f"not a colour: {value!r}")
    s = value.strip()
    m = _HEX.match(s)
    if m:
        h = m.group(1)
        if len(h) in (3, 4):
            h = "".join(c * 2 for c in h)
        vals = [int(h[i:i + 2], 16) / 255 for i in range(0, len(h), 2)]
        return (*vals[:3], vals[3] if len(vals) == 4 else 1.0)
    from PIL import ImageColor

    try:
        rgba = ImageColor.getrgb(s)
    except ValueError as exc:
        raise ValueError(f"not a colour string: {value!r}") from exc
    return (rgba[0] / 255, rgba[1] / 255, rgba[2] / 255,
            rgba[3] / 255 if len(rgba) == 4 else 1.0)


def _xy_to_xyz(x, y):
    return np.array([x / y, 1.0, (1 - x - y) / y])


_D65 = _xy_to_xyz(0.31270, 0.32900)
_D50 = _xy_to_xyz(0.34570, 0.35850)


def _rgb_to_xyz_matrix():
    prim = np.array([_xy_to_xyz(0.64, 0.33), _xy_to_xyz(0.30, 0.60),
                     _xy_to_xyz(0.15, 0.06)]).T
    s = np.linalg.solve(prim, _D65)
    return prim * s


_BRADFORD = np.array([[0.8951, 0.2664, -0.1614],
                      [-0.7502, 1.7135, 0.0367],
                      [0.0389, -0.0685, 1.0296]])


def _adapt(src, dst):
    a, b = _BRADFORD @ src, _BRADFORD @ dst
    return np.linalg.solve(_BRADFORD, np.diag(b / a) @ _BRADFORD)


_RGB_TO_XYZ50 = _adapt(_D65, _D50) @ _rgb_to_xyz_matrix()
_XYZ50_TO_RGB = np.linalg.inv(_RGB_TO_XYZ50)
_EPS, _KAPPA = 216 / 24389, 24389 / 27


def _to_linear(c):
    c = np.asarray(c, float)
    a = np.abs(c)
    return np.sign(c) * np.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4)


def _from_linear(c):
    c = np.asarray(c, float)
    a = np.abs(c)
    return np.sign(c) * np.where(a <= 0.0031308, a * 12.92,
                                 1.055 * a ** (1 / 2.4) - 0.055)


def srgb_to_lch(rgb) -> np.ndarray:
    """sRGB (0..1) to CIE LCh (D50); hue NaN for achromatic colours."""
    xyz = _RGB_TO_XYZ50 @ _to_linear(rgb[:3]) / _D50
    f = np.where(xyz > _EPS, np.cbrt(xyz), (_KAPPA * xyz + 16) / 116)
    L, a, b = 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])
    c = math.hypot(a, b)
    h = math.degrees(math.atan2(b, a)) % 360 if c >= 1e-4 else math.nan
    return np.array([L, c, h])


def lch_to_srgb(lch) -> np.ndarray:
    """CIE LCh (D50) to sRGB (0..1, unclipped); ``lch`` is (3,) or (n, 3)."""
    lch = np.asarray(lch, dtype=np.float64)
    L, c, h = lch[..., 0], lch[..., 1], np.radians(np.nan_to_num(lch[..., 2]))
    fy = (L + 16) / 116
    fx, fz = fy + c * np.cos(h) / 500, fy - c * np.sin(h) / 200
    xyz = np.stack([np.where(fx ** 3 > _EPS, fx ** 3, (116 * fx - 16) / _KAPPA),
                    np.where(L > _KAPPA * _EPS, fy ** 3, L / _KAPPA),
                    np.where(fz ** 3 > _EPS, fz ** 3, (116 * fz - 16) / _KAPPA)], axis=-1)
    return _from_linear((xyz * _D50) @ _XYZ50_TO_RGB.T)


def _in_gamut(rgb, tol=1e-6):
    return np.all((rgb >= -tol) & (rgb <= 1 + tol), axis=-1)


def _fit(lch) -> np.ndarray:
    """sRGB (n, 3) of LCh colours (n, 3), reducing the chroma of out-of-gamut ones (at
    constant L and h, by bisection) into the sRGB gamut, then clipping."""
    lch = np.array(lch, dtype=np.float64).reshape(-1, 3)
    lo, hi = np.zeros(len(lch)), lch[:, 1].copy()
    out = ~_in_gamut(lch_to_srgb(lch))
    lo[~out] = hi[~out]
    for _ in range(40):  # chroma to ~1e-10 of its range: far below one 8-bit level
        mid = np.where(out, (lo + hi) / 2, hi)
        ok = _in_gamut(lch_to_srgb(np.stack([lch[:, 0], mid, lch[:, 2]], axis=1)))
        lo = np.where(out & ok, mid, lo)
        hi = np.where(out & ~ok, mid, hi)
    return np.clip(lch_to_srgb(np.stack([lch[:, 0], lo, lch[:, 2]], axis=1)), 0, 1)


def _round_to(f: float, p: int = 3) -> float:
    """coloraide's serialisation rounding to ``p`` digits, half up: ``p - d`` decimals for a
    number with ``d`` integer digits (so 254.6 -> 255, 99.96 -> 100.0, 1.2345 -> 1.23)."""
    whole = int(f)
    digits = 0 if whole == 0 else int(math.log10(abs(whole))) + 1
    mult = 10.0 ** (p - digits)
    return math.floor((whole if digits > p else f) * mult + 0.5) / mult


def _to_bytes(rgb, alpha) -> list[int]:
    """pdgraster's conversion: the string coloraide prints (3 digits), truncated by int()."""
    chans = [int(_round_to(float(c) * 255)) for c in rgb]
    return [*chans, int(_round_to(float(alpha)) * 255)]


def _interp_lch(colors, t: float):
    """coloraide-style piecewise interpolation in LCh: equal-length segments, shorter hue
    arc, an undefined (achromatic) hue takes the other end's hue, alpha linear."""
    n = len(colors) - 1
    if t >= 1:
        i, u = n - 1, 1.0
    else:
        i = min(int(t * n), n - 1)
        u = t * n - i
    (l0, c0, h0, a0), (l1, c1, h1, a1) = colors[i], colors[i + 1]
    if math.isnan(h0) and not math.isnan(h1):
        h0 = h1
    elif math.isnan(h1) and not math.isnan(h0):
        h1 = h0
    elif not math.isnan(h0):
        if h1 - h0 > 180:
            h0 += 360
        elif h1 - h0 < -180:
            h1 += 360
    h = h0 + (h1 - h0) * u if not math.isnan(h0) else math.nan
    return (l0 + (l1 - l0) * u, c0 + (c1 - c0) * u, h % 360 if not math.isnan(h) else h,
            a0 + (a1 - a0) * u)


def _colormap(name: str):
    """A named colormap: the ``colormaps`` package's (pdgraster's) if installed, else
    matplotlib's; None if neither knows the name."""
    try:
        import colormaps

        cmap = getattr(colormaps, name, None)
        if cmap is not None and callable(cmap):
            return cmap
    except ImportError:
        pass
    try:
        import matplotlib

        return matplotlib.colormaps[name]
    except (ImportError, KeyError):
        return None


@lru_cache(maxsize=64)
def _palette_table(colors, nodata_color, size) -> np.ndarray:
    table = np.zeros((size + 1, 4), dtype=np.uint8)
    cmap = None
    if isinstance(colors, str):
        cmap = _colormap(colors)
        if cmap is None:
            colors = (colors,)
    if cmap is not None:
        for i in range(size):
            rgba = cmap(float(i / size), bytes=True)
            table[i] = [*rgba[:3], rgba[3] if len(rgba) > 3 else 255]
    else:
        parsed = [parse_color(c) for c in colors]
        if len(parsed) == 1:
            parsed = parsed * 2
        lch = [(*srgb_to_lch(np.array(c[:3])), c[3]) for c in parsed]
        stops = np.array([_interp_lch(lch, i / size) for i in range(size)])
        for i, rgb in enumerate(_fit(stops[:, :3])):
            table[i] = _to_bytes(rgb, stops[i, 3])
    r, g, b, a = parse_color(nodata_color)
    table[size] = _to_bytes((r, g, b), a)
    return table


def palette_table(colors=None, nodata_color=None, size: int = PALETTE_SIZE) -> np.ndarray:
    """pdgraster's colour table: ``(size + 1, 4)`` uint8 RGBA, entry ``i`` the palette colour
    at ``i / size``, the last entry the nodata colour.

    ``colors`` is a list of colour strings (default white to black), one colour, or a
    colormap name; ``nodata_color`` defaults to transparent white ``#ffffff00``.
    """
    if colors is None:
        colors = DEFAULT_COLORS
    if not isinstance(colors, str):
        colors = tuple(colors)
        if not colors:
            raise ValueError("a palette needs at least one colour")
    return _palette_table(colors, nodata_color or DEFAULT_NODATA_COLOR, int(size)).copy()


def color_indices(values, vmin, vmax, nodata_val=None, size: int = PALETTE_SIZE):
    """Palette entry of each value (``size`` = the nodata entry), with pdgraster's rule."""
    v = np.asarray(values, dtype=np.float64)
    nodata = np.isnan(v)
    if nodata_val is not None:
        nodata |= v == nodata_val
    if vmin is None or vmax is None:
        finite = v[np.isfinite(v)]
        vmin = float(finite.min()) if vmin is None and finite.size else (vmin or 0.0)
        vmax = float(finite.max()) if vmax is None and finite.size else (vmax or 0.0)
    clipped = np.clip(np.where(nodata, vmin, v), vmin, vmax)
    if vmax > vmin:
        idx = ((clipped - vmin) * ((size - 1) / (vmax - vmin))).astype(np.int64)
    else:  # a constant range: every value is at its bottom
        idx = np.zeros(v.shape, np.int64)
    idx = np.clip(idx, 0, size - 1)
    idx[nodata] = size
    return idx


def colorize(values, vmin, vmax, *, colors=None, nodata_color=None, nodata_val=None):
    """RGBA uint8 image (h, w, 4) of one band, as pdgraster's ``WebImage`` makes it."""
    table = palette_table(colors, nodata_color)
    return table[color_indices(values, vmin, vmax, nodata_val, len(table) - 1)]


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
