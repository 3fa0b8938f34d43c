"""seg:propagatelabels, seg:changereport and seg:driftmap through processing.run on the generated
series: output layers, their styles and temporal properties from `date`, the change style, bad input."""
import json

import pytest

from seg_qgis_plugin.demo.series import write_series


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    return write_series(str(tmp_path_factory.mktemp("ts")))


@pytest.fixture
def run_loaded(processing_registered):
    """run(alg, params, outputs) with the named outputs set to load into the project on
    completion, as the toolbox does. Returns (results, context)."""
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsProcessingOutputLayerDefinition, QgsProject

    def run(algorithm_id, parameters, outputs=("OUTPUT",)):
        context = QgsProcessingContext()
        context.setProject(QgsProject.instance())
        params = dict(parameters)
        for name in outputs:
            params[name] = QgsProcessingOutputLayerDefinition(params[name], QgsProject.instance())
        return processing.run(algorithm_id, params, feedback=QgsProcessingFeedback(), context=context), context

    return run


def loaded(context, dest):
    """The output layer as QGIS loads it on completion, with the algorithm's post-processor applied."""
    from qgis.core import QgsProcessingFeedback, QgsVectorLayer

    assert context.willLoadLayerOnCompletion(dest)
    layer = QgsVectorLayer(dest, "out", "ogr")
    assert layer.isValid()
    processor = context.layerToLoadOnCompletionDetails(dest).postProcessor()
    assert processor is not None
    processor.postProcessLayer(layer, context, QgsProcessingFeedback())
    return layer


def features_at(layer, iso):
    """Features the Temporal Controller shows on day `iso`."""
    from qgis.core import QgsDateTimeRange, QgsFeatureRequest
    from qgis.PyQt.QtCore import QDate, QDateTime, QTime

    day = QDate.fromString(iso, "yyyy-MM-dd")
    time_range = QgsDateTimeRange(QDateTime(day, QTime(0, 0)), QDateTime(day.addDays(1), QTime(0, 0)), True, False)
    assert layer.temporalProperties().isVisibleInTemporalRange(time_range)
    from qgis.core import QgsVectorLayerTemporalContext

    context = QgsVectorLayerTemporalContext()
    context.setLayer(layer)
    expression = layer.temporalProperties().createFilterString(context, time_range)
    return list(layer.getFeatures(QgsFeatureRequest().setFilterExpression(expression)))


def test_propagate_then_change_report_in_qgis(run_loaded, series, tmp_path):
    from seg_qgis_plugin.processing.algorithms.temporal import FROM_EXPRESSIONS

    result, context = run_loaded("seg:propagatelabels", {
        "INPUT": series.labels, "RASTERS": list(series.rasters), "CLASSES": "building", "BACKEND": 0,
        "OUTPUT": str(tmp_path / "through_time.gpkg")})
    assert (result["FOUND"], result["LOST"], result["OUTSIDE"]) == (4, 0, 0)
    layer = loaded(context, result["OUTPUT"])
    features = list(layer.getFeatures())
    assert len(features) == 4 + 2 and {f["class"] for f in features} == {"building"}
    assert sorted({f["track_id"] for f in features}) == [1, 2]
    assert layer.renderer().type() == "categorizedSymbol" and layer.renderer().classAttribute() == "status"
    props = layer.temporalProperties()
    assert props.isActive() and props.mode() == FROM_EXPRESSIONS  # `date` is ISO text in the GeoPackage
    assert props.startExpression() == 'to_datetime("date")' and "days:=1" in props.endExpression()
    assert [f["track_id"] for f in features_at(layer, "2021-06-15")] == [1]
    assert sorted(f["track_id"] for f in features_at(layer, "2021-10-15")) == [1, 2]

    report = str(tmp_path / "change.json")
    result, context = run_loaded("seg:changereport", {"INPUT": result["OUTPUT"], "BY": 0, "REPORT": report,
                                                      "CHANGES": str(tmp_path / "changes.gpkg")}, outputs=("CHANGES",))
    with open(report) as handle:
        rows = json.load(handle)["rows"]
    assert result["ROWS"] == 3 and [r["date_from"] for r in rows] == list(series.dates[:3])
    assert rows[1]["gained"] > 500  # the new building
    changes = loaded(context, result["CHANGES"])
    assert changes.renderer().type() == "categorizedSymbol" and changes.renderer().classAttribute() == "change"
    assert {f["change"] for f in changes.getFeatures()} <= {"gained", "lost"} and changes.temporalProperties().isActive()


def test_drift_map_in_qgis(run_loaded, series, tmp_path):
    result, context = run_loaded("seg:driftmap", {"RASTERS": list(series.rasters), "TILE": 100, "THRESHOLD": 0.3,
                                                  "OUTPUT": str(tmp_path / "drift.gpkg"), "PNG": str(tmp_path / "drift.png")})
    summary = json.loads(result["SUMMARY"])
    assert [p["date_from"] for p in summary["pairs"]] == list(series.dates[:3])
    layer = loaded(context, result["OUTPUT"])
    features = list(layer.getFeatures())
    assert layer.renderer().type() == "graduatedSymbol" and layer.renderer().classAttribute() == "drift_ratio"
    assert len(features) == 48 and result["FLAGGED"] == sum(f["flagged"] for f in features) > 0
    assert len(features_at(layer, "2021-08-15")) == 16
    assert "flagged" in layer.metadata().abstract()
    assert open(result["PNG"], "rb").read(4) == b"\x89PNG"


def test_series_rasters_in_the_project_get_their_dates(run_loaded, series, tmp_path):
    """The imagery plays in the Temporal Controller with the labels: each raster of the project
    that the algorithm read shows from its date until the next date of the series."""
    from qgis.core import QgsDateTimeRange, QgsProject, QgsRasterLayer
    from qgis.PyQt.QtCore import QDate, QDateTime, QTime

    layers = [QgsRasterLayer(path, f"date {i}") for i, path in enumerate(series.rasters)]
    QgsProject.instance().addMapLayers(layers)
    try:
        run_loaded("seg:propagatelabels", {"INPUT": series.labels, "RASTERS": layers, "CLASSES": "building",
                                           "BACKEND": 0, "OUTPUT": str(tmp_path / "dated.gpkg")})
        ranges = [layer.temporalProperties().fixedTemporalRange() for layer in layers]
        assert all(layer.temporalProperties().isActive() for layer in layers)
        starts = [r.begin().date().toString("yyyy-MM-dd") for r in ranges]
        assert starts == sorted(starts) and [r.end() for r in ranges[:-1]] == [r.begin() for r in ranges[1:]]
        assert ranges[-1].begin().daysTo(ranges[-1].end()) == 1

        def shown(iso):
            day = QDateTime(QDate.fromString(iso, "yyyy-MM-dd"), QTime(12, 0))
            moment = QgsDateTimeRange(day, day)
            return [layer.name() for layer in layers if layer.temporalProperties().isVisibleInTemporalRange(moment)]

        assert shown(starts[1]) == [layers[1].name()]
        assert shown(starts[0]) == [layers[0].name()] and shown("1990-01-01") == []
    finally:
        QgsProject.instance().removeMapLayers([layer.id() for layer in layers])


def test_changes_layer_written_by_the_cli_opens_styled(series, tmp_path, qgis_app):
    from qgis.core import QgsVectorLayer

    from seg_qgis_plugin.cli.main import main

    changes = str(tmp_path / "changes.gpkg")
    assert main(["change", series.labels, "--out", str(tmp_path / "c.json"), "--changes", changes]) == 0
    layer = QgsVectorLayer(f"{changes}|layername=changes", "changes", "ogr")
    assert layer.isValid() and layer.renderer().type() == "categorizedSymbol"
    assert sorted(c.value() for c in layer.renderer().categories()) == ["gained", "lost", "uncertain"]


def test_bad_input_raises_one_sentence(run_algorithm, series, tmp_path):
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="same date"):
        run_algorithm("seg:propagatelabels", {"INPUT": series.labels, "RASTERS": [series.rasters[1], series.rasters[1]],
                                              "OUTPUT": str(tmp_path / "x.gpkg")})
    with pytest.raises(QgsProcessingException, match="at least two"):
        run_algorithm("seg:driftmap", {"RASTERS": [series.rasters[1]], "OUTPUT": str(tmp_path / "y.gpkg")})
