"""Index entries per crate name, from crates.io's sparse protocol or a directory in the same layout.

``parse_index_file`` turns one index file (JSON lines) into ``Package`` objects; ``IndexSource``
fetches files, many at once, and keeps what it fetched for the rest of the run.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..errors import RegistryError
from ..model import BUILD, DEV, NORMAL, Dep, Package, PkgId, build_feature_map
from ..proc_macros import is_proc_macro

DEFAULT_INDEX = "https://index.crates.io/"
_KINDS = {"normal": NORMAL, "build": BUILD, "dev": DEV, None: NORMAL}


def index_path(name: str) -> str:
    """The relative path of a crate's file in an index (`1/a`, `2/ab`, `3/a/abc`, `ab/cd/abcd`)."""
    n = name.lower()
    if len(n) == 1:
        return f"1/{n}"
    if len(n) == 2:
        return f"2/{n}"
    if len(n) == 3:
        return f"3/{n[0]}/{n}"
    return f"{n[:2]}/{n[2:4]}/{n}"


def parse_index_line(obj: dict) -> Package:
    deps = []
    for d in obj.get("deps", ()):
        kind = _KINDS.get(d.get("kind"), NORMAL)
        deps.append(Dep(
            name=d["name"], package=d.get("package") or d["name"], req=d["req"], kind=kind,
            target=d.get("target"), optional=d.get("optional", False),
            default_features=d.get("default_features", True), features=tuple(d.get("features", ())),
            registry=d.get("registry"),
        ))
    raw = dict(obj.get("features") or {})
    for k, v in (obj.get("features2") or {}).items():
        raw[k] = v
    deps_t = tuple(deps)
    fmap, implicit = build_feature_map(raw, deps_t)
    name = obj["name"]
    return Package(PkgId(name, obj["vers"]), deps_t, fmap, implicit,
                   proc_macro=is_proc_macro(name, deps_t), links=obj.get("links"),
                   yanked=bool(obj.get("yanked", False)), raw_features=raw,
                   rust_version=obj.get("rust_version"))


def parse_index_file(text: str, where: str) -> list[Package]:
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(parse_index_line(json.loads(line)))
        except (ValueError, KeyError, TypeError) as e:
            raise RegistryError(f"{where}: line {lineno} is not a valid index entry ({e})") from None
    return out


class IndexSource:
    """Crate name -> list of versions (None when the registry has no such crate).

    ``fetch_many`` loads several files at once; ``get`` answers only what is loaded (the
    resolver asks for what it lacks, and the caller fetches a whole level in one go)."""

    def __init__(self, url: str, jobs: int = 16, timeout: float = 30.0):
        self.url = url
        self.jobs = jobs
        self.timeout = timeout
        self._data: dict[str, list[Package] | None] = {}
        self.requests = 0
        self.round_trips = 0
        self._session = None

    # -- what the resolver sees
    def loaded(self, name: str) -> bool:
        return name in self._data

    def get(self, name: str) -> list[Package] | None:
        return self._data[name]

    # -- fetching
    def fetch_many(self, names) -> None:
        todo = sorted({n for n in names if n not in self._data})
        if not todo:
            return
        self.round_trips += 1
        if len(todo) == 1 or self.jobs <= 1:
            results = [self._fetch(n) for n in todo]
        else:
            with ThreadPoolExecutor(max_workers=min(self.jobs, len(todo))) as pool:
                results = list(pool.map(self._fetch, todo))
        for n, r in zip(todo, results):
            self._data[n] = r

    def _fetch(self, name: str) -> list[Package] | None:
        self.requests += 1
        text, where = self._read(index_path(name))
        if text is None:
            return None
        return parse_index_file(text, where)

    def _read(self, rel: str) -> tuple[str | None, str]:
        parsed = urlparse(self.url)
        if parsed.scheme == "file":
            p = Path(unquote(parsed.path)) / rel
            try:
                return p.read_text(encoding="utf-8"), str(p)
            except FileNotFoundError:
                return None, str(p)
            except OSError as e:
                raise RegistryError(f"{p}: cannot read: {e}") from None
        return self._get_http(rel)

    def _get_http(self, rel: str) -> tuple[str | None, str]:
        import requests

        if self._session is None:
            from .. import __version__

            s = requests.Session()
            adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=max(self.jobs, 1))
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            s.headers["User-Agent"] = f"cargo-static-fix/{__version__} (+https://github.com/cargo-static-fix/cargo-static-fix)"
            self._session = s
        url = self.url.rstrip("/") + "/" + rel
        try:
            r = self._session.get(url, timeout=self.timeout)
        except requests.RequestException as e:
            raise RegistryError(f"{url}: cannot reach the index: {_short(e)}") from None
        if r.status_code in (404, 410, 451):
            return None, url
        if r.status_code != 200:
            raise RegistryError(f"{url}: the index answered HTTP {r.status_code}")
        return r.text, url


def _short(e: Exception) -> str:
    text = str(e)
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    return text.splitlines()[0][:200] if text else type(e).__name__


def open_index(url: str | None, jobs: int = 16) -> IndexSource:
    url = url or DEFAULT_INDEX
    if url.startswith("sparse+"):
        url = url[len("sparse+"):]
    if "://" not in url:
        url = Path(url).resolve().as_uri()      # a plain directory path
    scheme = urlparse(url).scheme
    if scheme not in ("http", "https", "file"):
        raise RegistryError(f"{url}: unsupported index URL (use https://, sparse+https://, or file:///dir)")
    return IndexSource(url, jobs=jobs)
