"""Weights integrity and the model zoo (`poseface weights list/get`), against a local HTTP server."""

import dataclasses
import hashlib
import http.server
import re
import shutil
import socket
import threading
from pathlib import Path

import pytest

from poseface import zoo
from poseface.cli import main
from poseface.errors import PoseFaceError
from poseface.weights import WeightsSpec, digest_file, fetch, resolve, verify_local

REPO = Path(__file__).resolve().parents[1]
PAYLOAD = bytes(range(256)) * 40  # 10,240 bytes
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves `server.files` (path -> bytes), honouring `Range: bytes=N-`; logs (path, range, bytes sent)."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        wanted = self.headers.get("Range")
        start = int(re.fullmatch(r"bytes=(\d+)-", wanted).group(1)) if wanted else 0
        if start >= len(body):
            self.send_error(416)
            return
        chunk = body[start:]
        self.send_response(206 if wanted else 200)
        if wanted:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(chunk)))
        self.end_headers()
        # logged before the body goes out: the client may have its bytes (and the test its assertion) before
        # this thread runs again
        self.server.log.append((self.path, wanted, len(chunk)))
        self.wfile.write(chunk)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    httpd.files, httpd.log = {"/model.pth": PAYLOAD}, []
    httpd.timeout = 5
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def home(tmp_path, monkeypatch):
    folder = tmp_path / "home"
    monkeypatch.setenv("POSEFACE_HOME", str(folder))
    return folder


def use_entry(monkeypatch, url: str, sha256: str = "", hash_prefix: str = "", name: str = "test-model") -> zoo.ZooEntry:
    """Put one test entry (served by the local server) in the zoo, beside the real ones."""
    spec = WeightsSpec("model.pth", url, sha256, "the test model", hash_prefix=hash_prefix)
    entry = zoo.ZooEntry(name, spec, "tests", "none")
    monkeypatch.setattr(zoo, "ZOO", zoo.ZOO + (entry,))
    return entry


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---------------------------------------------------------------- integrity


def test_a_prefix_can_not_pose_as_a_full_sha256():
    with pytest.raises(ValueError, match="full 64-hex"):
        WeightsSpec("x.pth", "", "dcbb9e9d", "x")
    assert WeightsSpec("x.pth", "", "", "x", hash_prefix="dcbb9e9d").check == "prefix"
    assert WeightsSpec("x.pth", "", DIGEST, "x").check == "sha256"
    assert WeightsSpec("x.pth", "", "", "x").check == "unverified"


def test_every_zoo_entry_has_a_full_sha256_or_says_what_it_has():
    for entry in zoo.ZOO:
        spec = entry.spec
        assert spec.sha256 == "" or len(spec.sha256) == 64, entry.name
        prefix = re.search(r"-([0-9a-f]{8})\.pth$", spec.name)  # torch.hub names carry the published prefix
        assert spec.hash_prefix == (prefix.group(1) if prefix else ""), entry.name
    assert (
        zoo.spec("poseface-small-utkface").sha256
        == hashlib.sha256(zoo.entry("poseface-small-utkface").local_path().read_bytes()).hexdigest()
    )


def test_prefix_only_file_prints_its_full_digest_and_says_prefix(tmp_path, caplog):
    path = tmp_path / "model.pth"
    path.write_bytes(PAYLOAD)
    spec = WeightsSpec("model.pth", "", "", "the test model", hash_prefix=DIGEST[:8])
    with caplog.at_level("WARNING", logger="poseface.weights"):
        assert resolve(spec, path) == path
    assert DIGEST in caplog.text and "prefix check only" in caplog.text
    unpublished = dataclasses.replace(spec, hash_prefix="")
    caplog.clear()
    with caplog.at_level("WARNING", logger="poseface.weights"):
        resolve(unpublished, path)
    (line,) = caplog.messages
    assert DIGEST in line and "unverified" in line
    with pytest.raises(PoseFaceError, match="checksum mismatch") as info:
        resolve(dataclasses.replace(spec, hash_prefix="00000000"), path)
    assert DIGEST in str(info.value) and "\n" not in str(info.value)


# ---------------------------------------------------------------- weights get


def test_get_downloads_verifies_and_then_finds_it_without_a_request(server, home, monkeypatch, capsys):
    httpd, base = server
    use_entry(monkeypatch, f"{base}/model.pth", sha256=DIGEST)
    code, out, err = run(capsys, "weights", "get", "test-model", "--no-progress")
    assert code == 0, err
    assert (home / "model.pth").read_bytes() == PAYLOAD and not (home / "model.pth.part").exists()
    assert DIGEST in out and "verified against the published sha256" in out
    assert httpd.log == [("/model.pth", None, len(PAYLOAD))]
    code, out, _ = run(capsys, "weights", "get", "test-model")
    assert code == 0 and "already here" in out and len(httpd.log) == 1


def test_get_into_weights_dir_records_a_digest_when_none_is_published(server, home, tmp_path, monkeypatch, capsys):
    _, base = server
    use_entry(monkeypatch, f"{base}/model.pth")
    folder = tmp_path / "mine"
    code, out, err = run(capsys, "weights", "get", "test-model", "--weights-dir", str(folder), "--no-progress")
    assert code == 0, err
    assert not home.exists() and (folder / "model.pth").read_bytes() == PAYLOAD
    assert "unverified" in out and DIGEST in out and out.count("\n") == 1
    assert (folder / "model.pth.sha256").read_text().split()[0] == DIGEST
    # from now on the recorded digest is checked in full
    (folder / "model.pth").write_bytes(PAYLOAD[:-1] + b"\x00")
    code, _, err = run(capsys, "weights", "get", "test-model", "--weights-dir", str(folder))
    assert code == 2 and "checksum mismatch" in err and "model.pth.sha256" in err and err.count("\n") == 1


def test_checksum_mismatch_removes_the_download_with_one_line(server, home, monkeypatch, capsys):
    _, base = server
    use_entry(monkeypatch, f"{base}/model.pth", sha256="0" * 64)
    code, out, err = run(capsys, "weights", "get", "test-model", "--no-progress")
    assert code == 2 and err.count("\n") == 1 and "checksum mismatch" in err and str(home / "model.pth") in err
    assert not (home / "model.pth").exists() and not (home / "model.pth.part").exists()
    assert not (home / "model.pth.sha256").exists()


def test_a_partial_download_is_resumed_with_a_range_request(server, home, monkeypatch, capsys):
    httpd, base = server
    use_entry(monkeypatch, f"{base}/model.pth", sha256=DIGEST)
    home.mkdir()
    (home / "model.pth.part").write_bytes(PAYLOAD[:3000])
    code, out, err = run(capsys, "weights", "get", "test-model", "--no-progress")
    assert code == 0, err
    assert httpd.log == [("/model.pth", "bytes=3000-", len(PAYLOAD) - 3000)]
    assert (home / "model.pth").read_bytes() == PAYLOAD and not (home / "model.pth.part").exists()


def test_a_complete_partial_file_needs_no_more_bytes(server, home, monkeypatch):
    httpd, base = server
    spec = WeightsSpec("model.pth", f"{base}/model.pth", DIGEST, "the test model")
    home.mkdir()
    (home / "model.pth.part").write_bytes(PAYLOAD)
    assert fetch(spec, home / "model.pth", progress=False) == DIGEST
    assert httpd.log == []  # the server answered 416: nothing left to send


def test_offline_is_one_line_with_the_url_and_where_to_put_it(home, monkeypatch, capsys):
    url = f"http://127.0.0.1:{closed_port()}/model.pth"
    use_entry(monkeypatch, url, sha256=DIGEST)
    code, _, err = run(capsys, "weights", "get", "test-model", "--no-progress")
    assert code == 2 and err.count("\n") == 1
    assert url in err and str(home / "model.pth") in err and "by hand" in err


def test_unknown_name_lists_the_names(capsys):
    code, _, err = run(capsys, "weights", "get", "no-such-model")
    assert code == 2 and err.count("\n") == 1
    assert all(name in err for name in zoo.names())


def test_list_shows_every_entry_and_what_is_here(home, capsys):
    home.mkdir()
    shutil.copy(zoo.entry("poseface-small-utkface").local_path(), home / "unrelated.safetensors")
    (home / "vgg19-dcbb9e9d.pth").write_bytes(b"stand-in")
    code, out, _ = run(capsys, "weights", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["name", "for"] and len(lines) == len(zoo.ZOO) + 1
    for entry in zoo.ZOO:
        (line,) = [line for line in lines if line.startswith(entry.name + " ")]
        assert entry.where_from() in line and entry.licence in line
        assert ("prefix" in line) == bool(entry.spec.hash_prefix)
        assert ("unverified" in line) == (entry.spec.check == "unverified")
    vgg = next(line for line in lines if line.startswith("vgg19 "))
    assert vgg.endswith(str(home / "vgg19-dcbb9e9d.pth")) and "0.0 MB" in vgg
    assert next(line for line in lines if line.startswith("GPEN-BFR-512 ")).endswith("no")


def test_readme_models_table_is_the_registry():
    assert zoo.markdown_table() in (REPO / "README.md").read_text()


# ---------------------------------------------------------------- --weights NAME


def test_weights_name_resolves_to_the_local_file_or_one_line(home, tmp_path, monkeypatch, capsys):
    bundled = zoo.entry("poseface-small-utkface").local_path()
    assert zoo.weights_file("poseface-small-utkface") == bundled
    assert zoo.weights_file(str(bundled)) == bundled
    code, _, err = run(
        capsys, "restore", str(tmp_path / "none.png"), "-o", str(tmp_path / "out"), "--weights", "GPEN-BFR-512"
    )
    assert code == 2 and err.count("\n") == 1
    assert "poseface weights get GPEN-BFR-512" in err and zoo.spec("GPEN-BFR-512").url in err
    assert str(home / "GPEN-BFR-512.pth") in err
    # a downloaded entry loads by name, checked against its digest
    entry = use_entry(
        monkeypatch, "http://127.0.0.1:9/x", sha256=hashlib.sha256(bundled.read_bytes()).hexdigest(), name="copy"
    )
    monkeypatch.setattr(
        zoo,
        "ZOO",
        zoo.ZOO[:-1] + (dataclasses.replace(entry, spec=dataclasses.replace(entry.spec, name="copy.safetensors")),),
    )
    home.mkdir()
    shutil.copy(bundled, home / "copy.safetensors")
    from poseface.models import load_model

    assert load_model("copy").config.size == 128
    (home / "copy.safetensors").write_bytes(b"x")
    with pytest.raises(PoseFaceError, match="checksum mismatch"):
        load_model("copy")
    code, _, err = run(
        capsys,
        "evaluate",
        "--weights",
        "GPEN-BFR-256",
        "--hq",
        str(tmp_path),
        "--degrade-seed",
        "0",
        "-o",
        str(tmp_path / "e.md"),
    )
    assert code == 2 and "poseface weights get GPEN-BFR-256" in err and err.count("\n") == 1


def test_recorded_digest_is_used_for_a_cached_file(home):
    home.mkdir()
    spec = WeightsSpec("model.pth", "", "", "the test model")
    (home / "model.pth").write_bytes(PAYLOAD)
    digest_file(home / "model.pth").write_text(f"{DIGEST}  model.pth\n")
    assert verify_local(home / "model.pth", spec) == DIGEST
    digest_file(home / "model.pth").write_text(f"{'1' * 64}  model.pth\n")
    with pytest.raises(PoseFaceError, match="recorded in model.pth.sha256"):
        resolve(spec, download=False)
