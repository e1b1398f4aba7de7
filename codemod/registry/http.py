"""crates.io's sparse index protocol over HTTP: keep-alive, revalidation, retries, limits.

Every failure ends in a RegistryError that names the URL, or in a successful retry.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time

from .. import __version__
from ..errors import RegistryError
from .cache import Entry, HttpCache

USER_AGENT = f"cargo-static-fix/{__version__} (+https://github.com/cargo-static-fix/cargo-static-fix)"
MAX_BODY = 64 * 1024 * 1024          # the largest crates.io index files are a few MiB
RETRIES = 4
MAX_RETRY_AFTER = 30.0
NOT_FOUND = (404, 410, 451)


class HttpFetcher:
    def __init__(self, base: str, cache: HttpCache | None, jobs: int, timeout: float = 30.0,
                 refresh: bool = False, backoff: float = 0.25):
        self.base = base.rstrip("/") + "/"
        self.cache = cache
        self.jobs = jobs
        self.timeout = timeout
        self.refresh = refresh
        self.backoff = backoff
        self.requests = 0
        self.not_modified = 0
        self._local = threading.local()
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        return self.base

    def _session(self):
        import requests

        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            s.headers["User-Agent"] = USER_AGENT
            self._local.session = s
        return s

    def read(self, rel: str) -> tuple[str | None, str]:
        """The file's text (None when the registry has no such crate) and its URL."""
        url = self.base + rel
        cached = self.cache.get(url) if self.cache else None
        if cached is not None and not self.refresh and cached.fresh(self.cache.ttl):
            return cached.body, url
        return self._fetch(url, cached), url

    def _fetch(self, url: str, cached: Entry | None) -> str | None:
        import requests

        headers = {}
        if cached is not None and cached.body is not None:
            if cached.etag:
                headers["If-None-Match"] = cached.etag
            if cached.last_modified:
                headers["If-Modified-Since"] = cached.last_modified
        last_error = "no answer"
        for attempt in range(RETRIES):
            if attempt:
                time.sleep(self.backoff * (2 ** (attempt - 1)) * (1 + random.random() / 2))
            with self._lock:
                self.requests += 1
            try:
                r = self._session().get(url, headers=headers, timeout=self.timeout, stream=True)
                try:
                    status = r.status_code
                    if status == 304 and cached is not None:
                        with self._lock:
                            self.not_modified += 1
                        self.cache.touch(url, cached)
                        return cached.body
                    if status in NOT_FOUND:
                        if self.cache:
                            self.cache.put(url, None)
                        return None
                    if status == 429 or 500 <= status < 600:
                        last_error = f"HTTP {status}"
                        if status == 429:
                            time.sleep(_retry_after(r.headers.get("Retry-After")))
                        continue
                    if status != 200:
                        raise RegistryError(f"{url}: the index answered HTTP {status}")
                    body = _read_limited(r, url)
                finally:
                    r.close()
            except RegistryError:
                raise
            except requests.exceptions.Timeout:
                last_error = "timed out"
                continue
            except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as e:
                last_error = _describe(e)
                continue
            except requests.RequestException as e:
                raise RegistryError(f"{url}: {_describe(e)}") from None
            if not _json_lines_ok(body):
                last_error = "the file is not valid JSON lines (truncated?)"
                continue
            if self.cache:
                self.cache.put(url, body, r.headers.get("ETag"), r.headers.get("Last-Modified"))
            return body
        raise RegistryError(f"{url}: cannot reach the index ({last_error}; tried {RETRIES} times)")


def _read_limited(r, url: str) -> str:
    declared = r.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        raise RegistryError(f"{url}: the index file is larger than {MAX_BODY // (1024 * 1024)} MiB; refusing it")
    chunks, size = [], 0
    for chunk in r.iter_content(64 * 1024):
        size += len(chunk)
        if size > MAX_BODY:
            raise RegistryError(f"{url}: the index file is larger than {MAX_BODY // (1024 * 1024)} MiB; refusing it")
        chunks.append(chunk)
    data = b"".join(chunks)
    if declared and declared.isdigit() and len(data) != int(declared) and "Content-Encoding" not in r.headers:
        import requests

        raise requests.exceptions.ChunkedEncodingError(f"truncated body: {len(data)} of {declared} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise RegistryError(f"{url}: the index file is not UTF-8") from None


def _json_lines_ok(body: str) -> bool:
    import json

    try:
        for line in body.splitlines():
            if line.strip():
                json.loads(line)
    except ValueError:
        return False
    return True


def _retry_after(value: str | None) -> float:
    if not value:
        return 1.0
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
        return min(max(when - time.time(), 0.0), MAX_RETRY_AFTER)
    except (TypeError, ValueError):
        return 1.0


def _describe(e: Exception) -> str:
    text = str(e)
    if "Connection refused" in text or "NewConnectionError" in text:
        return "connection refused"
    if "reset" in text.lower():
        return "connection reset"
    if "timed out" in text.lower():
        return "timed out"
    if "truncated" in text.lower() or "IncompleteRead" in text:
        return "truncated response"
    return text.splitlines()[0][:200] if text else type(e).__name__
