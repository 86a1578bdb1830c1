"""Band medians by radix selection on float32 keys (numpy's value, exactly)."""

import numpy as np

from fastraster.kernels._jit import kernel

# ---------------------------------------------------------------------------------------------
# Band summaries
# ---------------------------------------------------------------------------------------------


@kernel
def _float32_from_key(key):
    """The float32 (as float64) whose order-preserving key is ``key`` (see float32_median)."""
    bits = key ^ 0x80000000 if key >= 0x80000000 else key ^ 0xFFFFFFFF
    word = np.empty(1, np.uint32)
    word[0] = bits
    return np.float64(word.view(np.float32)[0])


@kernel
def float32_median(a):
    """``np.median(a.astype(float64))`` of a non-empty float32 array without NaN, exactly.

    A radix selection instead of a partition: each float32's bits become an unsigned key
    that sorts as the values do (sign bit flipped for positives, all bits for negatives);
    a histogram of the top 16 bits finds the 65,536th of the key range holding each middle
    rank, a second pass the low 16 bits within it. Two passes over the data, no data
    movement. An even count averages the two middle values in float64, as numpy does.
    """
    n = a.shape[0]
    bits = a.view(np.uint32)
    high = np.zeros(65536, np.int32)
    for i in range(n):
        b = np.int64(bits[i])
        high[(b ^ (((b >> 31) * 0x7FFFFFFF) | 0x80000000)) >> 16] += 1
    k_lo = (n - 1) // 2
    k_hi = n // 2
    below = 0
    top = 0
    while below + high[top] <= k_lo:
        below += high[top]
        top += 1
    r_lo = k_lo - below
    top_hi = top
    below_hi = below
    while below_hi + high[top_hi] <= k_hi:
        below_hi += high[top_hi]
        top_hi += 1
    r_hi = k_hi - below_hi
    # Low 16 bits of the keys in the two top bins (usually the same one).
    low = np.zeros(65536, np.int32)
    low_hi = np.zeros(65536 if top_hi != top else 1, np.int32)
    for i in range(n):
        b = np.int64(bits[i])
        key = b ^ (((b >> 31) * 0x7FFFFFFF) | 0x80000000)
        t = key >> 16
        if t == top:
            low[key & 0xFFFF] += 1
        elif t == top_hi:
            low_hi[key & 0xFFFF] += 1
    if top_hi == top:
        low_hi = low
    below = 0
    bottom = 0
    while below + low[bottom] <= r_lo:
        below += low[bottom]
        bottom += 1
    lo = _float32_from_key((top << 16) | bottom)
    if n % 2 == 1:
        return lo
    below = 0
    bottom = 0
    while below + low_hi[bottom] <= r_hi:
        below += low_hi[bottom]
        bottom += 1
    return (lo + _float32_from_key((top_hi << 16) | bottom)) / 2.0
