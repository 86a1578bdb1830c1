"""Statistic configurations: PDG's ``{"name", "weight_by", "property", ...}`` dictionaries."""

from __future__ import annotations

import difflib
import math
import numbers
from dataclasses import dataclass, field

#: Property keywords that are computed from geometry, by the ``weight_by`` they go with.
COUNT_KEYWORDS = ("centroids_per_pixel", "polygons_covering_center", "polygons_touching")
AREA_KEYWORDS = ("area_per_pixel_area", "area_within_pixel", "union_area_per_pixel_area")
WEIGHTS = ("count", "area")
KEYWORDS = {"count": COUNT_KEYWORDS, "area": AREA_KEYWORDS}
AGGREGATIONS = ("sum", "mean", "min", "max", "count")
RESAMPLING = ("sum", "average", "mean", "min", "max", "mode", "nearest")
#: The keys of a PDG statistic configuration (viz-staging's ``ConfigManager``).
STAT_KEYS = ("name", "weight_by", "property", "aggregation_method", "resampling_method",
             "val_range", "nodata_val", "nodata_color", "palette", "z_config")
#: A ``property`` this similar to a keyword (difflib ratio, case-insensitive) is taken for a
#: misspelt keyword, not a column: "centroid_per_pixel" (0.97), "area_per_pixel_are" (0.97),
#: "Area_Per_Pixel_Area" (1.0) are refused; "area" (0.38), "Date" or "class" pass.
_KEYWORD_LIKENESS = 0.85

#: pdgraster's default statistics (the PDG ice-wedge-polygon configuration).
DEFAULT_STATS = (
    {"name": "polygon_count", "weight_by": "count", "property": "centroids_per_pixel",
     "aggregation_method": "sum", "resampling_method": "sum", "val_range": [0, None],
     "nodata_val": 0, "nodata_color": "#ffffff00"},
    {"name": "coverage", "weight_by": "area", "property": "area_per_pixel_area",
     "aggregation_method": "sum", "resampling_method": "average", "val_range": [0, 1],
     "nodata_val": 0, "nodata_color": "#ffffff00"},
)


def _is_number(value) -> bool:
    """A real number (int, float, numpy scalar), not a bool (JSON true is no number)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _fail(where: str, key: str, value, problem: str, allowed: str):
    raise ValueError(f"{where}: {key} {value!r} {problem}; allowed: {allowed}")


_VAL_RANGE_ALLOWED = ("[min, max] of two finite numbers or null (None), e.g. [0, 1] or "
                      "[0, null] (a null end is taken from the data per zoom)")


def check_val_range(value, *, where: str, key: str = "val_range") -> tuple | None:
    """A ``val_range`` as a tuple ``(min, max)`` of floats or None ends (None stays None).

    Raises
    ------
    ValueError
        Naming ``where`` (the statistic), ``key`` and the value, when it is not two
        finite numbers or None. (min above max is let through: pdgraster's
        ``update_ranges`` makes such ranges itself, e.g. [None, 0] filled with a run
        minimum of 1.5.)
    """
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        _fail(where, key, value, "is not a pair [min, max]", _VAL_RANGE_ALLOWED)
    for end in value:
        if end is not None and not (_is_number(end) and math.isfinite(end)):
            _fail(where, key, value, f"has an end {end!r} that is neither a finite number "
                  f"nor null", _VAL_RANGE_ALLOWED)
    return tuple(None if v is None else float(v) for v in value)


def zoom_key(key, *, where: str) -> int:
    """A ``z_config`` key as an int zoom: an int or a string of digits (JSON keys)."""
    if isinstance(key, str) and key.strip().isdigit():
        return int(key)
    if isinstance(key, numbers.Integral) and not isinstance(key, bool) and key >= 0:
        return int(key)
    _fail(where, "z_config key", key, "is not a zoom level",
          "an int >= 0 or a string of digits such as \"13\"")


def _check_z_config(value, *, where: str) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        _fail(where, "z_config", value, "is not a mapping of zoom level to settings",
              '{zoom: {"val_range": [min, max]}}, e.g. {"13": {"val_range": [0, 5]}}')
    for key, entry in value.items():
        z = zoom_key(key, where=where)
        if entry is None:
            continue
        if not isinstance(entry, dict):
            _fail(where, f"z_config[{key!r}]", entry, "is not a mapping",
                  '{"val_range": [min, max]}')
        check_val_range(entry.get("val_range"), where=where,
                        key=f"z_config[{z}] val_range")


def _check_name(name, cfg) -> str:
    allowed = ("a non-empty string without '/' or '\\' (it names the band and the "
               "web-tile folder)")
    if "name" not in cfg:
        raise ValueError(f"statistic {cfg!r} has no 'name'; allowed: {allowed}")
    if not isinstance(name, str) or not name.strip() or name in (".", "..") \
            or "/" in name or "\\" in name:
        where = f"statistic {name!r}" if isinstance(name, str) and name else \
            f"statistic {cfg!r}"
        _fail(where, "name", name, "cannot name a band", allowed)
    return name


def _check_property(prop, weight_by: str, where: str) -> str:
    own, other = KEYWORDS[weight_by], KEYWORDS["area" if weight_by == "count" else "count"]
    allowed = (f"with weight_by {weight_by!r}: one of {own}, or the name of a numeric "
               f"attribute column of the staged files")
    if not isinstance(prop, str) or not prop.strip():
        _fail(where, "property", prop, "is neither a keyword nor a column name", allowed)
    if prop in own:
        return prop
    if prop in other:
        _fail(where, "property", prop, f"does not go with weight_by {weight_by!r} (it is a "
              f"{'area' if weight_by == 'count' else 'count'} keyword)", allowed)
    if prop != prop.strip():
        _fail(where, "property", prop, "has leading or trailing spaces", allowed)
    near = difflib.get_close_matches(prop.lower(), COUNT_KEYWORDS + AREA_KEYWORDS, n=1,
                                     cutoff=_KEYWORD_LIKENESS)
    if near:
        _fail(where, "property", prop, f"looks like a misspelt keyword (did you mean "
              f"{near[0]!r}?), not a column", allowed)
    return prop


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
        """Validate one PDG statistic dictionary (everything but the colours, which
        :func:`fastraster.render.palettes.check_palette` checks).

        Raises
        ------
        ValueError
            Naming the statistic, the offending key and its value, and what is allowed.
        """
        if not isinstance(cfg, dict):
            raise ValueError(f"a statistic must be a dict with keys such as {STAT_KEYS[:4]}, "
                             f"not {type(cfg).__name__} {cfg!r}")
        name = _check_name(cfg.get("name"), cfg)
        where = f"statistic {name!r}"
        weight_by = cfg.get("weight_by")
        if weight_by not in WEIGHTS:
            _fail(where, "weight_by", weight_by, "is unknown", f"one of {WEIGHTS}")
        prop = _check_property(cfg.get("property"), weight_by, where)
        agg = cfg.get("aggregation_method", "sum")
        if agg not in AGGREGATIONS:
            _fail(where, "aggregation_method", agg, "is unknown", f"one of {AGGREGATIONS}")
        resampling = cfg.get("resampling_method")
        if resampling is None:
            resampling = "sum" if weight_by == "count" and agg in ("sum", "count") else "average"
        if resampling not in RESAMPLING:
            _fail(where, "resampling_method", resampling, "is unknown",
                  f"one of {RESAMPLING}")
        val_range = check_val_range(cfg.get("val_range"), where=where)
        _check_z_config(cfg.get("z_config"), where=where)
        nodata_val = cfg.get("nodata_val")
        if nodata_val is not None and not _is_number(nodata_val):
            _fail(where, "nodata_val", nodata_val, "is not a number",
                  "a number (e.g. 0) or null (None)")
        nodata_color = cfg.get("nodata_color")
        if nodata_color is not None and not isinstance(nodata_color, str):
            _fail(where, "nodata_color", nodata_color, "is not a colour string",
                  "a CSS colour string such as '#ffffff00', or null (None)")
        palette = cfg.get("palette")
        if isinstance(palette, (list, tuple)):
            palette = tuple(palette)  # a list of colours; a str names a colormap
        return cls(name=name, weight_by=weight_by, property=prop, aggregation_method=agg,
                   resampling_method=resampling, nodata_val=nodata_val,
                   val_range=val_range, nodata_color=nodata_color,
                   palette=palette, raw=dict(cfg))


def parse_stats(stats=None) -> tuple[Stat, ...]:
    """Normalise ``None`` (PDG defaults), dicts or :class:`Stat` objects to a tuple of Stat.

    Raises
    ------
    ValueError
        Naming the statistic, key and value (:meth:`Stat.from_config`), or the repeated
        name.
    """
    if stats is None:
        stats = DEFAULT_STATS
    if isinstance(stats, (dict, Stat)):
        stats = [stats]
    if not isinstance(stats, (list, tuple)):
        raise ValueError(f"statistics {stats!r} is not a list of statistics; allowed: a list "
                         f"of dicts with keys {STAT_KEYS}")
    out = tuple(s if isinstance(s, Stat) else Stat.from_config(s) for s in stats)
    if not out:
        raise ValueError("statistics [] is empty; allowed: a list of at least one statistic")
    names = [s.name for s in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"statistic {dup[0]!r}: name {dup[0]!r} is used by "
                         f"{names.count(dup[0])} statistics; allowed: unique names (each "
                         f"names a band and a web-tile folder)")
    return out


def unknown_stat_keys(stats) -> list[str]:
    """``"statistic 'a': 'pallete'"`` for each key of the statistic dicts in ``stats`` that
    PDG does not know (a typo, ignored); parsed :class:`Stat` objects are not looked at."""
    if isinstance(stats, (dict, Stat)):
        stats = [stats]
    found = []
    for s in stats or ():
        if isinstance(s, dict):
            found += [f"statistic {s.get('name')!r}: {k!r}" for k in s if k not in STAT_KEYS]
    return found


def attribute_columns(stats: tuple[Stat, ...]) -> list[str]:
    """Attribute columns the (parsed) statistics read from the input."""
    cols = []
    for s in stats:
        if s.is_attribute and s.property not in cols:
            cols.append(s.property)
    return cols
