"""Seg's settings in QgsSettings under "seg/<key>", with the same keys as the CLI's config file.

    from seg_qgis_plugin.qgis_adapters.settings_store import load_qgis_settings, save_qgis_settings
    settings = load_qgis_settings()           # core.settings.Settings
    save_qgis_settings(settings.with_values(device="cpu"))
"""
from __future__ import annotations

from typing import Dict, Optional

from qgis.core import QgsSettings

from ..core.settings import KEYS, Settings, load_settings, save_settings

PREFIX = "seg/"


class QgsSettingsStore:
    """core.settings.SettingsStore over QgsSettings (the active profile's QGIS3.ini)."""

    def __init__(self, settings: Optional[QgsSettings] = None, prefix: str = PREFIX):
        self.settings = settings if settings is not None else QgsSettings()
        self.prefix = prefix
        self.description = f"in QGIS settings under {prefix}"

    def read(self) -> Dict[str, str]:
        values = {}
        for key in KEYS:
            value = self.settings.value(self.prefix + key, None)
            if value is not None:
                values[key] = str(value)
        return values

    def write(self, values: Dict[str, str]) -> None:
        for key, value in values.items():
            self.settings.setValue(self.prefix + key, str(value))
        self.settings.sync()


def load_qgis_settings(settings: Optional[QgsSettings] = None) -> Settings:
    return load_settings(QgsSettingsStore(settings))


def save_qgis_settings(values: Settings, settings: Optional[QgsSettings] = None) -> None:
    save_settings(values, QgsSettingsStore(settings))
