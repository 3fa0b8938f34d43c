"""Seg from Python: notebooks and scripts, GeoDataFrames in and out.

    import seg_qgis_plugin.api as seg

    with seg.open("ortho.tif", checkpoint="vit_b") as session:       # or backend="classic"
        pond = session.segment(points=[(500120.5, 4649870.0)], label="pond")
        crowns = session.prelabel("detector_boxes.gpkg", class_field="species")
    seg.write_labels(crowns, "labels.gpkg", append=True)

Every table is a geopandas GeoDataFrame with one row per object, its CRS set (the raster's), and
the full Seg attribute table (core/engine/labels.py FIELDS: class, tags, score, prompt type, model,
checkpoint sha256, source raster, window, radiometry, created, status). Labels are written through
the same atomic writer as the `seg` command (core/outputs/vectors.py), so appending never loses
features. Importing this module is cheap and QGIS-free: geopandas, rasterio and torch are imported
when first needed. User mistakes raise a SegError subclass with one sentence.
"""
from __future__ import annotations

import os
import warnings
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from .core.errors import PromptError, SegError, SegWarning
from .core.ranges import checked_numbers

SOURCE = "seg_source"  # GeoDataFrame.attrs key: the file read_labels read the table from
Point = Tuple[float, float]
Box = Tuple[float, float, float, float]

__all__ = ["open", "Session", "read_labels", "write_labels", "prelabel", "encode", "assist", "rank_tiles", "qa",
           "agreement", "propagate", "change", "drift", "export_training", "rasterize", "polygonize"]

# every job as a function whose keyword arguments are its request's fields (api_jobs.py)
from .api_jobs import JobFunction as _Job, frame as _frame  # noqa: E402

prelabel, encode, assist, rank_tiles, qa, agreement, propagate, change, drift, export_training, rasterize, polygonize = (
    _Job(name) for name in ("prelabel", "encode", "assist", "rank_tiles", "qa", "agreement", "propagate", "change",
                            "drift", "export_training", "rasterize", "polygonize"))


def open(raster: str, checkpoint: Optional[str] = None, backend: str = "auto", bands: Optional[Sequence[int]] = None,
         stretch: Optional[Tuple[float, float]] = None, cache: Optional[str] = None, device: Optional[str] = None,
         classes: Union[None, str, Sequence[str]] = None) -> "Session":
    """A labeling session on `raster` (any GDAL raster with a CRS).

    checkpoint: a SAM checkpoint file or a model name from `seg models list` (e.g. "vit_b");
    backend: "auto" (SAM or SAM 2.1 with a checkpoint, told by its weights, else the weights-free "classic"), "sam", "sam2" or "classic";
    bands: 1-based bands for the model's three channels (one band is repeated; default: the
    raster's colour bands); stretch: (min, max) value range instead of global 2-98 percentiles;
    cache: an embedding-cache folder (made or reused; SAM only) so a raster is encoded once across
    sessions; device: "auto", "cpu", "cuda", "cuda:1", "mps" (default: the `device` setting);
    classes: the allowed class names, or an ontology file (see core/engine/ontology.py), or None
    for any class.
    """
    return Session(raster, checkpoint, backend, bands, stretch, cache, device, classes)


class Session:
    """An open raster and model. The image encoder runs once per tile and is kept (and cached on
    disk with `cache`), so many prompts on one area are cheap. Close it (or use `with`) to release
    the raster and the model."""

    def __init__(self, raster: str, checkpoint: Optional[str] = None, backend: str = "auto",
                 bands: Optional[Sequence[int]] = None, stretch: Optional[Tuple[float, float]] = None,
                 cache: Optional[str] = None, device: Optional[str] = None, classes: Union[None, str, Sequence[str]] = None):
        from .core.engine.labeling import open_backend, open_segmenter
        from .core.models.registry import checkpoint_path
        from .core.settings import load_settings

        settings = load_settings()
        path = checkpoint_path(checkpoint, settings.models_folder) if checkpoint else None
        _check_outputs({"cache": cache}, {"raster": raster, "checkpoint": path,
                                          "classes": classes if isinstance(classes, (str, os.PathLike)) else None}, folders=["cache"])
        self.classes, self.ontology = _classes(classes)
        model = open_backend(path, None, backend, device or settings.device, settings.threads or None)
        if cache and not model.cacheable:
            warnings.warn(SegWarning(f"The {model.model_id} backend has no embeddings to cache; the cache folder is not used."))
            cache = None
        stretch = None if stretch is None else _pair(stretch)
        self._segmenter = open_segmenter(os.fspath(raster), model, tuple(bands) if bands else None, stretch, cache_dir=cache)
        self.raster = os.path.abspath(os.fspath(raster))

    @property
    def crs(self) -> str:
        """The raster's CRS as WKT: the CRS of every table this session returns."""
        return self._open().source.crs.to_wkt()

    @property
    def model_id(self) -> str:
        return self._open().backend.model_id

    def segment(self, points: Optional[Sequence[Point]] = None, point_labels: Optional[Sequence[int]] = None,
                box: Optional[Box] = None, crs: Optional[str] = None, label: str = "object",
                tags: Optional[Dict[str, str]] = None):
        """One object from points and/or a box -> a GeoDataFrame of one row (raster CRS).

        points: [(x, y), ...] in `crs` (default: the raster's); point_labels: 1 on the object, 0 off
        it, one per point (default: all 1); box: (xmin, ymin, xmax, ymax) in `crs`; label: the class;
        tags: context tags, e.g. {"date": "2024-06-01"}. A single point is ambiguous (a tree or its
        crown?): add a box or more points when the object has parts. Raises PromptError when the
        prompt is outside the raster or the model finds nothing there.
        """
        from .core.engine.labeling import segment_prompts
        from .core.geo.prompts import Prompt

        self._check_classes([label])
        points = [tuple(map(float, p)) for p in (points or [])]
        point_labels = [1] * len(points) if point_labels is None else [int(v) for v in point_labels]
        prompt = Prompt(crs=crs or self.crs, points=tuple(points), labels=tuple(point_labels),
                        box=None if box is None else tuple(float(v) for v in box))
        labels, _ = segment_prompts(self._open(), [prompt], label, tags)
        if not labels:
            raise PromptError("The model found no object at this prompt; try another point or a box.")
        return _frame(labels, self.crs)

    def prelabel(self, prompts, class_field: Optional[str] = None):
        """One object per prompt feature -> a GeoDataFrame with one row per object found.

        prompts: a GeoDataFrame or a vector file (any CRS): points (several in a MultiPoint: one
        object) become point prompts, polygons become box prompts on their bounding box.
        class_field: the column holding each feature's class (default: "object"); the other
        columns become tags. Prompts that give nothing are left out and named in a SegWarning and
        in the table's `attrs["skipped"]` as (feature number from 1, reason).
        """
        from .core.batch.prelabel import PromptFeature, prelabel_from_prompts

        frame = read_labels(prompts) if isinstance(prompts, (str, os.PathLike)) else prompts
        if getattr(frame, "crs", None) is None:
            raise PromptError("The prompts have no CRS; set one (GeoDataFrame.set_crs) so they can be placed on the raster.")
        if class_field is not None and class_field not in frame.columns:
            raise PromptError(f"The prompts have no column {class_field!r}; choose one of {', '.join(map(str, frame.columns))}.")
        crs = _crs_text(frame.crs)
        geometry_name = frame.geometry.name
        features = []
        for _, row in frame.iterrows():
            fields = {k: v for k, v in row.items() if k != geometry_name}
            value = fields.pop(class_field) if class_field else None
            cls = str(_plain(value)) if _present(value) else ""
            tags = {str(k): str(v) for k, v in fields.items() if _present(v)}
            features.append(PromptFeature(row[geometry_name], crs, cls, tags))
        self._check_classes({f.class_name or "object" for f in features})
        result = prelabel_from_prompts(self._open(), features)
        if result.skipped:
            warnings.warn(SegWarning(f"{len(result.skipped)} of {len(features)} prompts gave no object (the first: "
                                     f"feature {result.skipped[0][0]}, {result.skipped[0][1]})."))
        table = _frame(result.labels, self.crs)
        table.attrs["skipped"] = list(result.skipped)
        return table

    @checked_numbers
    def auto(self, points_per_side: int = 16, min_score: float = 0.7, min_stability: float = 0.85,
             label: str = "object", tags: Optional[Dict[str, str]] = None, aoi=None):
        """Every object the model sees (SAM's automatic point grid on each tile, merged across
        tiles) -> a GeoDataFrame. points_per_side: grid density per tile (cost grows with its
        square); min_score, min_stability: SAM's predicted-IoU and stability thresholds; aoi: a
        shapely geometry in the raster CRS to limit the tiles. Needs a SAM checkpoint.
        """
        from .core.batch.prelabel import PrelabelOptions, prelabel_automatic
        from .core.batch.tile_index import select_tiles

        self._check_classes([label])
        seg = self._open()
        tiles = None if aoi is None else [r.tile for r in select_tiles(seg.source, seg.grid, aoi, False)]
        options = PrelabelOptions(class_name=label, tags=dict(tags or {}), points_per_side=points_per_side,
                                  min_score=min_score, min_stability=min_stability)
        result = prelabel_automatic(seg, tiles, options)
        return _frame(result.labels, self.crs)

    @checked_numbers
    def find(self, *texts: str, exemplars=None, crs: Optional[str] = None, min_score: float = 0.5,
             label: str = "object", tags: Optional[Dict[str, str]] = None, aoi=None):
        """Every instance of a phrase, or of some examples, on the raster -> a GeoDataFrame.

        texts: phrases ("pond"), or "pond=water" for the phrase "pond" as the class "water" (a
        phrase listed among an ontology class's synonyms takes that class); they need SAM 3.
        exemplars: example objects, a GeoDataFrame, a vector file or shapely geometries in `crs`
        (default: the raster's), all positive; with any model ("Like this": SAM 3 by exemplar
        prompts, other models by likeness). label: the class of examples found without a phrase;
        min_score: the score an instance needs; aoi: a shapely geometry in the raster CRS.
        """
        from .core.batch.concepts import Example, FindOptions, find_concepts, parse_concepts
        from .core.batch.tile_index import select_tiles

        concepts = parse_concepts(texts, self.ontology)
        examples = [Example(g, e_crs) for g, e_crs in _geometries(exemplars, crs or self.crs)]
        self._check_classes([c.class_name for c in concepts] or [label])
        seg = self._open()
        tiles = None if aoi is None else [r.tile for r in select_tiles(seg.source, seg.grid, aoi, False)]
        options = FindOptions(min_score=min_score, tags=dict(tags or {}), class_name=label)
        return _frame(find_concepts(seg, concepts, examples, tiles, options).labels, self.crs)

    def close(self) -> None:
        """Release the raster and the model; the session cannot be used afterwards."""
        segmenter, self._segmenter = getattr(self, "_segmenter", None), None
        if segmenter is not None:
            close = getattr(segmenter, "close", None)
            close() if close else segmenter.source.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._segmenter is None else self.model_id
        return f"Session({self.raster!r}, {state})"

    def _open(self):
        if self._segmenter is None:
            raise SegError("This session is closed; open a new one with seg_qgis_plugin.api.open().")
        return self._segmenter

    def _check_classes(self, names: Iterable[str]) -> None:
        names = [str(n) for n in names]
        if self.ontology is not None:
            from .core.engine.ontology import class_codes

            class_codes(names, self.ontology)
        elif self.classes is not None:
            unknown = sorted(set(names) - set(self.classes))
            if unknown:
                raise SegError(f"The class {unknown[0]!r} is not one of this session's classes ({', '.join(self.classes)}).")


def read_labels(path: str, layer: Optional[str] = None):
    """A vector layer (GeoPackage, GeoJSON, FlatGeobuf, Shapefile, ...) as a GeoDataFrame in its
    own CRS: the Seg fields first (when present), then the others."""
    from .core.outputs.vectors import read_labels as read

    labels = read(os.fspath(path), layer)
    crs = labels[0].crs if labels else _layer_crs(os.fspath(path), layer)
    frame = _frame(labels, crs)
    frame.attrs[SOURCE] = os.path.abspath(os.fspath(path))  # kept by filtered copies: write_labels will not write onto it
    return frame


def write_labels(gdf, path: str, append: bool = False, layer: Optional[str] = None) -> str:
    """Write a GeoDataFrame of polygons to `path` (.gpkg, .geojson, .fgb, .shp) atomically, through
    the same writer as the `seg` command. append: add to the layer (created if absent), keeping
    every feature already there, also when other processes append at the same time; features are
    reprojected to the layer's CRS. Without append an existing file (or GeoPackage layer) is an
    error. Missing Seg fields are filled (status "prelabel", created now); extra columns are
    written too when the layer is new or already has them. A table from read_labels (or a copy of
    it) is never written onto the file it was read from, by any path. Returns the path."""
    from .core.engine.labels import FIELD_NAMES, Label
    from .core.errors import CrsError
    from .core.outputs.vectors import LabelWriter

    if gdf.crs is None:
        raise CrsError("The table has no CRS; set one (GeoDataFrame.set_crs) before writing it.")
    kinds = set(gdf.geometry.geom_type.dropna())
    if not kinds <= {"Polygon", "MultiPolygon"}:
        raise SegError(f"Only polygons can be written as labels, not {', '.join(sorted(kinds - {'Polygon', 'MultiPolygon'}))}.")
    crs = _crs_text(gdf.crs)
    path = os.fspath(path)
    _check_outputs({"path": path}, {"the table was read from": gdf.attrs.get(SOURCE)})
    extras = _extra_fields(gdf, path, layer, append)
    geometry_name = gdf.geometry.name
    with LabelWriter(path, crs, layer, "append" if append else "create", fields=_fields(extras)) as writer:
        for _, row in gdf.iterrows():
            if row[geometry_name] is None or row[geometry_name].is_empty:
                continue
            values = {k: _plain(v) for k, v in row.items() if k != geometry_name}
            writer.add(Label(row[geometry_name], crs, {**_defaults(values), **{k: v for k, v in values.items()
                                                                             if k in FIELD_NAMES or k in extras}}))
    return writer.path


def _check_outputs(outputs, inputs, folders=()) -> None:
    """No output names an input (by any path) or another output; OutputError in one sentence,
    before any work (core.outputs.output_checks)."""
    from .core.outputs.output_checks import check_outputs

    check_outputs({k: None if v is None else os.fspath(v) for k, v in outputs.items()},
                  {k: None if v is None else os.fspath(v) for k, v in inputs.items()}, folders)


def _fields(extras: Dict[str, str]):
    from .core.engine.labels import FIELDS

    return tuple(FIELDS) + tuple((name, kind, name[:10]) for name, kind in extras.items())


def _extra_fields(gdf, path: str, layer: Optional[str], append: bool) -> Dict[str, str]:
    """Columns beyond the Seg fields -> their type ("str", "int", "float"); when appending to an
    existing layer, only those it already has."""
    import pandas as pd

    from .core.engine.labels import FIELD_NAMES

    extras = {}
    for name in gdf.columns:
        if name == gdf.geometry.name or name in FIELD_NAMES:
            continue
        dtype = gdf[name].dtype
        extras[str(name)] = ("int" if pd.api.types.is_integer_dtype(dtype) else
                             "float" if pd.api.types.is_float_dtype(dtype) else "str")
    if append and extras and os.path.exists(path):
        import pyogrio

        try:
            have = {f.lower() for f in pyogrio.read_info(path, layer=layer)["fields"]}
        except Exception:
            return {}  # a new layer of a GeoPackage, or a file the writer will refuse in one sentence
        extras = {k: v for k, v in extras.items() if k.lower() in have}
    return extras


def _defaults(values: Dict[str, object]) -> Dict[str, object]:
    from .core.engine.labels import attributes

    row = attributes(str(values.get("class") or "object"))
    row["status"] = values.get("status") or "prelabel"
    return row


def _classes(classes) -> Tuple[Optional[List[str]], object]:
    """(class names or None, Ontology or None) from a list of names or an ontology file."""
    if classes is None:
        return None, None
    if isinstance(classes, (str, os.PathLike)):
        try:
            from .core.engine.ontology import load_ontology
        except ImportError:
            raise SegError("This Seg has no ontology support; give the classes as a list of names.") from None
        ontology = load_ontology(os.fspath(classes))
        return list(ontology.names), ontology
    if hasattr(classes, "names") and hasattr(classes, "code_of"):  # an Ontology already loaded
        return list(classes.names), classes
    names = [str(c) for c in classes]
    if not names:
        raise SegError("The list of classes is empty; give at least one class name, or None for any class.")
    return names, None


def _pair(stretch) -> Tuple[float, float]:
    values = tuple(float(v) for v in stretch)
    if len(values) != 2 or not values[1] > values[0]:
        raise SegError(f"A stretch is two numbers, min < max, not {tuple(stretch)}.")
    return values


def _crs_text(crs) -> str:
    """A pyproj CRS as "EPSG:n" when it has a code, else WKT."""
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()


def _layer_crs(path: str, layer: Optional[str]):
    import pyogrio

    from .core.geo.layers import data_layer

    return pyogrio.read_info(path, layer=data_layer(path, layer))["crs"]


def _present(value) -> bool:
    if value is None or value == "":
        return False
    try:
        return value == value  # NaN is absent
    except Exception:
        return True


def _plain(value):
    """numpy and pandas scalars -> Python values; NaN and NA -> None."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if value is None or (isinstance(value, float) and value != value):
        return None
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return None
    except ImportError:
        pass
    return value


def _geometries(value, crs: str):
    """[(shapely geometry, CRS WKT)] from None, a GeoDataFrame, a vector file or geometries in `crs`."""
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        value = read_labels(value)
    if hasattr(value, "geometry") and hasattr(value, "crs"):
        if value.crs is None:
            raise PromptError("The exemplars have no CRS; set one (GeoDataFrame.set_crs) so they can be placed on the raster.")
        return [(g, _crs_text(value.crs)) for g in value.geometry if g is not None and not g.is_empty]
    return [(g, crs) for g in value]
