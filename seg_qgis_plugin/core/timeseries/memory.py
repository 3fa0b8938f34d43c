"""Carry labels through a series with SAM 2's memory: the dates of one object are the frames of a
video, and the model follows the object from frame to frame with its memory of the earlier frames
(`SAM2VideoPredictor`), instead of being prompted afresh on each date.

Each object gets a window around its outline on the raster of its own date (grown by its size on
each side, at most MAX_SIDE pixels, decimated beyond), and every later date is read on that same
grid (co-registered by GDAL's warper, each date with its own radiometry). The first frame is
prompted with the outline's mask. Each answer is judged as `propagate` judges its answers
(`kept`, `lost` or `uncertain`, from the same evidence); the output has the fields of `propagate`
(`track_id`, `date`, `status`, `similarity`, `reason`); prompt_type is "memory".
"""
from __future__ import annotations

import os
import tempfile
from typing import List, Optional, Sequence

import numpy as np

from ..engine.labels import Label, attributes
from ..errors import SegError
from ..geo.radiometry import compute_radiometry
from ..geo.raster import RasterSource
from ..geo.vectorize import Cleanup, reproject_geometry
from ..progress import Progress, check_canceled
from .appearance import look
from .dates import DatedRaster
from .propagate import (AREA_RANGE, STEP_STATUSES, PropagateOptions, PropagationResult, Track, Witness, check_overlap, chosen_labels,
                        judge, start_label, start_tracks, tracked_label)

MAX_SIDE = 1024


class VideoTracker:
    """SAM 2.1's video predictor from a checkpoint file (official or `seg models random`)."""

    def __init__(self, checkpoint: str, device: str = "cpu"):
        from ..models.checkpoint_files import read_state
        from ..models.file_digest import file_sha256
        from ..models.sam2_checkpoints import SAM2_TYPES, detect_sam2_type, quiet_sam2, require_sam2

        require_sam2()
        state = read_state(checkpoint)
        model_type = detect_sam2_type(state)
        if model_type is None:
            raise SegError(f"{checkpoint} does not hold SAM 2.1 weights; the sam2 backend follows objects with SAM 2.1's memory.")
        with quiet_sam2():
            from sam2.build_sam import build_sam2_video_predictor

            # no hole filling: it needs the CUDA extension (built only with SAM2_BUILD_CUDA=1) and changes few masks
            self.predictor = build_sam2_video_predictor(SAM2_TYPES[model_type][0], None, device=device, apply_postprocessing=False)
        self.predictor.load_state_dict(state, strict=True)
        self.model_id, self.checkpoint_sha256 = model_type.replace("_", "-", 1), file_sha256(checkpoint)

    def follow(self, frames: Sequence[np.ndarray], first_mask: np.ndarray):
        """frames: uint8 (H, W, 3), all on one grid; first_mask bool (H, W) on frames[0]. Yields
        (logits float32 (H, W), object score in [0, 1]) for frames[1:]."""
        import cv2
        import torch

        with tempfile.TemporaryDirectory(prefix="seg-frames-") as folder, torch.inference_mode():
            for i, frame in enumerate(frames):  # the predictor reads a video as a folder of JPEGs
                cv2.imwrite(os.path.join(folder, f"{i:05d}.jpg"), np.ascontiguousarray(frame[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95])
            state = self.predictor.init_state(folder)
            self.predictor.add_new_mask(state, frame_idx=0, obj_id=1, mask=first_mask)
            for index, _, logits in self.predictor.propagate_in_video(state):
                if index == 0:
                    continue
                output = state["output_dict_per_obj"][0]["non_cond_frame_outputs"].get(index, {})
                score = output.get("object_score_logits")
                yield logits[0, 0].float().cpu().numpy(), float(torch.sigmoid(score).max()) if score is not None else 1.0


def propagate_with_memory(labels: Sequence[Label], series: Sequence[DatedRaster], tracker: VideoTracker,
                          options: PropagateOptions = PropagateOptions(), progress: Optional[Progress] = None) -> PropagationResult:
    """Carry `labels` through `series` (sorted by date) with SAM 2's memory; see the module docstring."""
    import time

    tracks = start_tracks(labels, options.start, options.classes)
    check_overlap(tracks, series)
    out: List[Label] = [start_label(lab, t) for lab, t in zip(chosen_labels(labels, options.classes), tracks)]
    counts, notes, seconds = dict.fromkeys(STEP_STATUSES, 0), [], 0.0
    cleanup = Cleanup(options.simplify)
    radiometries = {}
    for number, t in enumerate(tracks):
        check_canceled(progress)
        own = [item for item in series if item.date == t.date]
        later = [item for item in series if item.date > t.date]
        if not own:
            raise SegError(f"The raster of {t.date.isoformat()} (the date track {t.track_id} was labelled on) is not in the series; "
                           "memory tracking starts from the labelled date: add that raster.")
        if not later:
            continue
        began = time.perf_counter()
        grid = _grid(own[0].path, t)
        frames = []
        for item in own + later:
            if item.path not in radiometries:
                with RasterSource(item.path) as source:
                    radiometries[item.path] = compute_radiometry(source, options.bands, value_range=options.value_range)
            frames.append(_read_on_grid(item.path, grid, radiometries[item.path]))
        first = _rasterize(t, grid)
        previous_area = first.sum()
        with RasterSource(own[0].path) as source:
            drawn = reproject_geometry(t.geometry, t.crs, source.crs.to_wkt())
            t.look, t.index_look = look(source, radiometries[own[0].path], drawn), Witness(source, options).look(t, drawn)
        for item, (logits, score) in zip(later, tracker.follow(frames, first)):
            mask = logits > 0
            geometry = cleanup.geometry(mask, grid["transform"]) if mask.any() else None
            ratio = mask.sum() / max(previous_area, 1)
            problem = ("the model found nothing" if geometry is None else
                       f"its area changed {ratio:.2f}-fold" if not AREA_RANGE[0] <= ratio <= AREA_RANGE[1] else
                       f"the model is unsure (score {score:.2f})" if score < options.min_score else "")
            radiometry = radiometries[item.path]
            with RasterSource(item.path) as source:
                witness, crs = Witness(source, options), source.crs.to_wkt()
                here_geometry = reproject_geometry(t.geometry, t.crs, crs)
                answer = reproject_geometry(geometry, grid["crs"], crs) if geometry is not None else None
                before = t.index_look
                status, reason, alike, taken = judge(t, witness, radiometry, here_geometry, look(source, radiometry, here_geometry),
                                                     answer, problem)
                if taken:
                    trimmed = witness.trim(t, answer, before)
                    if trimmed is not answer:
                        t.index_look = witness.look(t, trimmed)
                    answer = reproject_geometry(trimmed, crs, t.crs)
            tags = {**t.tags, **(options.tags or {}), "date": item.iso}
            attrs = attributes(t.class_name, tags, status=status, score=score, stability=_stability(logits), prompt_type="memory",
                               prompt_count=1, window=grid["label"], model=tracker.model_id, checkpoint_sha256=tracker.checkpoint_sha256,
                               source=os.path.basename(item.path), radiometry=radiometry.to_json())
            attrs.update(similarity=alike, reason=reason)
            counts[status] += 1
            if status != "kept":
                out.append(tracked_label(t.geometry, t, attrs))
                notes.append(f"track {t.track_id} ({t.class_name}) {status} on {item.iso}: {reason}")
                continue
            if taken:
                t.geometry, previous_area = answer, mask.sum()
            t.date = item.date
            out.append(tracked_label(t.geometry, t, attrs))
        seconds += time.perf_counter() - began
        if progress is not None:
            progress.set_progress(100.0 * (number + 1) / len(tracks))
    out.sort(key=lambda lab: (lab.attributes["track_id"], lab.attributes["date"]))
    steps = sum(counts.values())
    return PropagationResult(out, counts, steps, seconds, notes)


def _grid(path: str, t: Track) -> dict:
    """The window around track `t` on the raster at `path`: its CRS, transform and shape, grown by
    the object's size on each side and decimated to at most MAX_SIDE pixels."""
    from rasterio.transform import Affine

    with RasterSource(path) as source:
        crs = source.crs.to_wkt()
        geometry = reproject_geometry(t.geometry, t.crs, crs)
        pixel = abs(source.transform.a)
        x0, y0, x1, y1 = geometry.bounds
        grow = max(x1 - x0, y1 - y0, 32 * pixel)
        x0, y0, x1, y1 = x0 - grow, y0 - grow, x1 + grow, y1 + grow
        scale = max(1.0, max(x1 - x0, y1 - y0) / pixel / MAX_SIDE)
        size = pixel * scale
        width, height = int(np.ceil((x1 - x0) / size)), int(np.ceil((y1 - y0) / size))
        transform = Affine(size, 0, x0, 0, -size, y1)
    return {"crs": crs, "transform": transform, "width": width, "height": height,
            "label": f"memory {width}x{height} at {size:g}"}


def _read_on_grid(path: str, grid: dict, radiometry) -> np.ndarray:
    """The raster at `path` warped onto `grid`, stretched by `radiometry`: uint8 (H, W, 3)."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    with rasterio.open(path) as src, WarpedVRT(src, crs=grid["crs"], transform=grid["transform"], width=grid["width"],
                                                height=grid["height"], resampling=Resampling.bilinear) as vrt:
        data = vrt.read(list(radiometry.bands)).astype(np.float32)
        valid = vrt.dataset_mask() > 0
    return radiometry.apply(data, valid)


def _rasterize(t: Track, grid: dict) -> np.ndarray:
    from rasterio.features import rasterize

    geometry = reproject_geometry(t.geometry, t.crs, grid["crs"])
    return rasterize([geometry], out_shape=(grid["height"], grid["width"]), transform=grid["transform"]).astype(bool)


def _stability(logits: np.ndarray) -> float:
    from ..models.backend import stability_score

    return stability_score(logits)
