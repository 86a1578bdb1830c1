#!/usr/bin/env bash
# Set up .venv, generate sample ice-wedge polygons as 4 staged z13 tiles, rasterize them.
# Usage: ./scripts/demo.sh [OUT_DIR]   (default: demo-output)
source "$(dirname "$0")/_venv.sh" plot
"$PY" -m fastraster.cli demo "${1:-demo-output}"
