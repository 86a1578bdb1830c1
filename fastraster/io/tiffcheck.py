"""Is a TIFF file that a writer just closed complete? (Before it gets its final name.)

GDAL does not report a failed write while it closes a GeoTIFF: on a full disk the image
blocks are written, the directory (written last) is not, libtiff prints
"_tiffWriteProc: No space left on device" to stderr, and rasterio's ``close`` returns as if
all went well (rasterio 1.4.4, GDAL 3.10.3; reproduced on a 96 kB tmpfs: a 98,304-byte file
whose directory offset is 98,304). :func:`check_tiff` reads the structure back — header,
every directory, and the byte ranges of every strip or tile and of every value stored outside
a directory — and raises if anything lies beyond the end of the file.

Hand-written because it must be cheap on every write: reopening the file with rasterio costs
more than the check of the byte ranges (``benchmarks/tiff_check.py``), and tifffile is not a
dependency.
"""

from __future__ import annotations

import os
import struct

#: TIFF types: size in bytes of one value.
_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8,
              13: 4, 16: 8, 17: 8, 18: 8}
#: (offsets tag, byte-counts tag): strips, tiles.
_DATA_TAGS = ((273, 279), (324, 325))
_MAX_IFDS = 64


class IncompleteTiff(OSError):
    """A TIFF whose structure points beyond its end (a write that failed unreported)."""


def check_tiff(path) -> None:
    """Raise :class:`IncompleteTiff` if the TIFF (classic or BigTIFF) at ``path`` is cut
    short: a directory, a value stored outside it, or a strip or tile ending beyond the end
    of the file (or a header that is not a TIFF's)."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size

        def fail(what):
            raise IncompleteTiff(f"{path}: incomplete TIFF ({what}; the file has {size} "
                                 "bytes): the write failed")

        head = fh.read(16)
        if len(head) < 8 or head[:2] not in (b"II", b"MM"):
            fail("no TIFF header")
        bo = "<" if head[:2] == b"II" else ">"
        magic = struct.unpack(bo + "H", head[2:4])[0]
        if magic == 42:
            big, offset = False, struct.unpack(bo + "I", head[4:8])[0]
            count_fmt, entry, value_fmt, inline = "H", 12, "I", 4
        elif magic == 43 and len(head) == 16:
            big, offset = True, struct.unpack(bo + "Q", head[8:16])[0]
            count_fmt, entry, value_fmt, inline = "Q", 20, "Q", 8
        else:
            fail("no TIFF header")
        count_size = struct.calcsize(count_fmt)
        for _ in range(_MAX_IFDS):
            if offset == 0:
                return
            if offset + count_size > size:
                fail(f"directory at {offset}")
            fh.seek(offset)
            n = struct.unpack(bo + count_fmt, fh.read(count_size))[0]
            end = offset + count_size + n * entry + inline
            if end > size:
                fail(f"directory at {offset} ends at {end}")
            raw = fh.read(n * entry + inline)
            arrays = {}
            for k in range(n):
                e = raw[k * entry:(k + 1) * entry]
                if big:
                    tag, typ, cnt = struct.unpack(bo + "HHQ", e[:12])
                    field = e[12:20]
                else:
                    tag, typ, cnt = struct.unpack(bo + "HHI", e[:8])
                    field = e[8:12]
                nbytes = _TYPE_SIZE.get(typ, 1) * cnt
                if nbytes > inline:
                    where = struct.unpack(bo + value_fmt, field)[0]
                    if where + nbytes > size:
                        fail(f"tag {tag} values at {where} end at {where + nbytes}")
                    arrays[tag] = (typ, cnt, where, None)
                else:
                    arrays[tag] = (typ, cnt, None, field[:nbytes])
            for off_tag, len_tag in _DATA_TAGS:
                if off_tag in arrays and len_tag in arrays:
                    offs = _values(fh, bo, arrays[off_tag])
                    lens = _values(fh, bo, arrays[len_tag])
                    last = max((o + n for o, n in zip(offs, lens) if n), default=0)
                    if last > size:
                        fail(f"image data ends at {last}")
            offset = struct.unpack(bo + value_fmt, raw[n * entry:n * entry + inline])[0]
        fail("too many directories")


def _values(fh, bo, spec):
    typ, cnt, where, inline = spec
    fmt = {3: "H", 4: "I", 16: "Q"}.get(typ)
    if fmt is None:
        return []
    if inline is None:
        fh.seek(where)
        inline = fh.read(cnt * struct.calcsize(fmt))
    return struct.unpack(f"{bo}{cnt}{fmt}", inline[:cnt * struct.calcsize(fmt)])
