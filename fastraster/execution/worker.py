"""Set-up of a worker process (or thread) before its first task: once per process."""

from __future__ import annotations

from fastraster.execution.allocator import tune_allocator


def limit_numba_threads() -> None:
    """One numba thread: workers already run in parallel, and a numba thread pool per worker
    would oversubscribe the cores."""
    import numba

    if numba.get_num_threads() != 1:
        numba.set_num_threads(1)


def prepare_worker() -> None:
    """numba threads capped at 1 and glibc's malloc tuned (:func:`tune_allocator`)."""
    limit_numba_threads()
    tune_allocator()


#: What a fork server imports and loads before it forks workers (:func:`use_fork_server`).
FORK_SERVER_PRELOAD = ("fastraster.preload",)


def use_fork_server(preload=FORK_SERVER_PRELOAD) -> None:
    """Start the process workers of later runs (joblib's loky backend, the default) by
    forking a server that has imported fastraster and loaded its kernels once.

    A worker is then ready in ~0.05 s instead of ~0.6 s of imports in a fresh interpreter,
    which matters where workers start often: a worker death or a retry round replaces the
    pool (docs/scaling.md, "Worker start-up"). Runs stay supervised as with plain loky (a
    dead worker costs only its item). Call it once, at the start of the main script, under
    ``if __name__ == "__main__":``, before the first parallel run of the process; POSIX only.

    Parameters
    ----------
    preload : sequence of str
        Modules the server imports before forking; the default imports the reader and the
        writer and loads every kernel (:mod:`fastraster.preload`). Python 3.11's server
        takes its ``sys.path`` from ``PYTHONPATH``, not from the parent, and skips a module
        it cannot import silently.

    Raises
    ------
    RuntimeError
        Where the platform has no fork server (Windows).
    """
    import multiprocessing

    from joblib.externals.loky.backend.context import set_start_method

    if "forkserver" not in multiprocessing.get_all_start_methods():
        raise RuntimeError("use_fork_server: this platform has no 'forkserver' start method")
    # loky's workers come from multiprocessing's fork server, whose preload list is global.
    multiprocessing.set_forkserver_preload(list(preload))
    set_start_method("forkserver", force=True)
