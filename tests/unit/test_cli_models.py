"""`seg models list / download / add` end to end: a real HTTP server on 127.0.0.1, a real Ctrl+C
(SIGINT) on a real `seg` process, a real tiny SAM checkpoint."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from seg_qgis_plugin.cli.main import main
from seg_qgis_plugin.core.models import registry as model_registry

DATA = os.urandom(2_000_000)
SHA = hashlib.sha256(DATA).hexdigest()
HEAD = 150_000  # what the stalling server sends before it stops


@pytest.fixture
def server():
    """/model.pth: DATA with Range support. /stall.pth: HEAD bytes of DATA, then silence until closed."""
    release = threading.Event()
    ranges = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            ranges.append(self.headers.get("Range"))
            start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(DATA) - 1}/{len(DATA)}")
            self.send_header("Content-Length", str(len(DATA) - start))
            self.end_headers()
            if self.path == "/stall.pth":
                self.wfile.write(DATA[:HEAD])
                self.wfile.flush()
                release.wait(30)
                return
            self.wfile.write(DATA[start:])

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.ranges = ranges
    yield httpd
    release.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def test_vit_b(monkeypatch):
    """vit_b's registry entry pointing at DATA (the real one is 375 MB from the internet)."""
    spec = model_registry.ModelSpec("vit_b", "sam_vit_b_01ec64.pth", len(DATA), SHA, "test stand-in")
    monkeypatch.setitem(model_registry.OFFICIAL_MODELS, "vit_b", spec)
    return spec


def test_list_shows_the_official_models(tmp_path, capsys):
    assert main(["models", "list", "--folder", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().split("\n")
    assert [ln.split()[0] for ln in lines] == ["vit_b", "vit_l", "vit_h", "sam2.1_hiera_tiny", "sam2.1_hiera_small",
                                               "sam2.1_hiera_base_plus", "sam2.1_hiera_large", "sam3"]
    assert all(" missing " in ln for ln in lines[:-1])
    assert " manual " in lines[-1] and "SAM License" in lines[-1]  # gated: the user downloads it
    assert main(["models", "list", "--folder", str(tmp_path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[2]["path"] == str(tmp_path / "sam_vit_h_4b8939.pth") and rows[2]["size"] == 2564550879
    assert rows[3]["path"] == str(tmp_path / "sam2.1_hiera_tiny.pt") and rows[3]["size"] == 156008466
    assert model_registry.OFFICIAL_MODELS["sam2.1_hiera_large"].url == \
        "https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_large.pt"


def test_download_verifies_and_places_the_file(server, test_vit_b, tmp_path, capsys):
    assert main(["models", "download", "vit_b", "--folder", str(tmp_path), "--url", server.base + "/model.pth"]) == 0
    out = capsys.readouterr()
    assert out.out.strip() == f"vit_b: {tmp_path / 'sam_vit_b_01ec64.pth'} (sha256 verified)"
    assert (tmp_path / "sam_vit_b_01ec64.pth").read_bytes() == DATA and os.listdir(tmp_path) == ["sam_vit_b_01ec64.pth"]
    main(["models", "list", "--folder", str(tmp_path)])
    assert " ready " in capsys.readouterr().out.split("\n")[0]


def test_download_with_a_wrong_checksum_exits_2_and_leaves_nothing(server, monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(model_registry.OFFICIAL_MODELS, "vit_b",
                        model_registry.ModelSpec("vit_b", "sam_vit_b_01ec64.pth", len(DATA), "ab" * 32, "wrong sha"))
    assert main(["models", "download", "vit_b", "--folder", str(tmp_path), "--url", server.base + "/model.pth"]) == 2
    err = capsys.readouterr().err.replace("\r", "\n").strip().split("\n")[-1]  # after the cleared bar
    assert err.startswith("seg: error: The download of sam_vit_b_01ec64.pth has sha256 ") and "it was deleted" in err
    assert os.listdir(tmp_path) == []


def test_ctrl_c_keeps_a_part_that_the_next_download_resumes(server, test_vit_b, tmp_path, capsys):
    command = [sys.executable, "-m", "seg_qgis_plugin.cli", "models", "download", "vit_b", "--folder", str(tmp_path),
               "--url", server.base + "/stall.pth"]
    # as from a terminal: Ctrl+C reaches the process even if this test process ignores SIGINT (children inherit that)
    proc = subprocess.Popen(command, cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    part = tmp_path / "sam_vit_b_01ec64.pth.part"
    deadline = time.monotonic() + 30
    while not (part.exists() and part.stat().st_size == HEAD) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert part.exists() and part.stat().st_size == HEAD, proc.communicate(timeout=5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert f"interrupted; {HEAD} bytes are kept in {part}; run the same command to resume." in err
    assert os.listdir(tmp_path) == [part.name]

    assert main(["models", "download", "vit_b", "--folder", str(tmp_path), "--url", server.base + "/model.pth"]) == 0
    assert server.ranges[-1] == f"bytes={HEAD}-"
    assert (tmp_path / "sam_vit_b_01ec64.pth").read_bytes() == DATA and not part.exists()


def test_add_a_local_checkpoint_then_list_and_resolve_it(tiny_checkpoint, tmp_path, capsys):
    folder = str(tmp_path / "models")
    assert main(["models", "add", tiny_checkpoint, "--name", "tiny", "--folder", folder]) == 0
    sha = hashlib.sha256(open(tiny_checkpoint, "rb").read()).hexdigest()
    assert capsys.readouterr().out.strip() == f"tiny: vit_tiny at {tiny_checkpoint}, sha256 {sha}"
    assert main(["models", "list", "--folder", folder]) == 0
    row = capsys.readouterr().out.strip().split("\n")[-1].split()
    assert row[:2] == ["tiny", "vit_tiny"] and "added" in row and tiny_checkpoint in row
    assert model_registry.checkpoint_path("tiny", folder) == tiny_checkpoint
    assert model_registry.read_local_models(folder)["tiny"].sha256 == sha


def test_add_refuses_a_file_that_is_not_sam_weights(tmp_path, capsys):
    pytest.importorskip("torch", reason="checking an unknown file loads it with torch")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(os.urandom(1000))
    assert main(["models", "add", str(junk), "--folder", str(tmp_path / "m")]) == 2
    assert "is not a readable SAM checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()  # nothing recorded


def test_add_recognises_an_official_file_by_sha256_without_loading_it(test_vit_b, tmp_path, capsys, monkeypatch):
    from seg_qgis_plugin.core.models import checkpoints

    monkeypatch.setattr(checkpoints, "load_sam", lambda *a, **k: pytest.fail("an official file needs no loading"))
    copy = tmp_path / "my_copy.pth"
    copy.write_bytes(DATA)
    assert main(["models", "add", str(copy), "--folder", str(tmp_path / "m")]) == 0
    assert capsys.readouterr().out.startswith(f"my_copy: vit_b at {copy}")
    assert main(["models", "add", str(copy), "--name", "vit_b", "--folder", str(tmp_path / "m")]) == 2
    assert "is the name of an official model" in capsys.readouterr().err


def test_the_models_folder_comes_from_the_config_file(tmp_path, monkeypatch, capsys):
    config = tmp_path / "config.ini"
    config.write_text(f"[seg]\nmodels_folder = {tmp_path / 'from-config'}\n")
    monkeypatch.setenv("SEG_CONFIG", str(config))
    assert main(["models", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["path"] == str(tmp_path / "from-config" / "sam_vit_b_01ec64.pth")
