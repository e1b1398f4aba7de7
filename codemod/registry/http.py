"""crates.io's sparse index protocol over HTTP: keep-alive, revalidation, retries, limits.

Every failure ends in a RegistryError that names the URL, or in a successful retry.
"""

from __future__ import annotations

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


def preload() -> None:
    """Import the HTTP client now (from a thread started early in a run), so the first request
    does not wait for the import."""
    import urllib3  # noqa: F401


class HttpFetcher:
    """Index files over HTTP with urllib3 (the pool requests is built on): one keep-alive pool
    shared by all worker threads. Measured on loopback, urllib3 costs 0.7 ms a request where a
    requests Session costs 1.9 ms, and the tool makes one request per crate."""

    def __init__(self, base: str, cache: HttpCache | None, jobs: int, timeout: float = 30.0,
                 refresh: bool = False, backoff: float = 0.25):
        self.base = base.rstrip("/") + "/"
        self.cache = cache
        self.jobs = jobs
        self.timeout = timeout
        self.refresh = refresh
        self.backoff = backoff
        self.requests = 0               # index files
        self.downloads = 0              # other files: config.json, crate archives
        self.not_modified = 0
        self._pool = None
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        return self.base

    def _pool_manager(self):
        with self._lock:
            if self._pool is None:
                import urllib3

                self._pool = urllib3.PoolManager(num_pools=4, maxsize=max(self.jobs, 1), block=False,
                                                 headers={"User-Agent": USER_AGENT}, retries=False)
            return self._pool

    def download(self, url: str, limit: int) -> bytes | None:
        return _download(self, url, limit)

    def read(self, rel: str) -> tuple[str | None, str]:
        """The file's text (None when the registry has no such crate) and its URL."""
        url = self.base + rel
        cached = self.cache.get(url) if self.cache else None
        if cached is not None and not self.refresh and cached.fresh(self.cache.ttl):
            return cached.body, url
        return self._fetch(url, cached), url

    def _fetch(self, url: str, cached: Entry | None) -> str | None:
        import urllib3

        headers = {"User-Agent": USER_AGENT}
        if cached is not None and cached.body is not None:
            if cached.etag:
                headers["If-None-Match"] = cached.etag
            if cached.last_modified:
                headers["If-Modified-Since"] = cached.last_modified
        pool = self._pool_manager()
        last_error = "no answer"
        for attempt in range(RETRIES):
            if attempt:
                time.sleep(self.backoff * (2 ** (attempt - 1)) * (1 + random.random() / 2))
            with self._lock:
                self.requests += 1
            try:
                r = pool.request("GET", url, headers=headers, preload_content=False, redirect=True,
                                 timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout))
                reusable = False
                try:
                    status = r.status
                    if status == 304 and cached is not None:
                        reusable = True
                        with self._lock:
                            self.not_modified += 1
                        self.cache.touch(url, cached)
                        return cached.body
                    if status in NOT_FOUND:
                        reusable = r.headers.get("Content-Length") == "0"
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
                    reusable = True
                finally:
                    if reusable:
                        r.release_conn()
                    else:
                        r.close()           # an unread or refused body must not poison the next request
            except RegistryError:
                raise
            except urllib3.exceptions.NewConnectionError as e:   # (a subclass of the timeout errors)
                last_error = _describe(e)
                continue
            except urllib3.exceptions.TimeoutError:
                last_error = "timed out"
                continue
            except (urllib3.exceptions.ProtocolError, urllib3.exceptions.SSLError,
                    urllib3.exceptions.ProxyError, OSError) as e:
                last_error = _describe(e)
                continue
            except urllib3.exceptions.HTTPError as e:
                raise RegistryError(f"{url}: {_describe(e)}") from None
            if not _looks_complete(body):
                last_error = "the file is not valid JSON lines (truncated?)"
                continue
            if self.cache:
                self.cache.put(url, body, r.headers.get("ETag"), r.headers.get("Last-Modified"))
            return body
        raise RegistryError(f"{url}: cannot reach the index ({last_error}; tried {RETRIES} times)")


def _download(fetcher: HttpFetcher, url: str, limit: int) -> bytes | None:
    """A file's bytes (a registry's config.json, a `.crate`), None when the server has no such
    file; retried like index files. Not cached here: callers keep what they learn from it."""
    import urllib3

    pool = fetcher._pool_manager()
    last_error = "no answer"
    for attempt in range(RETRIES):
        if attempt:
            time.sleep(fetcher.backoff * (2 ** (attempt - 1)) * (1 + random.random() / 2))
        with fetcher._lock:
            fetcher.downloads += 1
        try:
            r = pool.request("GET", url, preload_content=False, redirect=True,
                             timeout=urllib3.Timeout(connect=fetcher.timeout, read=fetcher.timeout))
            try:
                if r.status in NOT_FOUND:
                    return None
                if r.status == 429 or 500 <= r.status < 600:
                    last_error = f"HTTP {r.status}"
                    continue
                if r.status != 200:
                    raise RegistryError(f"{url}: HTTP {r.status}")
                chunks, size = [], 0
                for chunk in r.stream(64 * 1024):
                    size += len(chunk)
                    if size > limit:
                        raise RegistryError(f"{url}: larger than {limit // (1024 * 1024)} MiB; refusing it")
                    chunks.append(chunk)
                return b"".join(chunks)
            finally:
                r.close()
        except RegistryError:
            raise
        except (urllib3.exceptions.HTTPError, OSError) as e:
            last_error = _describe(e)
    raise RegistryError(f"{url}: cannot download ({last_error}; tried {RETRIES} times)")


def _read_limited(r, url: str) -> str:
    too_big = f"{url}: the index file is larger than {MAX_BODY // (1024 * 1024)} MiB; refusing it"
    declared = r.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        raise RegistryError(too_big)
    chunks, size = [], 0
    for chunk in r.stream(64 * 1024):
        size += len(chunk)
        if size > MAX_BODY:
            raise RegistryError(too_big)
        chunks.append(chunk)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise RegistryError(f"{url}: the index file is not UTF-8") from None


def _looks_complete(body: str) -> bool:
    """Every line one JSON object: a cheap check that catches a body cut short (the full parse
    happens once, where the entries are read)."""
    for line in body.splitlines():
        line = line.strip()
        if line and not (line.startswith("{") and line.endswith("}")):
            return False
    return True


def _retry_after(value: str | None) -> float:
    if not value:
        return 1.0
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        pass
    import email.utils           # only for a Retry-After date: not on every run's import path

    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
        return min(max(when - time.time(), 0.0), MAX_RETRY_AFTER)
    except (TypeError, ValueError):
        return 1.0


def _describe(e: Exception) -> str:
    text = f"{type(e).__name__}: {e}"
    if "Connection refused" in text or "NewConnectionError" in text:
        return "connection refused"
    if "reset" in text.lower():
        return "connection reset"
    if "timed out" in text.lower():
        return "timed out"
    if "truncated" in text.lower() or "IncompleteRead" in text or "ProtocolError" in text:
        return "truncated response"
    return text.splitlines()[0][:200] if text else type(e).__name__
