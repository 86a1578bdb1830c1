"""numba kernels: the only compiled code in fastraster, one module per family.

Everything here is ``@kernel`` (:func:`fastraster.kernels._jit.kernel`:
``njit(cache=True, nogil=True)``), takes and returns numpy arrays and scalars only, never
raises and never allocates Python objects, and imports nothing from the package but other
kernels (numpy and math only). Validation, allocation and the choice of kernel live in
:mod:`fastraster.model`.

=================  ====================================================================
``coverage``       exact area coverage (``coverage_accumulate``, ``coverage_finish``)
``centre``         pixel-centre counts, GDAL's rule (``centre_accumulate``,
                   ``prefix_sum_rows``)
``touching``       positive-area overlap per polygon, reduced (``touching_reduce``)
``centroid``       GEOS's polygon centroids, PDG's centroid pixels
``reduce``         per-pixel reductions of per-polygon values, the no-data mask
``wkb``            WKB decoding into ragged arrays
``coordinates``    shapely's interleaved vertices to x, y and single rings
``tiff``           byte planes of TIFF's float predictor (the lean GeoTIFF writer)
``validity``       the simple-ring pre-screen (``certainly_simple``)
``median``         float32 band medians
``_rings``         ring orientation and the certain orientation test (shared helpers)
``_jit``           the ``kernel`` decorator and the numba cache folder
=================  ====================================================================

Conventions shared by all raster kernels
----------------------------------------
* Geometry arrives as GeoArrow-style ragged arrays in the MultiPolygon layout: coordinates
  ``x``, ``y`` (float64, CRS units), ``ring_offsets`` (into coordinates), ``part_offsets``
  (into rings) and ``geom_offsets`` (into parts). The first ring of each part is its
  exterior; rings may have any orientation and need not repeat their first vertex.
* Pixel coordinates: ``px = (x - x0) / dx`` and ``py = (y0 - y) / dy`` with ``dx, dy > 0``,
  so the raster is ``height`` x ``width`` pixels, row 0 is the north edge and pixel
  ``(r, c)`` is the square ``[c, c + 1] x [r, r + 1]``.
* Outputs are float64 or int arrays of shape ``(height, width)`` indexed ``[row, col]``.

The public kernels are re-exported here (``from fastraster import kernels as K``).
"""

from fastraster.kernels.centre import centre_accumulate, prefix_sum_rows
from fastraster.kernels.centroid import centroid_pixels, polygon_centroids
from fastraster.kernels.coordinates import split_coordinates
from fastraster.kernels.coverage import coverage_accumulate, coverage_finish
from fastraster.kernels.median import float32_median
from fastraster.kernels.reduce import (
    REDUCE_MAX,
    REDUCE_MIN,
    REDUCE_SUM,
    no_data_mask,
    scatter_reduce,
)
from fastraster.kernels.tiff import byte_planes
from fastraster.kernels.touching import touching_reduce
from fastraster.kernels.validity import certainly_simple
from fastraster.kernels.wkb import (
    WKB_MALFORMED,
    WKB_NONFINITE,
    WKB_NULL,
    WKB_OK,
    WKB_SHORT_RING,
    WKB_TRUNCATED,
    WKB_UNSUPPORTED_TYPE,
    wkb_decode,
)

__all__ = ["REDUCE_MAX", "REDUCE_MIN", "REDUCE_SUM", "WKB_MALFORMED", "WKB_NONFINITE",
           "WKB_NULL", "WKB_OK", "WKB_SHORT_RING", "WKB_TRUNCATED", "WKB_UNSUPPORTED_TYPE",
           "byte_planes", "centre_accumulate", "centroid_pixels", "certainly_simple",
           "coverage_accumulate", "coverage_finish", "float32_median", "no_data_mask",
           "polygon_centroids", "prefix_sum_rows", "scatter_reduce", "split_coordinates",
           "touching_reduce", "wkb_decode"]
