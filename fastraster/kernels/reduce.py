"""Reductions of per-polygon values into pixels (sum, min, max), and the no-data mask."""

import math

from fastraster.kernels._jit import kernel

REDUCE_SUM = 0
REDUCE_MIN = 1
REDUCE_MAX = 2


@kernel
def _reduce_into(out, r, c, v, mode):
    if mode == REDUCE_SUM:
        out[r, c] += v
    elif mode == REDUCE_MIN:
        if v < out[r, c] or math.isnan(out[r, c]):
            out[r, c] = v
    else:
        if v > out[r, c] or math.isnan(out[r, c]):
            out[r, c] = v


@kernel
def no_data_mask(touched, coverage, centroid_index, out):
    """``out[r, c] = True`` where no polygon has area in pixel (r, c) and no centroid falls.

    A pixel has polygon area if some boundary crosses its open interior (``touched``) or its
    summed coverage is not zero (it lies inside a polygon); ``centroid_index`` holds flat
    pixel indices as from :func:`centroid_pixels` (-1: none).
    """
    height, width = out.shape
    for r in range(height):
        for c in range(width):
            out[r, c] = touched[r, c] == 0 and coverage[r, c] == 0.0
    flat = out.reshape(-1)
    for i in range(centroid_index.shape[0]):
        k = centroid_index[i]
        if k >= 0:
            flat[k] = False


@kernel
def scatter_reduce(index, values, mode, out):
    """Reduce ``values[i]`` into ``out.flat[index[i]]`` for every ``index[i] >= 0``.

    ``mode`` as in :func:`touching_reduce`; for MIN and MAX ``out`` starts as NaN.
    """
    flat = out.reshape(-1)
    for i in range(index.shape[0]):
        k = index[i]
        if k < 0:
            continue
        v = values[i]
        if mode == REDUCE_SUM:
            flat[k] += v
        elif mode == REDUCE_MIN:
            if v < flat[k] or math.isnan(flat[k]):
                flat[k] = v
        else:
            if v > flat[k] or math.isnan(flat[k]):
                flat[k] = v
