"""Writing files so that no reader ever sees half of one: a temporary name beside the target,
renamed onto it only once complete, with the permissions any other new file would get."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class atomic_output:
    """Context manager yielding a temporary path beside `path`; renamed onto it on success,
    removed on failure. `suffix` keeps the extension that writers use to pick a format."""

    def __init__(self, path: Path, suffix: str = "") -> None:
        self.path = Path(path)
        self.suffix = suffix or "".join(self.path.suffixes)

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=f".part{self.suffix}",
                                        dir=self.path.parent)
        os.close(handle)
        os.chmod(name, 0o666 & ~current_umask())  # mkstemp makes 0600; outputs are shared
        self.temporary = Path(name)
        return self.temporary

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            os.replace(self.temporary, self.path)
        else:
            self.temporary.unlink(missing_ok=True)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
