"""Is a fastraster run CPU-bound, I/O-bound or overhead-bound?  Time it at several worker counts.

    python scripts/scaling_bench.py [STAGED_DIR] --workers 1,2,4,8,11,15 --files 100 \\
        --repeats 3 --backend loky --out scaling-results [--cold-cache]

Without STAGED_DIR, synthetic staged tiles from ``fastraster.sample.make_sample`` are generated
once into ``<out>/sample/`` and reused. A subset of ``--files`` staged files (random, fixed
``--seed``; files are reused cyclically when the tree has fewer) is rasterized with
``fastraster.pipelines.staged.rasterize_one`` through the package's executor
(``fastraster.execution``) at each worker count, ``--repeats`` times,
the worker counts interleaved (serpentine order 1,2,4,4,2,1,...) so slow drifts of a shared
machine spread over all of them; medians are reported.

Each round is preceded by an untimed warm-up pass in which every worker rasterizes one file and
then waits at a barrier until all workers have checked in, so worker start-up, imports and the
numba cache load are never timed (joblib's loky executor is resized, i.e. workers are killed
or started, whenever the worker count changes). ``--cold-cache`` then evicts the inputs from
the page cache (``posix_fadvise(POSIX_FADV_DONTNEED)``) right before the timed part.

Inside each task, ``rasterize_one`` measures wall and thread-CPU time of read, compute and
write and the bytes read. Around each round, ``/proc`` gives the CPU time of this process tree
and of the whole machine (so the load of *other* processes on a shared machine), iowait, steal,
the run-queue wait of the workers' threads (time runnable but without a core), their peak RSS
(VmHWM, reset before the round) and the bytes this process tree read from storage.

Outputs in ``--out``: ``points.csv`` (one row per worker count, medians), ``rounds.csv`` (every
timed round), ``points.json`` (both, plus machine, settings, Amdahl fit and verdict) and
``scaling.png``; the verdict line and a table are printed. See docs/scaling.md.

The module: :mod:`~benchmarks.scaling.probes` (the machine, from ``/proc``),
:mod:`~benchmarks.scaling.runner` (inputs and rounds), :mod:`~benchmarks.scaling.analysis`
(Amdahl, Karp-Flatt, medians, the verdict), :mod:`~benchmarks.scaling.report` (CSV, JSON,
table, plot) and :mod:`~benchmarks.scaling.main` (the command line;
``scripts/scaling_bench.py`` is a thin wrapper of it).
"""
