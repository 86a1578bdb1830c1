"""pdgraster's colours: palettes interpolated in CIE LCh, the 257-entry colour table, values
to palette entries and RGBA images.

pdgraster (``WebImage`` + ``Palette``) maps a band to colours like this, and so does this
module:

* the palette is a list of colour strings interpolated in CIE LCh (D50; coloraide's
  ``Color.interpolate(colors, space="lch")``), or the name of a colormap; 256 colours are
  sampled at ``i / 256`` (i = 0..255), each channel rounded to coloraide's 3 significant
  digits and then truncated to an integer, plus the nodata colour as entry 256;
* a value is clipped to ``[min, max]`` and becomes entry ``int((v - min) * (255 / (max -
  min)))``; pixels equal to the statistic's ``nodata_val`` (and NaN, which pdgraster cannot
  handle) get the nodata colour;
* ``min`` / ``max`` come from :mod:`fastraster.render.ranges`.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

import numpy as np

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
