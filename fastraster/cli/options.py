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


def parallel_options(batch_size, unit, redo, item="tile"):
    """Options every parallel command shares: workers, batching (unless ``batch_size`` is
    None: the command sizes its tasks itself), backend, resume, quiet, retries of a failed
    ``item``."""
    batching = [] if batch_size is None else [
        click.option("--batch-size", type=int, default=batch_size, show_default=True,
                     help=f"{unit} per task sent to a worker.")]
    return [
        click.option("--workers", "-j", type=int, default=-1, show_default=True,
                     help="Worker count (-1: all cores)."),
        *batching,
        click.option("--backend", default="loky", show_default=True,
                     help="joblib backend: loky, threading, dask, ray."),
        click.option("--overwrite", is_flag=True, help=redo),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
        click.option("--retries", type=click.IntRange(min=0), default=1, show_default=True,
                     help=f"Times a failed {item} (any cause, a dead worker included) is "
                          "tried again, in a fresh worker, before it is reported."),
        click.option("--fork-server", is_flag=True, expose_value=False, callback=_fork_server,
                     help="Start loky's workers by forking a server that has loaded "
                          "fastraster once: workers (and the fresh ones of retries) start "
                          "in ~0.05 s instead of a new interpreter's imports each (POSIX)."),
    ]


def _fork_server(ctx, param, value):
    """``--fork-server``: :func:`fastraster.use_fork_server` before the command runs."""
    if value:
        from fastraster.execution.worker import use_fork_server

        try:
            use_fork_server()
        except RuntimeError as exc:
            raise click.UsageError(str(exc)) from exc
    return value


def scheduler_option():
    """``--scheduler``: the address of a running dask.distributed scheduler."""
    return click.option("--scheduler", default=None,
                        help="Address of a running dask.distributed scheduler "
                             "(tcp://host:8786); implies --backend dask.")


@contextmanager
def on_scheduler(scheduler, backend):
    """The joblib backend a command runs on: ``backend``, or with ``--scheduler`` "dask",
    with a ``distributed.Client`` of that scheduler as joblib's default client while the
    block runs."""
    if not scheduler:
        yield backend
        return
    try:
        from distributed import Client
    except ImportError as exc:
        raise click.UsageError("--scheduler needs dask.distributed: "
                               "pip install 'fastraster[dask]'") from exc
    with Client(scheduler):  # the default client for joblib's dask backend
        yield "dask"


def config_option(help_text):
    """``--config``: a PDG configuration JSON (its ``statistics``)."""
    return click.option("--config", type=click.Path(exists=True, dir_okay=False), default=None,
                        help=help_text)


def tms_option(help_text="Only this tile matrix set (default: all found)."):
    return click.option("--tms", default=None, help=help_text)


def config_stats(config):
    """The ``statistics`` of the ``--config`` file (None without one), after validating the
    whole configuration; a bad one is a usage error (exit code 2) naming the statistic, key
    and value."""
    if config is None:
        return None
    from fastraster.pipelines.options import load_config

    try:
        return list(load_config(config).stats)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--config'") from None


#: Errors a command prints before "... and N more".
SHOWN_ERRORS = 5


def run_quietly(function, *args, **kwargs):
    """``function(*args, **kwargs)``, a pipeline run, without its closing
    :class:`~fastraster.io.records.RunFailures` warning (the command prints the errors
    itself, :func:`report_exit`); a ValueError (a bad setting, raised before any file is
    written) becomes a usage error (exit code 2)."""
    import warnings

    from fastraster.io.records import RunFailures

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunFailures)
        try:
            return function(*args, **kwargs)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None


def run_command(function, *args, **kwargs):
    """A command's pipeline run: :func:`run_quietly` inside :func:`stops_cleanly`, keeping only
    the failed records (``keep_records=False``: the CSV rows are streamed, so the command's
    memory does not grow with the number of tiles; it prints counts and the errors)."""
    with stops_cleanly():
        return run_quietly(function, *args, keep_records=False, **kwargs)


def print_errors(report) -> int:
    """Print the first :data:`SHOWN_ERRORS` errors of a report to stderr, then "... and N
    more; see <events CSV>"; the number of failed files."""
    errors = report.errors
    for rec in errors[:SHOWN_ERRORS]:
        click.echo(f"error: {rec['error']}", err=True)
    failed = report.n("error")
    more = failed - min(len(errors), SHOWN_ERRORS)
    if more > 0:
        see = f"; see {report.events_csv}" if getattr(report, "events_csv", None) else ""
        click.echo(f"... and {more} more{see}", err=True)
    return failed


def report_exit(report) -> int:
    """Print the first errors and the summary line of a report; the exit code (1 if any
    file failed or a CSV could not be written)."""
    failed = print_errors(report)
    click.echo(report.summary_line())
    return 1 if failed or getattr(report, "csv_error", None) else 0


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
