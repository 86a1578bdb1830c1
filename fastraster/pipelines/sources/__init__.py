"""Raw scenes (+ footprints) straight to max-zoom GeoTIFFs, with PDG's staging rules and
without staging: :func:`rasterize_sources`.

Modules: :mod:`.run` (the driver: footprints, then the two passes), :mod:`.scenes` (the map
pass, one task per scene), :mod:`.tiles` (the reduce pass, one task per group of tiles, and
its plan). The rules are :class:`~fastraster.pipelines.source_options.PdgSourceRules`.
"""

from fastraster.pipelines.source_options import PdgSourceRules, SourceDirs
from fastraster.pipelines.sources.run import (
    SourcesReport,
    counted_rows,
    rasterize_sources,
    warm_up,
)

__all__ = ["PdgSourceRules", "SourceDirs", "SourcesReport", "counted_rows",
           "rasterize_sources", "warm_up"]
