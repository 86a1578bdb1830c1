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
