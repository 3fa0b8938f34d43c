"""`seg assist` as one call: learn from labels (or load a saved model), pre-label the raster, write
polygons, probability and uncertainty, optionally refine each blob with SAM.

Everything a user can get wrong is checked before the long work starts (outputs, classes, model
and raster agreeing), and every output appears whole or not at all.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from ..engine.labels import Label
from ..errors import SegError, SettingError
from ..geo.raster import RasterSource
from ..progress import NullProgress, Progress
from .classifier import AssistModel, load_model, train_model
from .features import make_recipe
from .options import AssistOptions, LearnOptions
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


def learn(source: RasterSource, labels: Sequence, options: Optional[LearnOptions] = None, embedding=None, threads: int = 1,
          progress: Optional[Progress] = None) -> AssistModel:
    """Train an assistant on the pixels under `labels` (Labels in any CRS) of `source`."""
    options = options or LearnOptions()
    recipe = make_recipe(source, options.bands, options.sigmas)
    if embedding is not None:
        recipe = embedding.extend_recipe(recipe, source)
    training = training_set(source, labels, recipe, options, embedding=embedding, progress=progress)
    return train_model(training, recipe, options.background, threads=threads, source=source.path)


def obtain_model(source: RasterSource, labels: Optional[Sequence] = None, model_path: Optional[str] = None,
                 options: Optional[LearnOptions] = None, embedding=None, progress: Optional[Progress] = None) -> AssistModel:
    """The saved model at `model_path` (checked against `source`), or one learned from `labels`
    (progress 0..15 of `progress`)."""
    options = options or LearnOptions()
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
    usable = usable_labels(labels, options.statuses)
    if not usable:
        raise SegError("No label is usable for learning (all are rejected, or none has the status asked for).")
    return learn(source, usable, options, embedding=embedding, progress=_Slice(progress or NullProgress(), 0, 15))


def check_model_fits(model: AssistModel, source: RasterSource) -> None:
    missing = [b for b in model.recipe.bands if not 1 <= b <= source.count]
    if missing:
        raise SettingError(f"The model reads band(s) {', '.join(map(str, missing))}, but {source.path} has {source.count}; "
                           "apply it to rasters of the same sensor.")


def check_assist(options: AssistOptions, has_labels: bool) -> None:
    """One sentence, before any work, for options that cannot run together or outputs that cannot
    be written."""
    from ..outputs.label_rasters import check_output as check_raster
    from ..outputs.vectors import check_output

    if not has_labels and not options.model_path:
        raise SettingError("Give labels to learn from (--labels) or a saved model (--model).")
    if options.refine not in (None, "", "sam"):
        raise SettingError(f"--refine takes only 'sam', not {options.refine!r}.")
    if options.refine and not options.checkpoint:
        raise SettingError("--refine sam needs a SAM checkpoint; give --checkpoint.")
    if options.out:
        check_output(options.out, mode=options.mode)
    for path in (options.predict.probability, options.predict.uncertainty):
        if path:
            check_raster(path, options.predict.overwrite)
    if options.save_model and os.path.exists(options.save_model) and not options.predict.overwrite:
        raise SettingError(f"{options.save_model} already exists; choose another name or overwrite it.")
    if options.resume and options.mode == "append":
        raise SettingError("--resume cannot be combined with --append (a killed append added nothing; just run it again).")
    if options.resume and not options.out:
        raise SettingError("--resume needs an output layer (--out): its manifest lies beside it.")


def assist(raster: str, labels: Optional[Sequence], options: AssistOptions, progress: Optional[Progress] = None,
           on_label: Optional[Callable[[Label], None]] = None) -> AssistSummary:
    """Learn from `labels` (or load options.model_path), pre-label `raster` into options.out (a
    label layer, when given) and to `on_label`, and write the optional rasters. options.cache +
    checkpoint add SAM embedding features; refine="sam" (needs a checkpoint) sends each blob's box to
    SAM. The windows run in blocks of options.block_windows, on options.cluster (local:N or
    tcp://HOST:PORT) when given; finished blocks are kept beside `out` until it is whole, so
    resume=True after a killed run skips them (and reuses the model it learned)."""
    from ..outputs.vectors import LabelWriter
    from ..scale.assist_runs import BlockRunner, assist_fingerprint, store_model, stored_model_path
    from ..scale.manifest import ResumeManifest

    progress = progress or NullProgress()
    check_assist(options, labels is not None)
    learning, predicting = options.learn, options.predict
    source = RasterSource(raster)
    refiner = manifest = None
    try:
        if options.refine:  # opened first, so a wrong checkpoint stops the run before learning
            from .refine import sam_refiner

            refiner = sam_refiner(raster, options.checkpoint, options.cache, simplify=predicting.simplify,
                                  min_area=predicting.min_area, progress=progress)
        embedding = _embedding(options.cache, options.checkpoint, source) if options.cache else None
        if options.out:
            manifest = ResumeManifest(options.out, assist_fingerprint(source, labels, options.model_path,
                                                                      _fingerprinted(options)), options.resume)
        learned = stored_model_path(manifest) if manifest is not None else None
        model = obtain_model(source, labels, learned or options.model_path, learning, embedding, progress)
        if manifest is not None and learned is None and not options.model_path:
            store_model(manifest, model)
        model.threads = options.threads
        runner = BlockRunner(manifest, options.cluster, options.block_windows, options.cache, options.checkpoint)
        outputs = {"labels": os.path.abspath(options.out)} if options.out else {}
        with _LayerOut(options.out, source.crs.to_wkt(), options.mode, LabelWriter) as writer:
            sink = _both(writer.add if writer is not None else None, on_label)
            if refiner is not None:
                refiner.sink, sink = sink, refiner
            result = predict_raster(source, model, sink, predicting, embedding,
                                    progress=_Slice(progress, 0 if options.model_path else 15, 100), runner=runner)
        if options.save_model:  # after the pre-labels, so a cancelled run leaves nothing behind
            outputs["model"] = model.save(options.save_model)
        for path, key in ((predicting.probability, "probability"), (predicting.uncertainty, "uncertainty")):
            if path:
                outputs[key] = os.path.abspath(path)
        if manifest is not None:
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


def _fingerprinted(options: AssistOptions) -> Dict[str, object]:
    """The options that change a run's output (what its resume manifest compares)."""
    learning, predicting = options.learn, options.predict
    return dict(class_field=learning.class_field, background=learning.background, bands=learning.bands,
                statuses=learning.statuses, cache=options.cache, checkpoint=options.checkpoint, measure=predicting.measure,
                smooth=predicting.smooth, min_area=predicting.min_area, simplify=predicting.simplify,
                region=predicting.region, tags=predicting.tags, probability=bool(predicting.probability),
                uncertainty=bool(predicting.uncertainty), block_windows=options.block_windows)


def _both(first: Optional[Callable], second: Optional[Callable]) -> Optional[Callable]:
    if first is None or second is None:
        return first or second

    def both(label) -> None:
        first(label)
        second(label)

    return both


class _LayerOut:
    """The pre-label layer's writer, or None when the run has no `out`."""

    def __init__(self, out: Optional[str], crs: str, mode: str, writer_class):
        self.writer = writer_class(out, crs=crs, mode=mode) if out else None

    def __enter__(self):
        return self.writer.__enter__() if self.writer is not None else None

    def __exit__(self, *exc_info):
        return self.writer.__exit__(*exc_info) if self.writer is not None else None


def _embedding(cache: str, checkpoint: Optional[str], source: RasterSource):
    from .embedding_features import EmbeddingFeatures

    return EmbeddingFeatures.open(cache, source, checkpoint)
