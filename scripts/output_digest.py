#!/usr/bin/env python
"""sha256 of every output file of one or more fastraster output folders, for byte-identity
checks across refactors.

    python scripts/output_digest.py digest OUT [OUT ...] [--json digests.json]
    python scripts/output_digest.py make OUT        # the three reference output sets
    python scripts/output_digest.py compare a.json b.json
    python scripts/output_digest.py rasters A B     # GeoTIFFs as GDAL reads them

``digest`` hashes every ``.tif``, ``.png`` and ``.xml`` file as is, and the CSVs without their
run-dependent columns: ``rasters_summary.csv`` whole (it is deterministic) and
``rasterization_events.csv`` reduced to path, tile, status, error, polygons and output
(timings, pids and peak RSS differ from run to run). The folder's own absolute path is
replaced by ``<root>`` in CSV and XML text, so that two runs in different folders compare.
Keys are paths relative to each folder, prefixed by the folder's name.

``rasters`` is for changes of the GeoTIFF writer, whose bytes may differ: it compares every
GeoTIFF of two folders as GDAL (rasterio) reads it.

``make`` writes, below OUT, with the public API only (so the same command runs against any
version of the package on ``PYTHONPATH``):

* ``demo/``: ``python -m fastraster.cli demo`` (sample, rasterize, preview, pyramid, web tiles);
* ``pdg/``: the PDG minimal example (``../shared/pdg-minimal-example``: staged tiles and
  config) through ``RasterTiler(config).rasterize_all()``, run from that folder;
* ``dense/``: a dense sample tree (``make_sample(spacing_m=9)``) with an attribute column
  ``v``, rasterized with every statistic kind (3 count and 3 area keywords, ``v`` with count
  and area weights x sum/mean/min/max/count), then ``build_pyramid`` and
  ``render_web_tiles``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HASHED = (".tif", ".png", ".xml")
#: Columns of rasterization_events.csv that do not depend on timing or on the process.
EVENT_KEEP = ("path", "tile", "status", "error", "polygons", "output")
REPO = Path(__file__).resolve().parents[1]
PDG_EXAMPLE = Path(os.environ.get("FASTRASTER_PDG_EXAMPLE",
                                  REPO.parent / "shared" / "pdg-minimal-example"))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _events_text(text: str) -> str:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return ""
    keep = [rows[0].index(c) for c in EVENT_KEEP if c in rows[0]]
    out = io.StringIO()
    csv.writer(out).writerows([[r[i] for i in keep] for r in rows])
    return out.getvalue()


def digest(root) -> dict[str, str]:
    """``{relative path: sha256}`` of the outputs below ``root`` (see the module doc)."""
    root = Path(root).resolve()
    out = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or any(part.startswith(".")
                                     for part in path.relative_to(root).parts):
            continue  # inputs (kept in dot folders) and temporary files
        rel = f"{root.name}/{path.relative_to(root).as_posix()}"
        if path.suffix in HASHED and path.suffix != ".xml":
            out[rel] = _sha(path.read_bytes())
        elif path.suffix in (".xml", ".csv"):
            text = path.read_text().replace(str(root), "<root>")
            if path.name.endswith("rasterization_events.csv"):
                text = _events_text(text)
            out[rel] = _sha(text.encode())
    return out


def compare(a: dict, b: dict) -> list[str]:
    """Differences between two digests, one line each (empty when identical)."""
    lines = [f"only in first: {k}" for k in sorted(set(a) - set(b))]
    lines += [f"only in second: {k}" for k in sorted(set(b) - set(a))]
    lines += [f"differs: {k}" for k in sorted(set(a) & set(b)) if a[k] != b[k]]
    return lines


def read_raster(path) -> dict:
    """What GDAL reads from a GeoTIFF: every property a user of the file sees."""
    import rasterio

    with rasterio.open(path) as src:
        return {
            "crs": src.crs.to_wkt() if src.crs else None, "transform": tuple(src.transform),
            "nodata": repr(src.nodata), "descriptions": src.descriptions,
            "dtypes": src.dtypes, "shape": (src.count, src.height, src.width),
            "compression": str(src.compression), "blocks": src.block_shapes,
            "interleaving": str(src.interleaving), "tags": src.tags(),
            "structure": src.tags(ns="IMAGE_STRUCTURE"),
            "values": src.read().tobytes(),  # bit for bit (NaN payloads and -0.0 included)
        }


def compare_rasters(a, b) -> tuple[list[str], int]:
    """Every ``.tif`` below folder ``a`` against the same path below ``b``, as GDAL reads them:
    (differences, one line each naming the file and properties; files compared)."""
    a, b = Path(a), Path(b)
    paths = sorted({p.relative_to(a) for p in a.rglob("*.tif")}
                   | {p.relative_to(b) for p in b.rglob("*.tif")})
    lines = []
    for rel in paths:
        if not (a / rel).exists() or not (b / rel).exists():
            lines.append(f"only in {'second' if (b / rel).exists() else 'first'}: {rel}")
            continue
        ra, rb = read_raster(a / rel), read_raster(b / rel)
        diff = [k for k in ra if ra[k] != rb[k]]
        if diff:
            lines.append(f"differs: {rel}: {', '.join(diff)}")
    return lines, len(paths)


# ---------------------------------------------------------------------------------------------
# The reference output sets
# ---------------------------------------------------------------------------------------------

#: Every statistic kind; nodata values mixed (None, 0, -1) so both the no-data mask and the
#: GeoTIFF without a common nodata tag are exercised.
DENSE_STATS = [
    {"name": "count", "weight_by": "count", "property": "centroids_per_pixel",
     "nodata_val": 0},
    {"name": "centre", "weight_by": "count", "property": "polygons_covering_center"},
    {"name": "touching", "weight_by": "count", "property": "polygons_touching",
     "nodata_val": -1},
    {"name": "coverage", "weight_by": "area", "property": "area_per_pixel_area",
     "nodata_val": 0},
    {"name": "area", "weight_by": "area", "property": "area_within_pixel"},
    {"name": "union", "weight_by": "area", "property": "union_area_per_pixel_area",
     "nodata_val": 0},
    *({"name": f"v_count_{a}", "weight_by": "count", "property": "v",
       "aggregation_method": a, **({"nodata_val": -1} if a in ("min", "count") else {})}
      for a in ("sum", "mean", "min", "max", "count")),
    *({"name": f"v_area_{a}", "weight_by": "area", "property": "v",
       "aggregation_method": a, **({"nodata_val": 0} if a in ("sum", "max") else {})}
      for a in ("sum", "mean", "min", "max", "count")),
]


def _add_attribute(src_root: Path, dst_root: Path) -> None:
    import numpy as np
    import pyogrio.raw

    for src in sorted(src_root.rglob("*.gpkg")):
        dst = dst_root / src.relative_to(src_root)
        dst.parent.mkdir(parents=True, exist_ok=True)
        meta, _, geometry, fields = pyogrio.raw.read(src)
        rng = np.random.default_rng(len(geometry))
        v = rng.uniform(-2.0, 5.0, len(geometry))
        pyogrio.raw.write(dst, geometry, [*fields, v], [*meta["fields"], "v"], driver="GPKG",
                          geometry_type=meta["geometry_type"], crs=meta["crs"],
                          layer=meta.get("layer_name") or src.stem)


def make(out) -> None:
    """Write the three reference output sets below ``out`` (replacing what is there)."""
    out = Path(out).resolve()
    for name in ("demo", "pdg", "dense"):
        shutil.rmtree(out / name, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ}
    subprocess.run([sys.executable, "-m", "fastraster.cli", "demo", str(out / "demo"),
                    "-j", "2"], check=True, env=env, stdout=subprocess.DEVNULL)

    import fastraster
    from fastraster.sample import make_sample

    if (PDG_EXAMPLE / "staged").is_dir():
        pdg = out / "pdg"
        shutil.copytree(PDG_EXAMPLE / "staged", pdg / "staged")
        shutil.copy(PDG_EXAMPLE / "config__updated.json", pdg / "config.json")
        cwd = os.getcwd()
        os.chdir(pdg)
        try:
            fastraster.RasterTiler("config.json").rasterize_all()
        finally:
            os.chdir(cwd)
        (pdg / "staged").rename(pdg / ".staged")  # inputs are not outputs
    else:
        print(f"skipped pdg: {PDG_EXAMPLE} not found", file=sys.stderr)

    dense = out / "dense"
    make_sample(dense / ".plain", spacing_m=9)
    _add_attribute(dense / ".plain", dense / ".staged")
    gt = dense / "geotiff"
    report = fastraster.rasterize_dir(dense / ".staged", gt, stats=DENSE_STATS, n_jobs=2,
                                      progress=False)
    assert not report.errors, report.errors
    report = fastraster.build_pyramid(gt, (0, 13), stats=DENSE_STATS, n_jobs=2,
                                      progress=False)
    assert not report.errors, report.errors
    report = fastraster.render_web_tiles(gt, dense / "web", stats=DENSE_STATS, n_jobs=2,
                                         progress=False)
    assert not report.errors, report.errors


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("digest", help="sha256 per output file")
    d.add_argument("roots", nargs="+")
    d.add_argument("--json", help="write the digest here (else print it)")
    m = sub.add_parser("make", help="write the demo, PDG and dense reference outputs")
    m.add_argument("out")
    c = sub.add_parser("compare", help="compare two digest JSON files")
    c.add_argument("a")
    c.add_argument("b")
    r = sub.add_parser("rasters", help="compare the GeoTIFFs of two output folders as GDAL "
                                       "reads them (values bit for bit, CRS, transform, "
                                       "nodata, descriptions, structure, tags)")
    r.add_argument("a")
    r.add_argument("b")
    args = ap.parse_args(argv)
    if args.cmd == "rasters":
        lines, n = compare_rasters(args.a, args.b)
        print("\n".join(lines) if lines else f"identical as GDAL reads them: {n} GeoTIFFs")
        return 1 if lines else 0
    if args.cmd == "make":
        make(args.out)
        return 0
    if args.cmd == "compare":
        a, b = (json.loads(Path(p).read_text()) for p in (args.a, args.b))
        lines = compare(a, b)
        print("\n".join(lines) if lines else f"identical: {len(a)} files")
        return 1 if lines else 0
    result = {}
    for root in args.roots:
        result.update(digest(root))
    text = json.dumps(result, indent=1, sort_keys=True)
    if args.json:
        Path(args.json).write_text(text + "\n")
        print(f"{len(result)} files -> {args.json}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
