"""SegPlugin: what QGIS (and qgis_process, with iface None) loads through classFactory.

Nothing here touches the canvas or the GUI until initGui, so qgis_process can load the plugin
headless and call initProcessing alone. Loading never raises: what fails is logged in the Seg tab
of the log panel and told in the message bar, and the rest of the plugin stays usable.
"""
from __future__ import annotations

import traceback


class SegPlugin:
    def __init__(self, iface):
        self.iface = iface  # None under qgis_process
        self.provider = None
        self.gui = None

    def initProcessing(self):  # noqa: N802 (QGIS API)
        """Register the Processing provider (idempotent)."""
        if self.provider is not None:
            return
        try:
            from qgis.core import QgsApplication

            from .processing.provider import SegProvider

            provider = SegProvider()
            QgsApplication.processingRegistry().addProvider(provider)
            self.provider = provider
        except Exception:
            self._report("Seg's Processing algorithms could not be loaded")

    def initGui(self):  # noqa: N802
        self.initProcessing()
        try:
            from .gui.plugin_gui import SegGui

            self.gui = SegGui(self.iface)
            self.gui.create()
        except Exception:
            self._report("Seg's dock and map tools could not be loaded")

    def unload(self):
        if self.gui is not None:
            self.gui.remove()
            self.gui = None
        if self.provider is not None:
            from qgis.core import QgsApplication

            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None

    def _report(self, what: str) -> None:
        from qgis.core import Qgis, QgsMessageLog

        QgsMessageLog.logMessage(f"{what}:\n{traceback.format_exc()}", "Seg", Qgis.MessageLevel.Critical)
        bar = self.iface.messageBar() if self.iface is not None else None
        if bar is not None:
            bar.pushMessage("Seg", f"{what}; the Seg tab of the log panel says why.", Qgis.MessageLevel.Critical, 0)
