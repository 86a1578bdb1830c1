"""Options several commands share (like ``rio``'s options module), and their helpers."""

from __future__ import annotations

import sys
from contextlib import contextmanager

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
        click.option("--retries", type=click.IntRange(min=0), default=1, show_default=True,
                     help="Times a failed tile (any cause, a dead worker included) is tried "
                          "again, in a fresh worker, before it is reported."),
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
    return 1 if report.errors or getattr(report, "csv_error", None) else 0


@contextmanager
def stops_cleanly():
    """Exit codes of a run that could not finish: SIGINT / SIGTERM (the run cleaned up, see
    :class:`~fastraster.execution.supervisor.RunInterrupted`) print what finished and how to
    resume and exit ``128 + signal`` (130, 143); an output folder that cannot be written
    (:class:`~fastraster.io.atomic.OutputError`) is one error line and exit 1."""
    from fastraster.io.atomic import OutputError

    try:
        yield
    except KeyboardInterrupt as exc:
        report = getattr(exc, "report", None)
        if report is not None:
            click.echo(report.summary_line())
        click.echo(f"fastraster: {exc}" if str(exc) else "fastraster: interrupted", err=True)
        sys.exit(128 + getattr(exc, "signum", 2))
    except OutputError as exc:
        raise click.ClickException(str(exc)) from exc
