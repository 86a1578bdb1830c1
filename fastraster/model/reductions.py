"""One reduction per statistic: accumulate a batch of polygons into a tile-sized state, combine
two states of the same tile, finalize a state into a band (in the style of datashader's
reductions).

A pipeline that sees a tile's polygons in pieces (several input files, several chunks of one
file) accumulates each piece, combines the states (in any order and grouping: every combine
here is associative and commutative up to rounding) and finalizes once::

    red = reduction_for(stat)
    state = None
    for polys in pieces:
        state = red.accumulate(state, Batch(polys, grid))   # or: combine(s1, s2) later
    band = red.finalize(state)

The states, and how they combine:

* counts and sums over centroids, centre counts, touching counts: float64 arrays, added
  (integer counts stay exact, so bit for bit);
* areas: the coverage kernel's row-difference accumulator ``acc`` plus its ``touched`` mask
  (:class:`Coverage`), added / or-ed *before* the one prefix sum (``coverage_finish``), so
  a combined area equals the whole tile's to rounding (<= 1e-12 of a pixel);
* minima and maxima: arrays that start as NaN (no polygon), combined by ``fmin`` /
  ``fmax`` (exact);
* means: (sum, weight) pairs, divided only in :meth:`Reduction.finalize`;
* the no-data mask (:class:`NoDataMask`): the unweighted coverage plus a "some centroid
  falls here" mask, added / or-ed.

``union_area_per_pixel_area`` cannot combine (the union of two unions' coverage is not a
function of the two coverages): :class:`UnionCoverage` derives from :class:`WholeTileReduction`
(``combinable = False``) and refuses to accumulate a second batch or to combine, so a pipeline
must group a tile's polygons before computing it.

What the statistics of one batch share (the centroids, their pixel index and the unweighted
coverage accumulator) is computed once per :class:`Batch`, on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np
import shapely

from fastraster import kernels as K
from fastraster.model.geometry import RaggedPolygons, centroids, polygonal_part, readonly
from fastraster.model.grid import TileGrid
from fastraster.model.stats import Stat

_OP = {K.REDUCE_SUM: np.add, K.REDUCE_MIN: np.fmin, K.REDUCE_MAX: np.fmax}
_MODE = {"sum": K.REDUCE_SUM, "min": K.REDUCE_MIN, "max": K.REDUCE_MAX}


# ---------------------------------------------------------------------------------------------
# A batch of polygons and what its statistics share
# ---------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Coverage:
    """Σ weight × (area inside the pixel / pixel area) over polygons, before its prefix sum.

    ``acc`` (float64, height × (width + 1)) is the coverage kernel's row-difference
    accumulator and ``touched`` (uint8, height × width) marks pixels a boundary crosses; both
    are linear in the polygons, so two states of one tile combine by ``+`` (adding ``acc``,
    or-ing ``touched``). ``integral``: unweighted, so pixels no boundary crosses hold whole
    numbers (see :func:`~fastraster.kernels.coverage.coverage_finish`).
    """

    grid: TileGrid
    acc: np.ndarray
    touched: np.ndarray
    integral: bool

    @cached_property
    def finished(self) -> np.ndarray:
        """The coverage per pixel, float64 (height, width); computed once."""
        out = np.empty((self.grid.height, self.grid.width))
        K.coverage_finish(self.acc, self.touched, self.integral, out)
        return out

    def __add__(self, other: Coverage) -> Coverage:
        if self.grid != other.grid or self.integral != other.integral:
            raise ValueError("cannot combine the coverage of different tiles or weights")
        return Coverage(self.grid, self.acc + other.acc, self.touched | other.touched,
                        self.integral)


class Batch:
    """Polygons on one tile grid, with the work their statistics share, done on first use.

    Parameters
    ----------
    polys : RaggedPolygons
        The polygons, in the grid's CRS.
    grid : TileGrid
    centroids : (x array, y array), optional
        One centroid per polygon (e.g. the staging columns); default GEOS's.
    attributes : mapping of str to array, optional
        Attribute columns that statistics name in ``property``.
    """

    def __init__(self, polys: RaggedPolygons, grid: TileGrid, centroids=None,
                 attributes=None):
        self.polys = polys
        self.grid = grid
        self.attributes = attributes
        self._centroids = centroids
        self._centroid_index = None
        self._coverage = None

    def ones(self) -> np.ndarray:
        return readonly(np.ones(len(self.polys)), np.float64)

    def values(self, stat: Stat) -> np.ndarray:
        """The attribute column ``stat.property`` as float64, one value per polygon.

        Raises
        ------
        ValueError
            If the column is missing or its length is not the polygon count.
        """
        prop, n = stat.property, len(self.polys)
        if self.attributes is None or prop not in self.attributes:
            raise ValueError(f"statistic {stat.name!r} needs attribute column {prop!r}, "
                             "which the input does not have")
        v = np.asarray(self.attributes[prop], dtype=np.float64)
        if v.shape != (n,):
            raise ValueError(f"attribute {prop!r} has {v.shape[0]} values for {n} polygons")
        return readonly(v, np.float64)

    def centroids(self) -> tuple[np.ndarray, np.ndarray]:
        if self._centroids is None:
            self._centroids = centroids(self.polys)  # GEOS's doubles; NaN for empties
        cx, cy = self._centroids
        return readonly(cx, np.float64), readonly(cy, np.float64)

    def centroid_index(self) -> np.ndarray:
        """Flat pixel index of each polygon's centroid (PDG's edge rule), -1 for none."""
        if self._centroid_index is None:
            cx, cy = self.centroids()
            out = np.empty(cx.shape[0], np.int64)
            K.centroid_pixels(cx, cy, self.grid.col_edges, self.grid.row_edges, out)
            self._centroid_index = out
        return self._centroid_index

    def coverage(self, weights=None) -> Coverage:
        """The (weighted) coverage accumulator; the unweighted one is computed once."""
        g = self.grid
        unweighted = weights is None
        if unweighted and self._coverage is not None:
            return self._coverage
        if unweighted:
            weights = self.ones()
        acc = np.zeros((g.height, g.width + 1))
        touched = np.zeros((g.height, g.width), np.uint8)
        K.coverage_accumulate(*self.polys.arrays, np.asarray(weights, np.float64), g.left,
                              g.dx, g.top, g.dy, acc, touched)
        cov = Coverage(g, acc, touched, unweighted)
        if unweighted:
            self._coverage = cov
        return cov

    def by_centroid(self, values, mode) -> np.ndarray:
        """``values`` reduced into the pixel of each polygon's centroid."""
        g = self.grid
        out = np.full((g.height, g.width), np.nan if mode != K.REDUCE_SUM else 0.0)
        K.scatter_reduce(self.centroid_index(), np.asarray(values, np.float64), mode, out)
        return out

    def centre_acc(self) -> np.ndarray:
        """Row-difference accumulator (height, width + 1) of the pixel-centre count."""
        g = self.grid
        wacc = np.zeros((g.height, g.width + 1))
        K.centre_accumulate(*self.polys.arrays, self.ones(), *g.gdal_inverse(), wacc)
        return wacc

    def touching(self, values, mode) -> np.ndarray:
        """``values`` reduced over the polygons with positive area in each pixel."""
        g = self.grid
        out = np.full((g.height, g.width), np.nan if mode != K.REDUCE_SUM else 0.0)
        K.touching_reduce(*self.polys.arrays, np.asarray(values, np.float64), mode, g.left,
                          g.dx, g.top, g.dy, out, np.zeros((g.height, g.width), np.uint8),
                          np.zeros((g.height, g.width + 1)))
        return out

    def union_coverage(self) -> np.ndarray:
        """Coverage of the union of the polygons (GEOS union, then the exact kernel)."""
        g = self.grid
        if len(self.polys) == 0:
            return np.zeros((g.height, g.width))
        # Clip first: the union of a tile's worth of small polygons is cheap, and polygons
        # reaching far outside the tile only slow GEOS down.
        box = shapely.box(g.left, g.bottom, g.right, g.top)
        geoms = shapely.intersection(self.polys.to_shapely(), box)
        union = shapely.union_all(geoms)
        sub = Batch(RaggedPolygons.from_shapely([polygonal_part(union)]), g)
        return np.minimum(sub.coverage().finished, 1.0)


# ---------------------------------------------------------------------------------------------
# Reductions
# ---------------------------------------------------------------------------------------------


def _same_shape(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"cannot combine states of different tiles ({a.shape} and {b.shape})")


class Reduction:
    """A statistic as ``accumulate`` / ``combine`` / ``finalize`` (see the module docstring).

    Subclasses define :meth:`partial` (one batch's state), :meth:`combine` and
    :meth:`finalize`. States are never modified in place: ``combine`` returns a new one.
    """

    #: Whether two states of one tile can be combined.
    combinable: ClassVar[bool] = True

    def __init__(self, stat: Stat | None = None):
        self.stat = stat

    def __repr__(self) -> str:
        return f"{type(self).__name__}({getattr(self.stat, 'name', '')!r})"

    def partial(self, batch: Batch):
        """The state of one batch."""
        raise NotImplementedError

    def accumulate(self, state, batch: Batch):
        """``state`` combined with ``batch``'s state (``state`` None: the batch's own)."""
        part = self.partial(batch)
        return part if state is None else self.combine(state, part)

    def combine(self, a, b):
        """The state of the union of the polygons of two states of the same tile."""
        raise NotImplementedError

    def finalize(self, state) -> np.ndarray:
        """The band: float64 (height, width)."""
        raise NotImplementedError


class WholeTileReduction(Reduction):
    """A statistic that needs all of a tile's polygons at once: one batch, no combining."""

    combinable: ClassVar[bool] = False

    def accumulate(self, state, batch: Batch):
        if state is not None:
            raise TypeError(f"{self!r} cannot combine batches; group the tile's polygons "
                            "into one batch first")
        return self.partial(batch)

    def combine(self, a, b):
        raise TypeError(f"{self!r} cannot combine states; group the tile's polygons into "
                        "one batch first")


class _Pixels(Reduction):
    """State: one float64 array per pixel, combined element-wise by ``mode``."""

    def __init__(self, stat: Stat | None, mode: int = K.REDUCE_SUM, values: str = "ones"):
        super().__init__(stat)
        self.mode = mode
        #: "ones" (1 per polygon), "column" (the stat's attribute column) or "count" (1 per
        #: polygon of a statistic on a column, which must exist all the same).
        self.values = values

    def _values(self, batch: Batch) -> np.ndarray:
        if self.values == "ones":
            return batch.ones()
        column = batch.values(self.stat)
        return column if self.values == "column" else batch.ones()

    def combine(self, a, b):
        _same_shape(a, b)
        return _OP[self.mode](a, b)

    def finalize(self, state) -> np.ndarray:
        return state


class ByCentroid(_Pixels):
    """Values of the polygons whose centroid is in the pixel: sum, min or max."""

    def partial(self, batch):
        return batch.by_centroid(self._values(batch), self.mode)


class Touching(_Pixels):
    """Values of the polygons with positive area in the pixel: sum, min or max."""

    def partial(self, batch):
        return batch.touching(self._values(batch), self.mode)


class CentreCount(Reduction):
    """Polygons containing the pixel centre (GDAL's rule); state: the row differences."""

    def partial(self, batch):
        return batch.centre_acc()

    def combine(self, a, b):
        _same_shape(a, b)
        return a + b

    def finalize(self, state):
        out = np.empty((state.shape[0], state.shape[1] - 1))
        K.prefix_sum_rows(state, out)
        return out


class AreaSum(Reduction):
    """Σ over polygons of (area inside the pixel / pixel area), weighted by the attribute
    column when ``attribute``, in CRS area units when ``scale`` (× pixel area)."""

    def __init__(self, stat: Stat | None, attribute: bool = False, scale: bool = False):
        super().__init__(stat)
        self.attribute = attribute
        self.scale = scale

    def partial(self, batch):
        return batch.coverage(batch.values(self.stat) if self.attribute else None)

    def combine(self, a, b):
        return a + b

    def finalize(self, state):
        return state.finished * state.grid.pixel_area if self.scale else state.finished


#: Area-weighted means treat a pixel whose covered area is below this fraction of the pixel
#: as not covered (NaN). Σ value × area carries rounding residue from the other polygons'
#: edges in the pixel row (the kernel sums row differences), up to ~1e-15 × Σ |value|; divided
#: by a covered area of that order it would be noise.
MEAN_MIN_COVERAGE = 1e-12


class AreaMean(Reduction):
    """Σ value × coverage / Σ coverage over the polygons with positive area in the pixel.

    State: (weighted coverage, coverage, min value, max value of the polygons with positive
    area in the pixel). Pixels covered less than :data:`MEAN_MIN_COVERAGE` are NaN, and the
    mean is clipped to [min, max] of the covering polygons' values, so rounding residue can
    never put it outside the range of the values it averages.
    """

    def partial(self, batch):
        v = batch.values(self.stat)
        return (batch.coverage(v), batch.coverage(), batch.touching(v, K.REDUCE_MIN),
                batch.touching(v, K.REDUCE_MAX))

    def combine(self, a, b):
        _same_shape(a[2], b[2])
        return (a[0] + b[0], a[1] + b[1], np.fmin(a[2], b[2]), np.fmax(a[3], b[3]))

    def finalize(self, state):
        weighted, plain, lo, hi = state
        cov = plain.finished
        covered = (cov >= MEAN_MIN_COVERAGE) & ~np.isnan(lo)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = weighted.finished / np.where(covered, cov, 1.0)
        return np.where(covered, np.clip(mean, lo, hi), np.nan)


class CentroidMean(Reduction):
    """Mean of the values of the polygons whose centroid is in the pixel; state: (Σ, n)."""

    def partial(self, batch):
        return (batch.by_centroid(batch.values(self.stat), K.REDUCE_SUM),
                batch.by_centroid(batch.ones(), K.REDUCE_SUM))

    def combine(self, a, b):
        _same_shape(a[0], b[0])
        return (a[0] + b[0], a[1] + b[1])

    def finalize(self, state):
        with np.errstate(invalid="ignore", divide="ignore"):
            return state[0] / state[1]


class UnionCoverage(WholeTileReduction):
    """Coverage of the union of the polygons (never above 1; GEOS union)."""

    def partial(self, batch):
        return batch.union_coverage()

    def finalize(self, state):
        return state


class NoDataMask(Reduction):
    """bool (height, width): no polygon has area in the pixel and no centroid falls in it.

    State: the unweighted :class:`Coverage` (area, and the boundary's ``touched`` mask) and
    where centroids fall: one batch's flat pixel indices (so a single batch costs nothing
    extra), a per-pixel mask once two states are combined (by ``+`` and or).
    """

    def partial(self, batch):
        return (batch.coverage(), batch.centroid_index())

    @staticmethod
    def _mask(where, shape) -> np.ndarray:
        if where.ndim == 2:
            return where
        out = np.zeros(shape[0] * shape[1], np.bool_)
        out[where[where >= 0]] = True
        return out.reshape(shape)

    def combine(self, a, b):
        shape = a[0].touched.shape
        return (a[0] + b[0], self._mask(a[1], shape) | self._mask(b[1], shape))

    def finalize(self, state):
        cov, where = state
        out = np.empty(cov.touched.shape, np.bool_)
        if where.ndim == 2:
            K.no_data_mask(cov.touched, cov.finished, np.empty(0, np.int64), out)
            out &= ~where
        else:
            K.no_data_mask(cov.touched, cov.finished, where, out)
        return out


def reduction_for(stat: Stat) -> Reduction:
    """The reduction that computes ``stat`` (one per statistic kind, see README)."""
    prop, agg = stat.property, stat.aggregation_method
    if prop == "centroids_per_pixel":
        return ByCentroid(stat)
    if prop == "polygons_covering_center":
        return CentreCount(stat)
    if prop == "polygons_touching":
        return Touching(stat)
    if prop == "area_per_pixel_area":
        return AreaSum(stat)
    if prop == "area_within_pixel":
        return AreaSum(stat, scale=True)
    if prop == "union_area_per_pixel_area":
        return UnionCoverage(stat)
    # An attribute column (validated in Batch.values, when a batch is accumulated).
    if stat.weight_by == "count":
        if agg == "count":
            return ByCentroid(stat, values="count")
        if agg == "mean":
            return CentroidMean(stat)
        return ByCentroid(stat, _MODE[agg], values="column")
    if agg == "sum":
        return AreaSum(stat, attribute=True)
    if agg == "mean":
        return AreaMean(stat)
    if agg == "count":
        return Touching(stat, values="count")
    return Touching(stat, _MODE[agg], values="column")
