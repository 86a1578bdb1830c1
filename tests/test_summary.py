"""Per-band summaries (pdgraster's rasters_summary.csv values) vs numpy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fastraster import kernels as K
from fastraster.io.summary import band_summary

FLOAT32 = st.floats(width=32, allow_nan=False)


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(a=hnp.arrays(np.float32, st.integers(1, 300),
                    elements=st.one_of(FLOAT32, st.sampled_from([0.0, 1.0, 2.0, -1.0]))))
def test_float32_median_is_numpys(a):
    # Ties, infinities, signed zeros, subnormals, odd and even sizes.
    assert K.float32_median(a) == np.median(a.astype(np.float64))


def test_nojit_small_float32_median_hand_values():
    assert K.float32_median(np.array([3.0], np.float32)) == 3.0
    assert K.float32_median(np.array([4.0, -2.0], np.float32)) == 1.0
    assert K.float32_median(np.array([-np.inf, 3, np.inf, -0.0], np.float32)) == 1.5
    assert K.float32_median(np.array([0.1, 0.2, 0.3], np.float32)) == np.float64(
        np.float32(0.2))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_band_summary_is_numpys(dtype):
    rng = np.random.default_rng(3)
    band = np.where(rng.random((64, 64)) < 0.6, 0.0, rng.random((64, 64)) * 3).astype(dtype)
    band[5, :7] = np.nan  # no value: left out
    s = band_summary(band)
    v = band[~np.isnan(band)].astype(np.float64)
    expect = {"min": v.min(), "max": v.max(), "mean": v.mean(), "median": np.median(v),
              "std": v.std(), "var": v.var(), "sum": v.sum()}
    assert s == {k: float(x) for k, x in expect.items()}


def test_band_summary_all_nan():
    s = band_summary(np.full((4, 4), np.nan, np.float32))
    assert all(np.isnan(v) for v in s.values())
