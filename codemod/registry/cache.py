"""A persistent cache of index files, safe under concurrent runs.

One file per URL: a JSON header line (url, etag, last-modified, when fetched, body length and
sha256), then the body. Writes go to a temporary file renamed into place, so a reader sees the old
entry or the new one, never half of one; an entry whose header or checksum does not match is
treated as absent and fetched again. Reading a fresh entry needs nothing beyond the standard
library — no HTTP client is imported on a warm run.

Why not CacheControl: it keys freshness on server headers and needs requests and msgpack imported
for every cached read, which alone costs more than the whole warm run is allowed to take.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TTL = 300.0     # seconds during which a cached index file is used without asking the server
CACHE_ENV = "CARGO_STATIC_FIX_CACHE_DIR"


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("cargo-static-fix", appauthor=False))


@dataclass(frozen=True)
class Entry:
    """A cached index file: its body (None: no such crate) and the headers to revalidate it."""

    body: str | None          # None: the registry answered "no such crate"
    etag: str | None
    last_modified: str | None
    fetched_at: float

    def fresh(self, ttl: float) -> bool:
        return time.time() - self.fetched_at < ttl


class HttpCache:
    def __init__(self, root: Path, ttl: float = DEFAULT_TTL):
        self.root = Path(root)
        self.ttl = ttl

    def _path(self, url: str) -> Path:
        digest = hashlib.sha256(url.encode()).hexdigest()
        return self.root / "index-v1" / digest[:2] / digest

    def populated(self) -> bool:
        """Whether any entry was ever written (a cold cache answers nothing)."""
        return (self.root / "index-v1").is_dir()

    def get(self, url: str) -> Entry | None:
        try:
            raw = self._path(url).read_bytes()
        except OSError:
            return None
        try:
            head, _, body = raw.partition(b"\n")
            meta = json.loads(head)
            if meta.get("url") != url:
                return None
            if meta.get("missing"):
                return Entry(None, None, None, float(meta["fetched_at"]))
            if len(body) != meta["length"] or hashlib.sha256(body).hexdigest() != meta["sha256"]:
                return None           # truncated or corrupt: fetch again
            return Entry(body.decode("utf-8"), meta.get("etag"), meta.get("last_modified"), float(meta["fetched_at"]))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return None

    def digest(self, url: str) -> tuple[str, float] | None:
        """(sha256 of the body, or "missing"; when it was fetched) from the entry's first line alone:
        what a remembered answer checks, without reading and hashing every body again."""
        try:
            with open(self._path(url), "rb") as f:
                meta = json.loads(f.readline())
            if meta.get("url") != url:
                return None
            return ("missing" if meta.get("missing") else str(meta["sha256"])), float(meta["fetched_at"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, url: str, body: str | None, etag: str | None = None, last_modified: str | None = None) -> None:
        data = b"" if body is None else body.encode("utf-8")
        meta = {"url": url, "fetched_at": time.time()}
        if body is None:
            meta["missing"] = True
        else:
            meta.update(etag=etag, last_modified=last_modified, length=len(data), sha256=hashlib.sha256(data).hexdigest())
        path = self._path(url)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
            with os.fdopen(fd, "wb") as f:
                f.write(json.dumps(meta).encode() + b"\n" + data)
            os.replace(tmp, path)
        except OSError:
            pass                       # a cache that cannot be written only costs speed

    def touch(self, url: str, entry: Entry) -> None:
        """A 304 answer: the cached body is current again."""
        self.put(url, entry.body, entry.etag, entry.last_modified)
