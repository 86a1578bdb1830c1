"""``fastraster rasterize``: a staged tree to GeoTIFFs."""

from __future__ import annotations

import sys

import click

from fastraster.cli.options import (
    apply,
    config_option,
    config_stats,
    on_scheduler,
    parallel_options,
    report_exit,
    run_command,
    scheduler_option,
    tms_option,
)


def run(staged, out, workers, batch_size, backend, overwrite, quiet, tms, z, tile_size,
        dtype, config, retries=1):
    """``rasterize_dir`` with the command's options; prints errors and the summary line."""
    from fastraster.pipelines.staged import rasterize_dir

    report = run_command(rasterize_dir, staged, out, tms=tms, z=z, tile_size=tile_size,
                         stats=config_stats(config), n_jobs=workers,
                         batch_size=batch_size, backend=backend, overwrite=overwrite,
                         progress=not quiet, dtype=dtype, retries=retries)
    report.exit_code = report_exit(report)
    return report


@click.command()
@click.argument("staged", type=click.Path(exists=True, file_okay=False))
@click.argument("out", type=click.Path(file_okay=False))
@apply(parallel_options(10, "Files", "Redo tiles whose GeoTIFF exists.") + [
    tms_option("Tile matrix set id (default: from the paths)."),
    click.option("--z", type=int, default=None, help="Zoom (default: from the paths)."),
    click.option("--tile-size", type=int, default=256, show_default=True),
    click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32",
                 show_default=True),
    config_option("PDG config JSON whose 'statistics' to compute."),
])
@scheduler_option()
def rasterize(staged, out, workers, batch_size, backend, overwrite, quiet, retries, tms, z,
              tile_size, dtype, config, scheduler):
    """Rasterize every STAGED/<TMS>/<z>/<x>/<y>.gpkg into OUT/<TMS>/<z>/<x>/<y>.tif."""
    with on_scheduler(scheduler, backend) as backend:
        report = run(staged, out, workers, batch_size, backend, overwrite, quiet, tms, z,
                     tile_size, dtype, config, retries)
    sys.exit(report.exit_code)
