#!/usr/bin/env bash
# Set up .venv with the test extras and run the default test suite (benchmarks excluded).
source "$(dirname "$0")/_venv.sh" test,dask
"$PY" -m pytest "$@"
