"""Command line: ``fastraster rasterize | sample | demo``."""

from __future__ import annotations

import os
import sys

import click


@click.group()
@click.version_option(package_name="fastraster")
def main():
    """Exact per-pixel statistics of staged vector tiles (PDG IWP workflow)."""


def _run(staged, out, workers, batch_size, backend, overwrite, quiet, tms, z, tile_size,
         dtype, config):
    from fastraster.pipeline import rasterize_dir

    stats = None
    if config:
        import json

        with open(config) as fh:
            stats = json.load(fh).get("statistics")
    report = rasterize_dir(staged, out, tms=tms, z=z, tile_size=tile_size, stats=stats,
                           n_jobs=workers, batch_size=batch_size, backend=backend,
                           overwrite=overwrite, progress=not quiet, dtype=dtype)
    for rec in report.errors:
        click.echo(f"error: {rec['error']}", err=True)
    click.echo(report.summary_line())
    return report


_common = [
    click.option("--workers", "-j", type=int, default=-1, show_default=True,
                 help="Worker count (-1: all cores)."),
    click.option("--batch-size", type=int, default=10, show_default=True,
                 help="Files per task sent to a worker."),
    click.option("--backend", default="loky", show_default=True,
                 help="joblib backend: loky, threading, dask, ray."),
    click.option("--overwrite", is_flag=True, help="Redo tiles whose GeoTIFF exists."),
    click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
    click.option("--tms", default=None, help="Tile matrix set id (default: from the paths)."),
    click.option("--z", type=int, default=None, help="Zoom (default: from the paths)."),
    click.option("--tile-size", type=int, default=256, show_default=True),
    click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32",
                 show_default=True),
    click.option("--config", type=click.Path(exists=True, dir_okay=False), default=None,
                 help="PDG config JSON whose 'statistics' to compute."),
]


def _with_common(f):
    for opt in reversed(_common):
        f = opt(f)
    return f


@main.command()
@click.argument("staged", type=click.Path(exists=True, file_okay=False))
@click.argument("out", type=click.Path(file_okay=False))
@_with_common
def rasterize(staged, out, workers, batch_size, backend, overwrite, quiet, tms, z, tile_size,
              dtype, config):
    """Rasterize every STAGED/<TMS>/<z>/<x>/<y>.gpkg into OUT/<TMS>/<z>/<x>/<y>.tif."""
    report = _run(staged, out, workers, batch_size, backend, overwrite, quiet, tms, z,
                  tile_size, dtype, config)
    sys.exit(1 if report.errors else 0)


@main.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--spacing", type=float, default=15.0, show_default=True,
              help="Polygon size in metres (9 gives ~25k polygons per z13 tile).")
@click.option("--seed", type=int, default=0, show_default=True)
def sample(out, spacing, seed):
    """Write synthetic ice-wedge polygons as a staged tree of 4 z13 tiles into OUT."""
    from fastraster.sample import make_sample

    paths = make_sample(out, spacing_m=spacing, seed=seed)
    click.echo(f"wrote {len(paths)} staged tiles below {out}")


@main.command()
@click.argument("out", type=click.Path(file_okay=False), default="demo-output")
@click.option("--workers", "-j", type=int, default=-1, show_default=True)
def demo(out, workers):
    """Generate sample data into OUT/staged and rasterize it into OUT/geotiff."""
    from fastraster.sample import make_sample

    staged = os.path.join(out, "staged")
    paths = make_sample(staged)
    click.echo(f"sample: {len(paths)} staged z13 tiles in {staged}")
    report = _run(staged, os.path.join(out, "geotiff"), workers, 10, "loky", True, False,
                  None, None, 256, "float32", None)
    for rec in report:
        if rec["status"] == "ok":
            click.echo(f"  {rec['output']}: {rec['polygons']} polygons, "
                       f"{1000 * rec['seconds']:.1f} ms")
    click.echo(f"summary: {os.path.join(out, 'geotiff', 'rasters_summary.csv')}")
    sys.exit(1 if report.errors else 0)


if __name__ == "__main__":
    main()
