"""SegPlugin: what QGIS (and qgis_process, with iface None) loads through classFactory.

Nothing here touches the canvas or the GUI until initGui, so qgis_process can load the plugin
headless and call initProcessing alone.
"""
from __future__ import annotations


class SegPlugin:
    def __init__(self, iface):
        self.iface = iface  # None under qgis_process
        self.provider = None
        self.gui = None

    def initProcessing(self):  # noqa: N802 (QGIS API)
        """Register the Processing provider (idempotent)."""
        if self.provider is not None:
            return
        from qgis.core import QgsApplication

        from .processing.provider import SegProvider

        self.provider = SegProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802
        self.initProcessing()
        from .gui.plugin_gui import SegGui

        self.gui = SegGui(self.iface)
        self.gui.create()

    def unload(self):
        if self.gui is not None:
            self.gui.remove()
            self.gui = None
        if self.provider is not None:
            from qgis.core import QgsApplication

            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
