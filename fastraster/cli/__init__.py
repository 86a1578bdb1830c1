"""Command line: ``fastraster rasterize | rasterize-sources | pyramid | webtiles | sample |
demo``, one module per command (shared options in :mod:`fastraster.cli.options`)."""

from __future__ import annotations

import click

from fastraster.cli.demo import demo
from fastraster.cli.pyramid import pyramid
from fastraster.cli.rasterize import rasterize
from fastraster.cli.sample import sample
from fastraster.cli.sources import rasterize_sources
from fastraster.cli.webtiles import webtiles


@click.group()
@click.version_option(package_name="fastraster")
def main():
    """Exact per-pixel statistics of staged vector tiles or raw scenes (PDG IWP workflow)."""


for _command in (rasterize, rasterize_sources, pyramid, webtiles, sample, demo):
    main.add_command(_command)
