"""crates.io's sparse index protocol over HTTP: keep-alive, revalidation, retries, deadlines,
proxies, CA bundles and registry tokens, with the settings cargo reads (see config.http_settings).

Every failure ends in a RegistryError that names the URL, or in a successful retry.

requests is imported when the network is needed, never on a run that the cache answers (in the
background from the start when the cache is empty or --refresh asks). One Session per registry,
its pool sized to --jobs; urllib3's Retry (mounted through the adapter) retries connection
failures, timeouts and 429/5xx answers and waits for Retry-After. requests' timeouts bound each
socket read, not a whole request, so a watchdog thread shuts down the socket of any attempt that
outlives its deadline (a server trickling a byte every few seconds would otherwise hold a request
for hours); the deadline starts again with each 64 KiB of body, so a slow link is not cut off.
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass, replace
from typing import Callable
from urllib.parse import urlsplit

from .. import __version__
from ..errors import RegistryError
from .cache import Entry, HttpCache

USER_AGENT = f"cargo-static-fix/{__version__} (+https://github.com/cargo-static-fix/cargo-static-fix)"
MAX_BODY = 64 * 1024 * 1024          # the largest crates.io index files are a few MiB
RETRIES = 3                           # cargo's net.retry default: 3 retries, 4 attempts
MAX_RETRY_AFTER = 30.0
NOT_FOUND = (404, 410, 451)
RETRY_STATUS = (429, 500, 502, 503, 504)


@dataclass(frozen=True)
class HttpSettings:
    """What cargo's `[http]` and `[net]` configuration says (config.http_settings reads it)."""
    timeout: float = 30.0             # http.timeout: each attempt's deadline (renewed per 64 KiB of body)
    retries: int = RETRIES            # net.retry: attempts after the first
    proxy: str | None = None          # http.proxy; None: HTTPS_PROXY / HTTP_PROXY / NO_PROXY
    cainfo: str | None = None         # http.cainfo; None: the system's trusted certificates
    user_agent: str = USER_AGENT      # http.user-agent


@dataclass(frozen=True)
class RegistryAuth:
    """How to find a registry's token; it is looked up only when the registry asks for one."""
    name: str                         # "crates-io" or the name under [registries]
    token: Callable[[], str | None]
    hint: str                         # how a user provides the token, for the error message


class _Abort(Exception):
    """Raised inside a retry loop when the run is interrupted or the host is known to be down."""


# -- the attempt in progress on each thread, and the watchdog that enforces its deadline ---------

_current = threading.local()
_fetchers: "weakref.WeakSet[HttpFetcher]" = weakref.WeakSet()


class _Call:
    """One index file's request, across its attempts. An attempt starts when a connection is
    opened or a request sent for it and ends when the retry logic takes over or the body is read."""

    __slots__ = ("fetcher", "budget", "sent", "deadline", "conn", "expired", "__weakref__")

    def __init__(self, fetcher: "HttpFetcher"):
        self.fetcher = fetcher
        self.budget = fetcher.settings.retries + 1
        self.sent = 0
        self.deadline: float | None = None
        self.conn = None
        self.expired = False

    def claim(self, conn) -> None:
        conn._csf_call = self
        self.conn = conn
        if self.deadline is None:
            self.sent += 1
            self.expired = False
            _WATCHDOG.arm(self, self.fetcher.settings.timeout)

    def end_attempt(self) -> None:
        _WATCHDOG.disarm(self)
        # A pooled connection must not keep this call (and so the fetcher and its pool) alive:
        # urllib3 closes a pool's connections only once nothing reaches the pool any more.
        conn, self.conn = self.conn, None
        if conn is not None and getattr(conn, "_csf_call", None) is self:
            conn._csf_call = None

    def progress(self) -> None:
        """A chunk of the body arrived: the deadline starts again, so a large file on a slow
        link is not cut off while a server that trickles still fails at the deadline."""
        _WATCHDOG.renew(self, self.fetcher.settings.timeout)

    def pause(self, seconds: float) -> None:
        if self.fetcher._stop.wait(max(seconds, 0.0)):
            raise _Abort()


class _Watchdog:
    TICK = 0.05

    def __init__(self):
        self._cond = threading.Condition()
        self._active: set[_Call] = set()
        self._thread: threading.Thread | None = None

    def arm(self, call: _Call, timeout: float) -> None:
        with self._cond:
            call.deadline = time.monotonic() + timeout
            self._active.add(call)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="csf-http-deadlines", daemon=True)
                self._thread.start()
            self._cond.notify()

    def renew(self, call: _Call, timeout: float) -> None:
        with self._cond:
            if call.deadline is not None:
                call.deadline = time.monotonic() + timeout

    def disarm(self, call: _Call) -> None:
        with self._cond:
            call.deadline = None
            self._active.discard(call)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._active:
                    self._cond.wait()
                now = time.monotonic()
                for call in list(self._active):
                    if now >= call.deadline or call.fetcher._stop.is_set():
                        self._active.discard(call)
                        call.deadline = None
                        call.expired = True
                        conn = call.conn
                        if conn is not None and getattr(conn, "_csf_call", None) is call:
                            _shutdown(getattr(conn, "sock", None))
            time.sleep(self.TICK)


def _shutdown(sock) -> None:
    """Wake a thread blocked on the socket: the read fails at once (plain socket's shutdown, so a
    TLS socket's state is left for its owner to discard)."""
    if sock is None:
        return
    import socket

    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except (OSError, TypeError):
        pass


_WATCHDOG = _Watchdog()


def cancel_all() -> None:
    """Ctrl-C: stop every request in flight and every retry wait, so worker threads end at once."""
    for f in list(_fetchers):
        f._interrupted = True
        f._stop.set()


# -- requests, imported on first use ----------------------------------------------------------------

_classes: dict[str, object] = {}
_classes_lock = threading.Lock()


# Set once a request of this run is on the wire (or failed to go out): a cold run holds its
# other start-up work until then, so the HTTP client's import and the first requests get the
# interpreter to themselves (cli._early_fetch).
REQUEST_SENT = threading.Event()


def _net():
    """requests and the few classes built on it, imported once, on the first network request."""
    if _classes:
        return _classes
    with _classes_lock:
        if _classes:
            return _classes
        import requests
        import urllib3
        from requests.adapters import HTTPAdapter
        from urllib3.connection import HTTPConnection, HTTPSConnection
        from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
        from urllib3.util.retry import Retry

        def hooked(base):
            class Conn(base):
                def connect(self):
                    call = getattr(_current, "call", None)
                    if call is not None:
                        call.claim(self)
                    return super().connect()

                def request(self, *a, **k):
                    call = getattr(_current, "call", None)
                    if call is not None:
                        call.claim(self)
                    try:
                        return super().request(*a, **k)
                    finally:
                        REQUEST_SENT.set()
            return Conn

        class Pool(HTTPConnectionPool):
            ConnectionCls = hooked(HTTPConnection)

        class TlsPool(HTTPSConnectionPool):
            ConnectionCls = hooked(HTTPSConnection)

        pools = {"http": Pool, "https": TlsPool}

        class CargoRetry(Retry):
            """Retry with cargo's limits: the run's interruption and the call's attempt budget
            end it early, Retry-After is capped, and the waits can be interrupted."""

            def increment(self, *a, **k):
                call = getattr(_current, "call", None)
                if call is not None:
                    call.end_attempt()
                    if call.fetcher._stop.is_set():
                        raise _Abort()
                return super().increment(*a, **k)

            def is_exhausted(self) -> bool:
                call = getattr(_current, "call", None)
                return super().is_exhausted() or (call is not None and call.sent >= call.budget)

            def parse_retry_after(self, retry_after: str) -> float:
                return _retry_after(retry_after)

            def sleep(self, response=None) -> None:
                delay = None
                if self.respect_retry_after_header and response is not None:
                    value = response.headers.get("Retry-After")
                    if value is not None:
                        delay = _retry_after(value)
                if delay is None:
                    delay = self.get_backoff_time()
                call = getattr(_current, "call", None)
                if call is not None:
                    call.pause(delay)
                elif delay > 0:
                    time.sleep(delay)

        class Adapter(HTTPAdapter):
            ssl_context = None

            def init_poolmanager(self, *a, **k):
                if self.ssl_context is not None:
                    k["ssl_context"] = self.ssl_context
                super().init_poolmanager(*a, **k)
                self.poolmanager.pool_classes_by_scheme = pools

            def proxy_manager_for(self, proxy, **k):
                if self.ssl_context is not None:
                    k.setdefault("ssl_context", self.ssl_context)
                manager = super().proxy_manager_for(proxy, **k)
                manager.pool_classes_by_scheme = pools
                return manager

            def cert_verify(self, conn, url, verify, cert):
                super().cert_verify(conn, url, verify, cert)
                if verify is True and self.ssl_context is not None:
                    conn.ca_certs = conn.ca_cert_dir = None     # the system store, not certifi's copy

        _classes.update(requests=requests, urllib3=urllib3, Retry=CargoRetry, Adapter=Adapter)
        return _classes


IMPORT_SOON = [True]      # off when a cold run's wave may go to a child process (wave.py): no thread before the fork


def _import_soon() -> None:
    if not IMPORT_SOON[0]:
        return

    def work():
        try:
            _net()
        except Exception:
            pass            # the first request imports again and reports what is wrong

    if not _classes:
        threading.Thread(target=work, name="csf-import-requests", daemon=True).start()


class _TokenAuth:
    """Sets the registry token on a request (config.json's). requests does not re-apply an auth
    object on a redirect, and strips the header when the redirect leaves the host."""

    def __init__(self, token: str):
        self._token = token

    def __call__(self, r):
        r.headers["Authorization"] = self._token
        return r

    def __repr__(self) -> str:
        return "<token>"


def _origin(url: str) -> tuple[str, str, int | None]:
    p = urlsplit(url)
    return p.scheme, (p.hostname or "").lower(), p.port or {"http": 80, "https": 443}.get(p.scheme)


def preload() -> None:
    """Import the HTTP client now (from a thread started early in a run), so the first request
    does not wait for the import."""
    import urllib3  # noqa: F401


class HttpFetcher:
    """Index files of one registry over HTTP, shared by all worker threads."""

    def __init__(self, base: str, cache: HttpCache | None, jobs: int, timeout: float | None = None,
                 refresh: bool = False, backoff: float = 0.25, settings: HttpSettings | None = None,
                 auth: RegistryAuth | None = None):
        self.base = base.rstrip("/") + "/"
        self.cache = cache
        self.jobs = jobs
        self.settings = settings or HttpSettings()
        if timeout is not None:
            self.settings = replace(self.settings, timeout=timeout)
        self.refresh = refresh
        self.backoff = backoff
        self.auth = auth
        self.requests = 0               # index files
        self.downloads = 0              # other files: config.json, crate archives
        self.not_modified = 0
        self._session = None
        self._template = None                   # the prepared request every request copies
        self._lock = threading.Lock()
        self._auth_lock = threading.Lock()
        self._token: str | None = None          # set once the registry's config.json asks for it
        self._down: str | None = None           # the first failure that says the host cannot be reached
        self._stop = threading.Event()          # set when the host is down or the run is interrupted
        self._interrupted = False
        _fetchers.add(self)
        if cache is None or refresh or not cache.populated():
            _import_soon()          # the network will be needed: overlap the import with start-up

    @property
    def timeout(self) -> float:
        return self.settings.timeout

    def learnt(self) -> dict:
        """What this fetcher's requests taught that another process's fetcher of the same registry
        can use (wave.py): its counters, the host found down, the token."""
        return {"requests": self.requests, "downloads": self.downloads, "not_modified": self.not_modified,
                "down": self._down, "token": self._token}

    def adopt(self, learnt: dict) -> None:
        """Take what `learnt` handed over: the counters add up, what is known here stays."""
        self.requests += learnt["requests"]
        self.downloads += learnt["downloads"]
        self.not_modified += learnt["not_modified"]
        if learnt["down"] and self._down is None:
            self._down = learnt["down"]           # a dead host is not asked again
        if learnt["token"] and self._token is None:
            self._token = learnt["token"]         # learnt from a 401 and config.json: not again

    @property
    def where(self) -> str:
        return self.base

    def download(self, url: str, limit: int) -> bytes | None:
        """A file's bytes (a registry's config.json, a `.crate`), None when the server has no such
        file; through the same session as the index (proxy, CA bundle, retries, deadline, the
        token for this host only). Not cached here: callers keep what they learn from it."""
        if self._down is not None:
            raise RegistryError(self._down)
        net = _net()
        requests, urllib3 = net["requests"], net["urllib3"]
        session = self._get_session()
        headers = {}
        if self._token is not None and _origin(url) == _origin(self.base):
            headers["Authorization"] = self._token
        call = _Call(self)
        _current.call = call
        try:
            r = session.get(url, stream=True, headers=headers, timeout=(self.settings.timeout, self.settings.timeout))
            if r.status_code == 401 and "Authorization" not in headers and _origin(url) == _origin(self.base):
                # the registry wants its token (as the index would): learn it, then ask again
                _discard(r)
                call.end_attempt()
                self._require_auth(url, session, _login_url(r.headers.get("WWW-Authenticate")))
                headers["Authorization"] = self._token
                r = session.get(url, stream=True, headers=headers,
                                timeout=(self.settings.timeout, self.settings.timeout))
            try:
                if r.status_code in NOT_FOUND:
                    return None
                if r.status_code != 200:
                    raise RegistryError(f"{url}: cannot download (HTTP {r.status_code})")
                chunks, size = [], 0
                for chunk in r.raw.stream(64 * 1024, decode_content=True):
                    call.progress()
                    size += len(chunk)
                    if size > limit:
                        raise RegistryError(f"{url}: larger than {limit // (1024 * 1024)} MiB; refusing it")
                    chunks.append(chunk)
                return b"".join(chunks)
            finally:
                r.close()
        except _Abort:
            raise RegistryError(self._down or f"{url}: interrupted") from None
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
            raise RegistryError(f"{url}: cannot download ({_describe(e, call)})") from None
        finally:
            _current.call = None
            call.end_attempt()
            with self._lock:
                self.downloads += 1

    def read(self, rel: str) -> tuple[str | None, str]:
        """The file's text (None when the registry has no such crate) and its URL."""
        url = self.base + rel
        cached = self.cache.get(url) if self.cache else None
        if cached is not None and not self.refresh and cached.fresh(self.cache.ttl):
            return cached.body, url
        return self._fetch(url, cached), url

    def read_cached(self, rel: str) -> tuple[str | None, str] | None:
        """`read`'s answer when a fresh cache entry gives it, else None (no request is made)."""
        if self.cache is None or self.refresh:
            return None
        url = self.base + rel
        cached = self.cache.get(url)
        if cached is None or not cached.fresh(self.cache.ttl):
            return None
        return cached.body, url

    # -- the session ----------------------------------------------------------------------------

    def _get_session(self):
        with self._lock:
            if self._session is None:
                self._session = self._new_session()
            return self._session

    def _new_session(self):
        net = _net()
        requests = net["requests"]
        s = requests.Session()
        # The environment is read once here, for this registry's host, rather than on every
        # request (it costs more than the request on loopback); cargo reads no netrc either.
        s.trust_env = False
        s.headers["User-Agent"] = self.settings.user_agent
        s.proxies = self._proxies(requests)
        adapter = net["Adapter"](pool_connections=4, pool_maxsize=max(self.jobs, 1), pool_block=False,
                                 max_retries=net["Retry"](
                                     total=self.settings.retries, connect=self.settings.retries,
                                     read=self.settings.retries, status=self.settings.retries, other=0,
                                     redirect=10, status_forcelist=RETRY_STATUS, allowed_methods=("GET",),
                                     backoff_factor=self.backoff, backoff_max=10.0, raise_on_status=False,
                                     raise_on_redirect=False, respect_retry_after_header=True))
        if self.settings.cainfo:
            s.verify = self.settings.cainfo
        elif self.base.startswith("https:"):
            import ssl

            adapter.ssl_context = ssl.create_default_context()
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        # Every request is this one with another path: prepared once and copied, it skips
        # requests' per-request merging of settings (a third of its cost on loopback).
        self._template = s.prepare_request(requests.Request("GET", self.base))
        return s

    def _prepare(self, url: str, headers: dict):
        p = self._template.copy()
        p.url = self._template.url + url[len(self.base):]        # index paths need no quoting
        p.headers.update(headers)
        if self._token is not None and _origin(url) == _origin(self.base):
            # requests strips it if a redirect leaves the host, and sets no other credentials
            p.headers["Authorization"] = self._token
        return p

    def _proxies(self, requests) -> dict[str, str]:
        """cargo's http.proxy (libcurl syntax: `host:port` means http://host:port) for every
        scheme, else the environment's; NO_PROXY applies to both, as with cargo's libcurl."""
        from requests.utils import get_environ_proxies, should_bypass_proxies

        proxy = self.settings.proxy
        if proxy:
            if should_bypass_proxies(self.base, no_proxy=None):
                return {}
            if "://" not in proxy:
                proxy = "http://" + proxy
            return {"http": proxy, "https": proxy}
        return {k: v for k, v in get_environ_proxies(self.base, no_proxy=None).items() if k != "no"}

    # -- one file -------------------------------------------------------------------------------

    def _fetch(self, url: str, cached: Entry | None) -> str | None:
        if self._down is not None:
            raise RegistryError(self._down)
        headers = {}
        if cached is not None and cached.body is not None:
            if cached.etag:
                headers["If-None-Match"] = cached.etag
            if cached.last_modified:
                headers["If-Modified-Since"] = cached.last_modified
        call = _Call(self)
        _current.call = call
        try:
            return self._fetch_with(call, url, headers, cached)
        except _Abort:
            raise RegistryError(self._down or f"{url}: interrupted") from None
        finally:
            _current.call = None
            call.end_attempt()
            with self._lock:
                self.requests += call.sent

    def _fetch_with(self, call: _Call, url: str, headers: dict, cached: Entry | None) -> str | None:
        net = _net()
        requests, urllib3 = net["requests"], net["urllib3"]
        session = self._get_session()
        last_error = "no answer"
        while True:
            request = self._prepare(url, headers)
            try:
                r = session.send(request, stream=True, allow_redirects=True,
                                 timeout=(self.settings.timeout, self.settings.timeout),
                                 proxies=session.proxies, verify=session.verify, cert=None)
            except _Abort:
                raise
            except requests.exceptions.SSLError as e:
                raise RegistryError(f"{url}: {_describe_tls(e)}") from None
            except requests.exceptions.ProxyError as e:
                self._give_up(f"{url}: cannot reach the proxy {_redact(_proxy_of(session, url))} "
                              f"({_describe(e, call)}; {_tried(call.sent)})")
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
                self._give_up(f"{url}: cannot reach the index ({_describe(e, call)}; {_tried(call.sent)})")
            except requests.exceptions.RequestException as e:
                raise RegistryError(f"{url}: {_describe(e, call)}") from None
            status = r.status_code
            if status in (401, 403):
                _discard(r)
                if status == 401 and "Authorization" not in request.headers:
                    # sent without the token (another request may have learnt it meanwhile)
                    call.end_attempt()
                    self._require_auth(url, session, _login_url(r.headers.get("WWW-Authenticate")))
                    continue        # the same request, with the token
                if self._token is not None:
                    raise RegistryError(f"{url}: registry `{self.auth.name}` refused the token (HTTP {status}); "
                                        f"{self.auth.hint}")
                raise RegistryError(f"{url}: the index answered HTTP {status}")
            if status == 304 and cached is not None:
                _discard(r)
                with self._lock:
                    self.not_modified += 1
                self.cache.touch(url, cached)
                return cached.body
            if status in NOT_FOUND:
                _discard(r)
                if self.cache:
                    self.cache.put(url, None)
                return None
            if status in RETRY_STATUS:                  # the adapter's retries are spent
                _discard(r, reuse=False)
                self._give_up(f"{url}: cannot reach the index (HTTP {status}; {_tried(call.sent)})")
            if status != 200:
                _discard(r, reuse=False)
                raise RegistryError(f"{url}: the index answered HTTP {status}")
            try:
                body = _read_limited(r, url, call.progress)
            except (urllib3.exceptions.HTTPError, requests.exceptions.RequestException, OSError) as e:
                _discard(r, reuse=False)
                last_error = _describe(e, call)
            else:
                call.end_attempt()
                if _looks_complete(body):
                    if self.cache:
                        self.cache.put(url, body, r.headers.get("ETag"), r.headers.get("Last-Modified"))
                    return body
                last_error = "the file is not valid JSON lines (truncated?)"
            call.end_attempt()
            if call.sent >= call.budget:
                self._give_up(f"{url}: cannot reach the index ({last_error}; {_tried(call.sent)})")
            call.pause(self.backoff * (2 ** (call.sent - 1)))     # a body cut short: try again

    def _give_up(self, message: str):
        """The host cannot be reached: remember it, so every later request of this run fails at
        once with the same message instead of running its own retries against a dead server."""
        with self._lock:
            if self._interrupted:
                raise _Abort()
            if self._down is None:
                self._down = message
                self._stop.set()
            raise RegistryError(self._down)

    # -- registry tokens ------------------------------------------------------------------------

    def _require_auth(self, url: str, session, login_url: str | None = None) -> None:
        """A 401: as cargo does, read the registry's config.json (with the token if it answers
        401 too) and send the token from now on if it says `auth-required`."""
        with self._auth_lock:
            if self._token is not None:
                return
            if self.auth is None:
                raise RegistryError(
                    f"{url}: the registry at {self.base} requires authentication (HTTP 401); name it under "
                    f"[registries.<name>] in .cargo/config.toml and set CARGO_REGISTRIES_<NAME>_TOKEN")
            token = self.auth.token()
            if not token:
                where = f"; a token is issued at {login_url}" if login_url else ""
                raise RegistryError(f"registry `{self.auth.name}` requires authentication (HTTP 401 from "
                                    f"{self.base}); {self.auth.hint}{where}")
            import json

            config_url = self.base + "config.json"
            timeout = (self.settings.timeout, self.settings.timeout)
            call = getattr(_current, "call", None)
            r = session.get(config_url, timeout=timeout)
            if call is not None:
                call.end_attempt()
            if r.status_code == 401:
                r = session.get(config_url, timeout=timeout, auth=_TokenAuth(token))
                if call is not None:
                    call.end_attempt()
                if r.status_code in (401, 403):
                    raise RegistryError(f"{config_url}: registry `{self.auth.name}` refused the token "
                                        f"(HTTP {r.status_code}); {self.auth.hint}")
            try:
                required = r.status_code == 200 and json.loads(r.text).get("auth-required") is True
            except (ValueError, AttributeError):
                required = False
            if not required:
                raise RegistryError(f"{url}: the index answered HTTP 401, but {config_url} does not say "
                                    f"\"auth-required\": true (HTTP {r.status_code}); no token was sent")
            self._token = token


def _login_url(challenge: str | None) -> str | None:
    """The `login_url` of a `WWW-Authenticate: Cargo login_url="…"` challenge (cargo shows it too)."""
    if not challenge or not challenge.lstrip().lower().startswith("cargo"):
        return None
    import re

    m = re.search(r'login_url="([^"]+)"', challenge)
    return m.group(1) if m and m.group(1).startswith(("https://", "http://")) else None


def _discard(r, reuse: bool = True) -> None:
    """Return the connection to the pool when the rest of the body is small, else close it: an
    unread body must not poison the next request on the connection."""
    raw = r.raw
    try:
        length = r.headers.get("Content-Length")
        if reuse and length is not None and length.isdigit() and int(length) <= 64 * 1024:
            raw.drain_conn()
            raw.release_conn()
        else:
            r.close()
    except Exception:
        r.close()


def _read_limited(r, url: str, progress: Callable[[], None]) -> str:
    too_big = f"{url}: the index file is larger than {MAX_BODY // (1024 * 1024)} MiB; refusing it"
    declared = r.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        r.close()
        raise RegistryError(too_big)
    chunks, size = [], 0
    for chunk in r.raw.stream(64 * 1024, decode_content=True):
        size += len(chunk)
        if size > MAX_BODY:
            r.close()
            raise RegistryError(too_big)
        chunks.append(chunk)
        progress()
    r.raw.release_conn()
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise RegistryError(f"{url}: the index file is not UTF-8") from None


def _tried(n: int) -> str:
    return "tried once" if n == 1 else f"tried {n} times"


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
    import email.utils      # here, not at the top: a run the cache answers never needs it

    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
        return min(max(when - time.time(), 0.0), MAX_RETRY_AFTER)
    except (TypeError, ValueError):
        return 1.0


def _proxy_of(session, url: str) -> str:
    return session.proxies.get(urlsplit(url).scheme, "") or "?"


def _redact(url: str) -> str:
    """A proxy URL without its password."""
    p = urlsplit(url)
    if p.password:
        return url.replace(":" + p.password + "@", ":***@", 1)
    return url


def _describe_tls(e: Exception) -> str:
    text = str(e)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return ("the server's TLS certificate is not trusted (certificate verify failed); give the CA "
                "bundle with http.cainfo in .cargo/config.toml or CARGO_HTTP_CAINFO")
    return "TLS error: " + _first_line(text)


def _describe(e: Exception, call: _Call | None = None) -> str:
    if call is not None and call.expired:
        return "timed out"
    text = f"{type(e).__name__}: {e}"
    low = text.lower()
    if "Connection refused" in text or "NewConnectionError" in text:
        return "connection refused"
    if "reset" in low:
        return "connection reset"
    if "timed out" in low or "timeout" in low:
        return "timed out"
    if "truncated" in low or "IncompleteRead" in text or "ProtocolError" in text or "RemoteDisconnected" in text:
        return "truncated response"
    if "Name or service not known" in text or "getaddrinfo" in text or "NameResolutionError" in text:
        return "cannot resolve the host name"
    return _first_line(text)


def _first_line(text: str) -> str:
    return text.splitlines()[0][:200] if text else "error"
