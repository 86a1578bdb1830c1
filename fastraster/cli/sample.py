"""``fastraster sample``: synthetic staged tiles."""

from __future__ import annotations

import click


@click.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--spacing", type=float, default=15.0, show_default=True,
              help="Polygon size in metres (9 gives ~25k polygons per z13 tile).")
@click.option("--seed", type=int, default=0, show_default=True)
def sample(out, spacing, seed):
    """Write synthetic ice-wedge polygons as a staged tree of 4 z13 tiles into OUT."""
    from fastraster.sample import make_sample

    paths = make_sample(out, spacing_m=spacing, seed=seed)
    click.echo(f"wrote {len(paths)} staged tiles below {out}")
