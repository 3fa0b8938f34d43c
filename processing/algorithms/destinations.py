"""What every Seg algorithm does around its run: its destinations (files, folders, feature sinks,
layer destinations) are checked before any work (none names an input layer or file by any path,
none names another, their folders can be written: core.outputs.output_checks); Seg's own atomic
writes to them are published together when the run ends (core.outputs.publish); and when the run
fails, the destination files it made (QGIS writes sinks as it goes) are removed again."""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Dict, Iterator, List, Tuple

from qgis.core import QgsProcessing, QgsProcessingOutputLayerDefinition, QgsProviderRegistry

INPUT_LAYERS = {"raster", "vector", "source", "layer", "mesh", "pointcloud"}
LAYER_OUTPUTS = {"sink", "vectorDestination", "rasterDestination", "pointCloudDestination", "vectorTileDestination"}


def named_paths(alg, parameters, context) -> Tuple[Dict[str, str], Dict[str, List[str]], List[str]]:
    """(destination name -> path or layer URI, input name -> paths, names of folder destinations)."""
    outputs, inputs, folders = {}, {}, []
    caches = set(getattr(alg, "CACHE_FOLDERS", ()))  # folders a run adds to (embedding caches)
    for definition in alg.parameterDefinitions():
        name, kind = definition.name(), definition.type()
        if name in caches:
            continue
        if definition.isDestination():
            value = _destination(alg, name, kind, parameters, context)
            if value:
                outputs[name] = value
                if kind == "folderDestination":
                    folders.append(name)
        elif kind in INPUT_LAYERS or kind in ("multilayer", "file"):
            paths = _input_paths(alg, name, kind, parameters, context)
            if paths:
                inputs[name] = paths
    return outputs, inputs, folders


@contextmanager
def guarded_run(alg, parameters, context) -> Iterator[None]:
    """Check the destinations, then run the block with Seg's writes held back; see the module doc."""
    from ...core.outputs.output_checks import check_outputs, file_of
    from ...core.outputs.publish import outputs_together

    outputs, inputs, folders = named_paths(alg, parameters, context)
    check_outputs(outputs, inputs, folders)
    fresh = [path for path in (file_of(v) for v in outputs.values()) if path and not os.path.exists(path)]
    try:
        with outputs_together(outputs.values()):
            yield
    except BaseException:
        for path in fresh:  # a sink QGIS filled before the failure
            if os.path.isfile(path):
                os.remove(path)
        raise


def _destination(alg, name, kind, parameters, context) -> str:
    value = parameters.get(name)
    if isinstance(value, QgsProcessingOutputLayerDefinition):
        value = value.sink.staticValue()
    if not value or not isinstance(value, str) or value == QgsProcessing.TEMPORARY_OUTPUT or value.startswith("memory:"):
        return ""
    if kind in ("fileDestination", "folderDestination"):
        return alg.parameterAsFileOutput(parameters, name, context)
    if kind in LAYER_OUTPUTS:
        return alg.parameterAsOutputLayer(parameters, name, context)
    return value


def _input_paths(alg, name, kind, parameters, context) -> List[str]:
    if parameters.get(name) in (None, ""):
        return []
    try:
        if kind == "file":
            return [alg.parameterAsFile(parameters, name, context)]
        layers = alg.parameterAsLayerList(parameters, name, context) if kind == "multilayer" else \
            [alg.parameterAsLayer(parameters, name, context)]
    except Exception:  # noqa: BLE001 - an input QGIS cannot resolve is the algorithm's own error to give
        return []
    return [path for path in (_layer_file(layer) for layer in layers if layer is not None) if path]


def _layer_file(layer) -> str:
    """The file a layer reads (GDAL, OGR and other file providers), or ''."""
    try:
        parts = QgsProviderRegistry.instance().decodeUri(layer.providerType(), layer.source())
    except Exception:  # noqa: BLE001
        return ""
    return parts.get("path") or ""
