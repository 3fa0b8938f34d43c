"""What Seg writes: label layers, class/instance/probability rasters, image chips and COCO, each
made whole before it becomes visible."""
