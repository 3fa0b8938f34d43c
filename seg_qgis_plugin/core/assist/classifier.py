"""The assistant's classifier: a random forest of extremely randomized trees (LightGBM's rf mode),
saved as data.

Why this forest: labels are a few small squares or scribbles, so neighbouring training pixels are
near copies of each other; randomized split thresholds (extra trees) keep the trees from memorising
them (Sen1Floods11 water from 6 squares per class: IoU 0.71 against 0.63 for ordinary splits, see
bench/bench_assist.py). Features are drawn for each split, as in a classic random forest, not for
each tree: a tree drawn without the one band that separates two classes votes at random, and those
votes left speckle on a synthetic scene of bright squares on a noisy field (29 polygons for 3 squares
with 15 % of the features per tree, exactly the 3 with half of them per split; Sen1Floods11 from
3/6/12 squares, 6 draws: 0.649/0.695/0.711 -> 0.662/0.701/0.704; Swiss trees 0.392 -> 0.405).
LightGBM predicts in compiled code, which a 10,000 x 10,000 raster needs.

Prediction is what a big raster pays for, per pixel: computing the features, LightGBM reading each
pixel's feature vector (in proportion to the number of features) and walking the trees (in
proportion to their number). 50 trees score the same IoU as 100 on Sen1Floods11, the Swiss trees and
the synthetic scenes (bench/bench_assist.py) at about half the tree cost. `select` can also keep
only the best features (a RANKING_TREES forest ranks them by split gain; prediction then computes
only those): faster still, and no loss on the real data, but off by default because with few,
one-sided labels the smaller forest generalises erratically to unlabelled land covers (a synthetic
raster whose labelled fields were all of one kind turned a whole unlabelled field into water).

A saved model is one JSON file: LightGBM's own text model (tree arrays, no pickle, nothing
executable) with its sha256 (a model edited by hand is refused: LightGBM can crash on a damaged
one, see model_text.py), the class list, the feature recipe with its fixed per-band scaling and the features it
selected, the feature importances and what it was trained on. Loading it gives identical
predictions. Format /2 adds the selection; files of format /1 (all features) still load.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional

import numpy as np

from ..engine.labels import now_utc
from ..errors import MissingDependency, OutputError, SegError
from .features import FeatureRecipe
from .model_text import check_model_text, text_sha256

FORMAT = "seg-assist-model/2"  # adds the recipe's feature selection
FORMAT_ALL_FEATURES = "seg-assist-model/1"  # every feature: written for models without selection, as before
TREES = 50
RANKING_TREES = 300
SELECT = 0  # features a model keeps (0: all); see the module docstring
CHUNK = 32768  # pixels per LightGBM call: one reused pixel-major buffer (11 MB at 88 features), not a window's copy
PARAMS = dict(boosting="rf", extra_trees=True, bagging_fraction=0.632, bagging_freq=1, feature_fraction_bynode=0.5,
              num_leaves=32, min_data_in_leaf=10, deterministic=True, force_row_wise=True, verbose=-1)


def _transpose_into(block: np.ndarray, buffer: np.ndarray) -> np.ndarray:
    """float32 (F, n) whose rows are contiguous (any row stride) -> `buffer` float32 (n, F),
    C-contiguous, filled and returned. OpenCV's blocked transpose is several times faster than
    numpy's strided copy, and writing into a reused buffer spares fresh pages every chunk."""
    import cv2

    result = cv2.transpose(block, dst=buffer)
    if not np.shares_memory(result, buffer):  # OpenCV allocated instead (never for these shapes)
        buffer[...] = result.reshape(buffer.shape)
    return buffer


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
        """X float32 (N, F) in the order of recipe.names() -> float32 (N, len(classes)), rows sum to 1.
        Any layout: a feature-major view such as maps.reshape(F, -1).T is made pixel-major (what
        LightGBM reads) CHUNK pixels at a time into one reused buffer, never as a whole copy."""
        n_features = len(self.recipe.names())
        if X.ndim != 2 or X.shape[1] != n_features:
            raise SegError(f"The model expects {n_features} features per pixel, not {X.shape[-1]}.")
        out = np.empty((len(X), len(self.classes)), np.float32)
        feature_major = X.dtype == np.float32 and X.T.flags.c_contiguous and not X.flags.c_contiguous
        buffer = np.empty((min(CHUNK, len(X)), n_features), np.float32) if feature_major else None
        for i in range(0, len(X), CHUNK):
            n = min(CHUNK, len(X) - i)
            rows = _transpose_into(X.T[:, i:i + n], buffer[:n]) if feature_major else np.ascontiguousarray(X[i:i + n], np.float32)
            out[i:i + n] = self._predict_rows(rows)
        return out

    def predict_maps(self, features: np.ndarray) -> np.ndarray:
        """features float32 (F, h, w) (any strides, e.g. a window cropped out of its halo) ->
        probabilities float32 (len(classes), h, w): the same numbers as predict_proba, without
        reshaping the window into a copy first (rows are transposed straight into the buffer)."""
        n_features, h, w = features.shape
        if n_features != len(self.recipe.names()):
            raise SegError(f"The model expects {len(self.recipe.names())} features per pixel, not {n_features}.")
        if features.dtype != np.float32 or features.strides[2] != 4:
            features = np.ascontiguousarray(features, np.float32)
        out = np.empty((len(self.classes), h, w), np.float32)
        step = max(1, CHUNK // max(w, 1))
        buffer = np.empty((min(step, h) * w, n_features), np.float32)
        for r in range(0, h, step):
            k = min(step, h - r)
            for j in range(k):
                _transpose_into(features[:, r + j, :], buffer[j * w:(j + 1) * w])
            out[:, r:r + k] = self._predict_rows(buffer[:k * w]).T.reshape(-1, k, w)
        return out

    def _predict_rows(self, rows: np.ndarray) -> np.ndarray:
        """rows C-contiguous float32 (n, F) -> float32 (n, len(classes))."""
        if not len(rows):
            return np.zeros((0, len(self.classes)), np.float32)
        raw = np.asarray(self.booster().predict(rows, num_threads=self.threads or (os.cpu_count() or 1)), np.float32)
        return np.stack([1 - raw, raw], axis=1) if len(self.classes) == 2 else raw.reshape(len(rows), -1)

    def to_dict(self) -> dict:
        return {"format": FORMAT if self.recipe.selected is not None else FORMAT_ALL_FEATURES, "classes": self.classes,
                "background": self.background, "recipe": self.recipe.to_dict(), "importances": self.importances,
                "trained": self.trained, "lightgbm": self.model_text, "lightgbm_sha256": text_sha256(self.model_text)}

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
    kind = d.get("format") if isinstance(d, dict) else None
    if isinstance(kind, str) and kind.startswith("seg-assist-model/") and kind not in (FORMAT, FORMAT_ALL_FEATURES):
        raise SegError(f"{path} is a Seg assistant model of format {kind}, which this version cannot read "
                       f"(it reads {FORMAT} and {FORMAT_ALL_FEATURES}); update Seg or save the model again.")
    if kind not in (FORMAT, FORMAT_ALL_FEATURES):
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
    """The model AssistModel.to_dict describes, its forest loaded once checked whole and
    consistent (ValueError with the reason otherwise; LightGBM may crash on a damaged forest)."""
    text = d["lightgbm"]
    if not isinstance(text, str):
        raise ValueError("the forest is not text")
    recorded = d.get("lightgbm_sha256")
    if recorded is not None and recorded != text_sha256(text):
        raise ValueError("its forest was changed after Seg saved it")
    classes = d["classes"]
    if (not isinstance(classes, list) or len(classes) < 2 or len(set(map(str, classes))) != len(classes)
            or not all(isinstance(c, str) and c for c in classes)):
        raise ValueError("its class list must name two or more different classes")
    background = d.get("background")
    if background is not None and background not in classes:
        raise ValueError(f"its background class {background!r} is not in its class list")
    recipe = FeatureRecipe.from_dict(d["recipe"])
    check_model_text(text, len(classes), len(recipe.names()))
    importances, trained = d.get("importances", {}), d.get("trained", {})
    if not isinstance(importances, dict) or not isinstance(trained, dict):
        raise ValueError("its importances and provenance must be mappings")
    model = AssistModel(list(classes), background, recipe, text, dict(importances), dict(trained))
    model.booster()
    return model


def train_model(training, recipe: FeatureRecipe, background: Optional[str], trees: Optional[int] = None, threads: int = 1,
                seed: int = 0, source: str = "", select: Optional[int] = None) -> AssistModel:
    """Fit a forest of `trees` (default TREES) on a TrainingSet (see samples.py), whose columns are
    `recipe.names()` (every feature). With `select` (default SELECT; 0 keeps all) fewer weights-free
    features than the recipe has, a RANKING_TREES forest ranks them by split gain first and the
    model learns from the `select` best only; its recipe records them (format /2). SAM embedding columns
    are always kept. Classes are weighted so each counts the same, whatever its pixel count.
    threads: 1 suits the small training sets labels give (OpenMP threads spin badly on a busy
    machine)."""
    trees = TREES if trees is None else int(trees)
    select = SELECT if select is None else int(select)
    X, y, classes = training.X, training.y, training.classes
    counts = np.bincount(y, minlength=len(classes)).astype(np.float64)
    weights = (len(y) / (len(classes) * np.maximum(counts, 1)))[y]
    params = dict(PARAMS, seed=seed, num_threads=max(1, threads))
    params.update({"objective": "binary"} if len(classes) == 2 else {"objective": "multiclass", "num_class": len(classes)})
    names = recipe.names()
    if X.shape[1] != len(names):
        raise SegError(f"The training set has {X.shape[1]} features per pixel, the recipe {len(names)}.")
    n_all = len(recipe.all_names())
    selected_from = None
    if recipe.selected is None and 0 < select < n_all:
        ranking = _fit(X, y, weights, names, params, RANKING_TREES)
        gain = ranking.feature_importance("gain")[:n_all]
        best = [int(k) for k in np.argsort(-gain, kind="stable")[:select] if gain[k] > 0] or [int(np.argmax(gain))]
        keep = sorted(best)
        recipe = replace(recipe, selected=tuple(names[k] for k in keep))
        X = np.ascontiguousarray(X[:, keep + list(range(n_all, len(names)))])
        names, selected_from = recipe.names(), n_all
    booster = _fit(X, y, weights, names, params, trees)
    gain = booster.feature_importance("gain").astype(np.float64)
    total = gain.sum() or 1.0
    importances = {n: float(g / total) for n, g in sorted(zip(names, gain), key=lambda t: -t[1]) if g > 0}
    trained = {"source": os.path.basename(source), "pixels": training.counts, "trees": trees, "created": now_utc(),
               "params": {k: v for k, v in params.items() if k not in ("num_threads", "verbose")}}
    if selected_from:
        trained["selected"] = {"kept": len(recipe.selected), "of": selected_from, "ranking_trees": RANKING_TREES}
    return AssistModel(classes, background if background in classes else None, recipe, booster.model_to_string(),
                       importances, trained, _booster=booster)


def _fit(X: np.ndarray, y: np.ndarray, weights: np.ndarray, names: List[str], params: dict, trees: int):
    lgb = require_lightgbm()
    dataset = lgb.Dataset(X, label=y, weight=weights, feature_name=[_safe(n) for n in names], free_raw_data=True,
                          params={"verbose": -1})
    return lgb.train(params, dataset, num_boost_round=trees)


def top_importances(model: AssistModel, n: int = 10) -> List[tuple]:
    """The n most important features as (name, share of gain), largest first."""
    return sorted(model.importances.items(), key=lambda t: -t[1])[:n]


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name)

