"""Index entries per crate name, from crates.io's sparse protocol or a directory in the same layout.

``parse_index_file`` turns one index file (JSON lines) into ``Package`` objects; ``IndexSource``
fetches files, many at once, and keeps what it fetched for the rest of the run.
"""

from __future__ import annotations

import json
import os
import threading
from collections import deque
from dataclasses import replace
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..errors import RegistryError
from ..model import BUILD, DEV, NORMAL, Dep, Package, PkgId, build_feature_map
from ..proc_macros import is_proc_macro
from ..semver import parse_version

MISS = object()      # a source's `at_hand` answer: not without the network

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


def _strings(obj: dict, keys: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    for k in keys:
        if not isinstance(obj[k], str):
            raise TypeError(f"`{k}` is not a string")
    for k in optional:
        if obj.get(k) is not None and not isinstance(obj[k], str):
            raise TypeError(f"`{k}` is not a string")


def parse_index_line(obj: dict) -> Package:
    if not isinstance(obj, dict):
        raise TypeError("not a JSON object")
    _strings(obj, ("name", "vers"), ("links", "rust_version"))
    deps = []
    for d in obj.get("deps", ()):
        _strings(d, ("name", "req"), ("package", "target", "kind", "registry"))
        if not isinstance(d.get("features", []), list) or not all(isinstance(f, str) for f in d.get("features", [])):
            raise TypeError("a dependency's `features` is not a list of strings")
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
                   rust_version=obj.get("rust_version"), cksum=obj.get("cksum"), checksum=obj.get("cksum"))


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

    def __init__(self, source, jobs: int = 32, speculate: str = "features"):
        self.source = source
        self.jobs = jobs
        # After a file arrives, fetch what its newest version will need without waiting for the
        # resolver to ask: "features" follows non-optional dependencies and the optional ones the
        # asked-for features turn on, "normal" only non-optional ones, "all" every optional one too,
        # "off" waits for the resolver (one round trip per level). benchmarks/bench_registry.py measures each.
        self.speculate = speculate if getattr(source, "remote", False) else "off"
        self._data: dict[str, list[Package] | None] = {}
        self.files = 0
        self.round_trips = 0
        self._fetching = threading.Lock()    # workspaces analysed in parallel share one index
        # Where crates' own manifests are read (registry/crates.py); None: the index lines' guess stands.
        self.crates = None
        self._proc_macro: dict[PkgId, bool] = {}       # learnt from the crate's manifest
        self.assumed: dict[PkgId, str] = {}            # guessed from the name list, and why
        # Set by `pin` when a Cargo.lock decides the versions: speculation follows the locked
        # versions' dependencies and leaves out platforms that are neither the target nor the host.
        self._locked: dict[str, set[str]] = {}
        self._active = None
        # Features a remedy may turn on, by crate (rules and rustls/vendored features found in the
        # index lines): fetched in the same wave, so the planner's checks find their data loaded.
        self.remedy_features = None
        # Told of each file the wave follows: (crate, the versions speculation follows, the crates
        # it follows to). prefetch.ArchivePrefetch reads proc-macro answers ahead with it.
        self.on_arrival = None

    def pin(self, locked: dict[str, list[str]], active) -> None:
        """Speculate as a locked build resolves: `locked` maps crate names to their locked
        versions, `active(platform)` says whether a dependency's platform is the target's or the
        host's. Only a hint: what the resolver still lacks, it asks for."""
        self._locked = {n.lower(): set(vs) for n, vs in locked.items()}
        self._active = active

    def learn_proc_macros(self, pkgs: list[Package]) -> bool:
        """Read whether these crate versions are proc macros from their own manifests (all at
        once, in parallel), and correct the packages the index serves. True when an answer
        differed from the guess made when the index line was parsed: resolve again."""
        if getattr(self.source, "manifests", False):
            return False                 # a vendor directory: the manifests are the index
        pkgs = [p[1] if isinstance(p, tuple) else p for p in pkgs]     # (registry, package) pairs too
        with self._fetching:
            todo = [p for p in pkgs if p.id not in self._proc_macro and p.id not in self.assumed]
            if not todo:
                return False
            if self.crates is None:
                for p in todo:
                    self.assumed[p.id] = "the registry's crate archives are not available"
                return False
            from .crates import CrateRef

            refs = {p.id: CrateRef(p.id.name, p.id.version, p.cksum) for p in todo}
            answers = self.crates.proc_macros(list(refs.values()))
            changed = False
            for p in todo:
                answer = answers.get(refs[p.id])
                if answer is None:
                    self.assumed[p.id] = self.crates.failure or "no crate archive could be read"
                    continue
                self._proc_macro[p.id] = answer
                if answer != p.proc_macro:
                    changed = True
                    versions = self._data.get(p.id.name.lower()) or []
                    self._data[p.id.name.lower()] = [replace(v, proc_macro=answer) if v.id == p.id else v
                                                     for v in versions]
            return changed

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

    def assumed_proc_macro(self, registry: str | None, pid: PkgId) -> str | None:
        return self.assumed.get(pid)

    def proc_macro_stats(self) -> tuple[int, int, int]:
        """(crates whose manifest was read, archives downloaded, crates guessed from their name)"""
        return len(self._proc_macro), self.crates.downloads if self.crates else 0, len(self.assumed)

    def fetch_many(self, names) -> None:
        """Fetch crates' files at once. ``names`` is an iterable of names, or a mapping from
        names to the features asked of them (which guides speculative fetching)."""
        wants: dict[str, set[str]] = {}
        items = names.items() if isinstance(names, dict) else ((n, {"default"}) for n in names)
        for n, feats in items:
            wants.setdefault((n[1] if isinstance(n, tuple) else n).lower(), set()).update(feats)
        with self._fetching:
            self._fetch_locked(wants)

    def _fetch_locked(self, wants: dict[str, set[str]]) -> None:
        todo = sorted(set(wants) - set(self._data))
        if not todo:
            return
        self.round_trips += 1
        if self.speculate == "off" and (len(todo) == 1 or self.jobs <= 1):
            for n in todo:
                self._data[n] = self.source.fetch(n)
            self.files += len(todo)
            return
        asked = {n: set(f) for n, f in wants.items()}
        # Files the source has at hand (a fresh cache entry, a local file) are read here, in this
        # thread: handing them to the pool costs more than reading them (the workers contend for
        # the interpreter). Only what needs the network goes to the pool.
        at_hand = getattr(self.source, "at_hand", None)
        pool = None                         # started for the first file that needs the network
        pending: dict = {}
        ready: deque = deque()
        finished = False

        def start(name: str) -> None:
            nonlocal pool
            try:
                result = at_hand(name) if at_hand is not None else MISS
            except Exception as e:          # noqa: BLE001 - judged below, as a worker's error is
                result = e
            if result is not MISS:
                ready.append((name, result))
                return
            if pool is None:
                from concurrent.futures import ThreadPoolExecutor

                pool = ThreadPoolExecutor(max_workers=self.jobs)
            pending[pool.submit(self.source.fetch, name)] = name

        def arrived(name: str, result) -> None:
            if isinstance(result, Exception):
                if name in todo:
                    raise result
                return                      # a speculative fetch that failed is simply not used
            self._data[name] = result
            self.files += 1
            follow(name)

        def follow(name: str) -> None:
            likely = self._likely_deps(self._data.get(name), asked.get(name, {"default"}))
            if self.on_arrival is not None:
                self.on_arrival(name, self._speculated(self._data.get(name)), [d for d, _ in likely])
            for dep, feats in likely:
                grew = not feats <= asked.get(dep, set())
                asked.setdefault(dep, set()).update(feats)
                if dep not in seen:
                    seen.add(dep)
                    start(dep)
                elif grew and self._data.get(dep) is not None:
                    follow(dep)         # new features asked of a crate already here

        try:
            seen = set(todo) | set(self._data)
            for n in todo:
                start(n)
            while ready or pending:
                while ready:
                    arrived(*ready.popleft())
                if pending:
                    from concurrent.futures import FIRST_COMPLETED, wait

                    # A bounded wait keeps Ctrl-C prompt in whichever thread waits here.
                    done, _ = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                    for fut in done:
                        name = pending.pop(fut)
                        try:
                            result = fut.result()
                        except Exception as e:  # noqa: BLE001 - judged by `arrived`
                            result = e
                        arrived(name, result)
            finished = True
        except KeyboardInterrupt:
            cancel = getattr(self.source, "cancel", None)
            if cancel is not None:
                cancel()
            raise
        finally:
            # On an error, do not wait for speculative fetches still in flight: they end on
            # their own (at once when the host is down), and nobody needs their answer.
            if pool is not None:
                pool.shutdown(wait=finished, cancel_futures=not finished)

    def _speculated(self, versions: list[Package] | None) -> list[Package]:
        """The versions of a crate speculation follows: the locked ones, else the newest."""
        if not versions:
            return []
        locked = self._locked.get(versions[0].id.name.lower())
        pkgs = [p for p in versions if p.id.version in locked] if locked else []
        if not pkgs:
            newest = max((p for p in versions if not p.yanked), key=lambda p: parse_version(p.id.version), default=None)
            pkgs = [newest] if newest is not None else []
        return pkgs

    def _likely_deps(self, versions: list[Package] | None, features: set[str]) -> list[tuple[str, set[str]]]:
        """What the newest version of a crate will probably pull in: its non-optional dependencies,
        and ("features" mode) the optional ones the asked-for features turn on, with the features
        each entry asks of them."""
        if self.speculate == "off" or not versions:
            return []
        out = []
        for pkg in self._speculated(versions):
            feats_here = set(features)
            if self.remedy_features is not None:
                feats_here |= self.remedy_features(pkg)
            active = _expand(pkg, feats_here) if self.speculate == "features" else None
            for d in pkg.deps:
                if d.kind == "dev" or d.registry is not None:
                    continue
                if d.target is not None and self._active is not None and not self._active(d.target):
                    continue
                if d.optional and self.speculate != "all" and (active is None or d.name not in active[0]):
                    continue
                feats = set(d.features) | ({"default"} if d.default_features else set())
                if active is not None:
                    feats |= active[1].get(d.name, set())
                out.append((d.package.lower(), feats))
        return out


def _expand(pkg: Package, features: set[str]) -> tuple[set[str], dict[str, set[str]]]:
    """Within one package: the optional dependencies the features turn on, and the features they
    ask of each dependency (a simplified, single-package view of cargo's feature resolver)."""
    on: set[str] = set()
    deps_on: set[str] = set()
    dep_feats: dict[str, set[str]] = {}
    todo = [f for f in features if f in pkg.features]
    while todo:
        f = todo.pop()
        if f in on:
            continue
        on.add(f)
        for fv in pkg.features.get(f, ()):
            if fv[0] == "feat":
                todo.append(fv[1])
            elif fv[0] == "dep":
                deps_on.add(fv[1])
            else:
                _, d, df, weak = fv
                if not weak:
                    deps_on.add(d)
                dep_feats.setdefault(d, set()).add(df)
    return deps_on, dep_feats


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

    def learn_proc_macros(self, pkgs: list[tuple[str | None, Package]]) -> bool:
        groups: dict[int, tuple[IndexSource, list[Package]]] = {}
        for registry, pkg in pkgs:
            idx = self._pick(registry)
            groups.setdefault(id(idx), (idx, []))[1].append(pkg)
        changed = False
        for idx, group in groups.values():
            changed = idx.learn_proc_macros(group) or changed
        return changed

    def proc_macro_stats(self) -> tuple[int, int, int]:
        stats = [i.proc_macro_stats() for i in {id(i): i for i in [self.default, *self.named.values()]}.values()]
        return tuple(sum(s[k] for s in stats) for k in range(3))

    def assumed_proc_macro(self, registry: str | None, pid: PkgId) -> str | None:
        """Why this crate's proc-macro status is a guess (None: read from its manifest, or not asked)."""
        return self._pick(registry).assumed.get(pid)

    def pin(self, locked: dict[str, list[str]], active) -> None:
        for idx in {id(i): i for i in [self.default, *self.named.values()]}.values():
            idx.pin(locked, active)

    def fetch_many(self, names) -> None:
        groups: dict[str | None, dict[str, set[str]]] = {}
        items = names.items() if isinstance(names, dict) else ((n, {"default"}) for n in names)
        for n, feats in items:
            registry, name = n if isinstance(n, tuple) else (None, n)
            groups.setdefault(registry, {}).setdefault(name, set()).update(feats)
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

    @property
    def files(self) -> int:
        return self.default.files + sum(i.files for i in self.named.values())

    def absent(self) -> list[str]:
        return self.default.absent()

    @property
    def where(self) -> str:
        return self.default.where


CRATES_IO_NAMES = frozenset({"crates-io", "https://github.com/rust-lang/crates.io-index", "sparse+https://index.crates.io/"})


def open_index(url: str | None, jobs: int = 32, cache=None, refresh: bool = False, speculate: str = "features",
               settings=None, auth=None) -> IndexSource:
    """An index from a URL (`https://`, `sparse+https://`, `file:///`) or a directory path;
    ``settings`` (http.HttpSettings) and ``auth`` (http.RegistryAuth) apply to HTTP indexes."""
    from .http import HttpFetcher
    from .sources import DirSource, SparseSource

    url = url or DEFAULT_INDEX
    if url.startswith("sparse+"):
        url = url[len("sparse+"):]
    if "://" not in url:
        url = Path(url).resolve().as_uri()      # a plain directory path
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return with_crates(IndexSource(DirSource(Path(unquote(parsed.path))), jobs), url, cache)
    if parsed.scheme in ("http", "https"):
        return with_crates(IndexSource(SparseSource(HttpFetcher(url, cache, jobs, refresh=refresh, settings=settings, auth=auth)),
                                       jobs, speculate), url, cache)
    raise RegistryError(f"{url}: unsupported index URL (use https://, sparse+https://, or file:///dir)")


def with_crates(idx: IndexSource, registry: str, cache=None, offline: bool = False) -> IndexSource:
    """Let the index read crates' own manifests (registry/crates.py): from cargo's home and our
    cache always, a local registry's archives next to its index, and the registry's `dl`
    downloads unless offline."""
    from .cache import default_cache_dir
    from .config import cargo_home
    from .crates import CrateManifests

    fetcher = getattr(idx.source, "fetcher", None)
    root = getattr(idx.source, "root", None)
    local = (Path(root).parent,) if root is not None and not getattr(idx.source, "manifests", False) else ()
    if offline:
        why = "--offline, and cargo has not downloaded it"
    elif local:
        shown = os.path.relpath(local[0]) if local[0].is_relative_to(Path.cwd()) else str(local[0])
        why = f"no .crate in cargo's cache or in {shown}"
    else:
        why = "not in cargo's cache"
    idx.crates = CrateManifests(registry, cargo_home=cargo_home(), cache_dir=cache.root if cache else default_cache_dir(),
                                fetcher=None if offline else fetcher, local_dirs=local, jobs=idx.jobs, no_download=why)
    return idx
