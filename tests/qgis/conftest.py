"""Real QGIS for tests: one headless QgsApplication per session, Processing initialized, Seg's
provider registered through the plugin's own initProcessing (as qgis_process does).

Fixtures for any QGIS test (Processing, GUI): qgis_app, processing_registered, run_algorithm.
The QGIS profile lives in a temporary folder, so no settings debris lands in the repository.
"""
from __future__ import annotations

import importlib.util
import os
import sys

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any Qt import: no display here


def _register_gui_support() -> None:
    """Make gui_support.py importable as `seg_test_gui_support` (test folders are not packages)."""
    spec = importlib.util.spec_from_file_location("seg_test_gui_support", os.path.join(os.path.dirname(__file__), "gui_support.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)


_register_gui_support()

QGIS_PLUGINS = "/usr/share/qgis/python/plugins"


@pytest.fixture(scope="session")
def qgis_app(tmp_path_factory):
    """The session's QgsApplication (GUI-enabled, offscreen), with a throwaway profile folder."""
    qgis_core = pytest.importorskip("qgis.core", reason="QGIS Python bindings are not installed")
    profile = tmp_path_factory.mktemp("qgis-profile")
    app = qgis_core.QgsApplication.instance()
    if app is None:
        app = qgis_core.QgsApplication([], True, str(profile))
        app.setPrefixPath("/usr", True)
        app.initQgis()
    yield app
    # exitQgis() at interpreter exit crashes some QGIS builds in teardown; the process ends anyway.


@pytest.fixture(scope="session")
def seg_plugin(qgis_app):
    """QGIS Processing initialized, and the Seg plugin loaded headless (iface None) with its
    provider registered through initProcessing(), as qgis_process does. Yields the plugin."""
    # First on the path: `python -m pytest` puts the checkout first, where our own processing/
    # folder would shadow QGIS's top-level `processing` (and refuses to, see its __init__).
    if QGIS_PLUGINS in sys.path:
        sys.path.remove(QGIS_PLUGINS)
    sys.path.insert(0, QGIS_PLUGINS)
    from processing.core.Processing import Processing

    from seg_qgis_plugin.plugin import SegPlugin

    Processing.initialize()
    plugin = SegPlugin(None)
    plugin.initProcessing()
    yield plugin
    plugin.unload()


@pytest.fixture
def processing_registered(seg_plugin):
    """The registered Seg provider (re-registered if a test unloaded it)."""
    from qgis.core import QgsApplication

    seg_plugin.initProcessing()
    provider = QgsApplication.processingRegistry().providerById("seg")
    assert provider is not None and provider is seg_plugin.provider
    return provider


@pytest.fixture
def run_algorithm(processing_registered):
    """run_algorithm("seg:tileraster", {...}, feedback=None) -> processing.run's result dict.
    Raises QgsProcessingException as processing.run does."""
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsProject

    def run(algorithm_id, parameters, feedback=None):
        context = QgsProcessingContext()
        context.setProject(QgsProject.instance())
        return processing.run(algorithm_id, parameters, feedback=feedback or QgsProcessingFeedback(), context=context)

    return run


class CancelAt:
    """Connects to a feedback's progressChanged and cancels once progress reaches `percent`."""

    def __init__(self, feedback, percent: float):
        self.feedback, self.percent, self.fired = feedback, percent, False
        feedback.progressChanged.connect(self.on_progress)

    def on_progress(self, value):
        if value >= self.percent and not self.fired:
            self.fired = True
            self.feedback.cancel()


@pytest.fixture
def cancel_at():
    """cancel_at(percent) -> a QgsProcessingFeedback that cancels itself at `percent`."""
    from qgis.core import QgsProcessingFeedback

    keep = []

    def make(percent: float):
        feedback = QgsProcessingFeedback()
        keep.append(CancelAt(feedback, percent))
        return feedback

    return make


@pytest.fixture
def vector_factory(tmp_path):
    """vector_factory(name, geometries (shapely), crs, **columns) -> path of a new GeoPackage layer."""
    import numpy as np
    import pyogrio.raw
    from shapely import to_wkb

    def make(name, geometries, crs, geometry_type=None, **columns):
        path = str(tmp_path / f"{name}.gpkg")
        fields = list(columns)
        data = [np.asarray(columns[f], dtype=object if isinstance(columns[f][0], str) else None) for f in fields]
        kind = geometry_type or geometries[0].geom_type
        pyogrio.raw.write(path, np.array([to_wkb(g) for g in geometries], dtype=object), data, fields, layer=name,
                          driver="GPKG", geometry_type=kind, crs=crs)
        return path

    return make


def read_layer(path):
    """(QgsVectorLayer, [QgsFeature]) for a vector file written by an algorithm."""
    from qgis.core import QgsVectorLayer

    layer = QgsVectorLayer(str(path), "out", "ogr")
    assert layer.isValid(), f"{path} is not a readable vector layer"
    return layer, list(layer.getFeatures())


@pytest.fixture
def read_vector():
    return read_layer
