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

__all__ = ["IndexSource", "MultiIndex", "open_index", "parse_index_file", "parse_index_line", "index_path"]

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


def _registry(url: str | None) -> str | None:
    """Index lines name another registry by its index URL; crates.io is the default."""
    if url is None or url.rstrip("/") in ("https://github.com/rust-lang/crates.io-index", "sparse+https://index.crates.io"):
        return None
    return url


def parse_index_line(obj: dict) -> Package:
    deps = []
    for d in obj.get("deps", ()):
        kind = _KINDS.get(d.get("kind"), NORMAL)
        deps.append(Dep(
            name=d["name"], package=d.get("package") or d["name"], req=d["req"], kind=kind,
            target=d.get("target"), optional=d.get("optional", False),
            default_features=d.get("default_features", True), features=tuple(d.get("features", ())),
            registry=_registry(d.get("registry")),
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
    """Crate name -> list of versions (None when the registry has no such crate), from one source.

    ``fetch_many`` loads several files at once; ``get`` answers only what is loaded (the
    resolver asks for what it lacks, and the caller fetches a whole level in one go)."""

    def __init__(self, source, jobs: int = 16):
        self.source = source
        self.jobs = jobs
        self._data: dict[str, list[Package] | None] = {}
        self.files = 0
        self.round_trips = 0

    @property
    def where(self) -> str:
        return self.source.where

    @property
    def offline(self) -> bool:
        return type(self.source).__name__ == "CargoCacheSource"

    def absent(self) -> list[str]:
        """Crates asked for that the source does not have."""
        return sorted(n for n, v in self._data.items() if v is None)

    @property
    def requests(self) -> int:
        """HTTP requests made (0 for local sources)."""
        fetcher = getattr(self.source, "fetcher", None)
        return fetcher.requests if fetcher is not None else 0

    def loaded(self, name: str, registry: str | None = None) -> bool:
        return name.lower() in self._data

    def get(self, name: str, registry: str | None = None) -> list[Package] | None:
        return self._data[name.lower()]

    def fetch_many(self, names) -> None:
        todo = sorted({(n[1] if isinstance(n, tuple) else n).lower() for n in names} - set(self._data))
        if not todo:
            return
        self.round_trips += 1
        self.files += len(todo)
        if len(todo) == 1 or self.jobs <= 1:
            results = [self.source.fetch(n) for n in todo]
        else:
            with ThreadPoolExecutor(max_workers=min(self.jobs, len(todo))) as pool:
                results = list(pool.map(self.source.fetch, todo))
        for n, r in zip(todo, results):
            self._data[n] = r


class MultiIndex:
    """Several registries: crates.io (or what replaces it) and the named ones in `[registries]`.
    A dependency's `registry` is a name in manifests and an index URL in index lines."""

    def __init__(self, default: IndexSource, named: dict[str, IndexSource] | None = None):
        self.default = default
        self.named = named or {}

    def _pick(self, registry: str | None) -> IndexSource:
        if registry is None or registry in CRATES_IO_NAMES:
            return self.default
        idx = self.named.get(registry) or self.named.get(registry.rstrip("/"))
        if idx is None:
            raise RegistryError(f"no registry named `{registry}` is configured (add it under [registries] in .cargo/config.toml)")
        return idx

    def loaded(self, name: str, registry: str | None = None) -> bool:
        return self._pick(registry).loaded(name)

    def get(self, name: str, registry: str | None = None) -> list[Package] | None:
        return self._pick(registry).get(name)

    def fetch_many(self, names) -> None:
        groups: dict[str | None, set[str]] = {}
        for n in names:
            registry, name = n if isinstance(n, tuple) else (None, n)
            groups.setdefault(registry, set()).add(name)
        for registry, group in groups.items():
            self._pick(registry).fetch_many(group)

    @property
    def requests(self) -> int:
        return self.default.requests + sum(i.requests for i in self.named.values())

    @property
    def round_trips(self) -> int:
        return self.default.round_trips + sum(i.round_trips for i in self.named.values())

    @property
    def offline(self) -> bool:
        return self.default.offline

    def absent(self) -> list[str]:
        return self.default.absent()

    @property
    def where(self) -> str:
        return self.default.where


CRATES_IO_NAMES = frozenset({"crates-io", "https://github.com/rust-lang/crates.io-index", "sparse+https://index.crates.io/"})


def open_index(url: str | None, jobs: int = 16, cache=None, refresh: bool = False) -> IndexSource:
    """An index from a URL (`https://`, `sparse+https://`, `file:///`) or a directory path."""
    from .http import HttpFetcher
    from .sources import DirSource, SparseSource

    url = url or DEFAULT_INDEX
    if url.startswith("sparse+"):
        url = url[len("sparse+"):]
    if "://" not in url:
        url = Path(url).resolve().as_uri()      # a plain directory path
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return IndexSource(DirSource(Path(unquote(parsed.path))), jobs)
    if parsed.scheme in ("http", "https"):
        return IndexSource(SparseSource(HttpFetcher(url, cache, jobs, refresh=refresh)), jobs)
    raise RegistryError(f"{url}: unsupported index URL (use https://, sparse+https://, or file:///dir)")
