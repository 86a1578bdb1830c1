"""The one executor: tasks on joblib workers, results streamed back as they finish.

Backends are joblib's: ``"loky"`` (processes, the default), ``"threading"`` (kernels release
the GIL), ``"dask"`` (needs a running ``dask.distributed`` Client, checked before any work)
and ``"ray"`` (registered here). ``"multiprocessing"`` is refused: its pool replaces a dead
worker and waits forever for the task it held, so one crash would hang a run; loky serves
(:func:`~fastraster.execution.worker.use_fork_server` for fork-server start-up). Pipelines
send *batches* of items per task (:func:`run_tasks`): dispatch costs ~1 ms per task on loky,
~8 ms on dask.

:func:`run_tasks` supervises a run (:class:`~fastraster.execution.supervisor.TaskRun`): a
worker that dies costs only the items it held, failed items are retried, Ctrl-C and SIGTERM
stop cleanly. For that, ``"loky"`` runs on :class:`SupervisedLokyBackend`, joblib's loky
backend plus one callback: loky, when a worker dies, fails every pending task and then kills
every other worker; the callback runs in between, so the supervisor sees which workers were
still alive — the dead one held the culprit batch, the others only collateral ones.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from contextlib import nullcontext

#: Tasks per joblib call for backends that cannot stream results (ray's pool-based one):
#: bounds what the parent holds at once.
CHUNK_TASKS = 64

#: The name under which :class:`SupervisedLokyBackend` is registered with joblib.
SUPERVISED_LOKY = "fastraster-loky"

#: Callables told (in loky's manager thread) when a task of a supervised pool fails.
_WATCHERS: list = []


def check_backend(backend) -> None:
    """Check that the optional backends ("dask", "ray") can run, and register ray's.

    Raises
    ------
    ImportError
        If the backend's package is not installed.
    RuntimeError
        For ``"dask"`` without a running ``dask.distributed`` Client.
    ValueError
        For ``"multiprocessing"``, which cannot survive a dead worker.
    """
    if backend is None:  # the active joblib.parallel_config's: refused as well
        try:  # joblib's own names (1.x); a joblib without them only loses this check
            from joblib._parallel_backends import MultiprocessingBackend
            from joblib.parallel import get_active_backend
        except ImportError:
            MultiprocessingBackend = None
        if MultiprocessingBackend is not None and \
                isinstance(get_active_backend()[0], MultiprocessingBackend):
            backend = "multiprocessing"
    if backend == "multiprocessing":
        # Measured: a worker killed with os._exit(3) under joblib's multiprocessing backend
        # left rasterize_dir waiting until a timeout ended it (Pool replaces the worker and
        # never fails the task it held); loky fails the task, which the supervisor retries.
        raise ValueError(
            "backend='multiprocessing' cannot survive a worker's death (its pool waits "
            "forever for the task the dead worker held); use 'loky' (the default, also "
            "processes), with fastraster.use_fork_server() for fork-server start-up")
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
    elif backend == SUPERVISED_LOKY or backend == "loky":
        _register_supervised_loky()


_REGISTERED: list = []


def _register_supervised_loky():
    """Define and register :class:`SupervisedLokyBackend` (once; joblib imported lazily)."""
    if _REGISTERED:
        return _REGISTERED[0]
    from joblib import register_parallel_backend
    from joblib.parallel import BACKENDS

    class SupervisedLokyBackend(BACKENDS["loky"]):
        """joblib's loky backend, telling the watchers of :data:`_WATCHERS` when a task
        fails, before loky reacts to it.

        ``submit`` (the documented extension point of joblib backends) adds one done-callback
        ahead of joblib's own: loky, on a dead worker, sets the error on every pending task
        first and only then kills the remaining workers, so the watchers run while the
        other workers still live. ``fresh_workers`` replaces the pool (``abort_everything``,
        what joblib itself does after an error).
        """

        #: The instance of the open ``Parallel`` (one loky pool per process at a time).
        current = None

        def configure(self, *args, **kwargs):
            n = super().configure(*args, **kwargs)
            type(self).current = weakref.ref(self)
            return n

        def submit(self, func, callback=None):
            future = self._workers.submit(func)
            future.add_done_callback(_tell_watchers)
            if callback is not None:
                future.add_done_callback(callback)
            return future

        def fresh_workers(self):
            if self._workers is not None:
                self.abort_everything(ensure_ready=True)

        def end_workers(self):
            if self._workers is not None:
                self.abort_everything(ensure_ready=False)

    register_parallel_backend(SUPERVISED_LOKY, SupervisedLokyBackend)
    _REGISTERED.append(SupervisedLokyBackend)
    return SupervisedLokyBackend


def _tell_watchers(future) -> None:
    if future.cancelled() or future.exception() is None:
        return
    for watch in list(_WATCHERS):
        try:
            watch(future.exception())
        except Exception:  # a watcher must never break loky's manager thread
            pass


def _current_supervised():
    cls = _REGISTERED[0] if _REGISTERED else None
    ref = cls.current if cls is not None else None
    return ref() if ref is not None else None


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
        ``"loky"`` runs on :class:`SupervisedLokyBackend`.
    """

    def __init__(self, n_jobs=None, backend="loky"):
        from joblib import Parallel, parallel_config

        check_backend(backend)
        self.backend = backend
        name = SUPERVISED_LOKY if backend == "loky" else backend
        # The backend goes through parallel_config: it registers joblib's dask backend, and
        # joblib 1.6's Parallel(backend="dask") would pass nesting_level on to client.submit.
        with parallel_config(backend=name) if backend is not None else nullcontext():
            try:
                self._parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered",
                                          batch_size=1)
                self.streams = True
            except ValueError:  # this backend cannot return generators
                self._parallel = Parallel(n_jobs=n_jobs, batch_size=1)
                self.streams = False
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def remote(self) -> bool:
        """Whether workers may run on other hosts (dask, ray): files the parent and the
        workers share must then live on a shared filesystem."""
        return self.backend in ("dask", "ray")

    def __enter__(self) -> Executor:
        self._parallel.__enter__()
        self._open = True
        return self

    def __exit__(self, *exc):
        self._open = False
        return self._parallel.__exit__(*exc)

    def fresh_workers(self) -> None:
        """Replace the worker processes by new ones (loky; a no-op for other backends and
        for tasks run in this process)."""
        backend = _current_supervised() if self.backend == "loky" else None
        if self._open and backend is not None:
            backend.fresh_workers()

    def end_workers(self) -> None:
        """End the worker processes now (loky; after an interrupt), without a new pool."""
        backend = _current_supervised() if self.backend == "loky" else None
        if backend is not None:
            backend.end_workers()

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


def watch_failures(callback):
    """Context manager: ``callback(exception)`` is called (in loky's manager thread) when a
    task of a supervised loky pool fails, before loky kills the other workers."""
    from contextlib import contextmanager

    @contextmanager
    def cm():
        _WATCHERS.append(callback)
        try:
            yield
        finally:
            _WATCHERS.remove(callback)

    return cm()


def parallel_unordered(func, arg_tuples, *, n_jobs=None, backend="loky"):
    """``func(*args)`` for each of ``arg_tuples`` on joblib workers, yielded as they finish.

    The backend is checked (and ray registered) now, before any work.
    """
    return Executor(n_jobs, backend).map_unordered(func, arg_tuples)


class LazyItems(Sequence):
    """``build(source[i])`` for each element of ``source``, built when asked for: the items of
    :func:`run_tasks` for a run of millions, where the pipeline keeps its plan compact (a
    :class:`~fastraster.io.tilepaths.TileListing`, an array of tiles or of positions) and
    no object per item lives longer than its task's dispatch."""

    def __init__(self, source, build):
        self.source, self.build = source, build

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"item {i} of {n}")
        return self.build(self.source[i % n])


def run_tasks(func, items, args=(), *, batch_size=10, n_jobs=None, backend="loky",
              progress=False, desc="tiles", unit="tile", executor: Executor | None = None,
              retries=1, describe=None, work_dir=None, stop_after=None, sweep=True,
              rerun=None, after_batch=None):
    """Run ``func(item, *args)`` (which returns one record, a dict with ``status``) for every
    item on joblib workers, in batches of ``batch_size`` items per task, supervised.

    Returns a :class:`~fastraster.execution.supervisor.TaskRun`: iterate it for the records
    (each item's final one, batch by batch as they finish, unordered; a tqdm bar advances if
    ``progress``); afterwards its attributes say what happened (retries that succeeded,
    temporary files of killed runs removed, workers lost, an early stop). A dead worker costs
    only the item it was running; failed items are retried ``retries`` more times, each
    alone in its task, in fresh worker processes; SIGINT / SIGTERM raise
    :class:`~fastraster.execution.supervisor.RunInterrupted` after the workers are ended and
    the finished items' records yielded.

    Parameters
    ----------
    items : sequence
        A list, or any :class:`~collections.abc.Sequence` building its items on demand (a
        plan held as arrays is then not turned into one object per item: an item is built
        when its task is sent, or described, and not kept).
    desc, unit : str
        The progress bar's label and unit (one record per item).
    describe : callable, optional
        ``describe(item) -> (path, tile, outputs)``: what the records of an item no task
        returned say, the folders swept of dead processes' temporary files (those of
        ``outputs``), and the path ``FASTRASTER_CHAOS`` patterns match. Must pickle
        (a module-level function). Default: ``(str(item), None, ())``.
    work_dir : path, optional
        The run's output root: swept too, and, for backends with remote workers, where the
        run's journal folder goes (it must be shared with them).
    stop_after : int, optional
        Stop dispatching after this many failures in a row with one of the errnos of
        :data:`~fastraster.execution.supervisor.STOP_ERRNOS` (disk full, read-only, ...).
    rerun : callable, optional
        ``rerun(item) -> item``: the item to run again when an execution of it already
        began in this run (a retry; collateral of a dead worker). Its task should then redo
        the item even if its output exists (the earlier execution may have written it and
        died before its record was kept). Must pickle. Default: the item as it is.
    after_batch : callable, optional
        Called without arguments in the worker after each task's batch of items (also when
        an item failed): it releases what the items of a batch shared, e.g. files they
        opened once for all (the reduce pass of ``rasterize_sources``). Must pickle.
    executor : Executor, optional
        An open one to use (``n_jobs`` and ``backend`` are then its own).
    """
    from fastraster.execution.supervisor import STOP_AFTER, TaskRun

    if executor is None:
        executor = Executor(n_jobs, backend)
    run = TaskRun(func, items, args, executor=executor, batch_size=batch_size,
                  retries=retries, describe=describe, work_dir=work_dir,
                  stop_after=STOP_AFTER if stop_after is None else stop_after, sweep=sweep,
                  rerun=rerun, after_batch=after_batch)
    run.progress, run.desc, run.unit = progress, desc, unit
    return run
