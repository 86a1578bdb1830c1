"""``fastraster sample``: synthetic staged tiles."""

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
def sample(out, spacing, z, tms, seed):
    """Write synthetic ice-wedge polygons as a staged tree of 4 tiles (2 x 2) into OUT."""
    from fastraster.sample import make_sample

    paths = make_sample(out, spacing_m=spacing, z=z, tms=tms, seed=seed)
    click.echo(f"wrote {len(paths)} staged z{z} tiles below {out}")
