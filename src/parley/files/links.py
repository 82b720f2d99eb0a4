"""Signed, short-lived download links, like an object store's presigned URLs.

A link is ``/download-file/<filename>?expires=<unix seconds>&sig=<signature>``, the signature an
HMAC-SHA256 of the filename and the expiry under a key derived from the server's secret. Whoever
holds a link may download that file until it expires; the filename alone opens nothing. Links
are minted each time a file is spelled for a participant (upload answer, message, history), so a
link copied out of a log or an export stops working after ``lifetime_seconds``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from urllib.parse import quote

from parley.clock import Clock

_EXPIRES = re.compile(r"[0-9]{1,12}")
_SIG = re.compile(r"[A-Za-z0-9_-]{43}")


class DownloadLinks:
    def __init__(self, secret: str, clock: Clock, lifetime_seconds: int) -> None:
        self._key = hmac.new(secret.encode(), b"parley.download-link", hashlib.sha256).digest()
        self._clock = clock
        self._lifetime = lifetime_seconds

    def url(self, filename: str, prefix: str = "/download-file/") -> str:
        """A link to ``filename`` valid for the lifetime from now (``prefix``: the route that
        serves it; recordings have their own)."""
        expires = self._clock.now_ms() // 1000 + self._lifetime
        sig = self._sign(
            f"{prefix}{filename}" if prefix != "/download-file/" else filename, expires
        )
        return f"{prefix}{quote(filename, safe='')}?expires={expires}&sig={sig}"

    def valid_at(self, prefix: str, filename: str, expires: str | None, sig: str | None) -> bool:
        """``valid`` for a link under another route than files' (``url(filename, prefix)``)."""
        return self.valid(f"{prefix}{filename}", expires, sig)

    def valid(self, filename: str, expires: str | None, sig: str | None) -> bool:
        """Whether ``expires`` and ``sig`` make a live link to ``filename``. Decided from the
        request alone (no lookup), so the answer says nothing of whether the file exists."""
        if expires is None or sig is None:
            return False
        if not _EXPIRES.fullmatch(expires) or not _SIG.fullmatch(sig):
            return False
        expected = self._sign(filename, int(expires))
        if not hmac.compare_digest(expected, sig):
            return False
        return int(expires) > self._clock.now_ms() // 1000

    def _sign(self, filename: str, expires: int) -> str:
        message = f"{filename}\n{expires}".encode("utf-8", "surrogateescape")
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")
