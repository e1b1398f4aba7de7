"""Pass 1 of the resolver: which version of every package is in the graph, chosen as cargo's
dependency resolver (``core/resolver/mod.rs``, ``dep_cache.rs``, ``version_prefs.rs``) chooses them.

What cargo does, and so what this does:

- Every workspace member is activated with all its features and its dev-dependencies; a
  dependency is followed on every platform; an optional dependency is followed when a feature
  requested of its package turns it on (``d?/f`` counts too: the dependency resolver treats weak
  dependency features as strong).
- The dependency with the fewest candidates is resolved next (cargo's ``RemainingDeps``: most
  constrained first, ties in the order the frames were pushed).
- Candidates, best first: a ``[patch]`` whose version matches the requirement (then nothing else);
  the version Cargo.lock records for this edge (then nothing else); otherwise every matching
  non-yanked version: locked versions first, then — under resolver 3 — those whose
  ``rust-version`` the workspace supports, newest first within each group. A local package whose
  registry dependency matches nothing in the lock (added since) makes cargo drop the lock's edges
  and keep only the preference for locked versions.
- A candidate is rejected when another version of the same semver-compatible line is already
  active, when another package with the same ``links`` value is active, or when it lacks a feature
  the dependency asks for. Nothing prefers an active version on another line: ``>=1.0`` takes the
  newest 2.x even when 1.5 is already in the graph.
- When a dependency has no candidate left, the search backtracks. Backtracking is conflict
  directed (it jumps back to the latest decision that took part in the conflict, as cargo's
  backjumping does), so the first solution found is the one cargo's depth-first search finds.

The search is replayed from the start after each backtrack: each run is a pure function of the
decisions forced on it, which keeps the state simple and costs nothing when no conflict occurs.

The index is read lazily: a dependency whose crate file is not loaded yet is recorded and skipped;
the pass then raises ``NeedCrates`` with everything it lacked, the caller fetches those files in
one round trip and calls again.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from functools import lru_cache

from .errors import ResolveError
from .lockfile import Lock, LockedId, is_registry_source
from .model import DEV, Dep, Package, PkgId
from .semver import SemverError, parse_req, parse_version

MAX_BACKTRACKS = 5000


class NeedCrates(Exception):
    """The index data the resolver lacks: (registry or None, crate name) -> the features the
    dependency entries ask of it ("default" when they keep default features), a hint for
    fetching what those features will need next."""

    def __init__(self, names: dict[tuple[str | None, str], set[str]]):
        super().__init__(", ".join(sorted(n for _, n in names)))
        self.names = names


class UnknownCrate(ResolveError):
    pass


@dataclass(frozen=True)
class Patch:
    """One `[patch.<registry>]` entry of the workspace root: crate `name` of registry `target`
    (None: crates.io) comes from a local package (`path`) or from another registry (`registry`,
    the newest version of `package` there that matches `req`)."""

    target: str | None
    name: str
    path: str | None = None
    registry: str | None = None
    req: str = "*"


@dataclass(frozen=True)
class Replace:
    """One `[replace]` entry: version `version` of crate `name` is the local package at `path`."""

    name: str
    version: str
    path: str


@dataclass
class VersionGraph:
    """The versions cargo would lock: every package and, for each dependency entry it followed,
    the package chosen ((parent, index into parent.deps + extra) -> child)."""

    packages: dict[PkgId, Package]
    edges: dict[tuple[PkgId, int], PkgId]
    parents: dict[PkgId, tuple[PkgId, str]]
    skipped: list[str]
    unused_patches: list[Patch]
    index: object = None
    missing: dict[tuple[str | None, str], set[str]] = field(default_factory=dict)

    def choose(self, dep: Dep, locals_: dict[str, Package]) -> Package | None:
        """A package for a dependency entry the version pass did not follow (the feature pass
        should never need one): the newest active version that matches, as cargo's lock would
        give it; None while the crate's index file is not loaded."""
        if dep.path is not None:       # a path dependency, or a git dependency found on disk
            return locals_.get(dep.path)
        try:
            req = parse_req(dep.req)
        except SemverError:
            return None
        active = [p for p in self.packages.values()
                  if p.name == dep.package and _matches(req, p.id.version)]
        if active:
            return max(active, key=lambda p: parse_version(p.id.version))
        if not self.index.loaded(dep.package, dep.registry):
            wants = self.missing.setdefault((dep.registry, dep.package), set())
            wants.update(dep.features)
            return None
        versions = self.index.get(dep.package, dep.registry) or []
        ok = [p for p in versions if not p.yanked and _matches(req, p.id.version)]
        return max(ok, key=lambda p: parse_version(p.id.version)) if ok else None


@lru_cache(maxsize=1 << 16)
def _matches(req, version: str) -> bool:
    """Whether `version` matches `req` (a parsed, hashable VersionReq): asked for every candidate
    version of every dependency entry, by every version pass."""
    try:
        return req.matches(parse_version(version))
    except SemverError:
        return False


def supports(msrv: str, needed: str | None) -> bool:
    """Whether a toolchain of version `msrv` can build a package that needs `needed`."""
    if not needed:
        return True

    def as_tuple(v: str) -> tuple[int, ...]:
        return tuple(int(x) for x in (v.split(".") + ["0", "0"])[:3])

    try:
        return as_tuple(needed) <= as_tuple(msrv)
    except ValueError:
        return True


# ---------------------------------------------------------------------------------------------


_SKIP = "skip"          # a crate no platform we build for uses, absent from the index
_NOT_LOADED = object()


class _Conflict(Exception):
    def __init__(self, step: int, causes: set[int], message: str):
        self.step = step
        self.causes = causes
        self.message = message


@dataclass
class _Step:
    """One activation of the version search, and the steps that rejected candidates here."""

    origin: int                 # the step that activated the parent (-1: a workspace member)
    blockers: set[int]          # steps whose activations rejected candidates here


@dataclass
class _Frame:
    """A package whose dependencies the version search is choosing, and how far it got."""

    parent: Package
    siblings: list              # (index, dep, candidates, features, uses_default), fewest candidates first
    origin: int
    pos: int = 0


@dataclass
class _Run:
    """The state of one run of the search (replayed after every backtrack)."""

    active: dict = field(default_factory=dict)       # activation key -> (PkgId, step)
    links: dict = field(default_factory=dict)        # links value -> (PkgId, step)
    requested: dict = field(default_factory=dict)    # PkgId -> (features, uses default)
    packages: dict = field(default_factory=dict)
    edges: dict = field(default_factory=dict)
    parents: dict = field(default_factory=dict)
    heap: list = field(default_factory=list)
    frames: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    points: list = field(default_factory=list)       # (step, number of usable candidates)
    time: int = 0


def _key(pkg: Package, registry: str | None) -> tuple:
    if pkg.id.path:
        return ("path", pkg.id.path)
    return (registry, pkg.name, parse_version(pkg.id.version).compat_line)


class _Search:
    def __init__(self, inp, index, target, host):
        self.inp = inp
        self.index = index
        self.target = target
        self.host = host
        # (a plain name -> versions mapping still works: versions without edges)
        self.lock: Lock = inp.lock if isinstance(inp.lock, Lock) else Lock.from_versions(inp.lock or {})
        self.locked_deps = self._locked_edges()
        self.locked_by_name: dict[str, list[str]] = self.lock.versions
        self.patches: dict[tuple[str | None, str], list[Patch]] = {}
        for p in inp.patches:
            self.patches.setdefault((p.target, p.name), []).append(p)
        self.replaces = {(r.name, r.version): r for r in inp.replaces}
        self.patch_ids: dict[Patch, PkgId] = {}
        self.candidates: dict[tuple[PkgId, int], object] = {}
        self.versions: dict[tuple[str | None, str], list[Package] | None] = {}
        self.missing: dict[tuple[str | None, str], set[str]] = {}
        self.skipped: dict[str, None] = {}
        self.extra: dict[PkgId, tuple[Dep, ...]] = {}
        for pid, dep in inp.extra:
            self.extra[pid] = self.extra.get(pid, ()) + (dep,)
        self.rust_version = inp.rust_version if inp.resolver == "3" else None
        self.member_ids = frozenset(inp.members)
        self.poisoned = self._poisoned()
        # Versions come from the lock's edges, and features ignore inactive platforms.
        self.pinned = bool(self.lock) and not self.poisoned and inp.resolver != "1"
        # only a package the lock has is pinned: a new one (a fix adds it) gets all its lock entries
        self.locked_pkgs = {(n, v) for (n, v, _s) in self.lock.packages} if self.lock else set()

    # -- the lock -------------------------------------------------------------------------------

    def _locked_edges(self) -> dict[tuple[str, str, bool], tuple[LockedId, ...]]:
        """(name, version, is a registry package) -> the packages the lock says it depends on."""
        out: dict[tuple[str, str, bool], tuple[LockedId, ...]] = {}
        for (name, version, source), deps in self.lock.deps.items():
            out[(name, version, is_registry_source(source))] = deps
        return out

    def _locked_version(self, parent: Package, dep: Dep, req) -> str | None:
        """The version the lock records for this edge."""
        edges = self.locked_deps.get((parent.name, parent.id.version, not parent.id.path), ())
        hits = [v for n, v, s in edges if n == dep.package and is_registry_source(s) and _matches(req, v)]
        return max(hits, key=parse_version) if hits else None

    def _poisoned(self) -> bool:
        """cargo's `register_previous_locks`: when a local package's registry dependency matches
        nothing in the lock (one added or changed since), cargo stops locking registry packages
        to the lock's edges; it still prefers the locked versions."""
        if not self.lock:
            return False
        members = self.member_ids
        for pkg in self.inp.locals.values():
            member = pkg.id in members
            for d in self.deps_of(pkg):
                if d.source != "registry" or (not member and (d.optional or d.kind == DEV)):
                    continue
                try:
                    req = parse_req(d.req)
                except SemverError:
                    continue
                if not any(_matches(req, v) for v in self.locked_by_name.get(d.package, ())):
                    return True
        return False

    # -- candidates -----------------------------------------------------------------------------

    def deps_of(self, pkg: Package) -> tuple[Dep, ...]:
        return pkg.deps + self.extra.get(pkg.id, ())

    def _load(self, name: str, registry: str | None, features=(), default=True):
        """A crate's versions (None: no such crate), or _NOT_LOADED (recorded as missing)."""
        key = (registry, name)
        if key not in self.versions:
            if not self.index.loaded(name, registry):
                wants = self.missing.setdefault(key, set())
                wants.update(features)
                if default:
                    wants.add("default")
                return _NOT_LOADED
            self.versions[key] = self.index.get(name, registry) or None
        return self.versions[key]

    def _patch_package(self, patch: Patch) -> Package | None | str:
        if patch.path is not None:
            return self.inp.locals.get(patch.path)
        versions = self._load(patch.name, patch.registry)
        if versions is _NOT_LOADED:
            return None
        if versions is None:
            raise ResolveError(f"[patch]: no crate named `{patch.name}` in registry `{patch.registry or 'crates-io'}`")
        req = parse_req(patch.req)
        ok = [p for p in versions if not p.yanked and _matches(req, p.id.version)]
        if not ok:
            raise ResolveError(f"[patch]: no version of `{patch.name}` matches `{patch.req}` in "
                               f"registry `{patch.registry or 'crates-io'}`")
        return max(ok, key=lambda p: parse_version(p.id.version))

    def query(self, parent: Package, i: int, dep: Dep, chain) -> object:
        """The candidates for one dependency entry, best first; None while its crate's file is
        not loaded; _SKIP for a crate that no platform we build for uses and the index lacks."""
        key = (parent.id, i)
        if key in self.candidates:
            return self.candidates[key]
        result = self._query(parent, dep, chain)
        if result is not None:          # not loaded yet: ask again on the next call
            self.candidates[key] = result
        return result

    def _query(self, parent: Package, dep: Dep, chain) -> object:
        if dep.path is not None:       # a path dependency, or a git dependency found on disk
            pkg = self.inp.locals.get(dep.path)
            return [pkg] if pkg is not None else []
        if dep.source == "git":
            return _SKIP
        try:
            req = parse_req(dep.req)
        except SemverError as e:
            raise ResolveError(f"{e} (dependency `{dep.name}` of {chain()})") from None
        name = dep.package
        if (dep.target is not None and self.pinned and not self.target.matches(dep.target)
                and not self.host.matches(dep.target) and (parent.id.name, parent.id.version) in self.locked_pkgs
                and not self.patches.get((None if dep.registry in (None, "crates-io") else dep.registry, name))):
            # The lock pins every version and resolver 2 ignores inactive platforms' features:
            # a dependency for neither the target nor the host changes nothing, so its crate is
            # not fetched (cargo needs it only to choose versions, when there is no lock).
            return _SKIP
        patched_versions = set()
        patch_key = (None if dep.registry in (None, "crates-io") else dep.registry, name)
        for patch in self.patches.get(patch_key, ()):
            pkg = self._patch_package(patch)
            if pkg is None:
                return None
            self.patch_ids[patch] = pkg.id
            patched_versions.add(pkg.id.version)
            if _matches(req, pkg.id.version):
                return [pkg]
        versions = self._load(name, dep.registry, dep.features, dep.default_features)
        if versions is _NOT_LOADED:
            return None
        if versions is None:
            if dep.target is not None and not self.target.matches(dep.target) and not self.host.matches(dep.target):
                self.skipped.setdefault(f"{parent.name} → {dep.name} ({dep.target})")
                return _SKIP
            raise UnknownCrate(f"no crate named `{name}` in the index (required by {chain()})")
        by_version = {p.id.version: p for p in versions}
        if self.lock and not self.poisoned:
            locked = self._locked_version(parent, dep, req)
            if locked is not None and locked in by_version:
                return [self._replaced(by_version[locked])]
        preferred = set(self.locked_by_name.get(name, ()))
        if self.inp.locked and not any(_matches(req, v) for v in preferred):
            raise ResolveError(f"--locked: Cargo.lock has no version of `{name}` matching `{dep.req}` "
                               f"(required by {chain()}); run without --locked to choose one as cargo would")
        ok = [p for p in versions if (not p.yanked or p.id.version in preferred)
              and p.id.version not in patched_versions and _matches(req, p.id.version)]
        # cargo's VersionPreferences: locked versions first, then (resolver 3) versions whose
        # rust-version the workspace supports, then newest first. Sorted stably, last key first.
        ok.sort(key=lambda p: parse_version(p.id.version), reverse=True)
        msrv = self.rust_version
        if msrv is not None:
            ok.sort(key=lambda p: not supports(msrv, p.rust_version))
        if preferred:
            ok.sort(key=lambda p: p.id.version not in preferred)
        return [self._replaced(p) for p in ok]

    def _replaced(self, pkg: Package) -> Package:
        r = self.replaces.get((pkg.name, pkg.id.version))
        if r is None:
            return pkg
        local = self.inp.locals.get(r.path)
        if local is None:
            return pkg
        if local.name != pkg.name or local.id.version != pkg.id.version:
            raise ResolveError(f"[replace] `{r.name}:{r.version}`: the package at {r.path} is {local.name} "
                               f"{local.id.version}; a replacement must have the name and version it replaces")
        return local

    # -- one run --------------------------------------------------------------------------------

    def dep_list(self, pkg: Package, features, uses_default: bool, member: bool, chain) -> list:
        """The dependency entries followed for these features (cargo's dep_cache), with the
        features asked of each, fewest candidates first."""
        fmap = pkg.features
        deps = self.deps_of(pkg)
        optional = {d.name for d in deps if d.optional}
        on: set[str] = set()
        dep_reqs: dict[str, set[str]] = {}

        def dep_feature(d: str, f: str, weak: bool) -> None:
            if not weak and d in optional and d in fmap:
                feature(d)
            dep_reqs.setdefault(d, set()).add(f)

        def feature(f: str) -> None:
            if f in on:
                return
            on.add(f)
            for fv in fmap.get(f, ()):
                if fv[0] == "feat":
                    feature(fv[1])
                elif fv[0] == "dep":
                    dep_reqs.setdefault(fv[1], set())
                else:
                    dep_feature(fv[1], fv[2], fv[3])

        for f in features:
            if f.startswith("dep:"):
                dep_reqs.setdefault(f[4:], set())
            elif "/" in f:
                d, df = f.split("/", 1)
                dep_feature(d.rstrip("?"), df, d.endswith("?"))
            else:
                feature(f)
        if uses_default and "default" in fmap:
            feature("default")
        out = []
        for i, d in enumerate(deps):
            if d.kind == DEV and not member:
                continue
            if d.optional and d.name not in dep_reqs:
                continue
            feats = frozenset(d.features) | frozenset(dep_reqs.get(d.name, ()))
            cands = self.query(pkg, i, d, lambda d=d: chain(pkg.id, d.name))
            out.append((i, d, cands, feats, d.default_features))
        out.sort(key=lambda s: len(s[2]) if isinstance(s[2], list) else 0)
        return out

    def run(self, forced: dict[int, int], chain_of) -> _Run:
        st = self.state = _Run()
        self.missing = {}
        members = [p for p in self.inp.locals.values() if p.id in self.member_ids]
        order = {pid: n for n, pid in enumerate(self.inp.members)}
        members.sort(key=lambda p: order[p.id])

        def chain(pid: PkgId, dep_name: str | None = None) -> str:
            return chain_of(st.parents, pid, dep_name)

        for m in members:
            st.packages[m.id] = m
            st.active[_key(m, None)] = (m.id, -1)
            if m.links:
                st.links[m.links] = (m.id, -1)
            st.requested[m.id] = (frozenset(m.features), True)
            self._push(st, m, self.dep_list(m, m.features, True, True, chain), -1)

        while st.heap:
            _, t, fid = heapq.heappop(st.heap)
            frame = st.frames[fid]
            if frame.pos >= len(frame.siblings):
                continue
            i, dep, cands, feats, uses_default = frame.siblings[frame.pos]
            frame.pos += 1
            if frame.pos < len(frame.siblings):
                nxt = frame.siblings[frame.pos][2]
                heapq.heappush(st.heap, (len(nxt) if isinstance(nxt, list) else 0, t, fid))
            if not isinstance(cands, list):
                continue            # not loaded yet (recorded), or skipped
            step = len(st.steps)
            info = _Step(frame.origin, set())
            st.steps.append(info)
            usable = []
            for c in cands:
                blocker = self._reject(st, c, dep, feats)
                if blocker is None:
                    usable.append(c)
                else:
                    info.blockers.add(blocker)
            if not usable:
                raise _Conflict(step, {frame.origin} | info.blockers, self._message(st, frame.parent, dep, cands, chain))
            k = forced.get(step, 0)
            if len(usable) > 1:
                st.points.append((step, len(usable)))
            self._activate(st, frame.parent, i, dep, usable[k], feats, uses_default, step, chain)
        return st

    def _reject(self, st: _Run, c: Package, dep: Dep, feats) -> int | None:
        """The step whose activation rules out candidate `c`, or None when `c` can be used."""
        held = st.active.get(_key(c, dep.registry))
        if held is not None and held[0] != c.id:
            return held[1]
        if c.links:
            held = st.links.get(c.links)
            if held is not None and held[0] != c.id:
                return held[1]
        for f in feats:
            if "/" not in f and not f.startswith("dep:") and f not in c.features:
                return _ORIGIN
        return None

    def _activate(self, st: _Run, parent: Package, i: int, dep: Dep, c: Package, feats, uses_default: bool,
                  step: int, chain) -> None:
        st.edges[(parent.id, i)] = c.id
        st.parents.setdefault(c.id, (parent.id, dep.name))
        if c.id not in st.packages:
            st.packages[c.id] = c
            st.active[_key(c, dep.registry)] = (c.id, step)
            if c.links:
                st.links[c.links] = (c.id, step)
        prev = st.requested.get(c.id)
        if prev is not None and feats <= prev[0] and (not uses_default or prev[1]):
            return
        st.requested[c.id] = (feats | prev[0], uses_default or prev[1]) if prev else (feats, uses_default)
        member = c.id in self.member_ids
        self._push(st, c, self.dep_list(c, feats, uses_default, member, chain), step)

    def _push(self, st: _Run, pkg: Package, siblings: list, origin: int) -> None:
        if not siblings:
            return
        st.frames.append(_Frame(pkg, siblings, origin))
        first = siblings[0][2]
        heapq.heappush(st.heap, (len(first) if isinstance(first, list) else 0, st.time, len(st.frames) - 1))
        st.time += 1

    def _message(self, st: _Run, parent: Package, dep: Dep, cands: list, chain) -> str:
        where = chain(parent.id, dep.name)
        if not cands:
            return f"no version of `{dep.package}` matches `{dep.req}` (required by {where})"
        held = st.active.get(_key(cands[0], dep.registry))
        parts = [f"failed to select a version for `{dep.package}` (`{dep.req}`, required by {where})"]
        lacking = sorted({f for f in dep.features if "/" not in f and all(f not in c.features for c in cands)})
        if lacking:
            names = ", ".join(f"`{f}`" for f in lacking)
            parts.append(f"no matching version of `{dep.package}` has the feature{'s' if len(lacking) > 1 else ''} {names}")
        if held is not None:
            parts.append(f"{held[0]} is already in the graph (required by {chain(held[0])})")
        links = {c.links for c in cands if c.links}
        for link in sorted(links):
            if link in st.links:
                other = st.links[link][0]
                parts.append(f"only one package may link `{link}`, and {other} does (required by {chain(other)})")
        return ": ".join(parts[:1]) + ("; " + "; ".join(parts[1:]) if parts[1:] else "")


# A rejection caused by the dependency entry itself (a feature the candidate lacks): the step
# that activated the parent is to blame, and it is always among a conflict's causes.
_ORIGIN = -2


def resolve_versions(inp, index, target, host, chain_of) -> VersionGraph:
    """Choose every package's version; raises NeedCrates when index files are missing and
    ResolveError when no choice satisfies every requirement."""
    search = _Search(inp, index, target, host)
    stack: list[list] = []          # [step, candidate index, number of candidates, conflict set]
    all_missing: dict = {}
    first_error: str | None = None
    for _ in range(MAX_BACKTRACKS):
        forced = {s: k for s, k, _, _ in stack}
        try:
            st = search.run(forced, chain_of)
        except _Conflict as c:
            for key, feats in search.missing.items():
                all_missing.setdefault(key, set()).update(feats)
            first_error = first_error or c.message
            if not _backjump(stack, c, search.state.points, search.state.steps):
                if all_missing:
                    raise NeedCrates(all_missing) from None
                raise ResolveError(first_error) from None
            continue
        if search.missing:
            raise NeedCrates(dict(search.missing))
        unused = [p for ps in search.patches.values() for p in ps if search.patch_ids.get(p) not in st.packages]
        return VersionGraph(st.packages, st.edges, st.parents, list(search.skipped), unused, index)
    raise ResolveError(f"version resolution needs more than {MAX_BACKTRACKS} backtracks ({first_error})")


def _backjump(stack: list[list], c: _Conflict, points: list, steps: list) -> bool:
    """Conflict-directed backjumping: move the latest decision that took part in the conflict
    to its next candidate. False when no decision can change (no solution)."""
    last = stack[-1][0] if stack else -1
    for s, n in points:
        if s > last:
            stack.append([s, 0, n, set()])
    decisions = {s for s, _, _, _ in stack}

    def explain(causes: set[int]) -> set[int]:
        """Replace steps that were not decisions by what forced them."""
        out, todo, seen = set(), list(causes), set()
        while todo:
            s = todo.pop()
            if s < 0 or s in seen:
                continue
            seen.add(s)
            if s in decisions:
                out.add(s)
            else:
                todo.append(steps[s].origin)
                todo.extend(steps[s].blockers)
        return out

    causes = explain(c.causes)
    while causes:
        h = max(causes)
        while stack and stack[-1][0] > h:
            stack.pop()
        top = stack[-1]
        top[3] |= causes - {h}
        top[1] += 1
        if top[1] < top[2]:
            return True
        # every candidate of h failed: what made h's alternatives fail, plus what h depends on
        stack.pop()
        decisions.discard(h)
        causes = explain(top[3] | steps[h].blockers | {steps[h].origin})
    return False
