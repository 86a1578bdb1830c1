"""Run a PDG configuration end to end with fastraster's pdgraster drop-in.

    python examples/run_example.py examples/iwp_production_z15.json --sample --workdir /tmp/iwp

With ``--sample`` the staged folder of the configuration (``dir_staged``) is first filled with
synthetic ice-wedge polygons (``fastraster.sample``) at the configuration's deepest zoom and
tile matrix set; without it, ``dir_staged`` must hold staged tiles (PDG's viz-staging
output). The configuration's folders are relative: they are taken from ``--workdir`` (default:
the current folder). Then ``RasterTiler(config).rasterize_all()``: GeoTIFFs at the deepest
zoom, their parents down to ``z_range[0]``, web tiles and ``WMTSCapabilities.xml``. Exit code
1 if any file failed (the errors are printed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="PDG configuration JSON")
    parser.add_argument("--workdir", default=".", help="where the relative folders go")
    parser.add_argument("--sample", action="store_true",
                        help="stage synthetic polygons into dir_staged first")
    parser.add_argument("--spacing", type=float, default=15.0,
                        help="sample polygon size in metres (default 15, as real IWPs)")
    parser.add_argument("--workers", "-j", type=int, default=-1)
    args = parser.parse_args(argv)

    import fastraster
    from fastraster.io.records import RunFailures
    from fastraster.sample import make_sample

    with open(args.config) as fh:
        config = json.load(fh)
    os.makedirs(args.workdir, exist_ok=True)
    os.chdir(args.workdir)
    tiler = fastraster.RasterTiler(config)  # validates the whole configuration first
    if args.sample:
        paths = make_sample(tiler.config["dir_staged"], z=tiler.z, tms=tiler.config["tms_id"],
                            spacing_m=args.spacing)
        print(f"staged {len(paths)} synthetic z{tiler.z} tiles in {tiler.config['dir_staged']}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunFailures)  # the errors are printed below
        report = tiler.rasterize_all(n_jobs=args.workers)
    for step in report.steps:
        print(f"{step.step}: {step.summary_line()}")
    for rec in report.errors[:5]:
        print(f"error: {rec['error']}", file=sys.stderr)
    print(f"GeoTIFFs in {tiler.config['dir_geotiff']}, web tiles in "
          f"{tiler.config['dir_web_tiles']}")
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
