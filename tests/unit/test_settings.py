"""Settings: one set of names for the CLI's config file and for QgsSettings (prefix "seg/")."""
import os

import pytest

from seg_qgis_plugin.core.errors import SettingError
from seg_qgis_plugin.core.settings import (KEYS, DictStore, IniStore, Settings, default_config_path, load_settings,
                                           save_settings)


def test_the_names_are_the_documented_ones():
    assert KEYS == ("cache_folder", "cache_size_limit_mb", "device", "threads", "default_model", "models_folder")


def test_defaults_without_a_config_file(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    s = load_settings(IniStore(str(tmp_path / "absent.ini")))
    assert (s.device, s.threads, s.cache_size_limit_mb, s.default_model) == ("auto", 0, 0, "vit_b")
    assert s.cache_folder == str(tmp_path / "cache" / "seg" / "embeddings")
    assert s.models_folder == str(tmp_path / "data" / "seg" / "models")


def test_seg_config_env_var_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SEG_CONFIG", str(tmp_path / "my.ini"))
    assert default_config_path() == str(tmp_path / "my.ini")
    monkeypatch.delenv("SEG_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert default_config_path() == str(tmp_path / "cfg" / "seg" / "config.ini")


def test_round_trip_through_the_config_file_keeps_other_sections(tmp_path, monkeypatch):
    path = tmp_path / "config.ini"
    path.write_text("[other]\nkeep = me\n")
    monkeypatch.setenv("SEG_CONFIG", str(path))
    wanted = Settings().with_values(device="cuda:1", threads=2, cache_size_limit_mb=4096, default_model="vit_h",
                                    models_folder=str(tmp_path / "m"))
    save_settings(wanted)  # default store: the SEG_CONFIG file
    text = path.read_text()
    assert "[other]\nkeep = me" in text and "[seg]" in text and "device = cuda:1" in text and "threads = 2" in text
    assert load_settings() == wanted
    assert [n for n in os.listdir(tmp_path) if n != "config.ini"] == []  # written atomically, no temp left


def test_bad_values_name_the_key_and_the_file(tmp_path):
    path = tmp_path / "config.ini"
    path.write_text("[seg]\nthreads = many\n")
    with pytest.raises(SettingError, match=r"threads must be a whole number of 0 or more, not 'many' \(in .*config.ini\)"):
        load_settings(IniStore(str(path)))
    with pytest.raises(SettingError, match="device must be auto, cpu, mps, cuda or cuda:N, not 'gpu'"):
        load_settings(DictStore({"device": "gpu"}))
    path.write_text("not an ini file\n")
    with pytest.raises(SettingError, match="is not a valid config file"):
        load_settings(IniStore(str(path)))


def test_folders_are_expanded_and_unknown_keys_ignored(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    s = load_settings(DictStore({"cache_folder": "~/c", "colour": "blue", "threads": ""}))
    assert s.cache_folder == str(tmp_path / "c") and s.threads == 0


def test_qgis_settings_use_the_same_names_under_seg(tmp_path):
    qgis_core = pytest.importorskip("qgis.core", reason="QGIS Python bindings are not installed")
    from qgis.PyQt.QtCore import QSettings

    from seg_qgis_plugin.qgis_adapters.settings_store import load_qgis_settings, save_qgis_settings

    ini = str(tmp_path / "QGIS3.ini")

    def profile():
        return qgis_core.QgsSettings(ini, QSettings.IniFormat)

    qs = profile()
    assert load_qgis_settings(qs) == Settings()
    wanted = Settings().with_values(device="cpu", threads=3, cache_folder=str(tmp_path / "cache"))
    save_qgis_settings(wanted, qs)
    assert profile().value("seg/threads") == "3"
    assert load_qgis_settings(profile()) == wanted
    text = open(ini).read()
    assert "[seg]" in text and all(f"{key}=" in text for key in KEYS)  # the CLI file's names, in the same section
