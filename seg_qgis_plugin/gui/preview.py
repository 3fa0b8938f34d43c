"""What the canvas shows while labeling: the mask preview, the prompt points and box, the hover mask.

All geometries given here are already in the canvas CRS. Rubber bands are canvas items, not layer
features: nothing is written until the mask is accepted.
"""
from __future__ import annotations

from typing import Iterable, Optional, Tuple

from qgis.core import QgsGeometry, QgsPointXY, QgsRectangle, QgsWkbTypes
from qgis.gui import QgsRubberBand
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QColor

POSITIVE = QColor(0, 200, 70)
NEGATIVE = QColor(230, 30, 30)


def _band(canvas, kind, stroke: QColor, fill: Optional[QColor] = None, width: int = 2) -> QgsRubberBand:
    band = QgsRubberBand(canvas, kind)
    band.setStrokeColor(stroke)
    band.setFillColor(fill if fill is not None else QColor(0, 0, 0, 0))
    band.setWidth(width)
    return band


class MaskPreview:
    """Rubber bands on `canvas`: mask (class colour, translucent), hover mask (dashed), positive and
    negative points, and the prompt box."""

    def __init__(self, canvas):
        self.canvas = canvas
        polygon, point = QgsWkbTypes.GeometryType.PolygonGeometry, QgsWkbTypes.GeometryType.PointGeometry
        self.mask = _band(canvas, polygon, QColor(255, 215, 0))
        self.hover = _band(canvas, polygon, QColor(255, 255, 255), QColor(255, 255, 255, 50), 1)
        self.hover.setLineStyle(Qt.PenStyle.DashLine)
        self.box = _band(canvas, polygon, QColor(40, 120, 255), QColor(40, 120, 255, 20), 1)
        self.box.setLineStyle(Qt.PenStyle.DashLine)
        self.positive = _band(canvas, point, POSITIVE)
        self.negative = _band(canvas, point, NEGATIVE)
        for band in (self.positive, self.negative):
            band.setIcon(QgsRubberBand.IconType.ICON_CIRCLE)
            band.setIconSize(10)
            band.setFillColor(band.strokeColor())
        self.set_color(QColor(255, 215, 0))

    def set_color(self, color: QColor) -> None:
        """The mask's colour (the current class's)."""
        fill = QColor(color)
        fill.setAlpha(100)
        self.mask.setStrokeColor(color)
        self.mask.setFillColor(fill)

    def show_mask(self, geometry: Optional[QgsGeometry]) -> None:
        self._set(self.mask, geometry)

    def show_hover(self, geometry: Optional[QgsGeometry]) -> None:
        self._set(self.hover, geometry)

    def show_prompts(self, points: Iterable[Tuple[float, float]], labels: Iterable[int],
                     box: Optional[Tuple[float, float, float, float]]) -> None:
        self.positive.reset(QgsWkbTypes.GeometryType.PointGeometry)
        self.negative.reset(QgsWkbTypes.GeometryType.PointGeometry)
        for (x, y), label in zip(points, labels):
            (self.positive if label else self.negative).addPoint(QgsPointXY(x, y), True)
        self.show_box(box)

    def show_box(self, box: Optional[Tuple[float, float, float, float]]) -> None:
        self._set(self.box, QgsGeometry.fromRect(QgsRectangle(*box)) if box else None)

    def clear(self) -> None:
        for band in (self.mask, self.hover, self.box):
            band.reset(QgsWkbTypes.GeometryType.PolygonGeometry)
        for band in (self.positive, self.negative):
            band.reset(QgsWkbTypes.GeometryType.PointGeometry)

    @property
    def mask_geometry(self) -> QgsGeometry:
        """What the mask band shows (canvas CRS); empty when nothing is shown."""
        return self.mask.asGeometry()

    def remove(self) -> None:
        """Take every band off the canvas (plugin unload)."""
        for band in (self.mask, self.hover, self.box, self.positive, self.negative):
            band.reset()
            self.canvas.scene().removeItem(band)

    @staticmethod
    def _set(band: QgsRubberBand, geometry: Optional[QgsGeometry]) -> None:
        if geometry is None or geometry.isEmpty():
            band.reset(QgsWkbTypes.GeometryType.PolygonGeometry)
        else:
            band.setToGeometry(geometry)  # already in the canvas CRS
