"""Model bundles published by URL with their sha256: downloaded once, only when a user asks,
into a cache folder of the user's that every Slicer version and the command line share.

    path = fetch_bundle("https://.../tumorclassifier-phantom-128.zip", sha256="ab12...")

Downloads are kept under their sha256 (`cache_dir()/<sha256>/<file name>`), so two bundles
published under the same file name never meet. Offline or behind a proxy that blocks the
download, a user downloads the same file by hand and puts it in `cache_dir()` (the error message
says where): it is found there by its sha256 and used without any network. Proxies come from
the usual HTTPS_PROXY / HTTP_PROXY / NO_PROXY variables. A download goes to a temporary name
and is renamed only once its sha256 matches, so the cache never holds a half-written or wrong
file.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .errors import InputError
from .files import current_umask

CACHE_ENVIRONMENT = "TUMORCLASSIFIER_CACHE"
CHUNK = 1 << 20
TIMEOUT_S = 60


def cache_dir() -> Path:
    """The user's model cache: $TUMORCLASSIFIER_CACHE, else the platform's per-user cache
    folder (it outlives Slicer installations and upgrades)."""
    override = os.environ.get(CACHE_ENVIRONMENT)
    if override:
        return Path(override).expanduser()
    if os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
        return base / "TumorClassifier" / "models"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "TumorClassifier" / "models"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "TumorClassifier" / "models"


def file_name_of(url: str) -> str:
    name = Path(urllib.parse.urlparse(url).path).name
    if not name or not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise InputError(f"{url}: the URL must end in the bundle's file name (e.g. model.zip)")
    return name


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_bundle(url: str, sha256: str, cache: str | os.PathLike | None = None,
                 progress=None) -> Path:
    """The cached bundle file for `url`, downloaded first if it is not in the cache.
    `progress(done_bytes, total_bytes or None)` is called while downloading."""
    sha256 = sha256.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise InputError(f"{url}: the sha256 must be 64 hexadecimal digits, not {sha256!r}")
    folder = Path(cache) if cache else cache_dir()
    name = file_name_of(url)
    target = folder / sha256 / name
    if target.is_file():
        found = sha256_of(target)
        if found != sha256:
            raise InputError(f"{target}: has sha256 {found}, not the expected {sha256}; "
                             "delete it and try again")
        return target
    placed = folder / name  # put there by hand
    if placed.is_file() and sha256_of(placed) == sha256:
        return placed
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"{folder}: cannot create the model cache "
                         f"({error.strerror or error})") from None
    hint = f"; or download it by hand and put it in {folder}"
    if placed.is_file():
        hint += f" ({placed} there has another sha256)"
    try:
        _download(url, sha256, target, progress, hint)
    except InputError:
        _remove_empty(target.parent)
        raise
    return target


def _remove_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty, or gone


def _download(url: str, sha256: str, target: Path, progress, hint: str) -> None:
    if urllib.parse.urlparse(url).scheme not in ("https", "http"):
        raise InputError(f"{url}: only http(s) addresses are downloaded")
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    partial = Path(name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as stream, \
                urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            done = 0
            while chunk := response.read(CHUNK):
                stream.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
            if total is not None and done != total:
                raise InputError(f"{url}: the download stopped after {done} of {total} "
                                 f"bytes{hint}")
        if digest.hexdigest() != sha256:
            raise InputError(f"{url}: the downloaded file has sha256 {digest.hexdigest()}, not "
                             f"the expected {sha256}; nothing was kept")
        partial.chmod(0o666 & ~current_umask())  # mkstemp's 0600 would keep other users out
        os.replace(partial, target)
    except InputError:
        raise  # already one line naming the URL
    except urllib.error.HTTPError as error:
        raise InputError(f"{url}: the server answered {error.code} {error.reason}{hint}") \
            from None
    except urllib.error.URLError as error:
        raise InputError(f"{url}: cannot download ({error.reason}){hint}") from None
    except (OSError, ValueError, http.client.HTTPException) as error:  # a dropped connection
        raise InputError(f"{url}: the download failed ({error}){hint}") from None
    finally:
        partial.unlink(missing_ok=True)
