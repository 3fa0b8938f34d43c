"""The assistant's classifier: a random forest of extremely randomized trees (LightGBM's rf mode),
saved as data.

Why this forest: labels are a few small squares or scribbles, so neighbouring training pixels are
near copies of each other; randomized split thresholds (extra trees) keep 100 trees from memorising
them (Sen1Floods11 water from 6 squares per class: IoU 0.71 against 0.63 for ordinary splits, see
bench/bench_assist.py). LightGBM predicts in compiled code on all threads, which a 10,000 x 10,000
raster needs.

A saved model is one JSON file: LightGBM's own text model (tree arrays, no pickle, nothing
executable), the class list, the feature recipe with its fixed per-band scaling, the feature
importances and what it was trained on. Loading it gives identical predictions.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from ..engine.labels import now_utc
from ..errors import MissingDependency, OutputError, SegError
from .features import FeatureRecipe

FORMAT = "seg-assist-model/1"
TREES = 100
PARAMS = dict(boosting="rf", extra_trees=True, bagging_fraction=0.632, bagging_freq=1, feature_fraction=0.15,
              num_leaves=32, min_data_in_leaf=10, deterministic=True, force_row_wise=True, verbose=-1)


def require_lightgbm():
    import warnings

    try:
        with warnings.catch_warnings():  # LightGBM imports dask when present, which warns about itself
            warnings.simplefilter("ignore", FutureWarning)
            import lightgbm
    except ImportError as exc:
        raise MissingDependency("The assistant needs LightGBM; install it with: pip install lightgbm==4.3.0") from exc
    return lightgbm


@dataclass
class AssistModel:
    """classes: output order of `predict_proba`; background: the class learned but not written
    (or None); model_text: LightGBM's text model; importances: feature name -> share of the total
    split gain (sums to 1); trained: provenance (raster, pixels per class, created, parameters)."""

    classes: List[str]
    background: Optional[str]
    recipe: FeatureRecipe
    model_text: str
    importances: Dict[str, float] = field(default_factory=dict)
    trained: Dict[str, object] = field(default_factory=dict)
    threads: int = 0
    _booster: object = field(default=None, repr=False, compare=False)

    @property
    def written_classes(self) -> List[str]:
        return [c for c in self.classes if c != self.background]

    @property
    def model_id(self) -> str:
        return "assist-rf"

    def booster(self):
        if self._booster is None:
            self._booster = require_lightgbm().Booster(model_str=self.model_text)
        return self._booster

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """X float32 (N, F) in the order of recipe.names() -> float32 (N, len(classes)), rows sum to 1."""
        if X.ndim != 2 or X.shape[1] != len(self.recipe.names()):
            raise SegError(f"The model expects {len(self.recipe.names())} features per pixel, not {X.shape[-1]}.")
        if not len(X):
            return np.zeros((0, len(self.classes)), np.float32)
        raw = self.booster().predict(np.ascontiguousarray(X, np.float32), num_threads=self.threads or (os.cpu_count() or 1))
        if len(self.classes) == 2:
            p = np.asarray(raw, np.float32)
            return np.stack([1 - p, p], axis=1)
        return np.asarray(raw, np.float32)

    def to_dict(self) -> dict:
        return {"format": FORMAT, "classes": self.classes, "background": self.background, "recipe": self.recipe.to_dict(),
                "importances": self.importances, "trained": self.trained, "lightgbm": self.model_text}

    def save(self, path: str) -> str:
        """Write the model as JSON, atomically."""
        from ..outputs.atomic import write_text_atomic

        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise OutputError(f"The folder {folder} does not exist.")
        return write_text_atomic(path, json.dumps(self.to_dict()), "the model file")


def load_model(path: str) -> AssistModel:
    """A model saved by AssistModel.save. Raises SegError for a file that is not one."""
    if not os.path.isfile(path):
        raise SegError(f"The model file {path} does not exist.")
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SegError(f"{path} is not a Seg assistant model (a JSON file saved with --save-model).") from exc
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise SegError(f"{path} is not a Seg assistant model ({FORMAT}); save one with --save-model.")
    try:
        model = model_from_dict(d)
    except (KeyError, TypeError, ValueError) as exc:
        raise SegError(f"{path} is a damaged Seg assistant model ({exc}); save it again.") from exc
    except Exception as exc:  # LightGBM's own error for a broken model text
        if isinstance(exc, SegError):
            raise
        raise SegError(f"{path} holds a model LightGBM cannot read ({str(exc).splitlines()[0]}).") from exc
    return model


def model_from_dict(d: dict) -> AssistModel:
    """The model AssistModel.to_dict describes, its forest loaded (LightGBM raises on a broken one)."""
    model = AssistModel(list(d["classes"]), d.get("background"), FeatureRecipe.from_dict(d["recipe"]), str(d["lightgbm"]),
                        dict(d.get("importances", {})), dict(d.get("trained", {})))
    model.booster()
    return model


def train_model(training, recipe: FeatureRecipe, background: Optional[str], trees: int = TREES, threads: int = 1,
                seed: int = 0, source: str = "") -> AssistModel:
    """Fit the forest on a TrainingSet (see samples.py). Classes are weighted so each counts the
    same, whatever its pixel count. threads: 1 suits the small training sets labels give (OpenMP
    threads spin badly on a busy machine)."""
    lgb = require_lightgbm()
    X, y, classes = training.X, training.y, training.classes
    counts = np.bincount(y, minlength=len(classes)).astype(np.float64)
    weights = (len(y) / (len(classes) * np.maximum(counts, 1)))[y]
    params = dict(PARAMS, seed=seed, num_threads=max(1, threads))
    params.update({"objective": "binary"} if len(classes) == 2 else {"objective": "multiclass", "num_class": len(classes)})
    names = recipe.names()
    dataset = lgb.Dataset(X, label=y, weight=weights, feature_name=[_safe(n) for n in names], free_raw_data=True,
                          params={"verbose": -1})
    booster = lgb.train(params, dataset, num_boost_round=trees)
    gain = booster.feature_importance("gain").astype(np.float64)
    total = gain.sum() or 1.0
    importances = {n: float(g / total) for n, g in sorted(zip(names, gain), key=lambda t: -t[1]) if g > 0}
    trained = {"source": os.path.basename(source), "pixels": training.counts, "trees": trees, "created": now_utc(),
               "params": {k: v for k, v in params.items() if k not in ("num_threads", "verbose")}}
    return AssistModel(classes, background if background in classes else None, recipe, booster.model_to_string(),
                       importances, trained, _booster=booster)


def top_importances(model: AssistModel, n: int = 10) -> List[tuple]:
    """The n most important features as (name, share of gain), largest first."""
    return sorted(model.importances.items(), key=lambda t: -t[1])[:n]


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name)

