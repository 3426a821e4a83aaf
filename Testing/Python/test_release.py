"""The release script (scripts/release.py) and the build-time weights download
(CMake/TumorClassifierDefaultWeights.cmake), on copies and small repositories made here."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import release  # noqa: E402
from test_model_cache import BundleServer  # noqa: E402  (its local HTTP server)

EXAMPLE = "https://github.com/example/SlicerTumorClassifier"


@pytest.fixture()
def release_tree(tmp_path) -> Path:
    """The files a release reads and writes, copied out of the working tree."""
    tree = tmp_path / "tree"
    for relative in ("CMakeLists.txt", "pyproject.toml", "LICENSE", release.ICON,
                     *release.SCREENSHOTS, "Resources/Models/default/metadata.json"):
        (tree / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, tree / relative)
    return tree


def run_release(*arguments) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "release.py"), *arguments],
                          capture_output=True, text=True, timeout=300)


def test_write_puts_literal_urls_and_the_weights_address_in_cmake(release_tree, tmp_path):
    done = run_release("--root", str(release_tree), "--repository", EXAMPLE, "--write",
                       "--out", str(tmp_path / "catalog"), "--skip-clone-size")
    assert done.returncode == 0, done.stdout + done.stderr
    cmake = release_tree / "CMakeLists.txt"
    icon = release.cmake_value(cmake, "EXTENSION_ICONURL")
    assert icon == f"{EXAMPLE}/raw/main/Resources/Icons/TumorClassifier.png"
    assert release.cmake_value(cmake, "EXTENSION_HOMEPAGE") == EXAMPLE
    model = json.loads((release_tree / "Resources/Models/default/metadata.json").read_text())
    assert release.cmake_value(cmake, "TUMORCLASSIFIER_WEIGHTS_URL") == \
        f"{EXAMPLE}/releases/download/{model['name']}/model.safetensors"
    assert release.cmake_value(cmake, "TUMORCLASSIFIER_WEIGHTS_SHA256") == \
        model["weights_sha256"]
    entry = json.loads((tmp_path / "catalog" / "TumorClassifier.json").read_text())
    assert entry["scm_url"] == EXAMPLE + ".git" and entry["category"] == "Neuroimaging"
    assert all(line.startswith("pass") for line in done.stdout.splitlines()[1:])


def test_the_address_comes_from_pyproject_and_its_absence_is_one_line(release_tree):
    missing = run_release("--root", str(release_tree), "--skip-clone-size")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "[tool.tumorclassifier.release]" in missing.stderr
    pyproject = release_tree / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('repository = ""',
                                                       f'repository = "{EXAMPLE}"'))
    assert release.configured_repository(pyproject) == EXAMPLE


def test_index_checks_fail_where_the_index_would(release_tree):
    done = run_release("--root", str(release_tree), "--repository",
                       "https://github.com/example/TumorClassifier", "--skip-clone-size")
    assert done.returncode == 1
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert any('starts with "Slicer"' in line for line in failed)
    assert any("EXTENSION_ICONURL" in line for line in failed)  # not written yet: empty


def git(folder: Path, *arguments) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *arguments],
                          cwd=folder, check=True, capture_output=True, text=True).stdout


def test_public_export_drops_the_weights_from_every_commit(tmp_path):
    source = tmp_path / "source"
    weights = source / release.WEIGHTS
    weights.parent.mkdir(parents=True)
    git(source, "init", "-q", "-b", "main")
    for version in range(3):  # three versions of the weights, as the real history has
        weights.write_bytes(random.Random(version).randbytes(1_000_000))  # incompressible
        (source / "code.py").write_text(f"VERSION = {version}\n")
        git(source, "add", "-A")
        git(source, "commit", "-q", "-m", f"version {version}")
    public = release.export_public(source, tmp_path / "public")
    assert git(public, "log", "--all", "--format=%H", "--", release.WEIGHTS) == ""
    assert len(git(public, "log", "--format=%H").split()) == 3
    assert git(public, "show", "HEAD:code.py") == "VERSION = 2\n"
    assert release.clone_size_mb(public) < release.clone_size_mb(source) - 2.5
    assert release.largest_history_blobs(source, 1)[0][1] == release.WEIGHTS


@pytest.fixture()
def weights_server():
    data = b"weights" * 1000
    server = BundleServer({"model.safetensors": data})
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, data
    server.shutdown()
    server.server_close()


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed here")
def test_build_downloads_missing_weights_once_and_checks_them(tmp_path, weights_server):
    server, data = weights_server
    script = ROOT / "CMake" / "TumorClassifierDefaultWeights.cmake"

    def configure(sha256):
        return subprocess.run(["cmake", f"-DTUMORCLASSIFIER_SOURCE_DIR={tmp_path}",
                               f"-DTUMORCLASSIFIER_WEIGHTS_URL={server.url}/model.safetensors",
                               f"-DTUMORCLASSIFIER_WEIGHTS_SHA256={sha256}", "-P", str(script)],
                              capture_output=True, text=True, timeout=120)
    folder = tmp_path / "Resources/Models/default"
    folder.mkdir(parents=True)
    wrong = configure("0" * 64)
    assert wrong.returncode != 0 and "nothing was kept" in wrong.stderr
    assert list(folder.iterdir()) == []  # no half-written or wrong file
    right = configure(hashlib.sha256(data).hexdigest())
    assert right.returncode == 0, right.stderr
    assert (folder / "model.safetensors").read_bytes() == data
    missing = subprocess.run(["cmake", f"-DTUMORCLASSIFIER_SOURCE_DIR={tmp_path}",
                              f"-DTUMORCLASSIFIER_WEIGHTS_URL={server.url}/other.bin",
                              "-DTUMORCLASSIFIER_WEIGHTS_SHA256=0", "-P", str(script)],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 0  # the weights are there now: nothing is fetched
    requests = len(server.requests)
    assert configure(hashlib.sha256(data).hexdigest()).returncode == 0
    assert len(server.requests) == requests  # present: not downloaded again


def test_the_public_export_holds_what_write_wrote_not_the_committed_head(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    git(source, "init", "-q", "-b", "main")
    (source / "CMakeLists.txt").write_text('set(EXTENSION_HOMEPAGE "")\n')
    git(source, "add", "-A")
    git(source, "commit", "-q", "-m", "start")
    written = 'set(EXTENSION_HOMEPAGE "https://github.com/example/SlicerTumorClassifier")\n'
    (source / "CMakeLists.txt").write_text(written)  # as --write leaves it, uncommitted
    public = release.export_public(source, tmp_path / "public")
    assert git(public, "show", "HEAD:CMakeLists.txt") == written
    assert len(git(public, "log", "--format=%H").split()) == 2
