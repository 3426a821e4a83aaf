"""Who may open the viewer: it binds 127.0.0.1 unless told otherwise, and every connection
must present a token (wslink's authentication key, which the page reads from its address);
a random one is made when none is given."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from ..errors import InputError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Access:
    host: str
    port: int
    token: str

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/?secret={self.token}"


def access_for(host: str = "127.0.0.1", port: int = 8080, token: str | None = None) -> Access:
    """The viewer's address and token. A token given must be long enough to guess at no rate a
    browser can try; a random one (32 bytes) is made when none is given."""
    if not 0 <= port <= 65535:
        raise InputError(f"--port must be from 0 to 65535, not {port}")
    if token is not None and len(token) < 16:
        raise InputError("--token must be at least 16 characters")
    return Access(host, port, token or secrets.token_urlsafe(32))
