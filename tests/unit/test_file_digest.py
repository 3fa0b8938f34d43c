"""A model file is hashed once while it is unchanged, and again as soon as its bytes may differ."""
import hashlib
import os
import time

import pytest

from seg_qgis_plugin.core.models import file_digest


@pytest.fixture
def reads(tmp_path, monkeypatch):
    """The files file_sha256 actually read, with the user's cache in tmp_path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    seen = []
    real = file_digest.sha256_file
    monkeypatch.setattr(file_digest, "sha256_file", lambda path: seen.append(path) or real(path))
    return seen


def test_an_unchanged_file_is_read_once(tmp_path, reads, monkeypatch):
    monkeypatch.setattr(file_digest, "SETTLED_S", 0.0)
    model = tmp_path / "model.onnx"
    model.write_bytes(b"weights" * 1000)
    truth = hashlib.sha256(model.read_bytes()).hexdigest()
    assert [file_digest.file_sha256(str(model)) for _ in range(3)] == [truth] * 3
    assert len(reads) == 1


def test_same_size_edit_with_its_times_set_back_is_hashed_again(tmp_path, reads, monkeypatch):
    monkeypatch.setattr(file_digest, "SETTLED_S", 0.0)
    model = tmp_path / "model.onnx"
    model.write_bytes(b"a" * 4096)
    before = os.stat(model)
    file_digest.file_sha256(str(model))
    time.sleep(0.05)  # past a tick of the filesystem's clock (below that, see the next test)
    model.write_bytes(b"b" * 4096)
    os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns))  # ctime still moves
    assert file_digest.file_sha256(str(model)) == hashlib.sha256(b"b" * 4096).hexdigest()
    assert len(reads) == 2


def test_a_file_changed_within_the_last_seconds_is_not_remembered(tmp_path, reads):
    model = tmp_path / "model.onnx"
    model.write_bytes(b"fresh" * 100)
    file_digest.file_sha256(str(model))
    file_digest.file_sha256(str(model))
    assert len(reads) == 2


def test_a_damaged_store_costs_a_read_not_a_wrong_digest(tmp_path, reads, monkeypatch):
    monkeypatch.setattr(file_digest, "SETTLED_S", 0.0)
    model = tmp_path / "model.onnx"
    model.write_bytes(b"x" * 100)
    file_digest.file_sha256(str(model))
    with open(file_digest._store(), "w") as f:
        f.write("{not json")
    assert file_digest.file_sha256(str(model)) == hashlib.sha256(b"x" * 100).hexdigest()
    assert len(reads) == 2
