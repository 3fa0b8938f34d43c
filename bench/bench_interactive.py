"""Click-to-polygon latency with a cached embedding, SAM vit_b (random weights), 2 CPU threads.

Ours: a prompt in map coordinates -> Segmenter.segment -> georeferenced polygon.
Bare: SamPredictor.predict on the same embedding and prompt (pixel coordinates, no polygon).
Run: .venv/bin/python bench/bench_interactive.py [--model vit_b] [--repeat 40]
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from common import percentiles, random_checkpoint, timed  # noqa: E402
from seg_qgis_plugin.core.geo.prompts import Prompt  # noqa: E402
from seg_qgis_plugin.core.geo.raster import RasterSource  # noqa: E402
from seg_qgis_plugin.core.models.sam import SamBackend  # noqa: E402
from seg_qgis_plugin.core.engine.segmenter import Segmenter  # noqa: E402
from seg_qgis_plugin.demo.scene import write_scene  # noqa: E402
from seg_qgis_plugin.core.geo.vectorize import mask_to_geometry  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="vit_b")
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(2)
    folder = tempfile.mkdtemp()
    raster = os.path.join(folder, "ortho.tif")
    truth = write_scene(raster, 1024, 1024)
    model = SamBackend(random_checkpoint(args.model), device="cpu", threads=2)
    source = RasterSource(raster)
    segmenter = Segmenter(source, model, tile=1024, overlap=256, max_windows=1)
    tile = segmenter.grid.at(0, 0)
    embedding = segmenter.embedding(tile)  # encode once: this is the cached state a click finds

    from segment_anything import SamPredictor

    predictor = SamPredictor(model.model)
    image, _ = segmenter.image(tile)
    predictor.set_image(image)
    predictor.features = torch.from_numpy(embedding.arrays["features"])  # the very same embedding

    pond = next(t for t in truth if t.class_name == "water" and t.name == "pond")
    col, row = pond.point
    x, y = source.transform * (col, row)
    prompt = Prompt("EPSG:32633", ((x, y),), (1,))

    def ours():
        result = segmenter.segment(prompt)
        return mask_to_geometry(result.mask, result.transform)

    def ours_mask():
        return segmenter.segment(prompt)

    result = segmenter.segment(prompt)
    noisy = mask_to_geometry(result.mask, result.transform)
    pond_mask = pond.mask[:1024, :1024]

    def polygon_of_noise():
        return mask_to_geometry(result.mask, result.transform)

    def polygon_of_pond():
        return mask_to_geometry(pond_mask, source.transform)

    def bare():
        return predictor.predict(point_coords=np.array([[col - 0.5, row - 0.5]]), point_labels=np.array([1]), multimask_output=True)

    for fn in (ours, bare):  # warm up
        fn()
    print(f"SAM {args.model}, random weights, {torch.get_num_threads()} threads, tile 1024, one positive click")
    for name, fn in (("ours: map point -> polygon      ", ours), ("ours: map point -> georef. mask ", ours_mask),
                     ("bare SamPredictor.predict       ", bare)) * 2:
        print(f"{name} {percentiles(timed(fn, args.repeat // 2))}")
    vertices = sum(len(p.exterior.coords) + sum(len(r.coords) for r in p.interiors) for p in noisy.geoms)
    print(f"the polygon step alone, random-weights mask ({len(noisy.geoms)} parts, {vertices} vertices): "
          f"{percentiles(timed(polygon_of_noise, args.repeat // 2))}")
    print(f"the polygon step alone, a real object's mask (the pond, {int(pond_mask.sum())} px):       "
          f"{percentiles(timed(polygon_of_pond, args.repeat // 2))}")


if __name__ == "__main__":
    main()
