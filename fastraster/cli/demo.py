"""``fastraster demo``: sample, rasterize, preview, pyramid, web tiles."""

from __future__ import annotations

import os
import sys

import click

from fastraster.cli.options import print_errors, run_quietly
from fastraster.cli.rasterize import run


@click.command()
@click.argument("out", type=click.Path(file_okay=False), default="demo-output")
@click.option("--workers", "-j", type=int, default=-1, show_default=True)
def demo(out, workers):
    """Generate sample data into OUT/staged, rasterize it into OUT/geotiff, build the lower
    zoom levels, render OUT/web_tiles and write OUT/preview.png (the mosaic of the staged
    zoom)."""
    from fastraster.io.records import SUMMARY_CSV
    from fastraster.io.tilepaths import parse_tile_path
    from fastraster.pipelines.pyramid import build_pyramid
    from fastraster.pipelines.webtiles import render_web_tiles
    from fastraster.render.preview import mosaic_preview
    from fastraster.sample import make_sample

    staged = os.path.join(out, "staged")
    geotiffs = os.path.join(out, "geotiff")
    paths = make_sample(staged)
    z = max(parse_tile_path(p).tile[2] for p in paths)
    click.echo(f"sample: {len(paths)} staged z{z} tiles in {staged}")
    report = run(staged, geotiffs, workers, 10, "loky", True, False, None, None, 256,
                 "float32", None)
    for rec in report:
        if rec["status"] == "ok":
            click.echo(f"  {rec['output']}: {rec['polygons']} polygons, "
                       f"{1000 * rec['seconds']:.1f} ms")
    click.echo(f"summary: {os.path.join(geotiffs, SUMMARY_CSV)}")
    if report.n("error"):
        sys.exit(1)
    preview = mosaic_preview(geotiffs, z, os.path.join(out, "preview.png"))
    click.echo(f"preview: {preview}")
    parents = run_quietly(build_pyramid, geotiffs, (0, z), n_jobs=workers, overwrite=True,
                          progress=False)
    failed = print_errors(parents)
    click.echo(f"pyramid z0-{z - 1}: {parents.summary_line()}")
    web = run_quietly(render_web_tiles, geotiffs, os.path.join(out, "web_tiles"),
                      n_jobs=workers, overwrite=True, progress=False)
    failed += print_errors(web)
    click.echo(f"web tiles: {web.summary_line()}")
    click.echo(f"WMTS capabilities: {web.wmts}")
    sys.exit(1 if failed else 0)
