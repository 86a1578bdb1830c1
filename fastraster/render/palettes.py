"""Colour palettes as pdgraster makes them, from any colour PDG can write.

pdgraster 0.9.3 (``Palette`` + ``WebImage``) turns a statistic's ``palette`` and
``nodata_color`` into a table of 257 RGBA colours, and so does :func:`palette_table`:

* ``palette`` is a list of colour strings in any CSS Color Level 4 syntax that coloraide
  parses (``#f8ff1f1A``, ``rgb(102 51 153 / 0.1)``, ``hsl()``, ``hwb()``, ``lab()``,
  ``lch(85% 100 85)``, ``oklab()``, ``oklch()``, ``color(display-p3 ...)``, names,
  ``transparent``); one such string (a one-colour palette); or the name of a colormap of
  the ``colormaps`` package (pdgraster's ``getattr(colormaps, name)``, tried first, so
  ``"gray"`` is the colormap) or a matplotlib ``Colormap``;
* a list is interpolated in CIE LCh (D50) with premultiplied alpha, the shorter hue arc
  and equal-length segments (coloraide's ``interpolate(..., space="lch")``);
* entry ``i`` (0..255) is the palette at ``i / 256``: for a list, converted to sRGB,
  gamut-mapped as coloraide 0.18 does by default (:func:`_fit_srgb`), printed as coloraide
  0.18 prints it (``to_string(precision=3)``: each channel x 255 to 3 significant digits,
  alpha to 5, half up) and parsed back by pdgraster with ``int()`` (alpha: ``int(a * 255)``);
  for a colormap, ``cmap(i / 256, bytes=True)``;
* entry 256 is ``nodata_color`` (default transparent white ``#ffffff00``), converted the
  same way.

What comes from coloraide (8.x) and what is written here, measured against pdgraster's own
tables (``../shared/pdg-palettes.json``, 8 palettes) and against coloraide 0.18 itself (the
version pdgraster pins, run side by side on 400 random palettes by
``benchmarks/palette_parity.py``):

* parsing, every conversion, the LCh interpolation and ΔE2000 are coloraide's. Its
  interpolation reproduces 0.18's once LCh's achromatic threshold is 0.18's (chroma below
  2e-10 has no hue; coloraide 8 uses 1e-4, which changed a ``lab(50% 0.00001 0)`` ->
  ``lch(50% 50 120)`` ramp by 41 levels): :func:`_color_class` registers that LCh.
* the gamut mapping is written here (:func:`_fit_srgb`, 25 lines): coloraide 8's
  ``fit("srgb", method="lch-chroma")`` works in D65 LCh, measures ΔE2000 in D65 Lab and stops
  within 0.01 of the JND; 0.18's worked in D50, stopped within 0.1, and tested the JND
  before searching with ``>=``. Measured: coloraide 8's default ``fit()`` is up to 80 levels
  off the tables, its ``lch-chroma`` 13, and still 4 with ``pspace="lch"`` and ΔE2000 in D50
  Lab (against 0.18 on the random palettes: 39 of 400 more than 1 level off, up to 21);
  with :func:`_fit_srgb` every table is exact and 397 of 400 random palettes too, the other
  3 within 1 level.
* the byte conversion (:func:`_to_bytes`) repeats 0.18's ``to_string`` rounding, which
  coloraide 8 no longer does (its precision and rounding modes differ).
"""

from __future__ import annotations

import math
import sys
from functools import lru_cache

import numpy as np

DEFAULT_COLORS = ("#FFFFFF", "#000000")
DEFAULT_NODATA_COLOR = "#ffffff00"
PALETTE_SIZE = 256

#: coloraide 0.18: an LCh colour with chroma below this has no hue (``lch.ACHROMATIC_THRESHOLD``).
_ACHROMATIC_CHROMA = 2e-10
#: coloraide 0.18's ``lch-chroma`` fit: reduce chroma until the clipped colour is within this
#: ΔE2000 ("just noticeable difference") of the chroma-reduced one ...
_JND = 2.0
#: ... and stop as soon as it is less than this below the JND.
_JND_EPSILON = 0.1
#: Bisection steps at most: chroma (< 400) halves each step, so after ~60 steps it no longer
#: changes; 0.18 had no bound and could loop forever if ΔE2000 jumped across the JND band.
_MAX_FIT_STEPS = 100

_ALLOWED_COLOUR = (
    "a CSS Color 4 colour string that coloraide parses: hex #rgb, #rgba, #rrggbb, #rrggbbaa; "
    "rgb(), hsl(), hwb(), lab(), lch(), oklab(), oklch(), color() in comma or space/slash "
    "form (e.g. 'rgb(102 51 153 / 0.1)', 'lch(85% 100 85)'); a CSS colour name or "
    "'transparent'")
_ALLOWED_PALETTE = (
    "a list of colour strings, each " + _ALLOWED_COLOUR + "; or the name of a colormap of the "
    "'colormaps' package (e.g. 'WhiteBlueGreenYellowRed')")


# ---------------------------------------------------------------------------------------------
# Colours
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _color_class():
    """coloraide's ``Color`` with coloraide 0.18's CIE LCh achromatic threshold.

    Imported on first use: coloraide takes ~0.1 s to import and only rendering needs it.
    """
    from coloraide import Color
    from coloraide.spaces.lch.css import LCh

    class _LCh018(LCh):
        """CSS ``lch()`` (CIE LCh D50) whose hue is undefined below 0.18's chroma
        threshold, so that an interpolation from a nearly grey colour takes the other
        end's hue exactly when coloraide 0.18 (and so pdgraster) took it."""

        def is_achromatic(self, coords):
            return abs(coords[1]) < _ACHROMATIC_CHROMA

    class PdgColor(Color):
        """coloraide ``Color`` as pdgraster's pinned coloraide (0.18) interpolated."""

    PdgColor.register(_LCh018(), overwrite=True)
    return PdgColor


def _where(where) -> str:
    return f"{where}: " if where else ""


def _parse(value, *, key: str = "colour", where=None):
    """A coloraide colour of a CSS colour string; ValueError naming the value otherwise."""
    if not isinstance(value, str):
        raise ValueError(f"{_where(where)}{key} {value!r} is not a colour string; "
                         f"allowed: {_ALLOWED_COLOUR}")
    try:
        return _color_class()(value)
    except ValueError:
        raise ValueError(f"{_where(where)}{key} {value!r} is not a colour that coloraide "
                         f"can parse; allowed: {_ALLOWED_COLOUR}") from None


def _fit_srgb(color):
    """The colour in sRGB, gamut-mapped exactly as coloraide 0.18's default ``fit()``
    (``lch-chroma``) maps it, which is what pdgraster's ``to_string`` call did.

    Out of gamut, with lightness L at or beyond black or white: that grey. Otherwise the
    chroma C of the colour in LCh (D50), at constant L and hue, is bisected between 0 and C
    for the point where the colour clipped into sRGB is a "just noticeable difference"
    (ΔE2000 = 2, within 0.1 below) from the chroma-reduced colour, and the clipped colour
    is the result: more chroma than the largest in-gamut one, less than a plain clip. While
    the lower bound is still in gamut, in-gamut midpoints raise it without a ΔE.
    """
    srgb = color.convert("srgb")
    if srgb.in_gamut(tolerance=0):
        return srgb
    lch = srgb.convert("lch")
    lightness = lch["lightness"]
    if lightness >= 100 or lightness <= 0:
        lch["chroma"], lch["hue"] = 0.0, math.nan
        return lch.convert("srgb").clip()
    low, high = 0.0, lch["chroma"]
    clipped = lch.convert("srgb").clip()
    if lch.delta_e(clipped, method="2000", space="lab") >= _JND:
        lower_in_gamut = True
        for _ in range(_MAX_FIT_STEPS):
            lch["chroma"] = (high + low) * 0.5
            trial = lch.convert("srgb")
            if lower_in_gamut and trial.in_gamut(tolerance=0):
                low = lch["chroma"]
                continue
            clipped = trial.clip()
            de = lch.delta_e(clipped, method="2000", space="lab")
            if de < _JND:
                if _JND - de < _JND_EPSILON:
                    break
                lower_in_gamut = False
                low = lch["chroma"]
            else:
                high = lch["chroma"]
    return clipped


def parse_color(value) -> tuple[float, float, float, float]:
    """A CSS colour string as sRGB + alpha floats in [0, 1], as pdgraster renders it.

    Any syntax coloraide parses (see the module docstring); a colour outside sRGB is
    gamut-mapped as pdgraster's coloraide (0.18) mapped it (:func:`_fit_srgb`).

    Raises
    ------
    ValueError
        ``value`` is not a string coloraide parses (the message names it).
    """
    color = _fit_srgb(_parse(value))
    r, g, b, a = (float(v) for v in color[:4])
    return (0.0 if math.isnan(r) else r, 0.0 if math.isnan(g) else g,
            0.0 if math.isnan(b) else b, 0.0 if math.isnan(a) else a)


def _round_to(f: float, p: int = 3) -> float:
    """coloraide 0.18's serialisation rounding to ``p`` significant digits, half up:
    ``p - d`` decimals for a number with ``d`` integer digits (so 254.6 -> 255,
    99.96 -> 100.0, 25.46 -> 25.5, 1.2345 -> 1.23)."""
    whole = int(f)
    digits = 0 if whole == 0 else int(math.log10(abs(whole))) + 1
    mult = 10.0 ** (p - digits)
    return math.floor((whole if digits > p else f) * mult + 0.5) / mult


def _to_bytes(rgb, alpha) -> list[int]:
    """pdgraster's conversion: coloraide 0.18's ``to_string(precision=3, alpha=True)``
    prints each channel x 255 to 3 significant digits and alpha to 5 (its default
    precision, the larger), missing values as 0; pdgraster reads the numbers back and
    truncates them (``int``), alpha after multiplying by 255."""
    chans = [0.0 if math.isnan(c) else float(c) for c in rgb]
    a = 0.0 if math.isnan(alpha) else float(alpha)
    return [*(int(_round_to(c * 255, 3)) for c in chans), int(_round_to(a, 5) * 255)]


# ---------------------------------------------------------------------------------------------
# Palettes
# ---------------------------------------------------------------------------------------------


def _colormap(name: str):
    """``getattr(colormaps, name)`` if that is a colormap (as pdgraster looks it up), else
    None. The ``colormaps`` package (which imports matplotlib) is imported only here."""
    import colormaps
    from matplotlib.colors import Colormap

    try:
        cmap = getattr(colormaps, name)
    except Exception:  # AttributeError; colormaps 0.4's ``colors`` property recurses
        return None
    return cmap if isinstance(cmap, Colormap) else None


def _is_colormap_object(value) -> bool:
    # A Colormap exists only once matplotlib is imported: do not import it (0.2 s) to learn
    # that a list is not one.
    colors = sys.modules.get("matplotlib.colors")
    return colors is not None and isinstance(value, colors.Colormap)


def _normalize(palette, nodata_color, where):
    """``(colours, nodata)``: colours a tuple of colour strings, a colormap name or a
    Colormap object; every colour parsed once (errors name ``where``, key and value)."""
    if nodata_color is None:
        nodata_color = DEFAULT_NODATA_COLOR
    _parse(nodata_color, key="nodata_color", where=where)
    if palette is None:
        return DEFAULT_COLORS, nodata_color
    if isinstance(palette, str):
        if _colormap(palette) is not None:
            return palette, nodata_color
        try:
            _color_class()(palette)
        except ValueError:
            raise ValueError(
                f"{_where(where)}palette {palette!r} is neither a colormap of the "
                f"'colormaps' package nor a colour that coloraide can parse; allowed: "
                f"{_ALLOWED_PALETTE}") from None
        return (palette,), nodata_color
    if _is_colormap_object(palette):
        return palette, nodata_color
    if not isinstance(palette, (list, tuple)):
        raise ValueError(f"{_where(where)}palette {palette!r} is not a list of colours or a "
                         f"colormap name; allowed: {_ALLOWED_PALETTE}")
    if not palette:
        raise ValueError(f"{_where(where)}palette [] has no colours; allowed: "
                         f"{_ALLOWED_PALETTE}")
    for i, value in enumerate(palette):
        _parse(value, key=f"palette {list(palette)!r}: entry {i}", where=where)
    return tuple(palette), nodata_color


def check_palette(palette, nodata_color=None, *, where=None) -> None:
    """Check a statistic's ``palette`` and ``nodata_color`` as pdgraster would use them.

    Parameters
    ----------
    palette : list of str, str, matplotlib Colormap or None
        Colour strings (any CSS Color 4 syntax coloraide parses), one colour string, or a
        colormap name of the ``colormaps`` package; None is the default white -> black.
    nodata_color : str or None
        One colour string; None is the default transparent white.
    where : str, optional
        Names the owner in messages, e.g. ``"statistic 'coverage'"``.

    Raises
    ------
    ValueError
        Naming ``where``, the key (``palette`` / ``nodata_color``), the value and what is
        allowed. A string palette that is neither a colormap name nor a colour is an error.
    """
    _normalize(palette, nodata_color, where)


def _table_from(colors, nodata_color, size: int) -> np.ndarray:
    table = np.zeros((size + 1, 4), dtype=np.uint8)
    if isinstance(colors, str) or _is_colormap_object(colors):
        cmap = _colormap(colors) if isinstance(colors, str) else colors
        for i in range(size):
            rgba = cmap(float(i / size), bytes=True)
            table[i] = [*rgba[:3], rgba[3] if len(rgba) > 3 else 255]
    else:
        colors = list(colors)
        if len(colors) == 1:  # one colour: pdgraster interpolates it with itself
            colors *= 2
        interp = _color_class().interpolate(colors, space="lch", hue="shorter",
                                            premultiplied=True)
        for i in range(size):
            c = _fit_srgb(interp(i / size))
            table[i] = _to_bytes(c[:3], c[3])
    nodata = _fit_srgb(_parse(nodata_color, key="nodata_color"))
    table[size] = _to_bytes(nodata[:3], nodata[3])
    return table


@lru_cache(maxsize=64)
def _cached_table(colors, nodata_color, size, where) -> np.ndarray:
    # Validation inside the cache too: a cached call costs ~1 us instead of ~46 us (every
    # colour parsed again), and colorize calls this once per tile and statistic.
    return _table_from(*_normalize(colors, nodata_color, where), size)


def palette_table(colors=None, nodata_color=None, size: int = PALETTE_SIZE, *,
                  where=None) -> np.ndarray:
    """pdgraster's colour table: ``(size + 1, 4)`` uint8 RGBA, entry ``i`` the palette
    colour at ``i / size``, the last entry the nodata colour.

    Parameters
    ----------
    colors : list of str, str, matplotlib Colormap or None
        See :func:`check_palette`; default white to black.
    nodata_color : str or None
        Default transparent white ``#ffffff00``.
    size : int
        Palette entries before the nodata one (pdgraster: 256).
    where : str, optional
        Names the owner in error messages.

    Raises
    ------
    ValueError
        As :func:`check_palette`.
    """
    key = tuple(colors) if isinstance(colors, list) else colors
    try:
        hash((key, nodata_color))
    except TypeError:  # a matplotlib Colormap, or entries that are no colour strings
        return _table_from(*_normalize(colors, nodata_color, where), int(size))
    return _cached_table(key, nodata_color, int(size), where).copy()


# ---------------------------------------------------------------------------------------------
# Values to colours
# ---------------------------------------------------------------------------------------------


def color_indices(values, vmin, vmax, nodata_val=None, size: int = PALETTE_SIZE):
    """Palette entry of each value (``size`` = the nodata entry), with pdgraster's rule:
    clipped to ``[vmin, vmax]``, entry ``int((v - vmin) * ((size - 1) / (vmax - vmin)))``;
    values equal to ``nodata_val`` and NaN get ``size``. A ``None`` end is the values' own
    minimum / maximum (pdgraster's ``WebImage``)."""
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
