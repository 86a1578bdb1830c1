"""Statistic configurations: PDG's ``{"name", "weight_by", "property", ...}`` dictionaries."""

from __future__ import annotations

from dataclasses import dataclass, field

#: Property keywords that are computed from geometry, by the ``weight_by`` they go with.
COUNT_KEYWORDS = ("centroids_per_pixel", "polygons_covering_center", "polygons_touching")
AREA_KEYWORDS = ("area_per_pixel_area", "area_within_pixel", "union_area_per_pixel_area")
AGGREGATIONS = ("sum", "mean", "min", "max", "count")
RESAMPLING = ("sum", "average", "mean", "min", "max", "mode", "nearest")

#: pdgraster's default statistics (the PDG ice-wedge-polygon configuration).
DEFAULT_STATS = (
    {"name": "polygon_count", "weight_by": "count", "property": "centroids_per_pixel",
     "aggregation_method": "sum", "resampling_method": "sum", "val_range": [0, None],
     "nodata_val": 0, "nodata_color": "#ffffff00"},
    {"name": "coverage", "weight_by": "area", "property": "area_per_pixel_area",
     "aggregation_method": "sum", "resampling_method": "average", "val_range": [0, 1],
     "nodata_val": 0, "nodata_color": "#ffffff00"},
)


@dataclass(frozen=True)
class Stat:
    """One output band: what to compute per pixel, and how lower zooms and PNGs treat it."""

    name: str
    weight_by: str
    property: str
    aggregation_method: str = "sum"
    resampling_method: str | None = None
    nodata_val: float | None = None
    val_range: tuple | None = None
    nodata_color: str | None = None
    palette: tuple | str | None = None
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    def get(self, key: str, default=None):
        """A configuration value: the PDG dict's own entry when it has one (``z_config`` has
        no attribute, and ``palette`` is kept as given), else the attribute of that name."""
        if key in self.raw:
            return self.raw[key]
        return getattr(self, key, default)

    @property
    def is_attribute(self) -> bool:
        """True when ``property`` names an attribute column rather than a keyword."""
        return self.property not in COUNT_KEYWORDS + AREA_KEYWORDS

    @classmethod
    def from_config(cls, cfg: dict) -> Stat:
        """Validate one PDG statistic dictionary.

        Raises
        ------
        ValueError
            Naming the statistic and the offending key.
        """
        if not isinstance(cfg, dict):
            raise ValueError(f"a statistic must be a dict, not {type(cfg).__name__}")
        name = cfg.get("name")
        if not name or not isinstance(name, str):
            raise ValueError(f"statistic {cfg!r} has no 'name'")
        weight_by = cfg.get("weight_by")
        prop = cfg.get("property")
        agg = cfg.get("aggregation_method", "sum")
        if weight_by not in ("count", "area"):
            raise ValueError(f"statistic {name!r}: weight_by must be 'count' or 'area', "
                             f"not {weight_by!r}")
        if not prop or not isinstance(prop, str):
            raise ValueError(f"statistic {name!r} has no 'property'")
        wrong = AREA_KEYWORDS if weight_by == "count" else COUNT_KEYWORDS
        if prop in wrong:
            raise ValueError(f"statistic {name!r}: property {prop!r} does not go with "
                             f"weight_by={weight_by!r}")
        if agg not in AGGREGATIONS:
            raise ValueError(f"statistic {name!r}: aggregation_method must be one of "
                             f"{AGGREGATIONS}, not {agg!r}")
        resampling = cfg.get("resampling_method")
        if resampling is None:
            resampling = "sum" if weight_by == "count" and agg in ("sum", "count") else "average"
        if resampling not in RESAMPLING:
            raise ValueError(f"statistic {name!r}: resampling_method must be one of "
                             f"{RESAMPLING}, not {resampling!r}")
        val_range = cfg.get("val_range")
        palette = cfg.get("palette")
        if palette is not None and not isinstance(palette, str):
            palette = tuple(palette)  # a list of colours; a str names a colormap
        return cls(name=name, weight_by=weight_by, property=prop, aggregation_method=agg,
                   resampling_method=resampling, nodata_val=cfg.get("nodata_val"),
                   val_range=tuple(val_range) if val_range is not None else None,
                   nodata_color=cfg.get("nodata_color"),
                   palette=palette, raw=dict(cfg))


def parse_stats(stats=None) -> tuple[Stat, ...]:
    """Normalise ``None`` (PDG defaults), dicts or :class:`Stat` objects to a tuple of Stat."""
    if stats is None:
        stats = DEFAULT_STATS
    if isinstance(stats, (dict, Stat)):
        stats = [stats]
    out = tuple(s if isinstance(s, Stat) else Stat.from_config(s) for s in stats)
    if not out:
        raise ValueError("at least one statistic is needed")
    names = [s.name for s in out]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"statistic names must be unique; repeated: {sorted(dup)}")
    return out


def attribute_columns(stats: tuple[Stat, ...]) -> list[str]:
    """Attribute columns the (parsed) statistics read from the input."""
    cols = []
    for s in stats:
        if s.is_attribute and s.property not in cols:
            cols.append(s.property)
    return cols
