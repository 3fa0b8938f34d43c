"""`seg demo` / `make demo`: the main job end to end, offline, on a synthetic orthomosaic."""
from __future__ import annotations

import os
import time
from typing import Callable, Optional

import numpy as np

from ..core.errors import MissingDependency
from ..core.engine.labeling import open_backend, open_segmenter, segment_prompts
from ..core.geo.tiling import Tiling
from ..core.geo.vectorize import Cleanup
from ..core.engine.ontology import Ontology, OntologyClass, save_ontology
from ..core.outputs.label_rasters import RasterizeOptions, rasterize_labels, write_probability
from ..core.geo.prompts import Prompt
from .scene import write_scene
from ..core.outputs.vectors import write_labels

# the demo's classes, with the codes and colours every output uses (seg rasterize --classes classes.json)
DEMO_CLASSES = Ontology([OntologyClass("water", 1, "#286ee6"), OntologyClass("building", 2, "#e63c28")])


def run_demo(out_dir: str, checkpoint: Optional[str] = None, report: Callable[[str], None] = print) -> dict:
    """Make the scene, segment every known object from one prompt each, write a GeoPackage, a class
    GeoTIFF, a probability GeoTIFF and a PNG preview into `out_dir`. Returns the output paths and
    the IoU of each object with its truth."""
    os.makedirs(out_dir, exist_ok=True)
    raster = os.path.join(out_dir, "orthomosaic.tif")
    truth = write_scene(raster)
    checkpoint = checkpoint or os.environ.get("SEG_CHECKPOINT")
    try:
        model = open_backend(checkpoint)
    except MissingDependency as exc:
        report(f"SAM is not available ({exc}); using the classic backend.")
        model = open_backend(None)
    report(f"backend: {model.model_id}" + ("" if checkpoint else " (weights-free; set SEG_CHECKPOINT or --checkpoint to use SAM)"))
    segmenter = open_segmenter(raster, model, tiling=Tiling(512, 128))
    t = segmenter.source.transform
    prompts, classes = [], []
    for obj in truth:
        if obj.class_name == "building":
            x0, y0 = t * obj.box[:2]
            x1, y1 = t * obj.box[2:]
            prompts.append(Prompt(crs="EPSG:32633", box=(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))))
        else:
            prompts.append(Prompt(crs="EPSG:32633", points=(tuple(t * obj.point),), labels=(1,)))
        classes.append(obj.class_name)
    labels, segmentations, ious = [], [], []
    started = time.perf_counter()
    for prompt, class_name, obj in zip(prompts, classes, truth):
        found, segs = segment_prompts(segmenter, [prompt], class_name, {"sensor": "synthetic", "date": "2026-06-01"}, Cleanup(min_area=1.0))
        labels += found
        segmentations += segs
        ious.append(_iou(segs[0], obj.mask))
        report(f"  {obj.name:>10} ({prompt.kind:>3}): IoU {ious[-1]:.3f}, score {segs[0].score:.2f}, {len(segs[0].tiles)} tile(s)")
    elapsed = time.perf_counter() - started
    outputs = {
        "raster": raster,
        "labels": write_labels(labels, os.path.join(out_dir, "labels.gpkg"), mode="overwrite"),
        "ontology": save_ontology(DEMO_CLASSES, os.path.join(out_dir, "classes.json")),
        "class_raster": os.path.join(out_dir, "classes.tif"),
        "probability": os.path.join(out_dir, "big_pond_probability.tif"),
        "preview": os.path.join(out_dir, "preview.png"),
    }
    rasterize_labels(labels, raster, outputs["class_raster"], RasterizeOptions(ontology=DEMO_CLASSES), overwrite=True)
    write_probability(segmentations[0], outputs["probability"], overwrite=True)
    _preview(segmenter, labels, outputs["preview"])
    report(f"segmented {len(labels)} objects in {elapsed:.1f} s, mean IoU {np.mean(ious):.3f}")
    for key, path in outputs.items():
        report(f"{key:>13}: {os.path.abspath(path)}")
    outputs["iou"] = ious
    return outputs


def _iou(segmentation, truth: np.ndarray) -> float:
    e = segmentation.extent
    s = e.scale
    full = np.zeros(truth.shape, bool)
    block = np.repeat(np.repeat(segmentation.mask, s, 0), s, 1)
    r0, c0 = e.row * s, e.col * s
    full[r0:r0 + block.shape[0], c0:c0 + block.shape[1]] = block[:truth.shape[0] - r0, :truth.shape[1] - c0]
    union = np.count_nonzero(full | truth)
    return float(np.count_nonzero(full & truth) / union) if union else 0.0


def _preview(segmenter, labels, path: str, max_side: int = 1024) -> None:
    import cv2

    src = segmenter.source
    factor = max(src.width, src.height) / max_side
    shape = (int(src.height / factor), int(src.width / factor))
    data, valid = src.read(segmenter.radiometry.bands, (0, 0, src.width, src.height), out_shape=shape)
    image = segmenter.radiometry.apply(data, valid)[:, :, ::-1].copy()
    inverse = ~src.transform
    for label in labels:
        colour = tuple(int(DEMO_CLASSES.color_of(label.attributes["class"])[i:i + 2], 16) for i in (5, 3, 1))  # BGR
        for poly in label.geometry.geoms:
            cols, rows = inverse * np.asarray(poly.exterior.coords).T
            pts = np.stack([cols / factor, rows / factor], axis=1).round().astype(np.int32)
            cv2.polylines(image, [pts], True, colour, 2, cv2.LINE_AA)
    cv2.imwrite(path, image)
