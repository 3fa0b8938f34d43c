"""`seg assist` as one call: learn from labels (or load a saved model), pre-label the raster, write
polygons, probability and uncertainty, optionally refine each blob with SAM.

Everything a user can get wrong is checked before the long work starts (outputs, classes, model
and raster agreeing), and every output appears whole or not at all.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from ..errors import SegError, SettingError
from ..geo.raster import RasterSource
from ..progress import NullProgress, Progress
from .classifier import AssistModel, load_model, train_model
from .features import SIGMAS, make_recipe
from .predict import PredictResult, predict_raster
from .samples import training_set

# A status that says a label is wrong: it teaches nothing about its class.
SKIPPED_STATUSES = ("rejected",)


@dataclass
class AssistSummary:
    model: AssistModel
    result: PredictResult
    outputs: Dict[str, str] = field(default_factory=dict)
    refined: int = 0


class _Slice:
    """A part start..end of a parent progress."""

    def __init__(self, parent: Progress, start: float, end: float):
        self.parent, self.start, self.end = parent, start, end

    def set_progress(self, percent: float) -> None:
        self.parent.set_progress(self.start + (self.end - self.start) * min(max(percent, 0.0), 100.0) / 100.0)

    def is_canceled(self) -> bool:
        return self.parent.is_canceled()


def usable_labels(labels: Sequence, statuses: Optional[Sequence[str]] = None) -> List:
    """Labels to learn from: those whose status is in `statuses` (a label without a status counts
    as accepted), or, when None, every label not rejected."""
    kept = []
    for lab in labels:
        status = str(lab.attributes.get("status") or "accepted")
        if (status in statuses) if statuses is not None else (status not in SKIPPED_STATUSES):
            kept.append(lab)
    return kept


def learn(source: RasterSource, labels: Sequence, class_field: str = "class", background: str = "background",
          bands: Optional[Sequence[int]] = None, sigmas: Sequence[float] = SIGMAS, embedding=None, threads: int = 1,
          progress: Optional[Progress] = None) -> AssistModel:
    """Train an assistant on the pixels under `labels` (Labels in any CRS) of `source`."""
    recipe = make_recipe(source, bands, sigmas)
    if embedding is not None:
        recipe = embedding.extend_recipe(recipe, source)
    training = training_set(source, labels, recipe, class_field, background, embedding=embedding, progress=progress)
    return train_model(training, recipe, background, threads=threads, source=source.path)


def obtain_model(source: RasterSource, labels: Optional[Sequence] = None, model_path: Optional[str] = None,
                 class_field: str = "class", background: str = "background", bands: Optional[Sequence[int]] = None,
                 embedding=None, statuses: Optional[Sequence[str]] = None, progress: Optional[Progress] = None) -> AssistModel:
    """The saved model at `model_path` (checked against `source`), or one learned from `labels`
    (progress 0..15 of `progress`)."""
    if model_path:
        model = load_model(model_path)
        check_model_fits(model, source)
        if model.recipe.embedding and embedding is None:
            raise SettingError("This model uses SAM embedding features; give --cache (and --checkpoint) with an encoded cache of the raster.")
        if embedding is not None:
            embedding.use_recipe(model.recipe)
        return model
    if labels is None:
        raise SettingError("Give labels to learn from (--labels) or a saved model (--model).")
    usable = usable_labels(labels, statuses)
    if not usable:
        raise SegError("No label is usable for learning (all are rejected, or none has the status asked for).")
    return learn(source, usable, class_field, background, bands, embedding=embedding,
                 progress=_Slice(progress or NullProgress(), 0, 15))


def check_model_fits(model: AssistModel, source: RasterSource) -> None:
    missing = [b for b in model.recipe.bands if not 1 <= b <= source.count]
    if missing:
        raise SettingError(f"The model reads band(s) {', '.join(map(str, missing))}, but {source.path} has {source.count}; "
                           "apply it to rasters of the same sensor.")


def assist(raster: str, out: str, labels: Optional[Sequence] = None, model_path: Optional[str] = None,
           save_model: Optional[str] = None, probability: Optional[str] = None, uncertainty: Optional[str] = None,
           class_field: str = "class", background: str = "background", bands: Optional[Sequence[int]] = None,
           cache: Optional[str] = None, checkpoint: Optional[str] = None, refine: Optional[str] = None,
           measure: str = "entropy", smooth: float = 0.0, min_area: float = 0.0, simplify: float = 0.0,
           mode: str = "create", overwrite: bool = False, region=None, statuses: Optional[Sequence[str]] = None,
           tags: Optional[Dict[str, str]] = None, threads: int = 0, cluster: Optional[str] = None, resume: bool = False,
           block_windows: int = 4, progress: Optional[Progress] = None) -> AssistSummary:
    """Learn from `labels` (or load `model_path`), pre-label `raster` into `out` (a label layer;
    mode create/append/overwrite), and write the optional rasters. `cache` + `checkpoint` add SAM
    embedding features; refine="sam" (needs `checkpoint`) sends each blob's box to SAM.
    The windows run in blocks of `block_windows`, on `cluster` (local:N or tcp://HOST:PORT) when
    given; finished blocks are kept beside `out` until it is whole, so resume=True after a killed
    run skips them (and reuses the model it learned)."""
    from ..outputs.label_rasters import check_output as check_raster
    from ..outputs.vectors import LabelWriter, check_output
    from ..scale.assist_runs import BlockRunner, assist_fingerprint, store_model, stored_model_path
    from ..scale.manifest import ResumeManifest

    progress = progress or NullProgress()
    if labels is None and not model_path:
        raise SettingError("Give labels to learn from (--labels) or a saved model (--model).")
    if refine not in (None, "", "sam"):
        raise SettingError(f"--refine takes only 'sam', not {refine!r}.")
    if refine and not checkpoint:
        raise SettingError("--refine sam needs a SAM checkpoint; give --checkpoint.")
    check_output(out, mode=mode)
    for path in (probability, uncertainty):
        if path:
            check_raster(path, overwrite)
    if save_model and os.path.exists(save_model) and not overwrite:
        raise SettingError(f"{save_model} already exists; choose another name or overwrite it.")
    if resume and mode == "append":
        raise SettingError("--resume cannot be combined with --append (a killed append added nothing; just run it again).")
    source = RasterSource(raster)
    refiner = manifest = None
    try:
        if refine:  # opened first, so a wrong checkpoint stops the run before learning
            from .refine import sam_refiner

            refiner = sam_refiner(raster, checkpoint, cache, simplify=simplify, min_area=min_area, progress=progress)
        embedding = _embedding(cache, checkpoint, source) if cache else None
        settings = dict(class_field=class_field, background=background, bands=bands, statuses=statuses, cache=cache,
                        checkpoint=checkpoint, measure=measure, smooth=smooth, min_area=min_area, simplify=simplify,
                        region=region, tags=tags, probability=bool(probability), uncertainty=bool(uncertainty),
                        block_windows=block_windows)
        manifest = ResumeManifest(out, assist_fingerprint(source, labels, model_path, settings), resume)
        learned = stored_model_path(manifest)
        model = obtain_model(source, labels, learned or model_path, class_field, background, bands, embedding, statuses, progress)
        if learned is None and not model_path:
            store_model(manifest, model)
        model.threads = threads
        runner = BlockRunner(manifest, cluster, block_windows, cache, checkpoint)
        outputs = {"labels": os.path.abspath(out)}
        with LabelWriter(out, crs=source.crs.to_wkt(), mode=mode) as writer:
            sink = writer.add
            if refiner is not None:
                refiner.sink, sink = writer.add, refiner
            result = predict_raster(source, model, sink, probability, uncertainty, measure, smooth, min_area, simplify, region,
                                    embedding, tags, overwrite, progress=_Slice(progress, 0 if model_path else 15, 100),
                                    runner=runner)
        if save_model:  # after the pre-labels, so a cancelled run leaves nothing behind
            outputs["model"] = model.save(save_model)
        for path, key in ((probability, "probability"), (uncertainty, "uncertainty")):
            if path:
                outputs[key] = os.path.abspath(path)
        manifest.finish()  # every output is whole
        return AssistSummary(model, result, outputs, refiner.refined if refiner else 0)
    except BaseException as exc:
        if manifest is not None:
            manifest.abandon(exc)  # kept only where a resumed run could skip finished work
        raise
    finally:
        if refiner is not None:
            refiner.close()
        source.close()


def _embedding(cache: str, checkpoint: Optional[str], source: RasterSource):
    from .embedding_features import EmbeddingFeatures

    return EmbeddingFeatures.open(cache, source, checkpoint)
