"""``fastraster pyramid``: the lower zoom levels of a GeoTIFF tree."""

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
@click.option("--min-z", type=int, default=0, show_default=True,
              help="Lowest zoom level to build.")
@click.option("--max-z", type=int, default=None,
              help="Zoom of the existing GeoTIFFs (the children of the first level); "
                   "default: the deepest zoom found in GEOTIFFS.")
@apply(parallel_options(8, "Tiles", "Redo parents whose GeoTIFF exists."))
@tms_option()
@config_option("PDG config JSON whose 'statistics' name the bands.")
def pyramid(geotiffs, min_z, max_z, workers, batch_size, backend, overwrite, quiet, retries,
            tms, config):
    """Build the lower zoom levels of GEOTIFFS/<TMS>/<z>/<x>/<y>.tif, from MAX_Z (default:
    the deepest zoom found) down to MIN_Z.

    Each parent is its four children reduced 2x2 per band by the statistic's
    resampling_method (sum for counts, average for coverage).
    """
    from fastraster.pipelines.pyramid import build_pyramid

    report = run_command(build_pyramid, geotiffs, (min_z, max_z),
                         stats=config_stats(config), n_jobs=workers,
                         batch_size=batch_size, backend=backend, overwrite=overwrite,
                         progress=not quiet, tms=tms, retries=retries)
    sys.exit(report_exit(report))
