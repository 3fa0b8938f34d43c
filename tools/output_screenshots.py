"""docs/output-*.png: each kind of output Seg writes, as the real QGIS desktop opens it.

    .venv/bin/python tools/output_screenshots.py prepare   # the outputs, from ../shared/data, into /tmp/seg-shots
    ../shared/tools/qgis-shot --env venv --wait 100 --code tools/output_screenshots.py
    .venv/bin/python tools/output_screenshots.py publish   # into docs/, 1100 px wide

`prepare` runs the examples and the CLI on the real data. Inside QGIS (`qgis --code`), the file
adds each scene's files as a user adds them from disk (their styles come from the files), runs
seg:propagatelabels from Processing for the series, opens the Review panel from the toolbar, and
grabs the window once per scene into /tmp/seg-shots/out/.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(globals().get("__file__", "tools/output_screenshots.py")).resolve().parents[1]  # qgis --code runs it from the repository
SHOTS = Path("/tmp/seg-shots")
DATA = (ROOT / ".." / "shared" / "data").resolve()
NAIP = sorted(str(p) for p in (DATA / "naip_prairie_timeseries").glob("*.tif"))
NEON = str(DATA / "neon_tree_crowns" / "OSBS_029.tif")
FLOOD = str(DATA / "sen1floods11_spain_7370579" / "Spain_7370579_S2Hand.tif")
SCENES = ("prelabels", "probability", "uncertainty", "classes", "series", "change", "drift", "review")


def prepare(out: Path) -> None:
    def run(*args):
        subprocess.run([sys.executable, *map(str, args)], check=True, cwd=ROOT)

    seg = [Path(sys.executable).with_name("seg")]
    run("examples/label_neon_crowns.py", "--image", "OSBS_029", "--out", out / "crowns.gpkg")
    run("examples/naip_time_series.py", "--out", out / "naip")
    run("examples/flood_extent_assist.py", "--out", out / "flood")
    run(*seg, "assist", FLOOD, "--model", out / "flood" / "model.json", "--out", out / "flood" / "water.gpkg",
        "--probability", out / "flood" / "probability_of_water.tif", "--uncertainty", out / "flood" / "uncertainty.tif")
    run(*seg, "rasterize", out / "crowns.gpkg", "--like", NEON, "--out", out / "crown_classes.tif", "--field", "class")
    sys.path.insert(0, str(ROOT / "examples"))
    from naip_time_series import water_bodies

    water_bodies(Path(NAIP[0]), 3).to_file(out / "naip" / "water_2009.gpkg", driver="GPKG")


def publish(shots: Path) -> None:
    from PIL import Image

    for scene in SCENES:
        image = Image.open(shots / "out" / f"{scene}.png").convert("RGB")
        image = image.resize((1100, round(image.height * 1100 / image.width)), Image.LANCZOS)
        image.quantize(256, dither=Image.Dither.NONE).save(ROOT / "docs" / f"output-{scene}.png", optimize=True)


# -- inside QGIS -----------------------------------------------------------------------------------

def in_qgis(shots: Path) -> None:
    from qgis.core import QgsDateTimeRange, QgsInterval, QgsProject, QgsSettings, QgsTemporalNavigationObject
    from qgis.PyQt.QtCore import QDate, QDateTime, Qt, QTime, QTimer
    from qgis.PyQt.QtWidgets import QDockWidget
    from qgis.utils import iface

    window, canvas, project = iface.mainWindow(), iface.mapCanvas(), QgsProject.instance()
    (shots / "out").mkdir(exist_ok=True)
    log = open(shots / "out" / "scenes.log", "w")

    def dock(name):
        return next((d for d in window.findChildren(QDockWidget) if name in (d.objectName(), d.windowTitle())), None)

    def raster(path, name):
        if not project.mapLayers():
            from qgis.core import QgsRasterLayer

            project.setCrs(QgsRasterLayer(path, name).crs())
        layer = iface.addRasterLayer(path, name)
        layer.setName(name)
        return layer

    def vector(path, name):
        from osgeo import ogr

        source = ogr.Open(str(path))
        table = source.GetLayer(0).GetName()  # the GeoPackage's labels, not its layer_styles table
        layer = iface.addVectorLayer(f"{path}|layername={table}", name, "ogr")
        layer.setName(name)
        return layer

    def show(image, *docks):
        for name in ("Temporal Controller", "SegDock", "SegReviewDock"):
            found = dock(name)
            if found is not None:
                found.setVisible(name in docks)
        iface.layerTreeView().expandAll()
        project.layerTreeRoot().findLayer(image.id()).setExpanded(False)
        canvas.setExtent(image.extent())
        canvas.refresh()

    def prelabels():
        show(raster(NEON, "NEON OSBS_029"))
        vector(shots / "crowns.gpkg", "crowns (seg prelabel)")

    def probability():
        image = raster(FLOOD, "Sentinel-2 flood chip")
        raster(str(shots / "flood" / "probability_of_water.tif"), "assistant: probability of water")
        vector(shots / "flood" / "water.gpkg", "assistant: water pre-labels")
        show(image)

    def uncertainty():
        image = raster(FLOOD, "Sentinel-2 flood chip")
        raster(str(shots / "flood" / "uncertainty.tif"), "assistant: uncertainty")
        show(image)

    def classes():
        image = raster(NEON, "NEON OSBS_029")
        raster(str(shots / "crown_classes.tif"), "crowns as classes (seg rasterize)")
        show(image)

    def series():
        import processing

        rasters = [raster(path, f"NAIP {Path(path).stem[-8:-4]}") for path in NAIP]
        processing.runAndLoadResults("seg:propagatelabels", {"INPUT": str(shots / "naip" / "water_2009.gpkg"), "RASTERS": NAIP,
                                                             "START_DATE": "2009-08-18", "OUTPUT": str(shots / "naip" / "series.gpkg")})
        navigation = canvas.temporalController()
        navigation.setTemporalExtents(QgsDateTimeRange(QDateTime(QDate(2009, 8, 18), QTime(0, 0)), QDateTime(QDate(2020, 9, 1), QTime(0, 0))))
        navigation.setFrameDuration(QgsInterval(86400))  # a day
        navigation.setNavigationMode(QgsTemporalNavigationObject.NavigationMode.Animated)
        navigation.setCurrentFrameNumber(QDate(2009, 8, 18).daysTo(QDate(2015, 9, 26)))
        show(rasters[0], "Temporal Controller")
        for layer in rasters:
            project.layerTreeRoot().findLayer(layer.id()).setExpanded(False)

    def change():
        image = raster(NAIP[-1], "NAIP 2020")
        vector(shots / "naip" / "changes.gpkg", "water gained and lost (seg change)")
        show(image)

    def drift():
        image = raster(NAIP[-1], "NAIP 2020")
        vector(shots / "naip" / "drift.gpkg", "drift between dates (seg drift)")
        show(image)

    def review():
        image = raster(NEON, "NEON OSBS_029")
        crowns = vector(shots / "crowns.gpkg", "crowns (seg prelabel)")
        show(image, "SegDock")
        panel = dock("SegReviewDock")
        panel.toggleViewAction().trigger()  # the toolbar's Review labels
        panel.layer_combo.setLayer(crowns)
        panel.start_button.click()

    scenes = dict(prelabels=prelabels, probability=probability, uncertainty=uncertainty, classes=classes,
                  series=series, change=change, drift=drift, review=review)

    def run(index=0):
        if index == len(SCENES):
            print("done", file=log, flush=True)
            return
        project.clear()
        try:
            scenes[SCENES[index]]()
        except Exception:  # noqa: BLE001 (the log says what went wrong; the next scene still runs)
            import traceback

            print(SCENES[index], traceback.format_exc(), file=log, flush=True)
        QTimer.singleShot(8000, lambda: grab(index))

    def grab(index):
        window.grab().save(str(shots / "out" / f"{SCENES[index]}.png"))
        print("grabbed", SCENES[index], file=log, flush=True)
        run(index + 1)

    QgsSettings().setValue("projections/promptWhenMultipleTransformsExist", False)
    window.move(0, 0)
    window.resize(1500, 940)
    window.resizeDocks([dock("Layers")], [330], Qt.Orientation.Horizontal)
    dock("Browser").hide()
    QTimer.singleShot(3000, run)


def main(argv) -> int:
    if len(argv) != 2 or argv[1] not in ("prepare", "publish"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[1] == "prepare":
        SHOTS.mkdir(parents=True, exist_ok=True)
    (prepare if argv[1] == "prepare" else publish)(SHOTS)
    return 0


if "qgis.utils" in sys.modules:
    in_qgis(SHOTS)
elif __name__ == "__main__":
    sys.exit(main(sys.argv))
