"""Where the canvas meets the raster, for the labeling controller (gui/controller.py): CRS
transforms between them, the tiles under the view, whether a prompt's tile is already encoded,
and the background work that needs no prompt: the hover preview and encoding ahead.

The UI thread works these out with QGIS transforms and the tile grid alone; it never touches the
raster file or pyproj objects the worker thread may be using. `CanvasRaster` is mixed into
SegController and uses its `canvas`, `project`, `segmenter`, `_raster_crs`, `worker`, `preview`,
`steps`, `hover_enabled` and `backgroundChanged`.
"""
from __future__ import annotations

from qgis.core import QgsCoordinateTransform, QgsCsException, QgsPointXY

from ..core.errors import SegError
from ..qgis_adapters.crs import crs_to_core
from ..qgis_adapters.geometry import from_shapely
from .prompt_state import PromptState
from .worker import Job, error_message

ENCODE_AHEAD_TILES = 4  # tiles around the view encoded while the user looks (memory keeps 8)


class CanvasRaster:
    """Hover, encoding ahead and the canvas-raster helpers of SegController."""

    def hover(self, point: QgsPointXY) -> None:
        """Preview the object under the cursor, only where the tile is already encoded (a hover
        never starts a slow encode) and while no prompt is being built."""
        if not (self.hover_enabled and self.ready and not self.steps):
            return
        state = PromptState().with_point(point.x(), point.y(), True)
        try:
            prompt = state.to_prompt(self._canvas_crs())
            if not self._start_tile_encoded(state):
                return
        except SegError:
            self.preview.show_hover(None)
            return
        segmenter = self.segmenter

        def run(progress):
            from ..core.geo.vectorize import mask_to_geometry

            segmentation = segmenter.segment(prompt, progress=progress)
            return mask_to_geometry(segmentation.mask, segmentation.transform)

        self.worker.submit(Job("hover", "hover preview", run, self._hovered, lambda error: None))

    def _hovered(self, geometry) -> None:
        if not self.steps and self.hover_enabled:
            self.preview.show_hover(self._to_canvas(geometry))

    def encode_view(self) -> None:
        """Encode, in the background, up to ENCODE_AHEAD_TILES tiles under the view (nearest the
        centre first), for backends whose encoder is the expensive step."""
        segmenter = self.segmenter
        if segmenter is None or not getattr(segmenter.backend, "cacheable", False):
            return
        tiles = self._tiles_in_view()
        todo = [t for t in tiles if not segmenter.is_encoded(t)][:ENCODE_AHEAD_TILES]
        if not todo:
            return

        def run(progress):
            for done, tile in enumerate(todo):
                if progress.is_canceled():
                    from ..core.errors import Canceled

                    raise Canceled("Encoding ahead was interrupted.")
                progress.set_progress(100.0 * done / len(todo))
                segmenter.embedding(tile)
            return len(todo)

        self.backgroundChanged.emit(f"Encoding {len(todo)} tile(s) around the view...")
        self.worker.submit(Job("encode", f"encoding {len(todo)} tile(s) around the view", run,
                               lambda count: self.backgroundChanged.emit(f"Encoded {count} tile(s) around the view."),
                               lambda error: self.backgroundChanged.emit("Encoding ahead failed: " + error_message(error))))

    def _tiles_in_view(self):
        segmenter = self.segmenter
        try:
            to_raster = QgsCoordinateTransform(self.canvas.mapSettings().destinationCrs(), self._raster_crs, self.project)
            extent = to_raster.transformBoundingBox(self.canvas.extent())
        except QgsCsException:  # the view does not project onto the raster
            return []
        inverse = ~segmenter.source.transform
        (c0, r0), (c1, r1) = inverse * (extent.xMinimum(), extent.yMaximum()), inverse * (extent.xMaximum(), extent.yMinimum())
        grid, scale = segmenter.grid, segmenter.grid.scale
        x0, x1, y0, y1 = min(c0, c1) / scale, max(c0, c1) / scale, min(r0, r1) / scale, max(r0, r1) / scale
        centre = ((x0 + x1) / 2, (y0 + y1) / 2)
        tiles = grid.tiles_intersecting(x0, y0, x1, y1)
        return sorted(tiles, key=lambda t: (t.col + t.width / 2 - centre[0]) ** 2 + (t.row + t.height / 2 - centre[1]) ** 2)

    def _canvas_crs(self) -> str:
        return crs_to_core(self.canvas.mapSettings().destinationCrs())

    def _start_tile_encoded(self, state: PromptState) -> bool:
        """Whether the tile that will answer `state` is already encoded (memory or disk cache).
        Worked out with QGIS transforms and the grid alone: the UI thread never touches the
        raster file or pyproj objects the worker thread may be using."""
        import numpy as np

        from ..core.geo.prompts import PixelPrompt

        segmenter = self.segmenter
        inverse = ~segmenter.source.transform
        try:
            to_raster = QgsCoordinateTransform(self.canvas.mapSettings().destinationCrs(), self._raster_crs, self.project)

            def pixel(x, y):
                p = to_raster.transform(QgsPointXY(x, y))
                return inverse * (p.x(), p.y())

            points = np.array([pixel(*xy) for xy in state.points], float).reshape(-1, 2)
            box = None
            if state.box is not None:
                xmin, ymin, xmax, ymax = state.box
                corners = np.array([pixel(x, y) for x in (xmin, xmax) for y in (ymin, ymax)])
                box = (*corners.min(axis=0), *corners.max(axis=0))
        except QgsCsException:
            return False
        pixels = PixelPrompt(points, np.asarray(state.labels, np.int32), box)
        return segmenter.is_encoded(segmenter.start_tile(pixels))

    def _to_canvas(self, geometry):
        """A shapely geometry in the raster CRS as a QgsGeometry in the canvas CRS (None stays None)."""
        if geometry is None:
            return None
        out = from_shapely(geometry)
        canvas_crs = self.canvas.mapSettings().destinationCrs()
        if canvas_crs != self._raster_crs:
            out.transform(QgsCoordinateTransform(self._raster_crs, canvas_crs, self.project))
        return out
