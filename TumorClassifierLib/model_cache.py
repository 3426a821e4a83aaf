"""Model bundles published by URL with their sha256: downloaded once, only when a user asks,
into a cache folder of the user's that every Slicer version and the command line share.

    path = fetch_bundle("https://.../tumorclassifier-phantom-128.zip", sha256="ab12...")

Offline or behind a proxy that blocks the download, a user downloads the same file by hand
and puts it in `cache_dir()` (the error message says where): it is found there, checked, and
used without any network. Proxies come from the usual HTTPS_PROXY / HTTP_PROXY / NO_PROXY
variables. A download goes to a temporary name and is renamed only once its sha256 matches,
so the cache never holds a half-written or wrong file.
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
    target = folder / file_name_of(url)
    if target.is_file():
        found = sha256_of(target)
        if found != sha256:
            raise InputError(f"{target}: has sha256 {found}, not the expected {sha256}; "
                             "delete it (or replace it with the right file) and try again")
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"{folder}: cannot create the model cache "
                         f"({error.strerror or error})") from None
    _download(url, sha256, target, progress)
    return target


def _download(url: str, sha256: str, target: Path, progress) -> None:
    if urllib.parse.urlparse(url).scheme not in ("https", "http"):
        raise InputError(f"{url}: only http(s) addresses are downloaded")
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    partial = Path(name)
    hint = f"; or download it by hand and put it in {target.parent}"
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
        os.replace(partial, target)
    except urllib.error.HTTPError as error:
        raise InputError(f"{url}: the server answered {error.code} {error.reason}{hint}") \
            from None
    except urllib.error.URLError as error:
        raise InputError(f"{url}: cannot download ({error.reason}){hint}") from None
    except (OSError, ValueError, http.client.HTTPException) as error:  # a dropped connection
        raise InputError(f"{url}: the download failed ({error}){hint}") from None
    finally:
        partial.unlink(missing_ok=True)
