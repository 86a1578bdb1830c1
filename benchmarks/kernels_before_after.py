"""Side-by-side timing of kernels at a git revision ("before") and in the working tree.

    python benchmarks/kernels_before_after.py --before 677f00a [--rounds 60]

The kernels of ``--before`` are loaded as a second module (compiled once, first calls
excluded): ``fastraster/_kernels.py`` at revisions of the old flat layout (677f00a and
before), the ``fastraster/kernels/`` package (its absolute imports re-pointed at the copy) at
revisions of the layered one. Both versions run on the same dense synthetic tile
(``common.dense_tile()``), alternating within each round (which goes first alternates too),
so that both see the same machine. Prints the median of each kernel per version and the
ratio after / before.

Kernels timed: the WKB decoder alone on the tile's Arrow buffers (outputs preallocated),
and on the same polygons re-encoded by shapely as 3-D and as big-endian WKB;
``polygon_centroids``, ``centre_accumulate`` and ``touching_reduce`` (count) on its polygons.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import _wkb_column, dense_tile, loaded  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _git(*args) -> str:
    return subprocess.run(["git", *args], cwd=REPO, check=True, capture_output=True,
                          text=True).stdout


def _import_as(name: str, path: str, package_dir: str | None = None):
    kw = {"submodule_search_locations": [package_dir]} if package_dir else {}
    spec = importlib.util.spec_from_file_location(name, path, **kw)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # numba's cache finds its functions' module by name
    spec.loader.exec_module(mod)
    return mod


def load_kernels_at(rev: str, folder: str):
    """The kernels of ``rev`` as a module (or package) named ``kernels_before``."""
    files = _git("ls-tree", "--name-only", rev, "fastraster/").split()
    if "fastraster/_kernels.py" in files:  # the old flat layout
        path = os.path.join(folder, "kernels_before.py")
        with open(path, "w") as fh:
            fh.write(_git("show", f"{rev}:fastraster/_kernels.py"))
        return _import_as("kernels_before", path)
    # The layered layout: a copy of fastraster/kernels/ whose modules import each other as
    # kernels_before.* (its _jit still takes __version__ from the installed fastraster).
    pkg = os.path.join(folder, "kernels_before")
    os.makedirs(pkg)
    for name in _git("ls-tree", "--name-only", rev, "fastraster/kernels/").split():
        if name.endswith(".py"):
            src = _git("show", f"{rev}:{name}").replace("fastraster.kernels", "kernels_before")
            with open(os.path.join(pkg, os.path.basename(name)), "w") as fh:
                fh.write(src)
    return _import_as("kernels_before", os.path.join(pkg, "__init__.py"), pkg)


def _decoder(K, data, offsets, valid):
    n = offsets.shape[0] - 1
    nbytes = int(offsets[-1] - offsets[0])
    out = (np.empty(n, np.int8), np.empty(nbytes // 16), np.empty(nbytes // 16),
           np.empty(n + nbytes // 4 + 1, np.int64), np.empty(n + nbytes // 9 + 1, np.int64),
           np.empty(n + 1, np.int64))
    little = sys.byteorder == "little"
    return lambda: K.wkb_decode(data, offsets, valid, *out, little)


def _reencoded(geoms, **kw):
    import shapely

    wkb = shapely.to_wkb(np.asarray(geoms, dtype=object), **kw)
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in wkb])]).astype(np.int64)
    return (np.frombuffer(b"".join(wkb), np.uint8), offsets, np.ones(len(wkb), bool))


def contenders(K, path):
    import shapely

    grid, polys, _, geoms, _ = loaded(path)
    cx, cy = np.empty(len(polys)), np.empty(len(polys))
    h, w = grid.height, grid.width
    ones = np.ones(len(polys))
    decode = _decoder(K, *_wkb_column(path))
    decode_3d = _decoder(K, *_reencoded(shapely.force_3d(geoms, 1.0), output_dimension=3))
    decode_be = _decoder(K, *_reencoded(geoms, byte_order=0))

    def centroids():
        K.polygon_centroids(*polys.arrays, cx, cy)

    def centre():
        K.centre_accumulate(*polys.arrays, ones, *grid.gdal_inverse(), np.zeros((h, w + 1)))

    def touching():
        K.touching_reduce(*polys.arrays, ones, K.REDUCE_SUM, grid.left, grid.dx, grid.top,
                          grid.dy, np.zeros((h, w)), np.zeros((h, w), np.uint8),
                          np.zeros((h, w + 1)))

    return {"wkb_decode": decode, "wkb_decode (3-D)": decode_3d,
            "wkb_decode (big-endian)": decode_be, "polygon_centroids": centroids,
            "centre_accumulate": centre, "touching_reduce": touching}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="git revision of the 'before' kernels")
    ap.add_argument("--rounds", type=int, default=60)
    args = ap.parse_args()
    from fastraster import kernels as after_k

    path = dense_tile()
    with tempfile.TemporaryDirectory() as tmp:
        before_k = load_kernels_at(args.before, tmp)
        runs = {"before": contenders(before_k, path), "after": contenders(after_k, path)}
        for fns in runs.values():  # compile / load, first calls
            for fn in fns.values():
                fn()
        names = list(runs["after"])
        times = {(v, k): [] for v in runs for k in names}
        for r in range(args.rounds):
            order = ("before", "after") if r % 2 == 0 else ("after", "before")
            for k in names:
                for v in order:
                    t = time.perf_counter()
                    runs[v][k]()
                    times[(v, k)].append(time.perf_counter() - t)
    print(f"dense tile {path}, {args.rounds} rounds, before = {args.before}")
    print("| kernel | before (median ms) | after (median ms) | after / before |")
    print("|---|---|---|---|")
    for k in names:
        b = 1000 * statistics.median(times[("before", k)])
        a = 1000 * statistics.median(times[("after", k)])
        print(f"| {k} | {b:.3f} | {a:.3f} | {a / b:.3f} |")


if __name__ == "__main__":
    main()
