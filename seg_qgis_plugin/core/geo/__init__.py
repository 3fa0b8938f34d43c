"""Geometry and raster access: windowed reads with exact georeferencing, fixed radiometry, tile
grids, prompts in any CRS, and masks to polygons."""
