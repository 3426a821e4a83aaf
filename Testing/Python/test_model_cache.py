"""Published model bundles by URL and sha256, against a real HTTP server on 127.0.0.1: one
download into the cache, then none; a file placed by hand is used offline; a wrong checksum,
an interrupted download and no network are clear errors that leave nothing behind."""

from __future__ import annotations

import hashlib
import http.server
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import make_tiny_bundle

from TumorClassifierLib.errors import InputError
from TumorClassifierLib.inference import Classifier
from TumorClassifierLib.model_cache import CACHE_ENVIRONMENT, cache_dir, fetch_bundle


class BundleServer(http.server.ThreadingHTTPServer):
    """Serves `files` (name -> bytes); '/cut/NAME' sends half the body and hangs up."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files, self.requests = files, []
        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the standard library's name)
        self.server.requests.append(self.path)
        cut = self.path.startswith("/cut/")
        body = self.server.files.get(self.path.removeprefix("/cut").lstrip("/"))
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if cut else body)
        if cut:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def bundle_bytes(tmp_path_factory) -> bytes:
    return make_tiny_bundle(tmp_path_factory.mktemp("b") / "tiny.zip", archive=True).read_bytes()


@pytest.fixture()
def server(bundle_bytes):
    server = BundleServer({"tiny.zip": bundle_bytes})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_downloaded_once_verified_and_loadable(server, bundle_bytes, tmp_path):
    seen = []
    path = fetch_bundle(f"{server.url}/tiny.zip", sha(bundle_bytes), cache=tmp_path,
                        progress=lambda done, total: seen.append((done, total)))
    assert path == tmp_path / sha(bundle_bytes) / "tiny.zip"
    assert path.read_bytes() == bundle_bytes
    assert seen[-1] == (len(bundle_bytes), len(bundle_bytes))
    assert fetch_bundle(f"{server.url}/tiny.zip", sha(bundle_bytes), cache=tmp_path) == path
    assert server.requests == ["/tiny.zip"]  # the second call did not download
    assert Classifier.from_bundle(path, device="cpu").metadata.name == "tiny-test"
    assert sorted(p.name for p in tmp_path.iterdir()) == [sha(bundle_bytes)]
    assert path.stat().st_mode & 0o777 == 0o666 & ~current_umask()  # readable by others too


def current_umask() -> int:
    import os
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_two_bundles_under_one_file_name_are_kept_apart(server, bundle_bytes, tmp_path):
    other = b"another bundle, published under the same file name"
    (tmp_path / sha(other)).mkdir()
    (tmp_path / sha(other) / "tiny.zip").write_bytes(other)
    path = fetch_bundle(f"{server.url}/tiny.zip", sha(bundle_bytes), cache=tmp_path)
    assert path.read_bytes() == bundle_bytes
    assert (tmp_path / sha(other) / "tiny.zip").read_bytes() == other


def test_a_file_placed_by_hand_is_used_without_any_network(bundle_bytes, tmp_path):
    (tmp_path / "tiny.zip").write_bytes(bundle_bytes)
    url = "https://unreachable.invalid/releases/tiny.zip"  # never contacted
    assert fetch_bundle(url, sha(bundle_bytes), cache=tmp_path) == tmp_path / "tiny.zip"


def test_a_wrong_file_placed_by_hand_is_named_not_used(bundle_bytes, tmp_path):
    (tmp_path / "tiny.zip").write_bytes(b"something else")
    with pytest.raises(InputError, match=r"tiny.zip there has another sha256"):
        fetch_bundle("https://unreachable.invalid/tiny.zip", sha(bundle_bytes), cache=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.zip"]  # nothing else left


def test_wrong_checksum_keeps_nothing(server, bundle_bytes, tmp_path):
    with pytest.raises(InputError, match="not the expected .* nothing was kept") as caught:
        fetch_bundle(f"{server.url}/tiny.zip", "0" * 64, cache=tmp_path)
    assert str(caught.value).count(server.url) == 1  # one message, not one inside another
    assert list(tmp_path.iterdir()) == []


def test_interrupted_download_keeps_nothing(server, bundle_bytes, tmp_path):
    with pytest.raises(InputError) as caught:
        fetch_bundle(f"{server.url}/cut/tiny.zip", sha(bundle_bytes), cache=tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{server.url}/cut/tiny.zip: ") and "\n" not in message
    assert f"put it in {tmp_path}" in message
    assert list(tmp_path.iterdir()) == []


def test_no_network_is_a_clear_error(bundle_bytes, tmp_path):
    with socket.socket() as probe:  # a port on 127.0.0.1 where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(InputError, match=r"cannot download .* put it in"):
        fetch_bundle(f"http://127.0.0.1:{port}/tiny.zip", sha(bundle_bytes), cache=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_missing_on_the_server_and_bad_arguments(server, bundle_bytes, tmp_path):
    with pytest.raises(InputError, match="answered 404"):
        fetch_bundle(f"{server.url}/other.zip", sha(bundle_bytes), cache=tmp_path)
    with pytest.raises(InputError, match="64 hexadecimal"):
        fetch_bundle(f"{server.url}/tiny.zip", "abc", cache=tmp_path)
    with pytest.raises(InputError, match="must end in the bundle's file name"):
        fetch_bundle(f"{server.url}/", sha(bundle_bytes), cache=tmp_path)


def test_cache_folder_is_per_user_and_can_be_moved(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_ENVIRONMENT, raising=False)
    assert "TumorClassifier" in str(cache_dir()) and str(Path.home()) in str(cache_dir())
    monkeypatch.setenv(CACHE_ENVIRONMENT, str(tmp_path))
    assert cache_dir() == tmp_path


def test_cli_fetch_model(server, bundle_bytes, tmp_path):
    command = [sys.executable, "-m", "TumorClassifierLib.cli", "fetch-model",
               f"{server.url}/tiny.zip", "--sha256", sha(bundle_bytes), "--cache", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    assert done.stdout.strip() == str(tmp_path / sha(bundle_bytes) / "tiny.zip")
    bad = subprocess.run(command[:-3] + ["1" * 64, "--cache", str(tmp_path / "x")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and \
        bad.stderr.count("\n") == 1
