"""Whole-raster work: encoding, pre-labeling from prompt layers or a point grid, objects merged
across tiles, and tile indexes."""
