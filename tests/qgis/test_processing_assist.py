"""seg:assist and seg:ranktiles through processing.run: learn from a label layer, write polygons,
probability and uncertainty rasters and a model; apply the model; rank tiles; refuse bad input."""
import importlib.util
import json

import numpy as np
import pytest

from seg_qgis_plugin.demo.scene import CRS, pixel_square, write_scene

pytest.importorskip("lightgbm", reason="the assistant needs lightgbm")



@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("assist-scene") / "scene.tif")
    truth = write_scene(path, width=384, height=384, seed=2)
    return path, truth


@pytest.fixture
def squares(scene, vector_factory):
    path, truth = scene
    geoms, classes, statuses = [], [], []
    for o in truth:
        if o.class_name == "water":
            geoms.append(pixel_square(int(o.point[0]) - 6, int(o.point[1]) - 6))
            classes.append("water")
            statuses.append("accepted")
    occupied = np.any([o.mask for o in truth], axis=0)
    for col, row in [(10, 10), (360, 10), (10, 360), (200, 360), (360, 200), (100, 200)]:
        if not occupied[row:row + 12, col:col + 12].any():
            geoms.append(pixel_square(col, row))
            classes.append("background")
            statuses.append("accepted")
    return vector_factory("squares", geoms, CRS, **{"class": classes, "status": statuses})


def test_assist_learns_writes_and_applies_its_model(run_algorithm, read_vector, scene, squares, tmp_path):
    import rasterio

    path, truth = scene
    water = np.any([o.mask for o in truth if o.class_name == "water"], axis=0)
    model = str(tmp_path / "model.json")
    result = run_algorithm("seg:assist", {"INPUT": path, "LABELS": squares, "CLASS_FIELD": "class", "ONLY_ACCEPTED": True,
                                          "MIN_AREA": 5.0, "OUTPUT": str(tmp_path / "pre.gpkg"), "PROBABILITY": str(tmp_path / "p.tif"),
                                          "UNCERTAINTY": str(tmp_path / "u.tif"), "SAVE_MODEL": model})
    layer, features = read_vector(result["OUTPUT"])
    assert result["COUNT"] == len(features) > 0 and layer.crs().authid() == "EPSG:32633"
    assert {f["class"] for f in features} == {"water"}
    assert all(f["status"] == "prelabel" and 0.5 < f["score"] <= 1 for f in features)
    with rasterio.open(result["PROBABILITY"]) as p, rasterio.open(path) as src, rasterio.open(result["UNCERTAINTY"]) as u:
        assert (p.transform, p.crs, p.shape, p.count) == (src.transform, src.crs, src.shape, 1)
        assert (u.transform, u.shape) == (src.transform, src.shape)
        proba = p.read(1)
    assert (proba > 0.5).sum() > 0 and ((proba > 0.5) & water).sum() / ((proba > 0.5) | water).sum() > 0.85
    with open(model) as f:
        assert json.load(f)["classes"] == ["background", "water"]
    again = run_algorithm("seg:assist", {"INPUT": path, "MODEL": model, "OUTPUT": str(tmp_path / "again.gpkg"),
                                         "MIN_AREA": 5.0, "PROBABILITY": str(tmp_path / "p2.tif")})
    assert again["COUNT"] == result["COUNT"]
    with rasterio.open(again["PROBABILITY"]) as p2:
        assert np.array_equal(p2.read(1), proba)
    if importlib.util.find_spec("distributed"):  # the same model on a Dask cluster: the same polygons and raster
        on_cluster = run_algorithm("seg:assist", {"INPUT": path, "MODEL": model, "OUTPUT": str(tmp_path / "cluster.gpkg"),
                                                  "MIN_AREA": 5.0, "PROBABILITY": str(tmp_path / "p3.tif"), "SCHEDULER": "local:1"})
        with rasterio.open(on_cluster["PROBABILITY"]) as p3:
            assert np.array_equal(p3.read(1), proba)
        geometries = [sorted(f.geometry().asWkt(3) for f in read_vector(r["OUTPUT"])[1]) for r in (again, on_cluster)]
        assert geometries[0] == geometries[1] and on_cluster["COUNT"] == again["COUNT"]
    ranked = run_algorithm("seg:ranktiles", {"INPUT": path, "UNCERTAINTY": result["UNCERTAINTY"], "LABELS": squares, "TOP": 4,
                                             "TILE": 128, "OUTPUT": str(tmp_path / "next.gpkg")})
    _, tiles = read_vector(ranked["OUTPUT"])
    assert sorted(t["rank"] for t in tiles) == [1, 2, 3, 4]
    assert all(0 <= t["priority"] <= 1 for t in tiles)


def test_assist_refuses_bad_input_in_one_sentence(run_algorithm, scene, squares, tmp_path):
    from qgis.core import QgsProcessingException

    path, _ = scene
    with pytest.raises(QgsProcessingException, match="label layer to learn from, or a saved model"):
        run_algorithm("seg:assist", {"INPUT": path, "OUTPUT": str(tmp_path / "a.gpkg")})
    with pytest.raises(QgsProcessingException, match="at least two classes"):  # every square is 'accepted'
        run_algorithm("seg:assist", {"INPUT": path, "LABELS": squares, "CLASS_FIELD": "status", "OUTPUT": str(tmp_path / "b.gpkg")})
    with pytest.raises(QgsProcessingException, match="either an uncertainty raster or a saved model"):
        run_algorithm("seg:ranktiles", {"INPUT": path, "OUTPUT": str(tmp_path / "c.gpkg")})
    assert not any((tmp_path / name).exists() for name in ("a.gpkg", "b.gpkg", "c.gpkg"))


def test_dock_panel_learns_from_accepted_labels_and_explains_a_prelabel(qgis_app, scene, squares, tmp_path):
    """The flywheel panel: a QgsTask trains on the target layer's accepted features, pre-labels the
    raster, adds the layers; 'Explain selected' shows score, uncertainty, provenance, importances."""
    import shutil
    import time

    from qgis.core import QgsApplication, QgsProject, QgsRasterLayer, QgsVectorLayer
    from qgis.PyQt.QtWidgets import QWidget

    from seg_qgis_plugin.gui.assist_panel import AssistPanel

    path, _ = scene
    labels = str(tmp_path / "labels.gpkg")
    shutil.copy(squares, labels)
    raster_layer, target = QgsRasterLayer(path, "scene"), QgsVectorLayer(labels, "labels", "ogr")
    assert raster_layer.isValid() and target.isValid()

    class Combo:
        def __init__(self, layer):
            self.layer = layer

        def currentLayer(self):  # noqa: N802 (QGIS API)
            return self.layer

    dock = QWidget()
    dock.raster_combo, dock.target_combo = Combo(raster_layer), Combo(target)
    panel = AssistPanel(dock, canvas=None)
    panel.scope.setCurrentIndex(1)  # whole raster
    before = set(QgsProject.instance().mapLayers())
    panel.learn()
    deadline = time.monotonic() + 300
    while panel.task is not None and time.monotonic() < deadline:
        QgsApplication.processEvents()
        time.sleep(0.01)
    assert panel.task is None and "Learned from" in panel.info.text(), panel.info.text()
    assert (tmp_path / "labels_assist1.gpkg").exists() and (tmp_path / "labels_assist1_model.json").exists()
    added = [QgsProject.instance().mapLayer(i) for i in set(QgsProject.instance().mapLayers()) - before]
    prelabels = next(layer for layer in added if isinstance(layer, QgsVectorLayer))
    assert prelabels.featureCount() > 0
    target.selectByIds([])
    prelabels.selectByIds([next(prelabels.getFeatures()).id()])
    dock.target_combo = Combo(prelabels)
    panel.explain()
    text = panel.info.text()
    assert "score (mean probability)" in text and "uncertainty under it" in text and "most important features" in text
    for layer in added:
        QgsProject.instance().removeMapLayer(layer.id())
    QgsProject.instance().cleared.emit()  # what File > New project sends
    assert panel.model_path == "" and panel.info.text().startswith("Accept a few small labels")


def test_dock_panel_takes_background_from_the_class_list_or_adds_it_visibly(qgis_app, scene):
    from qgis.core import QgsFeature, QgsGeometry, QgsRasterLayer, QgsVectorLayer
    from qgis.PyQt.QtWidgets import QWidget

    from seg_qgis_plugin.gui.assist_panel import AssistPanel
    from seg_qgis_plugin.gui.classes import LabelClass

    class Dock(QWidget):
        def __init__(self, names, raster=None, target=None):
            super().__init__()
            self.rows = [LabelClass(n, "#000000") for n in names]
            self.raster_combo, self.target_combo = Combo(raster), Combo(target)

        def classes(self):
            return list(self.rows)

        def add_class_row(self, label_class, select=False):
            self.rows.append(label_class)

    class Combo:
        def __init__(self, layer):
            self.layer = layer

        def currentLayer(self):  # noqa: N802 (QGIS API)
            return self.layer

    ontology_like = Dock(["water", "Background"])
    assert AssistPanel(ontology_like).background_class([]) == ("Background", "") and len(ontology_like.rows) == 2

    target = QgsVectorLayer(f"Polygon?crs={CRS}&field=class:string&field=status:string", "labels", "memory")
    feature = QgsFeature(target.fields())
    feature.setGeometry(QgsGeometry.fromWkt(pixel_square(10, 10).wkt))
    feature.setAttributes(["water", "accepted"])
    target.dataProvider().addFeatures([feature])
    dock = Dock(["water"], QgsRasterLayer(scene[0], "scene"), target)
    panel = AssistPanel(dock)
    panel.learn()
    assert [c.name for c in dock.rows] == ["water", "background"] and panel.task is None
    assert panel.info.text().startswith("Added a 'background' class to the class list. Accept a few small labels of 'background'")
