"""A GeoTIFF writer without GDAL per file, for fastraster's own output profile.

GDAL is the reference and stays the writer for COGs and anything unusual; this writes the
plain profile (:func:`fastraster.io.geotiff.geotiff_profile`: float32/float64 bands, deflate,
floating-point predictor, 256 x 256 internal tiles or GDAL's strips, optional nodata, band
descriptions) so that GDAL reads back the same file: CRS, transform, nodata, descriptions,
compression, predictor, block shapes, dtype and values (``tests/test_geotiff_lean.py``).

How: GDAL itself writes, once per process and output layout (CRS, size, bands, dtype,
nodata, band names), a *template* file of zeros into memory; its tags — GeoKeys and their
parameters exactly as GDAL encodes that CRS, GDAL_METADATA, GDAL_NODATA, rows per strip —
are copied into every file of that layout, and only what differs per tile is computed here:
the transform tags (ModelPixelScale, ModelTiepoint) and the compressed blocks (TIFF's
floating-point predictor in numpy, then zlib-format deflate by libdeflate, the ``deflate``
package, else the standard library's zlib). No TIFF library: tifffile takes 0.13 s to
import (imagecodecs 0.09 s) in every worker, ``deflate`` under 1 ms, and a classic TIFF with
one IFD is a few dozen lines. Measured in ``benchmarks/entry_points.py``.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from fastraster.io.atomic import atomic_path

# TIFF tags this module computes or checks.
_IMAGE_WIDTH, _IMAGE_LENGTH, _BITS, _COMPRESSION = 256, 257, 258, 259
_STRIP_OFFSETS, _ROWS_PER_STRIP, _STRIP_BYTES = 273, 278, 279
_PREDICTOR, _TILE_WIDTH, _TILE_LENGTH, _TILE_OFFSETS, _TILE_BYTES = 317, 322, 323, 324, 325
_PLANAR, _SAMPLES = 284, 277
_PIXEL_SCALE, _TIEPOINT, _MODEL_TRANSFORM = 33550, 33922, 34264
_DEFLATE = 8
_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8,
              16: 8, 17: 8, 18: 8}
_SHORT, _LONG, _DOUBLE = 3, 4, 12


#: Set to ``0`` to write every GeoTIFF through GDAL and read every staged file through
#: pyogrio (the lean writer and reader off), e.g. to rule them out when chasing a problem.
LEAN_IO_ENV = "FASTRASTER_LEAN_IO"


def lean_io_enabled() -> bool:
    """False if the environment variable :data:`LEAN_IO_ENV` is ``0``."""
    return os.environ.get(LEAN_IO_ENV, "1").strip() != "0"


class LeanTiffUnsupported(ValueError):
    """The lean writer does not handle this output (GDAL does:
    :func:`fastraster.io.geotiff.write_geotiff`)."""


@dataclass(frozen=True)
class _Template:
    """GDAL's tags for one output layout: {tag: (type, count, raw little-endian bytes)}."""

    tags: dict
    tiled: bool
    block_h: int
    block_w: int
    level: int


def write_geotiff_lean(path, array: np.ndarray, grid, names, *, dtype="float32", nodata=None,
                       level: int = 1) -> None:
    """Write bands to ``path`` atomically as :func:`fastraster.io.geotiff.write_geotiff` would.

    Parameters
    ----------
    path : str or os.PathLike
    array : (bands, height, width) array
    grid : TileGrid
        Gives the CRS, transform and size (north-up).
    names : sequence of str
        Band descriptions.
    dtype : "float32" or "float64"
    nodata : float, optional
    level : int
        Deflate level (fastraster's profile: 1).

    Raises
    ------
    LeanTiffUnsupported
        For integer dtypes or a transform that is not north-up; nothing is written.
    """
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise LeanTiffUnsupported(f"{path}: lean GeoTIFF writer handles float bands, not {dtype}")
    t = grid.transform
    if t.b != 0 or t.d != 0 or t.e >= 0:
        raise LeanTiffUnsupported(f"{path}: transform {tuple(t)[:6]} is not north-up")
    count = array.shape[0]
    if array.shape[1:] != (grid.height, grid.width):
        raise ValueError(f"{path}: array {array.shape} does not match the grid "
                         f"{grid.height} x {grid.width}")
    nodata_key = None if nodata is None else repr(float(nodata))
    tpl = _template(str(grid.crs), grid.height, grid.width, count, dtype.name, nodata_key,
                    tuple(str(n) for n in names), level)
    blocks = encode_blocks(array, dtype, tpl.block_h, tpl.block_w, tpl.tiled, level)
    data = tiff_bytes(tpl, blocks, (t.a, -t.e), (t.c, t.f))
    with atomic_path(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)


def predict_float(rows: np.ndarray, samples_per_pixel: int) -> np.ndarray:
    """TIFF's floating-point predictor (Predictor = 3, Adobe Photoshop TIFF technical note 3)
    applied to rows of pixel-interleaved samples: each row's samples as big-endian bytes,
    regrouped so that all the most significant bytes come first, then each byte minus the
    byte ``samples_per_pixel`` before it, mod 256 (libtiff's ``fpDiff``, whose stride is the
    samples per pixel). ``rows``: (n_rows, samples per row) float array; returns
    (n_rows, bytes) uint8."""
    n_rows, n = rows.shape
    size = rows.dtype.itemsize
    s = samples_per_pixel
    be = rows.astype(rows.dtype.newbyteorder(">"), copy=False)
    planes = be.view(np.uint8).reshape(n_rows, n, size).transpose(0, 2, 1).reshape(n_rows, -1)
    out = np.empty_like(planes)
    out[:, :s] = planes[:, :s]
    np.subtract(planes[:, s:], planes[:, :-s], out=out[:, s:])
    return out


def _compressor():
    try:
        import deflate

        return deflate.zlib_compress
    except ImportError:  # the standard library's zlib: same format, slower
        import zlib

        return zlib.compress


def encode_blocks(array: np.ndarray, dtype, block_h: int, block_w: int, tiled: bool,
                  level: int = 1) -> list[bytes]:
    """The compressed blocks (tiles row by row, or strips) of pixel-interleaved bands
    (PlanarConfiguration 1, GDAL's default: the samples of a pixel adjacent), each encoded
    with the floating-point predictor (:func:`predict_block`)."""
    compress = _compressor()
    bands, h, w = array.shape
    words = sample_words(array, dtype)
    size = words.itemsize
    planes = np.empty((block_h, block_w * bands * size), np.uint8)
    encoded = np.empty_like(planes)
    out = []
    if tiled:
        for r0 in range(0, h, block_h):
            for c0 in range(0, w, block_w):
                out.append(compress(predict_block(words, r0, c0, planes, encoded), level))
    else:
        for r0 in range(0, h, block_h):
            n = min(block_h, h - r0)  # the last strip may be shorter
            out.append(compress(predict_block(words, r0, 0, planes[:n], encoded[:n]), level))
    return out


def sample_words(array: np.ndarray, dtype) -> np.ndarray:
    """The bands at ``dtype`` (float32 or float64), as unsigned integers of that size."""
    samples = np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("="))
    return samples.view(np.uint32 if samples.dtype.itemsize == 4 else np.uint64)


def predict_block(words, r0, c0, planes, out) -> np.ndarray:
    """One block of :func:`predict_float`'s output, from the bands' ``words`` (see
    :func:`sample_words`): the byte planes by :func:`fastraster.kernels.byte_planes`, then
    each byte minus the byte ``bands`` before it, mod 256. ``planes`` and ``out``: uint8
    (block rows, block columns x bands x bytes per sample); returns ``out``."""
    from fastraster import kernels as K

    K.byte_planes(words, r0, c0, planes)
    s = words.shape[0]
    out[:, :s] = planes[:, :s]
    np.subtract(planes[:, s:], planes[:, :-s], out=out[:, s:])
    return out


def tiff_bytes(tpl: _Template, blocks: list[bytes], scale, origin) -> bytes:
    """A classic little-endian TIFF: header, one IFD, out-of-line tag values, then blocks."""
    tags = dict(tpl.tags)
    tags[_PIXEL_SCALE] = (_DOUBLE, 3, struct.pack("<3d", scale[0], scale[1], 0.0))
    tags[_TIEPOINT] = (_DOUBLE, 6, struct.pack("<6d", 0, 0, 0, origin[0], origin[1], 0))
    off_tag, len_tag = (_TILE_OFFSETS, _TILE_BYTES) if tpl.tiled else (_STRIP_OFFSETS,
                                                                        _STRIP_BYTES)
    n = len(blocks)
    tags[off_tag] = (_LONG, n, bytes(4 * n))  # placeholder, same size
    tags[len_tag] = (_LONG, n, struct.pack(f"<{n}I", *(len(b) for b in blocks)))
    codes = sorted(tags)
    ifd_size = 2 + 12 * len(codes) + 4
    extra_at = 8 + ifd_size
    # Out-of-line values (more than 4 bytes), word-aligned, after the IFD.
    extra = bytearray()
    where = {}
    for code in codes:
        raw = tags[code][2]
        if len(raw) > 4:
            if (extra_at + len(extra)) % 2:
                extra += b"\0"
            where[code] = extra_at + len(extra)
            extra += raw
    data_at = extra_at + len(extra)
    offsets = np.cumsum([0] + [len(b) for b in blocks[:-1]], dtype=np.int64) + data_at
    if offsets.size and offsets[-1] + len(blocks[-1]) >= 2**32:
        raise LeanTiffUnsupported("output over 4 GiB needs BigTIFF")
    off_raw = struct.pack(f"<{n}I", *offsets.tolist())
    if n * 4 > 4:
        extra[where[off_tag] - extra_at:where[off_tag] - extra_at + 4 * n] = off_raw
    else:
        tags[off_tag] = (_LONG, n, off_raw)
    head = bytearray(b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", len(codes)))
    for code in codes:
        typ, cnt, raw = tags[code]
        value = struct.pack("<I", where[code]) if code in where else raw.ljust(4, b"\0")
        head += struct.pack("<HHI", code, typ, cnt) + value
    head += struct.pack("<I", 0)
    return b"".join([bytes(head), bytes(extra), *blocks])


# ---------------------------------------------------------------------------------------------
# GDAL's tags, once per layout
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _template(crs: str, height: int, width: int, count: int, dtype: str, nodata: str | None,
              names: tuple, level: int) -> _Template:
    """Let GDAL write a file of zeros with this layout (in memory) and keep its tags."""
    from types import SimpleNamespace

    from affine import Affine
    from rasterio.io import MemoryFile

    from fastraster.io.geotiff import geotiff_profile

    # Only the transform differs between tiles of one layout; it is written per file.
    probe = SimpleNamespace(crs=crs, height=height, width=width,
                            transform=Affine(1.0, 0.0, 0.0, 0.0, -1.0, 1.0))
    profile = geotiff_profile(probe, count, dtype, None if nodata is None else float(nodata))
    profile["zlevel"] = level
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(np.zeros((count, height, width), dtype))
            dst.descriptions = names
        raw = mem.read()
    tags = read_ifd(raw)
    tiled = _TILE_WIDTH in tags
    if tiled:
        bh, bw = _value(tags[_TILE_LENGTH]), _value(tags[_TILE_WIDTH])
    else:
        bh, bw = _value(tags[_ROWS_PER_STRIP]), width
    if (_value(tags[_COMPRESSION]) != _DEFLATE or _value(tags.get(_PLANAR, (3, 1, b"\1\0")))
            != 1 or _MODEL_TRANSFORM in tags or _PIXEL_SCALE not in tags):
        raise LeanTiffUnsupported(f"GDAL's layout for {profile} is not the one copied here")
    keep = {k: v for k, v in tags.items()
            if k not in (_STRIP_OFFSETS, _STRIP_BYTES, _TILE_OFFSETS, _TILE_BYTES)}
    return _Template(keep, tiled, bh, bw, level)


def read_ifd(raw: bytes) -> dict:
    """The first IFD of a classic little-endian TIFF: {tag: (type, count, value bytes)}."""
    if raw[:4] != b"II*\0":
        raise LeanTiffUnsupported("template is not a classic little-endian TIFF")
    (ifd,) = struct.unpack_from("<I", raw, 4)
    (n,) = struct.unpack_from("<H", raw, ifd)
    tags = {}
    for k in range(n):
        code, typ, cnt = struct.unpack_from("<HHI", raw, ifd + 2 + 12 * k)
        size = _TYPE_SIZE[typ] * cnt
        at = ifd + 2 + 12 * k + 8
        if size > 4:
            (at,) = struct.unpack_from("<I", raw, at)
        tags[code] = (typ, cnt, bytes(raw[at:at + size]))
    return tags


def _value(tag) -> int:
    typ, _, raw = tag
    return struct.unpack_from("<H" if typ == _SHORT else "<I", raw)[0]

