"""Fuzzing the numba WKB decoder: any bytes give a clean result, never a crash or hang.

Differential: every input is also decoded by ``ref_decode`` below, a slow pure-Python
decoder written from the WKB specification (``struct`` reads that raise at the end of the
entry's own bytes), and the decoder's status codes and output arrays must equal what it
gives, bit for bit. So a read past a geometry's end into its neighbour's bytes, a rollback
that leaves something behind, or a count taken from the wrong byte order shows up as a
difference, even where it would not crash. Inputs: random bytes; well-formed WKB
(Polygons and MultiPolygons, 2-D/Z/M/ZM, ISO and EWKB with SRID, byte order mixed within a
MultiPolygon) mutated by flipping bytes, truncating, overwriting counts with up to
2**32 - 1, type codes with garbage (EWKB flags included) and byte-order bytes, inserting
and deleting bytes; several entries per buffer, with null and zero-length ones, the buffer
sliced so that offsets start and end at its edges.

``test_fuzzers_under_numba_boundscheck`` reruns this file and ``test_fuzz_kernels.py`` in a
subprocess with ``NUMBA_BOUNDSCHECK=1`` (its own numba cache in a temporary folder), where
any out-of-bounds access raises instead of reading or writing memory silently.
"""

from __future__ import annotations

import math
import os
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastraster import kernels as K
from fastraster.model.geometry import RaggedPolygons

REPO = Path(__file__).resolve().parents[1]

#: Examples per fuzz test; FASTRASTER_FUZZ_EXAMPLES=20000 for a long local run,
#: FASTRASTER_FUZZ_RANDOM=1 for new examples on each run (CI: the same, derandomized ones).
N_EXAMPLES = int(os.environ.get("FASTRASTER_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=N_EXAMPLES, deadline=None, database=None,
                derandomize=os.environ.get("FASTRASTER_FUZZ_RANDOM") != "1",
                suppress_health_check=list(HealthCheck))

STATUSES = {K.WKB_OK, K.WKB_NULL, K.WKB_UNSUPPORTED_TYPE, K.WKB_TRUNCATED, K.WKB_NONFINITE,
            K.WKB_SHORT_RING, K.WKB_MALFORMED}


# ---------------------------------------------------------------------------------------------
# The reference decoder (slow, obviously correct)
# ---------------------------------------------------------------------------------------------


class _Truncated(Exception):
    pass


class _Malformed(Exception):
    pass


class _Unsupported(Exception):
    pass


class _Reader:
    """Reads from one entry's bytes only; reading past their end raises ``_Truncated``."""

    def __init__(self, buf: bytes):
        self.buf = buf
        self.pos = 0

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise _Truncated
        out = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return out

    def header(self):
        """(endianness prefix, base type, number of ordinates) of a WKB geometry header."""
        if self.pos + 5 > len(self.buf):
            raise _Truncated
        (order,) = self.take("B")
        if order not in (0, 1):
            raise _Malformed
        e = "<" if order == 1 else ">"
        (code,) = self.take(e + "I")
        # EWKB (PostGIS) flags: Z 0x80000000, M 0x40000000, SRID 0x20000000 (4 bytes follow).
        z, m = bool(code & 0x80000000), bool(code & 0x40000000)
        if code & 0x20000000:
            self.pos += 4  # skipped, not read: whatever reads next finds it missing
        # ISO: 1000 + type for Z, 2000 for M, 3000 for ZM.
        iso, base = divmod(code & 0x0FFFFFFF, 1000)
        if iso > 3:
            raise _Unsupported
        z |= iso in (1, 3)
        m |= iso in (2, 3)
        return e, base, 2 + z + m

    def polygon(self, e, ndim):
        """List of rings, each (xs, ys) as float64 arrays."""
        (n_rings,) = self.take(e + "I")
        rings = []
        for _ in range(n_rings):
            (n,) = self.take(e + "I")
            if self.pos + 8 * ndim * n > len(self.buf):
                raise _Truncated
            v = np.frombuffer(self.buf, dtype=e + "f8", count=n * ndim, offset=self.pos)
            rings.append((v[0::ndim].astype(np.float64), v[1::ndim].astype(np.float64)))
            self.pos += 8 * ndim * n
        return rings


def ref_decode(entry: bytes | None):
    """(status, parts) of one WKB entry; ``parts`` is a list of lists of rings."""
    if entry is None or len(entry) == 0:
        return K.WKB_NULL, []
    r = _Reader(entry)
    try:
        e, base, ndim = r.header()
        if base == 3:
            rings = r.polygon(e, ndim)
            parts = [rings] if rings else []
        elif base == 6:
            (n_parts,) = r.take(e + "I")
            parts = []
            for _ in range(n_parts):
                e2, base2, ndim2 = r.header()
                if base2 != 3:
                    raise _Unsupported
                parts.append(r.polygon(e2, ndim2))
        else:
            raise _Unsupported
    except _Truncated:
        return K.WKB_TRUNCATED, []
    except _Malformed:
        return K.WKB_MALFORMED, []
    except _Unsupported:
        return K.WKB_UNSUPPORTED_TYPE, []
    if not parts:
        return K.WKB_NULL, []
    rings = [ring for part in parts for ring in part]
    if not all(np.isfinite(xs).all() and np.isfinite(ys).all() for xs, ys in rings):
        return K.WKB_NONFINITE, []
    if any(len(xs) in (1, 2) for xs, _ in rings):
        return K.WKB_SHORT_RING, []
    return K.WKB_OK, parts


def ref_ragged(entries):
    """Expected (status array, RaggedPolygons) of a list of entries (None = null)."""
    status, x, y, ro, po, go = [], [], [], [0], [0], [0]
    for entry in entries:
        s, parts = ref_decode(entry)
        status.append(s)
        for rings in parts:
            for xs, ys in rings:
                x.extend(xs.tolist())
                y.extend(ys.tolist())
                ro.append(len(x))
            po.append(len(ro) - 1)
        go.append(len(po) - 1)
    return np.array(status, np.int8), RaggedPolygons(
        np.array(x, np.float64), np.array(y, np.float64), np.array(ro, np.int64),
        np.array(po, np.int64), np.array(go, np.int64))


def assert_same_decoding(entries, *, lead=b"", tail=b""):
    """Decode ``entries`` with the numba decoder (inside ``lead + ... + tail``, so offsets
    need not start at 0 nor end at the buffer's end) and compare with the reference."""
    blobs = [e or b"" for e in entries]
    data = np.frombuffer(lead + b"".join(blobs) + tail, np.uint8)
    offsets = len(lead) + np.concatenate([[0], np.cumsum([len(b) for b in blobs])])
    valid = np.array([e is not None for e in entries], bool)
    polys, status = RaggedPolygons.from_wkb(data, offsets.astype(np.int64), valid)
    want_status, want = ref_ragged(entries)
    assert set(status.tolist()) <= STATUSES
    np.testing.assert_array_equal(status, want_status)
    # Bit for bit (a -0.0 or a NaN payload would differ).
    assert polys.x.view(np.uint64).tolist() == want.x.view(np.uint64).tolist()
    assert polys.y.view(np.uint64).tolist() == want.y.view(np.uint64).tolist()
    for name in ("ring_offsets", "part_offsets", "geom_offsets"):
        np.testing.assert_array_equal(getattr(polys, name), getattr(want, name), name)
    return status


# ---------------------------------------------------------------------------------------------
# Well-formed WKB, written here (with the byte positions of its counts and headers)
# ---------------------------------------------------------------------------------------------


class _Writer:
    def __init__(self):
        self.buf = bytearray()
        self.counts = []  # positions of uint32 counts
        self.headers = []  # positions of byte-order bytes (type code follows)

    def header(self, little, base, dims, flavor, srid):
        e = "<" if little else ">"
        self.headers.append(len(self.buf))
        if flavor == "iso":
            code = base + {"xy": 0, "xyz": 1000, "xym": 2000, "xyzm": 3000}[dims]
        else:  # EWKB flags
            code = base | (0x80000000 if "z" in dims else 0) | (0x40000000 if "m" in dims
                                                                  else 0)
            if srid is not None:
                code |= 0x20000000
        self.buf += struct.pack(e + "BI", 1 if little else 0, code)
        if flavor == "ewkb" and srid is not None:
            self.buf += struct.pack(e + "I", srid)

    def count(self, little, n):
        self.counts.append(len(self.buf))
        self.buf += struct.pack(("<" if little else ">") + "I", n)

    def polygon(self, rings, little, dims):
        e = "<" if little else ">"
        self.count(little, len(rings))
        for ring in rings:
            self.count(little, len(ring))
            for x, y in ring:
                self.buf += struct.pack(e + "dd", x, y)
                self.buf += struct.pack(e + "d", 7.5) * (len(dims) - 2)


FINITE = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
ODD = st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308])
COORD = st.one_of(FINITE, FINITE, FINITE, FINITE, FINITE, FINITE, ODD)
RING = st.lists(st.tuples(COORD, COORD), min_size=0, max_size=6)
RINGS = st.lists(RING, min_size=0, max_size=3)


@st.composite
def wkb_geometry(draw):
    """(bytes, count positions, header positions) of a Polygon or MultiPolygon."""
    w = _Writer()
    dims = draw(st.sampled_from(["xy", "xyz", "xym", "xyzm"]))
    flavor = draw(st.sampled_from(["iso", "ewkb"]))
    srid = draw(st.sampled_from([None, 4326]))
    little = draw(st.booleans())
    if draw(st.booleans()):
        w.header(little, 3, dims, flavor, srid)
        w.polygon(draw(RINGS), little, dims)
    else:
        parts = draw(st.lists(RINGS, min_size=0, max_size=3))
        w.header(little, 6, dims, flavor, srid)
        w.count(little, len(parts))
        for rings in parts:
            part_little = draw(st.booleans())  # byte orders mixed within one geometry
            part_dims = draw(st.sampled_from(["xy", "xyz", "xym", "xyzm"]))
            w.header(part_little, 3, part_dims, flavor, None)
            w.polygon(rings, part_little, part_dims)
    return bytes(w.buf), w.counts, w.headers


HUGE = st.sampled_from([0, 1, 2, 3, 4, 255, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF,
                        1 << 24, 1 << 28])
TYPE_CODES = st.one_of(
    st.integers(0, 2**32 - 1),
    st.builds(lambda base, iso, flags: base + iso | flags,
              st.integers(0, 17), st.sampled_from([0, 1000, 2000, 3000, 4000]),
              st.sampled_from([0, 0x80000000, 0x40000000, 0x20000000, 0xE0000000,
                               0x10000000])))


@st.composite
def mutated(draw):
    """A well-formed geometry with up to 4 mutations."""
    blob, counts, headers = draw(wkb_geometry())
    b = bytearray(blob)
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "count", "type", "order", "insert",
                                   "delete"]))
        # (Positions recorded by the writer that earlier mutations cut away are dropped.)
        counts = [i for i in counts if i < len(b)]
        headers = [i for i in headers if i < len(b)]
        if op == "flip" and b:
            i = draw(st.integers(0, len(b) - 1))
            b[i] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            b = b[:draw(st.integers(0, len(b)))]
        elif op == "count" and counts:
            i = draw(st.sampled_from(counts))
            b[i:i + 4] = struct.pack(draw(st.sampled_from(["<I", ">I"])), draw(HUGE))
        elif op == "type" and headers:
            i = draw(st.sampled_from(headers)) + 1
            b[i:i + 4] = struct.pack(draw(st.sampled_from(["<I", ">I"])), draw(TYPE_CODES))
        elif op == "order" and headers:
            b[draw(st.sampled_from(headers))] = draw(st.sampled_from([0, 1, 2, 0x80, 0xFF]))
        elif op == "insert":
            i = draw(st.integers(0, len(b)))
            b[i:i] = draw(st.binary(min_size=1, max_size=9))
        elif op == "delete" and b:
            i = draw(st.integers(0, len(b) - 1))
            del b[i:i + draw(st.integers(1, 9))]
    return bytes(b)


@st.composite
def nested_garbage(draw):
    """A MultiPolygon whose parts mix Polygons, nested MultiPolygons, other types and
    random bytes, under a part count that may not match."""
    e = draw(st.sampled_from(["<", ">"]))
    parts = draw(st.lists(st.one_of(
        wkb_geometry().map(lambda t: t[0]),  # a Polygon, or a nested MultiPolygon
        st.binary(max_size=24),
        st.builds(lambda code, body: struct.pack("<BI", 1, code) + body, TYPE_CODES,
                  st.binary(max_size=16))), max_size=4))
    count = draw(st.one_of(st.just(len(parts)), HUGE))
    return struct.pack(e + "BII", 1 if e == "<" else 0, 6, count) + b"".join(parts)


ENTRY = st.one_of(mutated(), wkb_geometry().map(lambda t: t[0]), nested_garbage(),
                  st.binary(max_size=64), st.none(), st.just(b""))


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


@FUZZ
@given(entries=st.lists(ENTRY, min_size=0, max_size=5),
       lead=st.sampled_from([b"", b"\x01", b"\x00" * 7]),
       tail=st.sampled_from([b"", b"\x01\x03\x00\x00\x00\xff\xff\xff\xff"]))
def test_decoder_matches_reference_on_fuzzed_entries(entries, lead, tail):
    assert_same_decoding(entries, lead=lead, tail=tail)


@FUZZ
@given(blob=st.binary(min_size=0, max_size=300))
def test_decoder_matches_reference_on_random_bytes(blob):
    assert_same_decoding([blob])
    # The same bytes behind a plausible header, so that they are read as a body.
    assert_same_decoding([b"\x01\x03\x00\x00\x00" + blob, b"\x00\x00\x00\x00\x06" + blob])


@settings(FUZZ, max_examples=max(N_EXAMPLES // 6, 5))  # each example decodes ~100-400 cuts
@given(geom=wkb_geometry())
def test_well_formed_geometry_truncated_at_every_byte(geom):
    blob = geom[0]
    follow = ref_ragged([blob])
    for cut in range(len(blob)):
        status = assert_same_decoding([blob[:cut], blob])
        # Every byte of a well-formed geometry is needed (an EWKB SRID too, though unread).
        assert status[0] == (K.WKB_TRUNCATED if cut else K.WKB_NULL), cut
        assert status[1] == follow[0][0]


def _poly(rings, e="<", count=None):
    out = struct.pack(e + "BII", 1 if e == "<" else 0, 3,
                      len(rings) if count is None else count)
    for r in rings:
        out += struct.pack(e + "I", len(r)) + b"".join(struct.pack(e + "dd", *p) for p in r)
    return out


SQUARE = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.0, 0.0)]


@pytest.mark.parametrize("e", ["<", ">"])
def test_nojit_small_huge_counts_on_small_inputs_return_at_once(e):
    """Counts of up to 2**32 - 1 on ~100-byte inputs: the decoder must stop at the end of
    the bytes, not loop over the count or allocate from it. Run in a thread with a bound
    (60 s against microseconds) so that a hang fails the test instead of the suite."""
    o = 1 if e == "<" else 0
    entries = [
        _poly([SQUARE], e, count=0xFFFFFFFF),  # n_rings
        struct.pack(e + "BIII", o, 3, 1, 0xFFFFFFFF) + b"\x00" * 80,  # n_points
        struct.pack(e + "BII", o, 6, 0xFFFFFFFF) + _poly([SQUARE], e) * 2,  # n_parts
        struct.pack(e + "BII", o, 3, 0xFFFFFFFF) + struct.pack(e + "I", 0) * 20,  # empty rings
        struct.pack(e + "BII", o, 6, 0xFFFFFFFF) + struct.pack(e + "BII", o, 3, 0) * 9,
        struct.pack(e + "BIII", o, 3003, 1, 0x7FFFFFFF) + b"\x00" * 80,  # ZM: 32 B/point
    ]
    result = {}

    def run():
        result["status"] = assert_same_decoding(entries)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "the decoder hung on a huge count"
    assert result["status"].tolist() == [K.WKB_TRUNCATED] * 6


def test_nojit_small_statuses_of_corrupt_but_well_formed_geometries():
    nan_ring = [(0.0, 0.0), (1.0, math.nan), (1.0, 1.0), (0.0, 0.0)]
    inf_ring = [(0.0, 0.0), (math.inf, 0.0), (1.0, 1.0), (0.0, 0.0)]
    hole = [(0.2, 0.2), (0.4, 0.2), (0.4, 0.4), (0.2, 0.2)]
    multi = struct.pack("<BII", 1, 6, 2) + _poly([SQUARE]) + _poly([SQUARE, nan_ring], ">")
    entries = [_poly([SQUARE]), _poly([nan_ring]), _poly([SQUARE, inf_ring]), multi,
               _poly([SQUARE[:2]]), _poly([SQUARE, hole[:1]]), _poly([[]]),
               _poly([SQUARE[:4]]),  # unclosed: accepted, closed implicitly by the kernels
               _poly([SQUARE[:3], nan_ring[:2]]),  # both: non-finite wins
               b"\x02" + _poly([SQUARE])[1:], _poly([SQUARE])]
    status = assert_same_decoding(entries)
    assert status.tolist() == [K.WKB_OK, K.WKB_NONFINITE, K.WKB_NONFINITE, K.WKB_NONFINITE,
                               K.WKB_SHORT_RING, K.WKB_SHORT_RING, K.WKB_OK, K.WKB_OK,
                               K.WKB_NONFINITE, K.WKB_MALFORMED, K.WKB_OK]


def test_nojit_small_nonfinite_in_z_or_m_is_ignored():
    """Z and M are dropped unread: a NaN there (as some writers use for 'no measure')
    changes nothing."""
    ring = [(0.0, 0.0, math.nan), (1.0, 0.0, 1.0), (1.0, 1.0, math.inf), (0.0, 0.0, 2.0)]
    blob = struct.pack("<BIII", 1, 2003, 1, len(ring)) + b"".join(
        struct.pack("<ddd", *p) for p in ring)
    assert assert_same_decoding([blob]).tolist() == [K.WKB_OK]


def test_from_wkb_refuses_bad_offsets_and_masks():
    data = np.frombuffer(_poly([SQUARE]), np.uint8)
    with pytest.raises(ValueError, match="offsets"):
        RaggedPolygons.from_wkb(data, np.array([], np.int64))
    with pytest.raises(ValueError, match="offsets"):
        RaggedPolygons.from_wkb(data, np.array([0, data.size + 1]))
    with pytest.raises(ValueError, match="offsets"):
        RaggedPolygons.from_wkb(data, np.array([0, 10, 5, data.size]))
    with pytest.raises(ValueError, match="valid"):
        RaggedPolygons.from_wkb(data, np.array([0, 10, data.size]), np.ones(1, bool))
    polys, status = RaggedPolygons.from_wkb(data, np.array([7]))  # no entries at all
    assert len(polys) == 0 and status.size == 0


@pytest.mark.skipif(os.environ.get("NUMBA_BOUNDSCHECK") != "1",
                    reason="only meaningful in the NUMBA_BOUNDSCHECK=1 subprocess")
def test_boundscheck_is_live():
    """In the bounds-checked run, an out-of-bounds write must raise: else that run proves
    nothing (e.g. a cached build without bounds checks was loaded)."""
    data = np.frombuffer(_poly([SQUARE]), np.uint8)
    with pytest.raises(IndexError):
        K.wkb_decode(data, np.array([0, data.size]), np.ones(1, bool), np.empty(1, np.int8),
                     np.empty(100), np.empty(100), np.empty(10, np.int64),
                     np.empty(10, np.int64), np.empty(1, np.int64), sys.byteorder == "little")


def test_fuzzers_under_numba_boundscheck(tmp_path):
    """The fuzz tests of the decoder and of the raster kernels again, compiled with bounds
    checks (in a fresh numba cache, so the normal one is not touched), on a smaller budget."""
    if os.environ.get("NUMBA_BOUNDSCHECK") == "1":
        pytest.skip("already running under NUMBA_BOUNDSCHECK=1")
    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(tmp_path),
           "FASTRASTER_FUZZ_EXAMPLES": os.environ.get("FASTRASTER_FUZZ_BOUNDSCHECK_EXAMPLES",
                                                      "40")}
    env.pop("NUMBA_DISABLE_JIT", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-v", "-p", "no:cacheprovider",
         "tests/test_fuzz_wkb.py", "tests/test_fuzz_kernels.py", "-k", "not under_numba"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, tail
    assert "test_boundscheck_is_live PASSED" in proc.stdout, tail
