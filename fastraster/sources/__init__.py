"""Raw scenes (+ footprints) straight to max-zoom GeoTIFFs, with PDG's staging rules and
without staging: see :func:`rasterize_sources` and :class:`PdgSourceRules`.

Modules: :mod:`.rules` (the options object), :mod:`.scenes` (finding, reading and the
per-polygon steps), :mod:`.assign` (tile assignment), :mod:`.dedup` (footprint
deduplication), :mod:`.store` (the map/reduce intermediate), :mod:`.pipeline` (the passes).
"""

from fastraster.sources.pipeline import SourcesReport, rasterize_sources
from fastraster.sources.rules import PdgSourceRules, SourceDirs

__all__ = ["PdgSourceRules", "SourceDirs", "SourcesReport", "rasterize_sources"]
