"""The byte planes of TIFF's floating-point predictor for one block of a GeoTIFF, in one pass.

The predictor (Predictor = 3, Adobe Photoshop TIFF technical note 3, libtiff's ``fpDiff``)
takes each row of pixel-interleaved samples as big-endian bytes, regroups them so that all
the most significant bytes come first, then replaces each byte by its difference (mod 256)
from the byte ``bands`` before it. The regrouping is done here, from the bands as they are
(band-sequential) straight to the byte planes of pixel-interleaved rows; the difference is
left to numpy (``np.subtract`` on uint8 rows, vectorised: a byte loop here took 0.38 ms per
2-band 256 x 256 float32 tile). Done wholly in numpy
(:func:`fastraster.io.geotiff_lean.predict_float`, which the tests take as the reference) the
interleaving, byte swap and two transpositions took 0.53 ms for such a tile against 0.15 ms
for this kernel (ad-hoc, fastest of 51); a whole block encoded and compressed, side by side:
2.41 -> 2.21 ms on a z15 tile, 3.84 -> 3.59 ms on the dense tile (fastest of 101).
"""

from __future__ import annotations

from fastraster.kernels._jit import kernel


@kernel
def byte_planes(words, r0, c0, planes):
    """Regroup one block's samples into byte planes: rows ``r0 .. r0 + bh``, columns
    ``c0 .. c0 + bw`` of the bands, pixel-interleaved, most significant bytes first.

    Parameters
    ----------
    words : uint32 or uint64 array (bands, height, width)
        The bands' float32 or float64 samples viewed as unsigned integers of their size, in
        the host's byte order, so that shifting takes their bytes from the most significant
        down, whatever that order.
    r0, c0 : int
        The block's first row and column; rows and columns beyond the image are zero samples
        (TIFF pads edge tiles to the full tile size).
    planes : uint8 array (bh, bw * bands * size)
        Out: row ``r`` holds byte 0 (the most significant) of its ``bw * bands`` samples,
        then byte 1 of them, and so on; ``bh`` and ``bw`` are taken from its shape.
    """
    bands, h, w = words.shape
    size = words.itemsize
    bh = planes.shape[0]
    n = planes.shape[1] // size  # samples per block row
    bw = n // bands
    for r in range(bh):
        row = r0 + r
        ncols = 0
        if row < h and c0 < w:
            ncols = min(bw, w - c0)
        for b in range(bands):
            if size == 4:
                for c in range(ncols):
                    v = words[b, row, c0 + c]
                    s = c * bands + b
                    planes[r, s] = (v >> 24) & 0xFF
                    planes[r, n + s] = (v >> 16) & 0xFF
                    planes[r, 2 * n + s] = (v >> 8) & 0xFF
                    planes[r, 3 * n + s] = v & 0xFF
            else:
                for c in range(ncols):
                    v = words[b, row, c0 + c]
                    s = c * bands + b
                    for k in range(size):  # k = 0: the most significant byte
                        planes[r, k * n + s] = (v >> (8 * (size - 1 - k))) & 0xFF
            for c in range(ncols, bw):
                for k in range(size):
                    planes[r, k * n + c * bands + b] = 0
