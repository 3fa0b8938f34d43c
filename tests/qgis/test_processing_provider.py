"""The provider in real QGIS: registration, ids, help, parameters, canExecute, and the adapters."""
import pytest

EXPECTED = {"seg:tileraster", "seg:encoderaster", "seg:prelabel", "seg:polygonizemasks", "seg:rasterizelabels",
            "seg:exporttrainingdata", "seg:labelqa", "seg:agreement", "seg:propagatelabels", "seg:changereport",
            "seg:driftmap", "seg:assist", "seg:ranktiles"}


def test_provider_registers_every_algorithm_with_help(processing_registered):
    from qgis.core import QgsApplication

    ids = {a.id() for a in processing_registered.algorithms()}
    assert ids == EXPECTED
    for algorithm_id in EXPECTED:
        algorithm = QgsApplication.processingRegistry().algorithmById(algorithm_id)
        assert algorithm is not None and algorithm.id() == algorithm_id
        assert len(algorithm.shortHelpString()) > 150
        assert algorithm.destinationParameterDefinitions(), algorithm_id  # every algorithm writes something
        assert all(p.name().isupper() for p in algorithm.parameterDefinitions())


def test_can_execute_reports_missing_sam_dependencies(processing_registered, monkeypatch):
    from qgis.core import QgsApplication

    from seg_qgis_plugin import deps

    registry = QgsApplication.processingRegistry()
    assert registry.algorithmById("seg:assist").canExecute() == (True, "")
    find_spec = deps._find_spec
    monkeypatch.setattr(deps, "_find_spec", lambda module: None if module in ("lightgbm", "torch") else find_spec(module))
    ok, message = registry.algorithmById("seg:assist").canExecute()
    assert not ok and message == deps.missing_sentence(("core", "assist"))
    assert message.startswith("Seg needs lightgbm, which is not installed: ")
    assert registry.algorithmById("seg:tileraster").canExecute()[0]
    assert registry.algorithmById("seg:prelabel").canExecute()[0]  # the classic backend needs nothing
    assert registry.algorithmById("seg:encoderaster").canExecute()[0]  # an exported ONNX model needs no torch


STOCK_QGIS = """
import importlib.abc, sys
THIRD_PARTY = {"numpy", "rasterio", "pyogrio", "shapely", "pyproj", "affine", "cv2", "safetensors", "tqdm", "torch",
               "torchvision", "segment_anything", "geopandas", "pandas", "skimage", "scipy", "osgeo"}
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in THIRD_PARTY:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Absent())
from qgis.core import QgsApplication
app = QgsApplication([], False); app.initQgis()
import seg_qgis_plugin
from seg_qgis_plugin import deps
deps._find_spec = lambda module: None if module.split(".")[0] in THIRD_PARTY else __import__("importlib.util").util.find_spec(module)
plugin = seg_qgis_plugin.classFactory(None)
plugin.initProcessing()
registry = QgsApplication.processingRegistry()
algorithms = sorted(a.id() for a in registry.providerById("seg").algorithms())
print(len(algorithms), registry.algorithmById("seg:tileraster").canExecute())
print(sorted(m for m in THIRD_PARTY if m in sys.modules))
"""


def test_plugin_and_algorithms_load_in_a_qgis_without_any_of_segs_packages(tmp_path):
    """What a stock QGIS has: none of Seg's packages. The provider and every algorithm load, and
    canExecute names what is missing."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", STOCK_QGIS], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    count, result = out.stdout.splitlines()[0].split(" ", 1)
    assert int(count) >= len(EXPECTED)
    assert result.startswith("(False, 'Seg needs numpy, affine, rasterio, pyogrio, shapely, pyproj, cv2 and safetensors, which are not installed: press Install dependencies")
    assert out.stdout.splitlines()[1] == "[]"


def test_unload_removes_the_provider_and_init_brings_it_back(seg_plugin):
    from qgis.core import QgsApplication

    registry = QgsApplication.processingRegistry()
    seg_plugin.unload()
    assert registry.providerById("seg") is None and registry.algorithmById("seg:prelabel") is None
    seg_plugin.initProcessing()
    seg_plugin.initProcessing()  # idempotent: no duplicate provider
    assert registry.providerById("seg") is seg_plugin.provider
    assert len(seg_plugin.provider.algorithms()) == len(EXPECTED)


def test_geometry_and_crs_adapters_round_trip(qgis_app):
    from qgis.core import QgsCoordinateReferenceSystem, QgsGeometry
    from shapely.geometry import MultiPolygon, Polygon

    from seg_qgis_plugin.core.errors import CrsError
    from seg_qgis_plugin.qgis_adapters.crs import crs_from_core, crs_to_core
    from seg_qgis_plugin.qgis_adapters.geometry import from_shapely, to_shapely

    holed = MultiPolygon([Polygon([(0, 0), (10, 0), (10, 10), (0, 10)], [[(2, 2), (4, 2), (4, 4), (2, 4)]]),
                          Polygon([(20, 0), (21.25, 0), (21.25, 1.5)])])
    back = to_shapely(from_shapely(holed))
    assert back.equals_exact(holed, 0) and back.geom_type == "MultiPolygon"
    assert to_shapely(QgsGeometry()) is None and from_shapely(None).isNull()
    assert crs_to_core(QgsCoordinateReferenceSystem("EPSG:32633")) == "EPSG:32633"
    from pyproj import CRS

    wkt = CRS("EPSG:2056").to_wkt()
    assert crs_from_core(wkt).authid() == "EPSG:2056"
    with pytest.raises(CrsError):
        crs_to_core(QgsCoordinateReferenceSystem())


def test_feedback_adapter_maps_slices_and_cancel(qgis_app):
    from qgis.core import QgsProcessingFeedback

    from seg_qgis_plugin.qgis_adapters.feedback import FeedbackProgress

    feedback = QgsProcessingFeedback()
    progress = FeedbackProgress(feedback).slice(50, 100)
    progress.set_progress(50)
    assert feedback.progress() == pytest.approx(75)
    assert not progress.is_canceled()
    feedback.cancel()
    assert progress.is_canceled()


def test_non_gdal_layers_are_refused_with_a_sentence(qgis_app):
    from qgis.core import QgsRasterLayer

    from seg_qgis_plugin.core.errors import RasterError
    from seg_qgis_plugin.qgis_adapters.layers import raster_layer_path

    xyz = QgsRasterLayer("type=xyz&url=http://example.invalid/{z}/{x}/{y}.png", "tiles", "wms")
    with pytest.raises(RasterError, match="wms provider.*GeoTIFF"):
        raster_layer_path(xyz)
