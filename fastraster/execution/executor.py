"""The one executor: tasks on joblib workers, results streamed back as they finish.

Backends are joblib's: ``"loky"`` (processes, the default), ``"threading"`` (kernels release
the GIL), ``"multiprocessing"``, ``"dask"`` (needs a running ``dask.distributed`` Client,
checked before any work) and ``"ray"`` (registered here). Pipelines send *batches* of items
per task (:func:`run_tasks`): dispatch costs ~1 ms per task on loky, ~8 ms on dask.
"""

from __future__ import annotations

from contextlib import nullcontext

#: Tasks per joblib call for backends that cannot stream results (ray's pool-based one):
#: bounds what the parent holds at once.
CHUNK_TASKS = 64


def check_backend(backend) -> None:
    """Check that the optional backends ("dask", "ray") can run, and register ray's.

    Raises
    ------
    ImportError
        If the backend's package is not installed.
    RuntimeError
        For ``"dask"`` without a running ``dask.distributed`` Client.
    """
    if backend == "dask":
        try:
            from distributed import default_client
        except ImportError as exc:
            raise ImportError("backend='dask' needs dask.distributed: pip install "
                              "'fastraster[dask]'") from exc
        try:
            default_client()
        except ValueError as exc:
            raise RuntimeError(
                "backend='dask' needs a running dask.distributed Client; create one with "
                "Client(...) first, e.g. Client(LocalCluster()) or "
                "Client('tcp://scheduler:8786')") from exc
    elif backend == "ray":
        try:
            from ray.util.joblib import register_ray
        except ImportError as exc:
            raise ImportError("backend='ray' needs ray: pip install 'fastraster[ray]'") from exc
        register_ray()


class Executor:
    """joblib workers for one run: ``map_unordered`` calls, optionally sharing one pool.

    Used as a context manager, the workers stay up across calls (the scaling benchmark warms
    them, then times them); otherwise each call gets its pool as joblib manages it.

    Parameters
    ----------
    n_jobs : int, optional
        As in joblib (None: joblib's default, 1 unless set by ``joblib.parallel_config``;
        -1: all cores).
    backend : str, optional
        A joblib backend name; None: the one of the active ``joblib.parallel_config``.
    """

    def __init__(self, n_jobs=None, backend="loky"):
        from joblib import Parallel, parallel_config

        check_backend(backend)
        # The backend goes through parallel_config: it registers joblib's dask backend, and
        # joblib 1.6's Parallel(backend="dask") would pass nesting_level on to client.submit.
        with parallel_config(backend=backend) if backend is not None else nullcontext():
            try:
                self._parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered",
                                          batch_size=1)
                self.streams = True
            except ValueError:  # this backend cannot return generators
                self._parallel = Parallel(n_jobs=n_jobs, batch_size=1)
                self.streams = False
        self._open = False

    def __enter__(self) -> Executor:
        self._parallel.__enter__()
        self._open = True
        return self

    def __exit__(self, *exc):
        self._open = False
        return self._parallel.__exit__(*exc)

    def map_unordered(self, func, arg_tuples):
        """``func(*args)`` for each of ``arg_tuples``, one task each, yielded as they finish
        (chunk by chunk for backends that cannot stream)."""
        from joblib import delayed

        if self.streams:
            yield from self._parallel(delayed(func)(*args) for args in arg_tuples)
            return
        arg_tuples = list(arg_tuples)
        with nullcontext() if self._open else self:  # one pool for all chunks
            for i in range(0, len(arg_tuples), CHUNK_TASKS):
                yield from self._parallel(delayed(func)(*args)
                                          for args in arg_tuples[i:i + CHUNK_TASKS])


def parallel_unordered(func, arg_tuples, *, n_jobs=None, backend="loky"):
    """``func(*args)`` for each of ``arg_tuples`` on joblib workers, yielded as they finish.

    The backend is checked (and ray registered) now, before any work.
    """
    return Executor(n_jobs, backend).map_unordered(func, arg_tuples)


def run_tasks(func, items, args=(), *, batch_size=10, n_jobs=None, backend="loky",
              progress=False, desc="tiles", executor: Executor | None = None,
              total: int | None = None, unit: str = "tile"):
    """Run ``func(batch, *args)`` (which returns one record per item) on joblib workers for
    batches of ``batch_size`` items; yield the records, batch by batch as they finish
    (unordered), advancing a tqdm bar if ``progress``.

    The backend is checked before any work. ``executor``: an open :class:`Executor` to use
    (``n_jobs`` and ``backend`` are then its own). ``total`` and ``unit``: what the bar
    counts, when an item yields several records (default: one record per item, "tile").
    """
    batch_size = max(int(batch_size), 1)
    batches = [items[i:i + batch_size] for i in range(0, len(items), batch_size)]
    if executor is None:
        executor = Executor(n_jobs, backend)
    results = executor.map_unordered(func, [(b, *args) for b in batches])
    return _with_progress(results, len(items) if total is None else total, progress, desc,
                          unit)


def _with_progress(results, total, progress, desc, unit="tile"):
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit=unit, desc=desc, disable=not total)
    try:
        for batch in results:
            yield from batch
            if bar is not None:
                bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()
