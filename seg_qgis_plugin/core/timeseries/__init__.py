"""Time series: carry labels through dates (propagate), report what changed (change), and map
where two dates' images differ (drift). Pipelines over the engine: windowed reads, one fixed
radiometry per raster, atomic outputs."""
