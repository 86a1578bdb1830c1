"""How close palette tables are to pdgraster's: fastraster's, and coloraide 8's own.

    python benchmarks/palette_parity.py [--tables ../shared/pdg-palettes.json]
                                        [--coloraide018 DIR] [--random 400] [--seed 12]

1. For each of pdgraster's own 257-colour tables (``pdg-palettes.json``): the largest RGBA
   channel difference of :func:`fastraster.render.palettes.palette_table`, and of tables made
   by coloraide 8 alone (its ``Color.interpolate(..., space="lch")``, then its gamut mapping
   into sRGB with the default method, with ``lch-chroma``, and with ``lch-chroma`` in D50
   LCh / ΔE2000 in D50 Lab as 0.18 measured it), bytes as pdgraster makes them from
   coloraide 0.18's ``to_string``. This is why ``_fit_srgb`` is hand-written.
2. With ``--coloraide018 DIR`` (a folder holding coloraide 0.18's package, the version
   pdgraster pins: ``pip download --no-deps coloraide==0.18.1`` and unzip the wheel into
   DIR): ``--random`` seeded random palettes of 1-5 colours in every syntax 0.18 parses
   (hex 3/6/8 digits, rgb() with alpha, hsl(), hwb(), lch() with out-of-gamut chroma,
   names, greys), tabled by 0.18 in a subprocess the way pdgraster's ``Palette`` calls it
   (``Color(c0).interpolate(rest, space="lch")``, ``to_string(precision=3, alpha=True)``,
   numbers read back and truncated), compared with ``palette_table`` and with coloraide 8's
   best variant. The subprocess first checks that it reproduces the 8 tables exactly.

Also prints the median time to build one table (it is cached per process).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fastraster.render.palettes import _to_bytes, palette_table  # noqa: E402

# pdgraster's Palette arithmetic on coloraide 0.18, run in a subprocess whose sys.path
# starts with the 0.18 package (two coloraide versions cannot share one process).
_ORACLE = r'''
import json, re, sys
sys.path.insert(0, sys.argv[1])
import coloraide
from coloraide import Color
assert coloraide.__version__.startswith("0."), coloraide.__version__

def rgba(color):
    text = color.convert("srgb").to_string(precision=3, alpha=True)
    vals = [float(v) for v in re.findall(r"[\d.]+", text)]
    vals[3] *= 255
    return [int(v) for v in vals]

def table(colors, nodata):
    if isinstance(colors, str):
        import colormaps
        cmap = getattr(colormaps, colors)
        rows = [[int(v) for v in cmap(float(i / 256), bytes=True)] for i in range(256)]
    else:
        colors = list(colors) * 2 if len(colors) == 1 else list(colors)
        interp = Color(colors[0]).interpolate(colors[1:], space="lch")
        rows = [rgba(interp(i / 256)) for i in range(256)]
    return rows + [rgba(Color(nodata))]

job = json.load(open(sys.argv[2]))
check = [max(abs(a - b) for ra, rb in zip(table(e["palette"], e["nodata_color"]), e["rgba"])
             for a, b in zip(ra, rb)) for e in job["tables"]]
out = {"version": coloraide.__version__, "tables_max_diff": check,
       "random": [table(p, "#ffffff00") for p in job["random"]]}
json.dump(out, open(sys.argv[3], "w"))
'''


def coloraide8_table(colors, nodata, **fit):
    """A table made by coloraide 8 alone (its interpolation and gamut mapping)."""
    from coloraide import Color

    colors = list(colors) * 2 if len(colors) == 1 else list(colors)
    interp = Color.interpolate(colors, space="lch")
    rows = []
    for c in [interp(i / 256) for i in range(256)] + [Color(nodata)]:
        c = c.convert("srgb")
        if not c.in_gamut(tolerance=0):
            c.fit("srgb", **fit)
        rows.append(_to_bytes(c[:3], c[3]))
    return np.array(rows, dtype=int)


VARIANTS = {
    "coloraide 8 fit()": {},
    "coloraide 8 lch-chroma": {"method": "lch-chroma"},
    "coloraide 8 lch-chroma D50": {"method": "lch-chroma", "pspace": "lch",
                                   "de_options": {"method": "2000", "space": "lab"}},
}


def random_palettes(n, seed):
    rng = random.Random(seed)
    names = ["red", "blue", "white", "black", "gray", "rebeccapurple", "gold", "teal",
             "transparent", "orange", "lime", "navy"]

    def colour():
        k = rng.randrange(8)
        if k == 0:
            return "#" + "".join(f"{rng.randrange(256):02x}" for _ in range(3))
        if k == 1:
            return "#" + "".join(f"{rng.randrange(256):02x}" for _ in range(4))
        if k == 2:
            return (f"lch({rng.uniform(0, 100):.1f}% {rng.uniform(0, 150):.1f} "
                    f"{rng.uniform(0, 360):.1f})")
        if k == 3:
            return (f"hsl({rng.uniform(0, 360):.0f} {rng.uniform(0, 100):.0f}% "
                    f"{rng.uniform(0, 100):.0f}% / {rng.random():.2f})")
        if k == 4:
            return (f"hwb({rng.uniform(0, 360):.0f} {rng.uniform(0, 60):.0f}% "
                    f"{rng.uniform(0, 60):.0f}%)")
        if k == 5:
            return rng.choice(names)
        if k == 6:
            return (f"rgb({rng.randrange(256)} {rng.randrange(256)} {rng.randrange(256)} / "
                    f"{rng.random():.2f})")
        g = rng.randrange(256)
        return f"#{g:02x}{g:02x}{g:02x}"

    return [[colour() for _ in range(rng.randint(1, 5))] for _ in range(n)]


def max_diff(a, b) -> int:
    return int(np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).max())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tables", default=str(REPO.parent / "shared" / "pdg-palettes.json"))
    ap.add_argument("--coloraide018", default=None)
    ap.add_argument("--random", type=int, default=400)
    ap.add_argument("--seed", type=int, default=12)
    args = ap.parse_args(argv)

    import coloraide

    tables = json.loads(Path(args.tables).read_text())
    print(f"coloraide {coloraide.__version__}; max RGBA channel difference from pdgraster's "
          f"tables ({args.tables}):")
    head = f"{'palette':58s} {'fastraster':>10s}" + "".join(f" {v:>26s}" for v in VARIANTS)
    print(head)
    build_ms = []
    for e in tables:
        t0 = time.perf_counter()
        ours = palette_table(e["palette"], e["nodata_color"])
        build_ms.append((time.perf_counter() - t0) * 1e3)
        row = f"{json.dumps(e['palette'])[:58]:58s} {max_diff(ours, e['rgba']):>10d}"
        for fit in VARIANTS.values():
            if isinstance(e["palette"], str):
                row += f" {'(colormap)':>26s}"
            else:
                row += f" {max_diff(coloraide8_table(e['palette'], e['nodata_color'], **fit), e['rgba']):>26d}"  # noqa: E501
        print(row)
    print(f"build time per table (first call, uncached): median {statistics.median(build_ms):.0f}"
          f" ms, max {max(build_ms):.0f} ms")

    if not args.coloraide018:
        return
    pals = random_palettes(args.random, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        job, out, script = (Path(tmp) / n for n in ("job.json", "out.json", "oracle.py"))
        job.write_text(json.dumps({"tables": tables, "random": pals}))
        script.write_text(_ORACLE)
        subprocess.run([sys.executable, str(script), args.coloraide018, str(job), str(out)],
                       check=True)
        res = json.loads(out.read_text())
    print(f"\ncoloraide {res['version']} (pdgraster's arithmetic) against pdgraster's tables: "
          f"max difference {res['tables_max_diff']}")
    ours = [max_diff(palette_table(p, "#ffffff00"), o) for p, o in zip(pals, res["random"])]
    best = VARIANTS["coloraide 8 lch-chroma D50"]
    alone = [max_diff(coloraide8_table(p, "#ffffff00", **best), o)
             for p, o in zip(pals, res["random"])]
    for name, diffs in (("fastraster palette_table", ours),
                        ("coloraide 8 lch-chroma D50", alone)):
        print(f"{name:28s} vs coloraide {res['version']} on {len(pals)} random palettes "
              f"(seed {args.seed}): max {max(diffs)}, palettes > 1 level off: "
              f"{sum(d > 1 for d in diffs)}, exact: {sum(d == 0 for d in diffs)}")


if __name__ == "__main__":
    main()
