"""``fastraster rasterize``: a staged tree to GeoTIFFs."""

from __future__ import annotations

import sys

import click

from fastraster.cli.options import (
    apply,
    config_option,
    config_stats,
    parallel_options,
    report_exit,
    run_quietly,
    tms_option,
)


def run(staged, out, workers, batch_size, backend, overwrite, quiet, tms, z, tile_size,
        dtype, config):
    """``rasterize_dir`` with the command's options; prints errors and the summary line."""
    from fastraster.pipelines.staged import rasterize_dir

    report = run_quietly(rasterize_dir, staged, out, tms=tms, z=z, tile_size=tile_size,
                         stats=config_stats(config), n_jobs=workers, batch_size=batch_size,
                         backend=backend, overwrite=overwrite, progress=not quiet,
                         dtype=dtype)
    report_exit(report)
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
            report = run(staged, out, workers, batch_size, "dask", overwrite, quiet, tms, z,
                         tile_size, dtype, config)
    else:
        report = run(staged, out, workers, batch_size, backend, overwrite, quiet, tms, z,
                     tile_size, dtype, config)
    sys.exit(1 if report.n("error") else 0)
