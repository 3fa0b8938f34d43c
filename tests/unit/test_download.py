"""Checkpoint downloads against a real HTTP server on 127.0.0.1 that honours Range requests and can
drop the connection part way: good file, wrong checksum, interrupted and resumed, cancel."""
import hashlib
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from seg_qgis_plugin.core.models import registry as model_registry
from seg_qgis_plugin.core.models.download import ChecksumError, DownloadError, download_file, part_path
from seg_qgis_plugin.core.errors import Canceled, CheckpointError

DATA = os.urandom(3 * (1 << 20) + 12345)  # a little over 3 MiB: several read blocks
SHA = hashlib.sha256(DATA).hexdigest()


class RangeServer:
    """Serves DATA at /model.pth. drops: for each of the next requests, how many bytes to send
    before closing the connection (None: all). ignore_range: answer 200 with the whole file."""

    def __init__(self):
        self.ranges, self.drops, self.ignore_range = [], [], False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path != "/model.pth":
                    self.send_error(404)
                    return
                header = self.headers.get("Range")
                server.ranges.append(header)
                start = int(header.split("=")[1].split("-")[0]) if header and not server.ignore_range else 0
                if start >= len(DATA):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(DATA)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = DATA[start:]
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(DATA) - 1}/{len(DATA)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                drop = server.drops.pop(0) if server.drops else None
                self.wfile.write(body if drop is None else body[:drop])
                if drop is not None:
                    self.wfile.flush()
                    self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/model.pth"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = RangeServer()
    yield s
    s.close()


class Recorder:
    def __init__(self, cancel_after_checks=None):
        self.values, self.checks, self.cancel_after = [], 0, cancel_after_checks

    def set_progress(self, percent):
        self.values.append(percent)

    def is_canceled(self):
        self.checks += 1
        return self.cancel_after is not None and self.checks > self.cancel_after


def test_good_file_is_verified_and_placed_with_progress(server, tmp_path):
    dest = tmp_path / "models" / "sam.pth"  # the folder is made
    progress = Recorder()
    assert download_file(server.url, str(dest), sha256=SHA, size=len(DATA), progress=progress) == str(dest)
    assert dest.read_bytes() == DATA
    assert os.listdir(dest.parent) == ["sam.pth"]
    assert progress.values == sorted(progress.values) and progress.values[-1] == 100.0 and len(progress.values) > 2
    assert server.ranges == [None]


def test_wrong_checksum_is_a_clear_error_and_leaves_nothing(server, tmp_path):
    dest = tmp_path / "sam.pth"
    with pytest.raises(ChecksumError, match=r"has sha256 [0-9a-f]{64}, not the expected 0{64}; it was deleted") as err:
        download_file(server.url, str(dest), sha256="0" * 64)
    assert isinstance(err.value, CheckpointError) and "\n" not in str(err.value)
    assert os.listdir(tmp_path) == []


def test_wrong_size_is_caught_before_hashing_and_leaves_nothing(server, tmp_path):
    with pytest.raises(ChecksumError, match=f"has {len(DATA)} bytes, not {len(DATA) + 1}"):
        download_file(server.url, str(tmp_path / "sam.pth"), sha256=SHA, size=len(DATA) + 1)
    assert os.listdir(tmp_path) == []


def test_interrupted_download_keeps_the_part_and_the_next_call_resumes_with_range(server, tmp_path):
    dest = str(tmp_path / "sam.pth")
    server.drops = [700_000]
    with pytest.raises(DownloadError, match="700000 bytes are kept in .*sam.pth.part and the next try resumes"):
        download_file(server.url, dest, sha256=SHA, size=len(DATA), retries=0)
    assert not os.path.exists(dest) and os.path.getsize(part_path(dest)) == 700_000

    download_file(server.url, dest, sha256=SHA, size=len(DATA))
    assert server.ranges == [None, "bytes=700000-"]
    assert open(dest, "rb").read() == DATA and not os.path.exists(part_path(dest))


def test_a_dropped_connection_is_resumed_within_one_call(server, tmp_path):
    dest = str(tmp_path / "sam.pth")
    server.drops = [1_000_000, 500_000]
    download_file(server.url, dest, sha256=SHA, size=len(DATA), retries=3)
    assert server.ranges == [None, "bytes=1000000-", "bytes=1500000-"]
    assert open(dest, "rb").read() == DATA


def test_a_server_ignoring_range_restarts_the_file_cleanly(server, tmp_path):
    dest = str(tmp_path / "sam.pth")
    server.drops = [300_000]
    with pytest.raises(DownloadError):
        download_file(server.url, dest, sha256=SHA, retries=0)
    server.ignore_range = True
    download_file(server.url, dest, sha256=SHA)
    assert open(dest, "rb").read() == DATA  # not the first 300000 bytes twice


def test_a_complete_part_is_verified_without_downloading_again(server, tmp_path):
    dest = str(tmp_path / "sam.pth")
    with open(part_path(dest), "wb") as f:
        f.write(DATA)
    download_file(server.url, dest, sha256=SHA)  # no size known: the server answers 416 to the range
    assert server.ranges == [f"bytes={len(DATA)}-"] and open(dest, "rb").read() == DATA


def test_cancel_keeps_a_resumable_part_and_no_final_file(server, tmp_path):
    dest = str(tmp_path / "sam.pth")
    with pytest.raises(Canceled, match="Download canceled; [0-9]+ bytes are kept"):
        download_file(server.url, dest, sha256=SHA, size=len(DATA), progress=Recorder(cancel_after_checks=1))
    kept = os.path.getsize(part_path(dest))
    assert 0 < kept < len(DATA) and not os.path.exists(dest)
    download_file(server.url, dest, sha256=SHA, size=len(DATA))
    assert server.ranges[-1] == f"bytes={kept}-" and open(dest, "rb").read() == DATA


def test_missing_file_on_the_server_says_so(server, tmp_path):
    with pytest.raises(DownloadError, match=r"refused .*/nothing.pth \(HTTP 404"):
        download_file(server.url.replace("model.pth", "nothing.pth"), str(tmp_path / "x.pth"))
    assert os.listdir(tmp_path) == []


def test_unreachable_server_is_one_sentence(tmp_path):
    with pytest.raises(DownloadError, match="failed .*0 bytes are kept"):
        download_file("http://127.0.0.1:9/model.pth", str(tmp_path / "x.pth"), retries=0, timeout=5)


def test_official_models_are_known_by_name_url_size_and_sha256():
    specs = model_registry.OFFICIAL_MODELS
    sam2 = {"sam2.1_hiera_tiny", "sam2.1_hiera_small", "sam2.1_hiera_base_plus", "sam2.1_hiera_large"}
    assert set(specs) == {"vit_b", "vit_l", "vit_h"} | sam2
    assert specs["vit_b"].url == "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth"
    assert specs["sam2.1_hiera_tiny"].url == "https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_tiny.pt"
    assert specs["sam2.1_hiera_tiny"].sha256 == "7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69"
    assert specs["vit_b"].size == 375042383 and specs["vit_h"].size == 2564550879 and specs["vit_l"].size == 1249524607
    assert specs["vit_l"].sha256 == "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622"
    for spec in specs.values():
        assert len(spec.sha256) == 64 and int(spec.sha256, 16) >= 0
        assert spec.filename == f"{spec.name}.pt" if spec.name in sam2 else spec.filename.startswith(f"sam_{spec.name}_")
    with pytest.raises(CheckpointError, match="Unknown model 'vit_x'; the official ones are vit_b, vit_l, vit_h, sam2.1_hiera_tiny"):
        model_registry.spec_for("vit_x")


def test_a_model_not_downloaded_is_missing_and_says_how_to_get_it(tmp_path):
    folder = str(tmp_path)
    states = {r.name: r.state for r in model_registry.list_models(folder)}
    assert set(states) >= {"vit_b", "vit_l", "vit_h", "sam2.1_hiera_tiny"}
    assert set(states.values()) == {"missing", "manual"} and states["sam3"] == "manual"  # SAM 3 is gated: never downloaded
    with pytest.raises(CheckpointError, match="not downloaded yet; run: seg models download vit_b"):
        model_registry.checkpoint_path("vit_b", folder)
    with pytest.raises(CheckpointError, match="Meta's SAM License: accept it on huggingface.co/facebook/sam3"):
        model_registry.checkpoint_path("sam3", folder)


def test_registry_states_missing_partial_ready(server, tmp_path, monkeypatch):
    spec = model_registry.ModelSpec("vit_b", "sam_vit_b_test.pth", len(DATA), SHA, "test file")
    monkeypatch.setitem(model_registry.OFFICIAL_MODELS, "vit_b", spec)
    folder = str(tmp_path)
    server.drops = [200_000]
    with pytest.raises(DownloadError):
        download_file(server.url, os.path.join(folder, spec.filename), SHA, len(DATA), retries=0)
    row = {r.name: r for r in model_registry.list_models(folder)}["vit_b"]
    assert row.state == "partial" and row.detail.startswith("6% downloaded")
    path = model_registry.download_model("vit_b", folder, url=server.url)
    assert server.ranges[-1] == "bytes=200000-"
    assert {r.name: r.state for r in model_registry.list_models(folder)}["vit_b"] == "ready"
    assert model_registry.checkpoint_path("vit_b", folder) == path
    calls = len(server.ranges)
    assert model_registry.download_model("vit_b", folder, url=server.url) == path and len(server.ranges) == calls
