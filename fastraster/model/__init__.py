"""The model: ragged polygons, tile grids, statistics and their reductions, pyramid
arithmetic; pure computation on arrays (through the kernels), no files."""
