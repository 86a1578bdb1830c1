"""Deprecated: the old home of ``warm_up``, ``rasterize_dir``, ``rasterize_one`` and ``Report``.

Import them from :mod:`fastraster` (``fastraster.warm_up``, ``fastraster.rasterize_dir``,
``fastraster.Report``) or from :mod:`fastraster.pipelines.staged` instead.
"""

import warnings

from fastraster.io.records import Report
from fastraster.pipelines.staged import rasterize_dir, rasterize_one, warm_up

__all__ = ["Report", "rasterize_dir", "rasterize_one", "warm_up"]

warnings.warn("fastraster.pipeline is deprecated: use fastraster.warm_up, "
              "fastraster.rasterize_dir and fastraster.Report (or fastraster.pipelines.staged)",
              DeprecationWarning, stacklevel=2)
