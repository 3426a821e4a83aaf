"""Prepare a release for the Slicer Extensions Index, and say what its checks would say.

    python scripts/release.py                       # report only
    python scripts/release.py --write [--out DIR]   # also write CMakeLists' URL lines and the
                                                    # catalog entry DIR/TumorClassifier.json
    python scripts/release.py --export-public DIR   # the public repository's history

The public repository's address lives in one place, pyproject.toml's
[tool.tumorclassifier.release] repository (`--repository` overrides it for a dry run). The
Index reads EXTENSION_HOMEPAGE, EXTENSION_ICONURL and EXTENSION_SCREENSHOTURLS literally from
CMakeLists.txt, so --write puts literal https addresses there, with the address and sha256 of
the default model's weights, which the public repository gets as a release asset instead of
history (see README, "Publishing"). The report lists the Index's checks: literal http(s) URLs,
the repository name's "Slicer" prefix, the size of a full clone of the public repository with
its history (under 100 MB), a LICENSE at the root, a 128x128 PNG icon and the screenshots.
Exit code 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from write_catalog_entry import catalog_entry  # noqa: E402

SIZE_LIMIT_MB = 100.0
ICON = "Resources/Icons/TumorClassifier.png"
SCREENSHOTS = ("docs/screenshot_overlay.png",)
WEIGHTS = "Resources/Models/default/model.safetensors"


def configured_repository(pyproject: Path = ROOT / "pyproject.toml") -> str:
    text = pyproject.read_text(encoding="utf-8")
    section = re.search(r"^\[tool\.tumorclassifier\.release\]\n(.*?)(?=^\[|\Z)", text, re.S | re.M)
    match = section and re.search(r'^repository\s*=\s*"([^"]*)"', section.group(1), re.M)
    return match.group(1).strip() if match else ""


def default_model(root: Path = ROOT) -> dict:
    import json
    return json.loads((root / "Resources/Models/default/metadata.json").read_text("utf-8"))


def release_settings(repository: str, root: Path = ROOT, revision: str = "main") -> dict:
    """The CMakeLists.txt lines a release fills in. The default model's weights become a
    release asset named after the model (upload model.safetensors to the release of that tag)."""
    base = repository.removesuffix(".git").rstrip("/")
    raw = f"{base}/raw/{revision}"
    model = default_model(root)
    return {"EXTENSION_HOMEPAGE": base,
            "EXTENSION_ICONURL": f"{raw}/{ICON}",
            "EXTENSION_SCREENSHOTURLS": " ".join(f"{raw}/{path}" for path in SCREENSHOTS),
            "TUMORCLASSIFIER_WEIGHTS_URL":
                f"{base}/releases/download/{model['name']}/model.safetensors",
            "TUMORCLASSIFIER_WEIGHTS_SHA256": model["weights_sha256"]}


def write_cmake_settings(cmake: Path, urls: dict[str, str]) -> None:
    """Each setting becomes one literal set(NAME "value") line, as the Index reads it."""
    text = cmake.read_text(encoding="utf-8")
    for name, value in urls.items():
        line = f'set({name} "{value}")'
        text, count = re.subn(rf"^set\({name} .*\)$", lambda _, line=line: line, text,
                              flags=re.M)
        if count != 1:
            raise SystemExit(f"{cmake}: expected one set({name} ...) line, found {count}")
    cmake.write_text(text, encoding="utf-8")


def cmake_value(cmake: Path, name: str) -> str | None:
    """The value as the Index's checker sees it: the literal text, variables unexpanded."""
    match = re.search(rf'^set\({name} "([^"]*)"\)', cmake.read_text(encoding="utf-8"), re.M)
    return match.group(1) if match else None


def export_public(root: Path, target: Path) -> Path:
    """The public repository: this history with the default model's weights left out of every
    commit (the extension build downloads them; CMake/TumorClassifierDefaultWeights.cmake).
    Tracked files changed in the working tree since the last commit (the URL lines that
    --write just wrote) go in as one more commit, so that what is published is what was
    written, not the committed HEAD."""
    subprocess.run(["git", "clone", "--quiet", "--no-local", str(root), str(target)], check=True,
                   capture_output=True)
    changed = subprocess.run(["git", "diff", "--name-only", "HEAD"], cwd=root, check=True,
                             capture_output=True, text=True).stdout.split()
    changed = [name for name in changed if name != WEIGHTS and (root / name).is_file()]
    if changed:
        for name in changed:
            shutil.copy2(root / name, target / name)
        subprocess.run(["git", "add", "--", *changed], cwd=target, check=True,
                       capture_output=True)
        subprocess.run(["git", "-c", "user.name=TumorClassifier release", "-c",
                        "user.email=release@localhost", "commit", "--quiet", "-m",
                        "Release settings (scripts/release.py --write)"], cwd=target, check=True,
                       capture_output=True)
    environment = dict(os.environ, FILTER_BRANCH_SQUELCH_WARNING="1")
    subprocess.run(["git", "filter-branch", "--force", "--index-filter",
                    f"git rm -q --cached --ignore-unmatch {WEIGHTS}", "--", "--all"],
                   cwd=target, check=True, capture_output=True, env=environment)
    for command in (["git", "for-each-ref", "--format=delete %(refname)", "refs/original"],):
        refs = subprocess.run(command, cwd=target, check=True, capture_output=True,
                              text=True).stdout
        subprocess.run(["git", "update-ref", "--stdin"], cwd=target, input=refs, check=True,
                       capture_output=True, text=True)
    subprocess.run(["git", "remote", "remove", "origin"], cwd=target, check=True,
                   capture_output=True)
    subprocess.run(["git", "reflog", "expire", "--expire=now", "--all"], cwd=target, check=True)
    subprocess.run(["git", "gc", "--quiet", "--prune=now"], cwd=target, check=True)
    return target


def clone_size_mb(repository_dir: Path = ROOT) -> float:
    """What `git clone` of this repository downloads: a bare clone's size, history included."""
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "clone.git"
        subprocess.run(["git", "clone", "--quiet", "--bare", "--no-local",
                        str(repository_dir), str(target)], check=True, capture_output=True)
        return sum(p.stat().st_size for p in target.rglob("*") if p.is_file()) / 1e6


def largest_history_blobs(repository_dir: Path = ROOT, count: int = 5) -> list[tuple[float, str]]:
    """(MB, path) of the largest files anywhere in the history: what to move out first."""
    objects = subprocess.run(["git", "rev-list", "--objects", "--all"], cwd=repository_dir,
                             check=True, capture_output=True, text=True).stdout
    sizes = subprocess.run(["git", "cat-file", "--batch-check=%(objecttype) %(objectname) "
                            "%(objectsize)"], cwd=repository_dir,
                           input="\n".join(line.split(" ")[0] for line in objects.splitlines()),
                           check=True, capture_output=True, text=True).stdout.splitlines()
    paths = dict(line.split(" ", 1) for line in objects.splitlines() if " " in line)
    blobs = [(int(size) / 1e6, paths.get(name, "?")) for kind, name, size in
             (line.split() for line in sizes) if kind == "blob"]
    return sorted(blobs, reverse=True)[:count]


def png_size(path: Path) -> tuple[int, int] | None:
    data = path.read_bytes()[:24]
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">II", data[16:24])


def checks(repository: str, cmake: Path, root: Path, measure_clone: bool = True) -> list:
    """[(check, passed, detail)] as the Extensions Index would judge this release."""
    results = []
    for name in ("EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS"):
        value = cmake_value(cmake, name)
        urls = (value or "").split()
        ok = bool(urls) and all(re.fullmatch(r"https?://\S+", url) for url in urls)
        results.append((f"{name} literal http(s)", ok, value or "missing"))
    repo_name = repository.removesuffix(".git").rstrip("/").rsplit("/", 1)[-1]
    results.append(('repository name starts with "Slicer"', repo_name.startswith("Slicer"),
                    repo_name or "no repository address set"))
    results.append(("LICENSE at the root", (root / "LICENSE").is_file(), "LICENSE"))
    icon = png_size(root / ICON) if (root / ICON).is_file() else None
    results.append(("icon is a 128x128 PNG", icon == (128, 128), f"{ICON}: {icon}"))
    for path in SCREENSHOTS:
        results.append((f"screenshot {path} exists", (root / path).is_file(), path))
    if measure_clone:
        with tempfile.TemporaryDirectory() as folder:
            public = clone_size_mb(export_public(root, Path(folder) / "public"))
        results.append((f"public repository (--export-public): full clone < "
                        f"{SIZE_LIMIT_MB:.0f} MB", public < SIZE_LIMIT_MB, f"{public:.1f} MB"))
        size = clone_size_mb(root)
        largest = ", ".join(f"{path} {mb:.1f} MB" for mb, path in largest_history_blobs(root, 3))
        results.append(("(this development repository, for reference)", True,
                        f"{size:.1f} MB; largest in history: {largest}"))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repository", help="https address of the public repository "
                        "(default: pyproject.toml [tool.tumorclassifier.release] repository)")
    parser.add_argument("--revision", default="main")
    parser.add_argument("--write", action="store_true", help="write CMakeLists.txt's URL lines "
                        "and the catalog entry")
    parser.add_argument("--out", type=Path, default=ROOT, help="folder for TumorClassifier.json")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository to release")
    parser.add_argument("--skip-clone-size", action="store_true")
    parser.add_argument("--export-public", type=Path, metavar="DIR", help="write the public "
                        "repository (history without the weights) to DIR, to push from there")
    args = parser.parse_args(argv)
    repository = args.repository or configured_repository(args.root / "pyproject.toml")
    if not re.fullmatch(r"https://\S+", repository or ""):
        print(f"error: no public repository address: set [tool.tumorclassifier.release] "
              f"repository in {args.root / 'pyproject.toml'} to its https address, or pass "
              f"--repository", file=sys.stderr)
        return 2
    cmake = args.root / "CMakeLists.txt"
    if args.write:
        write_cmake_settings(cmake, release_settings(repository, args.root, args.revision))
        entry = catalog_entry(repository, args.revision, cmake)
        args.out.mkdir(parents=True, exist_ok=True)
        import json
        (args.out / "TumorClassifier.json").write_text(json.dumps(entry, indent=2) + "\n",
                                                       encoding="utf-8")
        print(f"wrote {cmake} URL lines and {args.out / 'TumorClassifier.json'}")
    if args.export_public:
        export_public(args.root, args.export_public)
        print(f"public repository: {args.export_public} ({clone_size_mb(args.export_public):.1f} "
              f"MB as a full clone); upload {WEIGHTS} to the release "
              f"{default_model(args.root)['name']}")
    # What the Index will see: the exported repository when there is one.
    checked = args.export_public or args.root
    results = checks(repository, checked / "CMakeLists.txt", checked,
                     measure_clone=not args.skip_clone_size)
    width = max(len(name) for name, _, _ in results)
    for name, passed, detail in results:
        print(f"{'pass' if passed else 'FAIL'}  {name:<{width}}  {detail}")
    return 0 if all(passed for _, passed, _ in results) else 1


if __name__ == "__main__":
    shutil.which("git") or sys.exit("error: git is needed")
    sys.exit(main())
