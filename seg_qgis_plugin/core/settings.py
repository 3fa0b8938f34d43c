"""User settings, with the same names in the CLI's config file and in QGIS's QgsSettings.

    key                    config file ([seg] section)    QgsSettings      default
    cache_folder           cache_folder = ...             seg/cache_folder <user cache>/seg/embeddings
    cache_size_limit_mb    cache_size_limit_mb = 0        ...              0 (no limit)
    device                 device = auto                                   auto (cuda, mps, then cpu)
    threads                threads = 0                                     0 (torch decides)
    default_model          default_model = vit_b                           vit_b
    models_folder          models_folder = ...                             <user data>/seg/models

The config file is `$SEG_CONFIG` if set, else `~/.config/seg/config.ini` (`%APPDATA%\\seg\\config.ini`
on Windows). Both faces default to the same folders, so a model downloaded with `seg models
download` is found by the plugin and the other way round. Values are stored as text everywhere;
`load_settings` parses and checks them and names the bad one in one sentence.
"""
from __future__ import annotations

import configparser
import io
import os
import re
import sys
from dataclasses import asdict, dataclass, fields
from typing import Dict, Optional, Protocol

from .errors import SettingError
from .outputs.atomic import write_text_atomic

SECTION = "seg"
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def user_dir(kind: str) -> str:
    """kind "cache" or "data": the per-user folder for Seg's files."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
        return os.path.join(base, "seg", kind)
    if sys.platform == "darwin":
        return os.path.join(os.path.expanduser("~/Library"), "Caches" if kind == "cache" else "Application Support", "seg")
    env, fallback = ("XDG_CACHE_HOME", "~/.cache") if kind == "cache" else ("XDG_DATA_HOME", "~/.local/share")
    return os.path.join(os.environ.get(env) or os.path.expanduser(fallback), "seg")


@dataclass(frozen=True)
class Settings:
    cache_folder: str = ""
    cache_size_limit_mb: int = 0
    device: str = "auto"
    threads: int = 0
    default_model: str = "vit_b"
    models_folder: str = ""

    def __post_init__(self):
        if not self.cache_folder:
            object.__setattr__(self, "cache_folder", os.path.join(user_dir("cache"), "embeddings"))
        if not self.models_folder:
            object.__setattr__(self, "models_folder", os.path.join(user_dir("data"), "models"))

    def with_values(self, **changes) -> "Settings":
        """A copy with `changes` applied, given as text or typed values, checked like a loaded file."""
        merged = {k: str(v) for k, v in asdict(self).items()}
        merged.update({k: str(v) for k, v in changes.items()})
        return settings_from_text(merged, "the given values")


KEYS = tuple(f.name for f in fields(Settings))


class SettingsStore(Protocol):
    """Where settings live as text: a config file section, QgsSettings under "seg/", a dict."""

    def read(self) -> Dict[str, str]: ...

    def write(self, values: Dict[str, str]) -> None: ...


def settings_from_text(values: Dict[str, str], where: str) -> Settings:
    """Parse text values (unknown keys are ignored, missing ones take defaults); SettingError names
    the first bad key and where it came from."""
    parsed = {}
    for key in KEYS:
        text = values.get(key)
        if text is None or str(text).strip() == "":
            continue
        text = str(text).strip()
        if key in ("cache_size_limit_mb", "threads"):
            if not text.isdigit():
                raise SettingError(f"{key} must be a whole number of 0 or more, not {text!r} ({where}).")
            parsed[key] = int(text)
        elif key == "device":
            if not DEVICE_PATTERN.match(text):
                raise SettingError(f"device must be auto, cpu, mps, cuda or cuda:N, not {text!r} ({where}).")
            parsed[key] = text
        elif key in ("cache_folder", "models_folder"):
            parsed[key] = os.path.abspath(os.path.expanduser(text))
        else:
            parsed[key] = text
    return Settings(**parsed)


def load_settings(store: Optional[SettingsStore] = None) -> Settings:
    store = store if store is not None else IniStore()
    return settings_from_text(store.read(), getattr(store, "description", "settings"))


def save_settings(settings: Settings, store: Optional[SettingsStore] = None) -> None:
    store = store if store is not None else IniStore()
    store.write({k: str(v) for k, v in asdict(settings).items()})


def default_config_path() -> str:
    if os.environ.get("SEG_CONFIG"):
        return os.path.abspath(os.path.expanduser(os.environ["SEG_CONFIG"]))
    if sys.platform == "win32":
        base = os.environ.get("APPDATA") or os.path.expanduser("~\\AppData\\Roaming")
    else:
        base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return os.path.join(base, "seg", "config.ini")


class IniStore:
    """The CLI's config file: an INI file with a [seg] section (other sections are kept)."""

    def __init__(self, path: Optional[str] = None):
        self.path = path or default_config_path()
        self.description = f"in {self.path}"

    def _parser(self) -> configparser.ConfigParser:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(self.path, encoding="utf-8")
        except configparser.Error as exc:
            raise SettingError(f"{self.path} is not a valid config file ({str(exc).splitlines()[0]}).") from exc
        return parser

    def read(self) -> Dict[str, str]:
        parser = self._parser()
        return dict(parser[SECTION]) if parser.has_section(SECTION) else {}

    def write(self, values: Dict[str, str]) -> None:
        parser = self._parser()
        if not parser.has_section(SECTION):
            parser.add_section(SECTION)
        for key, value in values.items():
            parser[SECTION][key] = value
        text = io.StringIO()
        parser.write(text)
        write_text_atomic(self.path, text.getvalue(), what="the config file")


class DictStore:
    """Settings in memory (tests, one-off runs)."""

    def __init__(self, values: Optional[Dict[str, str]] = None):
        self.values = dict(values or {})
        self.description = "in memory"

    def read(self) -> Dict[str, str]:
        return dict(self.values)

    def write(self, values: Dict[str, str]) -> None:
        self.values.update(values)


__all__ = ["Settings", "KEYS", "SettingsStore", "IniStore", "DictStore", "load_settings", "save_settings",
           "settings_from_text", "default_config_path"]
