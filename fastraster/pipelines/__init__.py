"""The pipelines: staged tiles to GeoTIFF bands, lower zoom levels, web tiles.

Submodules are imported on use (the workers' entry point, :mod:`fastraster.pipelines.staged`,
must not load the others)."""
