"""Seg's settings in QgsSettings under "seg/<key>", with the same keys as the CLI's config file.

    from seg_qgis_plugin.qgis_adapters.settings_store import load_qgis_settings, save_qgis_settings
    settings = load_qgis_settings()           # core.settings.Settings
    save_qgis_settings(settings.with_values(device="cpu"))

The dock also remembers its own choices (backend, checkpoint, cache folder, tags, classes...)
under "seg/dock/<key>" (`load_dock_values`, `save_dock_value`), and falls back on the shared
settings (`shared_defaults`) for what it has never been told.
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


# -- what the dock remembers between QGIS sessions ------------------------------------------------

DOCK_PREFIX = PREFIX + "dock/"
# backend "sam"/"classic"; checkpoint and cache_dir paths; model_type, device; tile, overlap; tags
# text ("k=v; k=v"); classes as JSON [{"name", "color"}]; hover "true"/"false". Processing reads
# the checkpoint from here too (seg/dock/checkpoint).
DOCK_KEYS = ("backend", "checkpoint", "model_type", "device", "cache_dir", "tile", "overlap", "tags", "classes", "hover")


def load_dock_values(settings: Optional[QgsSettings] = None) -> Dict[str, str]:
    """The dock's remembered values as text (only the keys that were saved)."""
    settings = settings if settings is not None else QgsSettings()
    values = {}
    for key in DOCK_KEYS:
        value = settings.value(DOCK_PREFIX + key, None)
        if value is not None:
            values[key] = str(value)
    return values


def save_dock_value(key: str, value, settings: Optional[QgsSettings] = None) -> None:
    """Remember one dock value (as text) under seg/dock/<key>."""
    if key not in DOCK_KEYS:
        raise KeyError(f"{key!r} is not a dock setting; known: {', '.join(DOCK_KEYS)}")
    (settings if settings is not None else QgsSettings()).setValue(DOCK_PREFIX + key, "" if value is None else str(value))


def shared_defaults(settings: Optional[QgsSettings] = None) -> Settings:
    """The settings shared with the `seg` command (device, cache folder, models folder...), or the
    built-in defaults when the stored ones cannot be read."""
    from ..core.errors import SettingError

    try:
        return load_qgis_settings(settings)
    except SettingError:
        return Settings()
