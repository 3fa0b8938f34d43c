"""The assistant that learns from accepted labels: weights-free multi-scale features (and SAM
embeddings from a cache), a random forest saved as data, window-by-window pre-labels with
probability and uncertainty rasters, and tiles ranked by how much labeling them would help."""
