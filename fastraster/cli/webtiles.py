"""``fastraster webtiles``: RGBA PNG web tiles and WMTS capabilities from GeoTIFFs."""

from __future__ import annotations

import sys

import click

from fastraster.cli.options import (
    apply,
    config_option,
    config_stats,
    parallel_options,
    report_exit,
    run_command,
    tms_option,
)


@click.command()
@click.argument("geotiffs", type=click.Path(exists=True, file_okay=False))
@click.argument("web", type=click.Path(file_okay=False))
@apply(parallel_options(16, "GeoTIFFs", "Redo PNGs that exist."))
@tms_option()
@config_option("PDG config JSON: 'statistics' with palette, val_range, nodata_val, ...")
@click.option("--summary", type=click.Path(exists=True, dir_okay=False), default=None,
              help="rasters_summary.csv with the per-zoom ranges (default: GEOTIFFS/"
                   "rasters_summary.csv, else computed from the GeoTIFFs).")
@click.option("--base-url", default=None,
              help="URL the web tiles will be served from, for WMTSCapabilities.xml "
                   "(default: the file:// URL of WEB).")
@click.option("--no-wmts", is_flag=True, help="Do not write WMTSCapabilities.xml.")
def webtiles(geotiffs, web, workers, batch_size, backend, overwrite, quiet, retries, tms,
             config, summary, base_url, no_wmts):
    """Render GEOTIFFS/<TMS>/<z>/<x>/<y>.tif into WEB/<stat>/<TMS>/<z>/<x>/<y>.png.

    One RGBA PNG per statistic, coloured as pdgraster colours them, plus
    WEB/WMTSCapabilities.xml for QGIS or a web map.
    """
    from fastraster.pipelines.webtiles import render_web_tiles

    report = run_command(render_web_tiles, geotiffs, web, stats=config_stats(config),
                         summary=summary, n_jobs=workers, batch_size=batch_size,
                         backend=backend, overwrite=overwrite, progress=not quiet,
                         tms=tms, wmts=not no_wmts, base_url=base_url, retries=retries)
    code = report_exit(report)
    if getattr(report, "wmts", None):
        click.echo(f"WMTS capabilities: {report.wmts}")
    sys.exit(code)
