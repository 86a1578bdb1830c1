"""Command line: ``fastraster rasterize | pyramid | webtiles | sample | demo``."""

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


def _parallel_options(batch_size, unit, redo):
    """Options every parallel command shares: workers, batching, backend, resume, quiet."""
    return [
        click.option("--workers", "-j", type=int, default=-1, show_default=True,
                     help="Worker count (-1: all cores)."),
        click.option("--batch-size", type=int, default=batch_size, show_default=True,
                     help=f"{unit} per task sent to a worker."),
        click.option("--backend", default="loky", show_default=True,
                     help="joblib backend: loky, threading, dask, ray."),
        click.option("--overwrite", is_flag=True, help=redo),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
    ]


def _apply(options):
    def decorate(f):
        for opt in reversed(options):
            f = opt(f)
        return f
    return decorate


_common = _parallel_options(10, "Files", "Redo tiles whose GeoTIFF exists.") + [
    click.option("--tms", default=None, help="Tile matrix set id (default: from the paths)."),
    click.option("--z", type=int, default=None, help="Zoom (default: from the paths)."),
    click.option("--tile-size", type=int, default=256, show_default=True),
    click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32",
                 show_default=True),
    click.option("--config", type=click.Path(exists=True, dir_okay=False), default=None,
                 help="PDG config JSON whose 'statistics' to compute."),
]


@main.command()
@click.argument("staged", type=click.Path(exists=True, file_okay=False))
@click.argument("out", type=click.Path(file_okay=False))
@_apply(_common)
@click.option("--scheduler", default=None,
              help="Address of a running dask.distributed scheduler (tcp://host:8786); "
                   "implies --backend dask.")
def rasterize(staged, out, workers, batch_size, backend, overwrite, quiet, tms, z, tile_size,
              dtype, config, scheduler):
    """Rasterize every STAGED/<TMS>/<z>/<x>/<y>.gpkg into OUT/<TMS>/<z>/<x>/<y>.tif."""
    if scheduler:
        try:
            from distributed import Client
        except ImportError as exc:
            raise click.UsageError("--scheduler needs dask.distributed: "
                                   "pip install 'fastraster[dask]'") from exc
        with Client(scheduler):  # the default client for joblib's dask backend
            report = _run(staged, out, workers, batch_size, "dask", overwrite, quiet, tms, z,
                          tile_size, dtype, config)
    else:
        report = _run(staged, out, workers, batch_size, backend, overwrite, quiet, tms, z,
                      tile_size, dtype, config)
    sys.exit(1 if report.errors else 0)


def _config_stats(config):
    if not config:
        return None
    import json

    with open(config) as fh:
        return json.load(fh).get("statistics")


def _report_exit(report):
    for rec in report.errors:
        click.echo(f"error: {rec['error']}", err=True)
    click.echo(report.summary_line())
    return 1 if report.errors else 0


@main.command()
@click.argument("geotiffs", type=click.Path(exists=True, file_okay=False))
@click.option("--min-z", type=int, default=0, show_default=True,
              help="Lowest zoom level to build.")
@click.option("--max-z", type=int, default=13, show_default=True,
              help="Zoom of the existing GeoTIFFs (the children of the first level).")
@_apply(_parallel_options(8, "Tiles", "Redo parents whose GeoTIFF exists."))
@click.option("--tms", default=None, help="Only this tile matrix set (default: all found).")
@click.option("--config", type=click.Path(exists=True, dir_okay=False), default=None,
              help="PDG config JSON whose 'statistics' name the bands.")
def pyramid(geotiffs, min_z, max_z, workers, batch_size, backend, overwrite, quiet, tms,
            config):
    """Build the lower zoom levels of GEOTIFFS/<TMS>/<z>/<x>/<y>.tif, from MAX_Z down to MIN_Z.

    Each parent is its four children reduced 2x2 per band by the statistic's
    resampling_method (sum for counts, average for coverage).
    """
    from fastraster.pyramid import build_pyramid

    report = build_pyramid(geotiffs, (min_z, max_z), stats=_config_stats(config),
                           n_jobs=workers, batch_size=batch_size, backend=backend,
                           overwrite=overwrite, progress=not quiet, tms=tms)
    sys.exit(_report_exit(report))


@main.command()
@click.argument("geotiffs", type=click.Path(exists=True, file_okay=False))
@click.argument("web", type=click.Path(file_okay=False))
@_apply(_parallel_options(16, "GeoTIFFs", "Redo PNGs that exist."))
@click.option("--tms", default=None, help="Only this tile matrix set (default: all found).")
@click.option("--config", type=click.Path(exists=True, dir_okay=False), default=None,
              help="PDG config JSON: 'statistics' with palette, val_range, nodata_val, ...")
@click.option("--summary", type=click.Path(exists=True, dir_okay=False), default=None,
              help="rasters_summary.csv with the per-zoom ranges (default: GEOTIFFS/"
                   "rasters_summary.csv, else computed from the GeoTIFFs).")
@click.option("--base-url", default=None,
              help="URL the web tiles will be served from, for WMTSCapabilities.xml "
                   "(default: the file:// URL of WEB).")
@click.option("--no-wmts", is_flag=True, help="Do not write WMTSCapabilities.xml.")
def webtiles(geotiffs, web, workers, batch_size, backend, overwrite, quiet, tms, config,
             summary, base_url, no_wmts):
    """Render GEOTIFFS/<TMS>/<z>/<x>/<y>.tif into WEB/<stat>/<TMS>/<z>/<x>/<y>.png.

    One RGBA PNG per statistic, coloured as pdgraster colours them, plus
    WEB/WMTSCapabilities.xml for QGIS or a web map.
    """
    from fastraster.webtiles import render_web_tiles

    report = render_web_tiles(geotiffs, web, stats=_config_stats(config), summary=summary,
                              n_jobs=workers, batch_size=batch_size, backend=backend,
                              overwrite=overwrite, progress=not quiet, tms=tms,
                              wmts=not no_wmts, base_url=base_url)
    code = _report_exit(report)
    if getattr(report, "wmts", None):
        click.echo(f"WMTS capabilities: {report.wmts}")
    sys.exit(code)


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
    """Generate sample data into OUT/staged, rasterize it into OUT/geotiff, build the lower
    zoom levels, render OUT/web_tiles and write OUT/preview.png (the z13 mosaic)."""
    from fastraster.pyramid import build_pyramid
    from fastraster.sample import make_sample
    from fastraster.webtiles import mosaic_preview, render_web_tiles

    staged = os.path.join(out, "staged")
    geotiffs = os.path.join(out, "geotiff")
    paths = make_sample(staged)
    click.echo(f"sample: {len(paths)} staged z13 tiles in {staged}")
    report = _run(staged, geotiffs, workers, 10, "loky", True, False,
                  None, None, 256, "float32", None)
    for rec in report:
        if rec["status"] == "ok":
            click.echo(f"  {rec['output']}: {rec['polygons']} polygons, "
                       f"{1000 * rec['seconds']:.1f} ms")
    click.echo(f"summary: {os.path.join(geotiffs, 'rasters_summary.csv')}")
    if report.errors:
        sys.exit(1)
    preview = mosaic_preview(geotiffs, 13, os.path.join(out, "preview.png"))
    click.echo(f"preview: {preview}")
    parents = build_pyramid(geotiffs, (0, 13), n_jobs=workers, overwrite=True,
                            progress=False)
    click.echo(f"pyramid z0-12: {parents.summary_line()}")
    web = render_web_tiles(geotiffs, os.path.join(out, "web_tiles"), n_jobs=workers,
                           overwrite=True, progress=False)
    click.echo(f"web tiles: {web.summary_line()}")
    click.echo(f"WMTS capabilities: {web.wmts}")
    sys.exit(1 if parents.errors or web.errors else 0)


if __name__ == "__main__":
    main()
