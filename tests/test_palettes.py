"""Palettes as pdgraster makes them: pdgraster's own tables, every colour syntax PDG can
write (checked against hand computations), the validation messages, and web tiles rendered
with PDG's complete-workflow palettes."""

import colorsys
import json
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import fastraster
from fastraster.render.palettes import (
    DEFAULT_NODATA_COLOR,
    check_palette,
    colorize,
    palette_table,
    parse_color,
)
from tests.conftest import REPO, read_tif

PDG_PALETTES = REPO.parent / "shared" / "pdg-palettes.json"
needs_pdg_palettes = pytest.mark.skipif(
    not PDG_PALETTES.is_file(),
    reason=f"pdgraster's palette tables not found at {PDG_PALETTES} (they ship beside the "
           "repo in CI as ../shared/pdg-palettes.json)")


def _pdg_tables():
    if not PDG_PALETTES.is_file():
        return []
    return json.loads(PDG_PALETTES.read_text())


# ---------------------------------------------------------------------------------------------
# pdgraster's own tables
# ---------------------------------------------------------------------------------------------


@needs_pdg_palettes
def test_all_pdgraster_tables_are_present():
    """The reference file holds the 8 tables these tests are about (a truncated file would
    make the parametrized test below silently check fewer)."""
    tables = _pdg_tables()
    assert len(tables) == 8 and all(len(t["rgba"]) == 257 for t in tables)


@needs_pdg_palettes
@pytest.mark.parametrize("entry", _pdg_tables(), ids=lambda e: json.dumps(e["palette"]))
def test_pdgraster_tables_within_one_level(entry):
    """pdgraster 0.9.3's ``Palette(palette, nodata_color).rgba_list`` (computed by pdgraster
    with coloraide 0.18 and colormaps 0.4) against ours, every channel of all 257 entries."""
    table = palette_table(entry["palette"], entry["nodata_color"])
    assert table.shape == (257, 4) and table.dtype == np.uint8
    diff = np.abs(table.astype(int) - np.array(entry["rgba"], dtype=int))
    assert diff.max() <= 1, (int(diff.max()), np.argwhere(diff > 1)[:5].tolist())


def test_near_grey_keeps_its_hue_as_coloraide_018_did():
    """coloraide 0.18 (pdgraster's) takes a hue as undefined only below chroma 2e-10;
    coloraide 8 below 1e-4, which would colour this ramp green from the start. Expected
    entries computed by coloraide 0.18.1 itself (``benchmarks/palette_parity.py``'s
    oracle)."""
    t = palette_table(["lab(50% 0.00001 0)", "lch(50% 50 120)"])
    expected = {0: [119, 119, 119, 255], 32: [130, 115, 116, 255], 64: [140, 112, 109, 255],
                128: [148, 111, 82, 255], 192: [133, 118, 52, 255], 255: [92, 130, 36, 255]}
    for i, rgba in expected.items():
        assert t[i].tolist() == rgba, i


# ---------------------------------------------------------------------------------------------
# Parsing every syntax
# ---------------------------------------------------------------------------------------------


def _gamma(y):
    """sRGB transfer function (IEC 61966-2-1) of a linear value."""
    return 12.92 * y if y <= 0.0031308 else 1.055 * y ** (1 / 2.4) - 0.055


def _lab_grey(lightness):
    """sRGB of the CIE Lab grey of ``lightness`` (a = b = 0 is neutral in any white)."""
    f = (lightness + 16) / 116
    y = f ** 3 if lightness > 8 else lightness / (24389 / 27)
    return _gamma(y)


HAND = [
    # hex, 3 / 4 / 6 / 8 digits
    ("#abc", (0xAA / 255, 0xBB / 255, 0xCC / 255, 1.0)),
    ("#abcd", (0xAA / 255, 0xBB / 255, 0xCC / 255, 0xDD / 255)),
    ("#663399", (0x66 / 255, 0x33 / 255, 0x99 / 255, 1.0)),
    ("#f8ff1f1A", (248 / 255, 1.0, 31 / 255, 26 / 255)),
    # rgb(): space / slash, comma, percentages
    ("rgb(102 51 153 / 0.1)", (0.4, 0.2, 0.6, 0.1)),
    ("rgb(102 51 153 / 10%)", (0.4, 0.2, 0.6, 0.1)),
    ("rgba(10, 20, 30, 0.5)", (10 / 255, 20 / 255, 30 / 255, 0.5)),
    ("rgb(10,20,30)", (10 / 255, 20 / 255, 30 / 255, 1.0)),
    ("rgb(100% 50% 0%)", (1.0, 0.5, 0.0, 1.0)),
    # hsl() / hwb(): the stdlib's colorsys is the independent reference
    ("hsl(200 80% 40% / 0.5)", (*colorsys.hls_to_rgb(200 / 360, 0.4, 0.8), 0.5)),
    ("hsla(120, 50%, 50%, 0.3)", (*colorsys.hls_to_rgb(120 / 360, 0.5, 0.5), 0.3)),
    # hwb(h w b) = hsv(h, 1 - w / (1 - b), 1 - b)
    ("hwb(120 10% 20%)", (*colorsys.hsv_to_rgb(1 / 3, 1 - 0.1 / 0.8, 0.8), 1.0)),
    ("hwb(300 0% 0% / 0.25)", (1.0, 0.0, 1.0, 0.25)),
    # lab() / lch() greys: CIE L* to luminance, then the sRGB curve
    ("lab(50% 0 0)", (_lab_grey(50),) * 3 + (1.0,)),
    ("lab(20 0 0 / 0.5)", (_lab_grey(20),) * 3 + (0.5,)),
    ("lch(50% 0 123)", (_lab_grey(50),) * 3 + (1.0,)),
    ("lch(75 0 0)", (_lab_grey(75),) * 3 + (1.0,)),
    # oklab() / oklch(): a neutral of lightness L has linear luminance L**3
    ("oklab(0.5 0 0)", (_gamma(0.125),) * 3 + (1.0,)),
    ("oklch(70% 0 40)", (_gamma(0.7 ** 3),) * 3 + (1.0,)),
    # color()
    ("color(srgb 0.2 0.4 0.6 / 0.5)", (0.2, 0.4, 0.6, 0.5)),
    ("color(srgb-linear 0.5 0.5 0.5)", (_gamma(0.5),) * 3 + (1.0,)),
    ("color(display-p3 1 1 1)", (1.0, 1.0, 1.0, 1.0)),
    # names
    ("rebeccapurple", (0x66 / 255, 0x33 / 255, 0x99 / 255, 1.0)),
    ("Gold", (1.0, 0xD7 / 255, 0.0, 1.0)),
    ("transparent", (0.0, 0.0, 0.0, 0.0)),
]


@pytest.mark.parametrize(("text", "expected"), HAND, ids=[h[0] for h in HAND])
def test_parse_color_every_syntax(text, expected):
    # 1e-4: OKLab's published matrices map white to 1 within ~1e-5, not exactly.
    assert parse_color(text) == pytest.approx(expected, abs=1e-4)


def test_out_of_gamut_colours_are_mapped_into_srgb():
    """Beyond sRGB, parse_color gives what pdgraster draws: gamut-mapped into [0, 1]."""
    for text in ("lch(85% 100 85)", "color(srgb 1.2 -0.1 0.5)", "color(display-p3 0 1 0)",
                 "lab(50% 100 -100)", "oklch(70% 0.4 30)", "lch(120% 50 30)"):
        rgba = parse_color(text)
        assert all(0.0 <= v <= 1.0 for v in rgba), (text, rgba)
    assert parse_color("lch(120% 50 30)") == pytest.approx((1, 1, 1, 1))  # beyond white


@pytest.mark.parametrize("bad", ["not-a-colour", "rgb(1 2)", "#12345", "ffffff", "",
                                 "lch(50% 50)", "hsl(1 2 3 4 5)", "#ggg"])
def test_bad_colour_strings_name_the_value(bad):
    with pytest.raises(ValueError, match="is not a colour") as err:
        parse_color(bad)
    assert repr(bad) in str(err.value) and "CSS Color 4" in str(err.value)


@pytest.mark.parametrize("bad", [None, 3, (1, 0, 0), ["red"]])
def test_non_strings_are_not_colours(bad):
    with pytest.raises(ValueError, match="not a colour string"):
        parse_color(bad)


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def test_check_palette_accepts_what_pdgraster_accepts():
    check_palette(["rgb(102 51 153 / 0.1)", "#d93fce", "lch(85% 100 85)"], "#ffffff00")
    check_palette(["#f8ff1f1A", "#f8ff1f"], "#fff0")
    check_palette("WhiteBlueGreenYellowRed", "rgba(0, 0, 0, 0)")  # a colormaps name
    check_palette("red")  # one colour string: a one-colour palette
    check_palette(None, None)  # pdgraster's defaults


def test_check_palette_messages_name_statistic_key_value_and_what_is_allowed():
    where = "statistic 'coverage'"
    cases = [
        (dict(palette=["#f8ff1f1A", "rgb(1 2)"]), ["palette", "entry 1", "'rgb(1 2)'"]),
        (dict(palette="viridiss"), ["palette 'viridiss'", "neither a colormap", "colormaps"]),
        (dict(palette="viridis"), ["palette 'viridis'"]),  # matplotlib's, not colormaps'
        (dict(palette=[]), ["palette [] has no colours"]),
        (dict(palette=5), ["palette 5"]),
        (dict(palette=["red", 7]), ["entry 1", "7", "not a colour string"]),
        (dict(palette=["red"], nodata_color="nope"), ["nodata_color 'nope'"]),
        (dict(palette=["red"], nodata_color=0), ["nodata_color 0"]),
    ]
    for kwargs, needles in cases:
        with pytest.raises(ValueError) as err:
            check_palette(kwargs["palette"], kwargs.get("nodata_color"), where=where)
        msg = str(err.value)
        assert msg.startswith(where + ": "), msg
        assert "allowed:" in msg and "CSS Color 4" in msg, msg
        for needle in needles:
            assert needle in msg, (needle, msg)


def test_palette_table_raises_as_check_palette():
    with pytest.raises(ValueError, match="neither a colormap"):
        palette_table("no-such-thing")
    with pytest.raises(ValueError, match="nodata_color"):
        palette_table(["red", "blue"], "#12")


# ---------------------------------------------------------------------------------------------
# Tables: colormaps, one colour, invariants
# ---------------------------------------------------------------------------------------------


def test_colormap_names_go_through_colormaps_first():
    """A string palette is looked up in ``colormaps`` first, as pdgraster does
    (``getattr(colormaps, name)``): 'gray' is the colormap, not the colour."""
    import colormaps

    table = palette_table("WhiteBlueGreenYellowRed")
    cmap = colormaps.WhiteBlueGreenYellowRed
    for i in (0, 1, 100, 200, 255):
        assert table[i].tolist() == [int(v) for v in cmap(i / 256, bytes=True)]
    # a Colormap object, as pdgraster's Palette also takes
    obj = palette_table(cmap)
    assert (obj == table).all()
    gray = palette_table("gray")
    assert gray[0].tolist() != gray[255].tolist()
    assert table[256].tolist() == [255, 255, 255, 0]  # default nodata: transparent white


def test_one_colour_palette_is_that_colour_throughout():
    for palette in ("red", ["#663399"], ["rgb(102 51 153 / 0.1)"]):
        t = palette_table(palette, "#00000000")
        r, g, b, a = parse_color(palette if isinstance(palette, str) else palette[0])
        expected = [round(r * 255), round(g * 255), round(b * 255), int(a * 255)]
        assert (t[:256] == expected).all(), (palette, t[0])
        assert t[256].tolist() == [0, 0, 0, 0]


def _alpha_byte(alpha: float) -> int:
    """pdgraster's alpha: coloraide 0.18 prints 5 decimals below 1 (4 at 1), half up, then
    int(a * 255)."""
    places = Decimal("0.00001") if alpha < 1 else Decimal("0.0001")
    return int(float(Decimal(alpha).quantize(places, rounding=ROUND_HALF_UP)) * 255)


_BYTE = st.integers(0, 255)
_RGB = st.tuples(_BYTE, _BYTE, _BYTE)


def _hex(rgb, alpha=None):
    return "#" + "".join(f"{v:02x}" for v in rgb) + ("" if alpha is None else f"{alpha:02x}")


@settings(max_examples=40, deadline=None)
@given(_RGB, _RGB, st.integers(1, 255), st.integers(1, 255))
def test_two_colour_tables_start_at_the_first_colour_and_blend_alpha_linearly(c0, c1, a0, a1):
    """Entry 0 is the first colour (sRGB colours are in gamut); alpha is interpolated
    linearly (premultiplication changes colour, not alpha) and printed as pdgraster does."""
    t = palette_table([_hex(c0, a0), _hex(c1, a1)], DEFAULT_NODATA_COLOR).astype(int)
    assert t[0, :3].tolist() == list(c0)
    expected = np.array([_alpha_byte(a0 / 255 + (a1 / 255 - a0 / 255) * i / 256)
                         for i in range(256)])
    assert np.abs(t[:256, 3] - expected).max() <= 1


@settings(max_examples=25, deadline=None)
@given(st.lists(_RGB, min_size=3, max_size=5).filter(lambda c: len(c) in (3, 5)))
def test_segments_have_equal_length(colors):
    """With n + 1 colours each segment spans 1/n: for n = 2 or 4, entry 128 (= 0.5) is a
    given colour exactly, and for n = 4 so are entries 64 and 192."""
    t = palette_table([_hex(c) for c in colors]).astype(int)
    n = len(colors) - 1
    for k in range(1, n):
        assert np.abs(t[256 * k // n, :3] - np.array(colors[k])).max() <= 1, k


def test_hue_takes_the_shorter_arc_in_lch():
    """350 degrees to 10: halfway is 0 (through red), not 180 (through green)."""
    mid = palette_table(["lch(60% 40 350)", "lch(60% 40 10)"])[128]
    through_red = palette_table(["lch(60% 40 0)"])[0]
    assert np.abs(mid.astype(int) - through_red).max() <= 1
    assert mid[0] > mid[1]  # reddish, not greenish


def test_colorize_maps_values_through_the_table():
    table = palette_table(["#f8ff1f1A", "#f8ff1f"])
    rgba = colorize(np.array([[0.0, 0.5, 1.0, 2.0]]), 0.0, 1.0, colors=["#f8ff1f1A", "#f8ff1f"],
                    nodata_val=0.0)
    # nodata (0) -> entry 256; int(0.5 * 255) = 127; 1 and 2 (clipped) -> 255
    assert rgba[0].tolist() == [table[256].tolist(), table[127].tolist(),
                                table[255].tolist(), table[255].tolist()]
    assert table[255].tolist() == [248, 255, 31, 254]  # pdgraster's own entry 255


# ---------------------------------------------------------------------------------------------
# PDG's complete-workflow palettes through render_web_tiles
# ---------------------------------------------------------------------------------------------

#: viz-raster's examples/complete-workflow configuration (statistics part).
COMPLETE_WORKFLOW_STATS = [
    {"name": "iwp_count", "weight_by": "count", "property": "centroids_per_pixel",
     "aggregation_method": "sum", "resampling_method": "sum", "val_range": [0, None],
     "palette": ["rgb(102 51 153 / 0.1)", "#d93fce", "lch(85% 100 85)"]},
    {"name": "iwp_coverage", "weight_by": "area", "property": "area_per_pixel_area",
     "aggregation_method": "sum", "resampling_method": "average", "val_range": [0, 1],
     "palette": ["rgb(102 51 153 / 0.1)", "lch(85% 100 85)"]},
]


def test_complete_workflow_palettes_render_web_tiles(sample_staged, tmp_path):
    gt, web = tmp_path / "geotiff", tmp_path / "web"
    stats = COMPLETE_WORKFLOW_STATS
    r1 = fastraster.rasterize_dir(sample_staged, gt, stats=stats, tile_size=128,
                                  progress=False)
    r2 = fastraster.build_pyramid(gt, (6, 13), stats=stats, progress=False)
    report = fastraster.render_web_tiles(gt, web, stats=stats, progress=False)
    assert not r1.errors and not r2.errors and not report.errors, report.errors[:1]
    n_tifs = len(list(gt.rglob("*.tif")))
    assert report.n("ok") == n_tifs > 2
    pngs = sorted(web.rglob("*.png"))
    assert len(pngs) == 2 * n_tifs
    # Entries of pdgraster's own tables for these palettes (pdg-palettes.json): 0 is the
    # translucent purple, 255 the yellow; count's range is [0, the zoom's maximum], no
    # nodata_val (so 0 is data: entry 0).
    first, count_last, coverage_last = [102, 51, 153, 25], [255, 203, 0, 255], [255, 204, 0, 254]
    z13 = sorted((gt / "WorldCRS84Quad" / "13").rglob("*.tif"))
    z13_max = max(float(read_tif(p)[0][0].max()) for p in z13)
    seen_max = 0
    for tif in z13:
        data = read_tif(tif)[0]
        rel = tif.relative_to(gt).with_suffix(".png")
        count = np.asarray(Image.open(web / "iwp_count" / rel))
        cov = np.asarray(Image.open(web / "iwp_coverage" / rel))
        assert count.shape == cov.shape == (128, 128, 4)
        assert (count[data[0] == 0] == first).all() and (cov[data[1] == 0] == first).all()
        assert (count[data[0] == z13_max] == count_last).all()
        assert (cov[data[1] >= 1] == coverage_last).all()
        seen_max += int((data[0] == z13_max).sum())
        # every other pixel: the entry pdgraster's rule picks, int(v * 255 / max)
        table = palette_table(stats[1]["palette"])
        idx = (np.clip(data[1].astype(np.float64), 0, 1) * 255).astype(int)
        assert (cov == table[idx]).all()
    assert seen_max > 0
