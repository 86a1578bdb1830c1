"""Options several commands share (like ``rio``'s options module), and their helpers."""

from __future__ import annotations

import click


def apply(options):
    """A decorator applying a list of click options in order."""
    def decorate(f):
        for opt in reversed(options):
            f = opt(f)
        return f
    return decorate


def parallel_options(batch_size, unit, redo):
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


def config_option(help_text):
    """``--config``: a PDG configuration JSON (its ``statistics``)."""
    return click.option("--config", type=click.Path(exists=True, dir_okay=False), default=None,
                        help=help_text)


def tms_option(help_text="Only this tile matrix set (default: all found)."):
    return click.option("--tms", default=None, help=help_text)


def config_stats(config):
    """The ``statistics`` of the ``--config`` file (None without one)."""
    from fastraster.io.config import config_statistics

    return config_statistics(config)


def report_exit(report) -> int:
    """Print the errors and the summary line of a report; the exit code (1 if any error)."""
    for rec in report.errors:
        click.echo(f"error: {rec['error']}", err=True)
    click.echo(report.summary_line())
    return 1 if report.errors else 0
