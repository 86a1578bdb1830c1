"""``fastraster rasterize-sources``: raw scenes (+ footprints) to max-zoom GeoTIFFs, PDG's
staging rules without staging."""

from __future__ import annotations

import sys

import click

from fastraster.cli.options import (
    apply,
    config_option,
    on_scheduler,
    parallel_options,
    report_exit,
    run_command,
    scheduler_option,
)


@click.command("rasterize-sources")
@click.argument("inputs", type=click.Path(exists=True))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--z", type=click.IntRange(0, 30), default=None,
              help="Output zoom level (default: max(z_range) of --config).")
@click.option("--footprints", type=click.Path(exists=True, file_okay=False), default=None,
              help="Footprint folder mirroring INPUTS (PDG's path rule; default: "
                   "dir_footprints of --config).")
@config_option("PDG config JSON: simplify_tolerance, input_crs, deduplicate_*, z_range, "
               "statistics, tile_size, tms_id, ext_input, ext_footprints (float64 output "
               "unless --dtype).")
@click.option("--simplify-tolerance", type=float, default=None,
              help="Topology-preserving simplification in the input CRS units, before "
                   "anything else (PDG's; default: none, or the config's).")
@click.option("--input-crs", default=None, help="CRS of the inputs, overriding theirs.")
@click.option("--ext", default=None, help="Scene file extension (default .shp, or the "
                                          "config's ext_input).")
@click.option("--no-dedup", is_flag=True,
              help="Without --config: no footprint clip and no footprint deduplication.")
@apply(parallel_options(None, None, "Redo tiles whose GeoTIFF exists.", "scene or tile") + [
    click.option("--dtype", type=click.Choice(["float32", "float64"]), default=None,
                 help="Sample type (default float32, or float64 with --config, as "
                      "pdgraster)."),
])
@scheduler_option()
def rasterize_sources(inputs, out, z, footprints, config, simplify_tolerance, input_crs, ext,
                      no_dedup, workers, backend, overwrite, quiet, retries, dtype, scheduler):
    """Rasterize raw scenes INPUTS (a folder of scene files, or one file) with their
    footprints into OUT/<TMS>/<z>/<x>/<y>.tif, with the answers of PDG's staging +
    pdgraster: MultiPolygons dropped, simplification in the input CRS, clip to the scene's
    footprint, footprint deduplication (the later Date wins), tiles by intersects.

    Prints the first 5 errors and one summary line; exits 1 if any scene or tile failed (or
    OUT cannot be written), 2 for a bad setting (nothing written), 130 / 143 when stopped by
    SIGINT / SIGTERM (run again to resume).
    """
    try:
        rules, dirs = _rules(config, z, simplify_tolerance, input_crs, ext, no_dedup, dtype)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if footprints is None and dirs is not None:
        footprints = dirs.footprints
    if rules.needs_footprints and footprints is None:
        raise click.UsageError("--footprints is needed for the footprint clip and "
                               "deduplication (or pass --no-dedup)")
    with on_scheduler(scheduler, backend) as backend:
        report = _run(inputs, out, footprints, rules, workers, backend, overwrite, quiet,
                      retries)
    sys.exit(report_exit(report))


def _rules(config, z, simplify_tolerance, input_crs, ext, no_dedup, dtype):
    """The rules from the config (if any) with the command's options on top, and the
    config's folders (None without one)."""
    from fastraster.pipelines.source_options import PdgSourceRules

    given = {k: v for k, v in dict(z=z, simplify_tolerance=simplify_tolerance,
                                   input_crs=input_crs, ext=ext, dtype=dtype).items()
             if v is not None}
    if config is not None:
        if no_dedup:
            given.update(keep_rules=None, clip_to_footprint=False)
        return PdgSourceRules.from_pdg_config(config, **given)
    if z is None:
        raise ValueError("--z is required without --config")
    if no_dedup:
        given.update(keep_rules=None, clip_to_footprint=False)
    return PdgSourceRules.create(**given), None


def _run(inputs, out, footprints, rules, workers, backend, overwrite, quiet, retries):
    from fastraster.pipelines.sources import rasterize_sources

    return run_command(rasterize_sources, inputs, out, footprints=footprints,
                       rules=rules, n_jobs=workers, backend=backend, overwrite=overwrite,
                       progress=not quiet, retries=retries)
