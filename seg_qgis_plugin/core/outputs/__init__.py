"""What Seg writes: label layers, class/instance/probability rasters, image chips and COCO, each
made whole before it becomes visible."""

CHIP_FORMATS = ("tif", "png")  # GeoTIFF: raw bands, georeferenced; PNG: 8-bit, the radiometry applied
