"""Everything a worker needs, imported and loaded: for a fork server's preload list.

``multiprocessing.set_forkserver_preload(["fastraster.preload"])`` makes the fork server
import the worker's modules and load every numba kernel once; each worker forked from it is
then ready at once (docs/scaling.md, "Worker start-up"). Importing this module has that
side effect on purpose, and nothing else imports it.
"""

import pyogrio.raw  # noqa: F401  (the reader, with pyarrow)
import rasterio  # noqa: F401  (the writer)

from fastraster.pipelines.staged import warm_up

warm_up()
