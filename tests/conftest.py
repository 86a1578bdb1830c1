import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
#: pdgraster's own outputs for 4 real staged tiles (present in CI, absent in a user's clone).
PDG_EXAMPLE = Path(os.environ.get("FASTRASTER_PDG_EXAMPLE",
                                  REPO.parent / "shared" / "pdg-minimal-example"))

needs_pdg_example = pytest.mark.skipif(
    not (PDG_EXAMPLE / "staged").is_dir(),
    reason=f"pdgraster reference data not found at {PDG_EXAMPLE} (it ships beside the repo "
           "in CI as ../shared/pdg-minimal-example; set FASTRASTER_PDG_EXAMPLE to use it)")


@pytest.fixture(scope="session")
def sample_staged(tmp_path_factory):
    """Two small staged z13 tiles of synthetic ice-wedge polygons (fixed seed)."""
    from fastraster.sample import make_sample

    root = tmp_path_factory.mktemp("sample") / "staged"
    make_sample(root, tiles=((1524, 910, 13), (1525, 910, 13)), spacing_m=40.0, seed=1)
    return root


def dead_pid() -> int:
    """The pid of a process that has exited (a killed run's owner, for sweep tests)."""
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def tif_files(root):
    return sorted(p for p in Path(root).rglob("*.tif"))


def read_tif(path):
    import rasterio

    with rasterio.open(path) as src:
        return src.read(), src.profile, src.descriptions, src.transform


def assert_no_temp_files(root):
    leftovers = [p for p in Path(root).rglob(".*") if p.is_file() and p.suffix == ".tmp"]
    assert not leftovers, leftovers


def finite_equal(a, b):
    return np.array_equal(np.nan_to_num(a, nan=-1e300), np.nan_to_num(b, nan=-1e300))
