"""The value range of a statistic at a zoom level: pdgraster's rule, written once.

pdgraster colours a band over ``[min, max]``: the statistic's ``z_config[z]["val_range"]``
or its general ``val_range``; ends left ``None`` are filled from the run's per-zoom minimum /
maximum (``rasters_summary.csv``, pdgraster's ``update_ranges``), and still-``None`` ends at a
zoom fall back to the general value (pdgraster's ``get_min`` / ``get_max``). An end that
nothing sets stays ``None``: the tile's own data decides (pdgraster's ``WebImage``).
"""

from __future__ import annotations

import copy
import csv

import numpy as np

from fastraster.io.geotiff import read_geotiff


def _add(out: dict, stat: str, z: int, lo: float, hi: float) -> None:
    """Widen ``out[stat][z]`` to [lo, hi]. A band without any value (NaN min and max: a mean
    over a tile no polygon covers) adds nothing: pandas' min / max, which pdgraster's
    ``get_z_ranges`` uses, skip NaN, and a NaN end would make every colour of the zoom NaN."""
    if np.isnan(lo) and np.isnan(hi):
        return
    cur = out.setdefault(stat, {}).setdefault(z, [lo, hi])
    cur[0], cur[1] = float(np.fmin(cur[0], lo)), float(np.fmax(cur[1], hi))


def zoom_ranges(summary_csv) -> dict[str, dict[int, tuple[float, float]]]:
    """``{stat: {z: (min, max)}}`` over the rows of a ``rasters_summary.csv`` (pdgraster's
    ``get_z_ranges``: the minimum of the rows' minima and maximum of their maxima, NaN
    skipped)."""
    out: dict[str, dict[int, list[float]]] = {}
    with open(summary_csv, newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                z, lo, hi = int(float(row["z"])), float(row["min"]), float(row["max"])
            except (KeyError, TypeError, ValueError):
                continue
            _add(out, row["stat"], z, lo, hi)
    return {s: {z: (v[0], v[1]) for z, v in zs.items()} for s, zs in out.items()}


def ranges_from_geotiffs(files) -> dict[str, dict[int, tuple[float, float]]]:
    """The same as :func:`zoom_ranges`, computed by reading the GeoTIFFs (``TileFile`` s)."""
    out: dict[str, dict[int, list[float]]] = {}
    for f in files:
        data, names = read_geotiff(f.path)[:2]
        for b, name in enumerate(names):
            values = data[b][~np.isnan(data[b])]
            if values.size:
                _add(out, name, f.tile[2], float(values.min()), float(values.max()))
    return {s: {z: (v[0], v[1]) for z, v in zs.items()} for s, zs in out.items()}


def fill_ranges(cfg: dict, run: dict) -> dict:
    """pdgraster's ``update_ranges`` for one statistic configuration: a copy in which every
    ``val_range`` end left open at a zoom of ``run`` (``{z: (min, max)}``) is set to the run's.

    An end is open at ``z`` when ``z_config[z]["val_range"]`` leaves it ``None`` or, without a
    ``z_config[z]`` entry, the general ``val_range`` does; it is stored in
    ``z_config[z]["val_range"]``. ``z_config`` keys become ints (JSON gives strings).
    """
    cfg = copy.deepcopy(cfg)
    if cfg.get("z_config"):
        cfg["z_config"] = {int(k): v for k, v in cfg["z_config"].items()}
    for z, lo_hi in sorted(run.items()):
        for i in (0, 1):
            entry = (cfg.get("z_config") or {}).get(z)
            vr = entry.get("val_range") if entry is not None else cfg.get("val_range")
            if vr is not None and vr[i] is not None:
                continue
            if cfg.get("z_config") is None:
                cfg["z_config"] = {}
            entry = cfg["z_config"].get(z) or {}
            cfg["z_config"][z] = entry
            filled = list(entry.get("val_range") or (None, None))
            filled[i] = lo_hi[i]
            entry["val_range"] = filled
    return cfg


def update_ranges(stat_configs, ranges) -> list[dict]:
    """:func:`fill_ranges` of each statistic configuration with its run ranges (``ranges``:
    ``{stat: {z: (min, max)}}``); the configurations given are not modified."""
    return [fill_ranges(cfg, ranges.get(cfg["name"], {})) for cfg in stat_configs]


def value_range(stat, z: int, ranges=None) -> tuple:
    """``(min, max)`` for a statistic (a :class:`~fastraster.model.stats.Stat`) at zoom ``z``.

    ``ranges`` (``{stat: {z: (min, max)}}``, the run's) fills open ends first
    (:func:`fill_ranges`); then an end still ``None`` at ``z`` takes the general
    ``val_range``'s. ``z_config`` keys may be ints or strings. An end still ``None`` is left
    to each tile's own data.
    """
    cfg = {"val_range": stat.get("val_range"), "z_config": stat.get("z_config")}
    run = (ranges or {}).get(stat.name, {}).get(int(z))
    if run is not None:
        cfg = fill_ranges(cfg, {int(z): run})
    general = list(cfg["val_range"] or (None, None))
    z_config = cfg["z_config"] or {}
    entry = z_config.get(z, z_config.get(str(z))) or {}
    at_z = entry.get("val_range")
    vr = general if at_z is None else [general[i] if at_z[i] is None else at_z[i]
                                       for i in (0, 1)]
    return (None if vr[0] is None else float(vr[0]), None if vr[1] is None else float(vr[1]))
