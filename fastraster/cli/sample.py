"""``fastraster sample``: synthetic staged tiles, or raw scenes with footprints."""

from __future__ import annotations

import click


@click.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--spacing", type=float, default=15.0, show_default=True,
              help="Polygon size in metres (9 gives ~25k polygons per z13 tile).")
@click.option("--z", "z", type=click.IntRange(1, 30), default=13, show_default=True,
              help="Zoom of the staged tiles (a z18 tile is ~26 x 76 m: use a small "
                   "--spacing there).")
@click.option("--tms", default="WorldCRS84Quad", show_default=True,
              type=click.Choice(["WorldCRS84Quad", "WGS1984Quad"]))
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--scenes", type=click.IntRange(min=1), default=None,
              help="Write this many raw scenes (OUT/input) with dated footprints "
                   "(OUT/footprints), PDG's layout, instead of staged tiles.")
@click.option("--polygons-per-scene", type=click.IntRange(min=100), default=25_000,
              show_default=True, help="With --scenes: detections per scene (about).")
@click.option("--workers", "-j", type=int, default=1, show_default=True,
              help="With --scenes: processes writing scenes (-1: all cores).")
def sample(out, spacing, z, tms, seed, scenes, polygons_per_scene, workers):
    """Write synthetic ice-wedge polygons into OUT: a staged tree of 4 tiles (2 x 2), or with
    --scenes N, N overlapping raw scenes (EPSG:3413, one in eight in UTM 52N) and their
    footprints, for ``fastraster rasterize-sources OUT/input GEOTIFF --footprints
    OUT/footprints`` (--z and --tms are for staged tiles)."""
    if scenes is not None:
        from fastraster.sample import make_scenes

        res = make_scenes(out, scenes, polygons_per_scene=polygons_per_scene,
                          spacing_m=spacing, seed=seed, n_jobs=workers)
        click.echo(f"wrote {res['scenes']} scenes, {res['polygons']} polygons: "
                   f"{res['inputs']} (footprints: {res['footprints']})")
        return
    from fastraster.sample import make_sample

    paths = make_sample(out, spacing_m=spacing, z=z, tms=tms, seed=seed)
    click.echo(f"wrote {len(paths)} staged z{z} tiles below {out}")
