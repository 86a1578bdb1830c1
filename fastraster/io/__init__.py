"""Files: the tile-path layout, the staged reader, GeoTIFF/PNG writers (atomic), records and
their CSVs, and the PDG configuration reader."""
