"""The engine: a raster, a radiometry, a tile grid, a model session and an embedding cache tied
together (`Segmenter`), and segmentations turned into labels with provenance."""
