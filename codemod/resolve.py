"""Versions and feature activation for one target, as cargo would build it.

Pure: data in, data out. Three passes, mirroring cargo:

1. versions — cargo's dependency resolver: every member, all features, dev-dependencies, all
   platforms; the locked version where Cargo.lock has one, else the newest matching non-yanked
   version, one version per semver-compatible line.
2. features — cargo's ``FeatureResolver`` (``core/resolver/features.rs``), with ``FeatureOpts``'
   three switches set by the resolver version.
3. units — what ``cargo build --target T`` compiles: platform-active edges, optional
   dependencies only where activated, build-dependencies and proc macros on the host.

When the index lacks data the resolver needs, it raises ``NeedCrates`` with every missing name
found in that pass; the caller fetches them all at once and calls again (one round trip per level
of the graph).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ResolveError
from .model import BUILD, DEV, Dep, Package, PkgId, parse_feature_value
from .semver import SemverError, parse_req, parse_version
from .targets import DEFAULT_TARGET, HOST_TARGET, RustFlags, Target, load_target, probe_target

NORMAL_FK, HOST_FK = "normal", "host"
TARGET_SIDE, HOST_SIDE = "target", "host"


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
class FeatureOpts:
    """cargo's FeatureOpts: all three on for resolver 2 and 3, off for resolver 1."""

    decouple_host_deps: bool
    decouple_dev_deps: bool
    ignore_inactive_targets: bool

    @classmethod
    def for_resolver(cls, resolver: str, has_dev_units: bool) -> FeatureOpts:
        if resolver == "1":
            return cls(False, False, False)
        # Dev deps cannot be decoupled when they are in use.
        return cls(True, not has_dev_units, True)

    @property
    def track_for_host(self) -> bool:
        return self.decouple_host_deps or self.ignore_inactive_targets


@dataclass(frozen=True)
class ResolveInput:
    locals: dict[str, Package]          # local packages by directory
    members: tuple[PkgId, ...]
    selected: tuple[PkgId, ...]
    resolver: str = "2"
    lock: dict[str, list[str]] = field(default_factory=dict)
    target: str = DEFAULT_TARGET
    host: str = HOST_TARGET
    features: tuple[str, ...] = ()      # --features
    all_features: bool = False
    no_default_features: bool = False
    dev: bool = False                   # build dev units (the root's dev-dependencies)
    extra: tuple[tuple[PkgId, Dep], ...] = ()   # dependencies a plan adds to a member
    rust_version: str | None = None     # the workspace's MSRV: resolver 3 prefers versions that support it
    locked: bool = False                # --locked: only versions Cargo.lock names
    current: PkgId | None = None        # the package of the given manifest (cargo's "current" package)
    virtual: bool = False               # the workspace root has no [package]
    rustflags: RustFlags = RustFlags()  # where cargo takes the target's rustflags from (not the host's)


@dataclass
class Resolution:
    input: ResolveInput
    opts: FeatureOpts
    packages: dict[PkgId, Package]
    edges: dict[tuple[PkgId, int], PkgId]                      # (package, dep index) -> chosen package
    features: dict[tuple[PkgId, str], set[str]]                # (package, feature key) -> features
    activated_deps: dict[tuple[PkgId, str], set[str]]
    fdeps: dict[tuple[PkgId, str], list[tuple[int, Dep]]]      # the feature resolver's view of each package
    requested: dict[PkgId, list[tuple]]                         # CLI feature values per selected member
    units: set[tuple[PkgId, str]]                               # (package, side) built
    unit_edges: set[tuple[PkgId, str, int, PkgId, str]]         # parent, side, dep index, child, side
    skipped: list[str]                                          # dependencies the index could not answer, for inactive platforms
    lock_edges: dict[tuple[PkgId, int], PkgId] = field(default_factory=dict)  # pass 1's edges: what Cargo.lock records

    def key(self, side: str) -> str:
        return HOST_FK if side == HOST_SIDE and self.opts.decouple_host_deps else NORMAL_FK

    def unit_features(self, pid: PkgId, side: str) -> set[str]:
        return self.features.get((pid, self.key(side)), set())

    def deps_of(self, pid: PkgId) -> tuple[Dep, ...]:
        pkg = self.packages[pid]
        extra = tuple(d for p, d in self.input.extra if p == pid)
        return pkg.deps + extra


# ---------------------------------------------------------------------------------------------
# pass 1: versions


class _Restart(Exception):
    pass


class _Versions:
    def __init__(self, inp: ResolveInput, index):
        self.inp = inp
        self.index = index
        self.pins: dict[str, dict[tuple, str]] = {}        # name -> compatible line -> version
        self.line_reqs: dict[tuple[str, tuple], set[str]] = {}
        self.by_name: dict[tuple, dict[str, Package] | None] = {}
        self.missing: dict[tuple[str | None, str], set[str]] = {}
        self.locked: dict[str, list[str]] = inp.lock

    def _versions(self, name: str, registry: str | None) -> dict[str, Package] | None:
        key = (registry, name)
        if key not in self.by_name:
            pkgs = self.index.get(name, registry)
            self.by_name[key] = None if pkgs is None else {p.id.version: p for p in pkgs}
        return self.by_name[key]

    def choose(self, dep: Dep, chain) -> Package | None:
        """The package this dependency resolves to; None while its index file is not loaded."""
        if dep.source == "path":
            return self.inp.locals[dep.path]
        name = dep.package
        if not self.index.loaded(name, dep.registry):
            wants = self.missing.setdefault((dep.registry, name), set())
            wants.update(dep.features)
            if dep.default_features:
                wants.add("default")
            return None
        versions = self._versions(name, dep.registry)
        if versions is None:
            raise UnknownCrate(f"no crate named `{name}` in the index (required by {chain()})")
        try:
            req = parse_req(dep.req)
        except SemverError as e:
            raise ResolveError(f"{e} (dependency `{dep.name}` of {chain()})") from None
        pins = self.pins.setdefault(name, {})
        pinned = [v for v in pins.values() if req.matches(parse_version(v))]
        if pinned:
            return versions[max(pinned, key=parse_version)]
        locked = [v for v in self.locked.get(name, ()) if v in versions and req.matches(parse_version(v))]
        if locked:
            best = max(locked, key=parse_version)
        elif self.inp.locked:
            raise ResolveError(f"--locked: Cargo.lock has no version of `{name}` matching `{dep.req}` "
                               f"(required by {chain()}); run without --locked to choose one as cargo would")
        else:
            ok = [v for v, p in versions.items() if not p.yanked and req.matches(parse_version(v))]
            if not ok:
                raise ResolveError(
                    f"no version of `{name}` matches `{dep.req}` (required by {chain()})"
                )
            if self.inp.resolver == "3" and self.inp.rust_version:
                # resolver 3 prefers versions whose rust-version the workspace supports, else falls back
                fits = [v for v in ok if _supports(self.inp.rust_version, versions[v].rust_version)]
                ok = fits or ok
            best = max(ok, key=parse_version)
        line = parse_version(best).compat_line
        self.line_reqs.setdefault((name, line), set()).add(dep.req)
        if line in pins:
            # cargo keeps one version per compatible line: pick the newest that fits every
            # requirement seen on the line and start the pass again.
            reqs = [parse_req(r) for r in self.line_reqs[(name, line)]]
            fits = [v for v, p in versions.items() if not p.yanked and all(r.matches(parse_version(v)) for r in reqs)]
            if not fits:
                raise ResolveError(f"conflicting requirements for `{name}`: {', '.join(sorted(self.line_reqs[(name, line)]))}")
            pins[line] = max(fits, key=parse_version)
            raise _Restart()
        pins[line] = best
        return versions[best]


def _supports(msrv: str, needed: str | None) -> bool:
    if not needed:
        return True
    as_tuple = lambda v: tuple(int(x) for x in (v.split(".") + ["0", "0"])[:3])  # noqa: E731
    try:
        return as_tuple(needed) <= as_tuple(msrv)
    except ValueError:
        return True


# ---------------------------------------------------------------------------------------------
# pass 2: features


class _FeatureResolver:
    def __init__(self, opts: FeatureOpts, inp: ResolveInput, members: set[PkgId], choose, packages,
                 edges, target: Target | None, host: Target | None, parents: dict):
        self.opts = opts
        self.inp = inp
        self.members = members
        self.choose = choose            # (pkg, index, dep) -> Package | None
        self.packages = packages
        self.edges = edges
        self.target = target            # None: every platform counts (the version pass)
        self.host = host
        self.parents = parents
        self.features: dict[tuple[PkgId, str], set[str]] = {}
        self.activated_deps: dict[tuple[PkgId, str], set[str]] = {}
        self.processed: set[tuple[PkgId, str]] = set()
        self.deferred: dict[tuple[PkgId, str, str], set[str]] = {}
        self.fdeps: dict[tuple[PkgId, str], list] = {}

    def apply(self, fk: str) -> str:
        return fk if self.opts.decouple_host_deps else NORMAL_FK

    def deps(self, pid: PkgId, fk: str) -> list[tuple[int, Dep]]:
        """The dependency entries the feature resolver sees from (package, key), as cargo's deps()."""
        cached = self.fdeps.get((pid, fk))
        if cached is not None:
            return cached
        pkg = self.packages[pid]
        is_member = pid in self.members
        out = []
        all_deps = pkg.deps + tuple(d for p, d in self.inp.extra if p == pid)
        for i, dep in enumerate(all_deps):
            if dep.kind == DEV and (not is_member or self.opts.decouple_dev_deps):
                continue
            if dep.target is not None and self.opts.ignore_inactive_targets and self.target is not None:
                platform = self.host if (dep.kind == BUILD or fk == HOST_FK) else self.target
                if not platform.matches(dep.target):
                    continue
            out.append((i, dep))
        self.fdeps[(pid, fk)] = out
        return out

    def child(self, pid: PkgId, fk: str, i: int, dep: Dep) -> tuple[PkgId, str] | None:
        """The package a dependency entry resolves to, and the feature key it is built with."""
        cid = self.edges.get((pid, i))
        if cid is None:
            child = self.choose(self.packages[pid], i, dep)
            if child is None:
                return None
            cid = child.id
            self.packages.setdefault(cid, child)
            self.edges[(pid, i)] = cid
            self.parents.setdefault(cid, (pid, dep.name))
        if fk == NORMAL_FK and self.opts.track_for_host and (dep.kind == BUILD or self.packages[cid].proc_macro):
            return cid, HOST_FK
        return cid, fk

    def fvs_from_dep(self, child: PkgId, dep: Dep) -> list[tuple]:
        fvs = [parse_feature_value(f) for f in dep.features]
        if dep.default_features and "default" in self.packages[child].features:
            fvs.append(("feat", "default"))
        return fvs

    def activate_pkg(self, pid: PkgId, fk: str, fvs) -> None:
        self.features.setdefault((pid, self.apply(fk)), set())
        for fv in fvs:
            self.activate_fv(pid, fk, fv)
        if (pid, fk) in self.processed:
            return
        self.processed.add((pid, fk))
        for i, dep in self.deps(pid, fk):
            if dep.optional:
                continue
            hit = self.child(pid, fk, i, dep)
            if hit:
                self.activate_pkg(hit[0], hit[1], self.fvs_from_dep(hit[0], dep))

    def activate_fv(self, pid: PkgId, fk: str, fv) -> None:
        kind = fv[0]
        if kind == "feat":
            self.activate_rec(pid, fk, fv[1])
        elif kind == "dep":
            self.activate_dependency(pid, fk, fv[1])
        else:
            self.activate_dep_feature(pid, fk, fv[1], fv[2], fv[3])

    def activate_rec(self, pid: PkgId, fk: str, feature: str) -> None:
        enabled = self.features.setdefault((pid, self.apply(fk)), set())
        if feature in enabled:
            return
        enabled.add(feature)
        for fv in self.packages[pid].features.get(feature, ()):
            self.activate_fv(pid, fk, fv)

    def activate_dependency(self, pid: PkgId, fk: str, dep_name: str) -> None:
        self.activated_deps.setdefault((pid, self.apply(fk)), set()).add(dep_name)
        to_enable = self.deferred.pop((pid, fk, dep_name), None)
        for i, dep in self.deps(pid, fk):
            if dep.name != dep_name:
                continue
            hit = self.child(pid, fk, i, dep)
            if not hit:
                continue
            child, dfk = hit
            if to_enable:
                for f in sorted(to_enable):
                    self.activate_fv(child, dfk, parse_feature_value(f))
            self.activate_pkg(child, dfk, self.fvs_from_dep(child, dep))

    def activate_dep_feature(self, pid: PkgId, fk: str, dep_name: str, dep_feature: str, weak: bool) -> None:
        for i, dep in self.deps(pid, fk):
            if dep.name != dep_name:
                continue
            if dep.optional:
                active = dep_name in self.activated_deps.get((pid, self.apply(fk)), ())
                if weak and not active:
                    self.deferred.setdefault((pid, fk, dep_name), set()).add(dep_feature)
                    continue
                self.activate_fv(pid, fk, ("dep", dep_name))
                if not weak and dep_name in self.packages[pid].features:
                    self.activate_rec(pid, fk, dep_name)
            hit = self.child(pid, fk, i, dep)
            if hit:
                self.activate_fv(hit[0], hit[1], parse_feature_value(dep_feature))


def _requested(inp: ResolveInput, pkg: Package, all_features: bool, selected_count: int) -> list[tuple]:
    fvs: list[tuple] = []

    for f in inp.features:
        if "/" in f:
            owner, feat = f.split("/", 1)
            if owner == pkg.name:
                fvs.append(parse_feature_value(feat))
            elif any(d.name == owner for d in pkg.deps):
                fvs.append(parse_feature_value(f))
        elif f in pkg.features or selected_count == 1:
            if f not in pkg.features:
                raise ResolveError(f"package `{pkg.name}` does not have the feature `{f}`")
            fvs.append(("feat", f))
    if not inp.no_default_features and "default" in pkg.features:
        fvs.append(("feat", "default"))
    if all_features:
        fvs.extend(("feat", f) for f in pkg.features)
    return fvs


def _requested_old(inp: ResolveInput, pkg: Package, members: dict) -> list[tuple]:
    """Resolver 1 with a non-virtual root (cargo's ``members_with_features_old``): ``--features``
    and ``--no-default-features`` apply to the current package only; another selected member gets
    its defaults plus the ``member/feature`` values that name it, and ``--all-features`` applies
    to every selected member."""
    names = {p.name for p in inp.selected}
    others = {m.name for m in members.values() if m.id != inp.current}
    current = pkg.id == inp.current
    fvs: list[tuple] = []
    for f in inp.features:
        owner, _, feat = f.partition("/")
        specific = bool(feat) and owner in others and owner in names
        if specific and owner == pkg.name and not current:
            fvs.append(("feat", feat))
        elif current and not specific:
            if not feat and f not in pkg.features:
                raise ResolveError(f"package `{pkg.name}` does not have the feature `{f}`")
            fvs.append(parse_feature_value(f))
    if (not current or not inp.no_default_features) and "default" in pkg.features:
        fvs.append(("feat", "default"))
    if inp.all_features:
        fvs.extend(("feat", f) for f in pkg.features)
    return fvs


def _chain(parents: dict, pid: PkgId, dep_name: str | None = None) -> str:
    names = [dep_name] if dep_name else []
    seen = set()
    cur = pid
    while cur is not None and cur not in seen:
        seen.add(cur)
        names.append(cur.name)
        cur = parents.get(cur, (None,))[0]
    return " → ".join(reversed(names))


RESOLUTIONS = [0]      # how many resolutions this process ran (reported by -v; the planner re-resolves)


def resolve(inp: ResolveInput, index) -> Resolution:
    """Resolve versions and features for ``inp.target``; raises NeedCrates when data is missing."""
    RESOLUTIONS[0] += 1
    target, host = probe_target(inp.target, inp.rustflags), load_target(inp.host)
    members = {p.id: p for p in inp.locals.values() if p.id in set(inp.members)}
    versions = _Versions(inp, index)
    for name, vs in inp.lock.items():
        for v in vs:
            try:
                versions.pins.setdefault(name, {}).setdefault(parse_version(v).compat_line, v)
            except SemverError:
                continue
    for _ in range(50):
        try:
            return _resolve_once(inp, index, versions, members, target, host)
        except _Restart:
            versions.missing.clear()
            continue
    raise ResolveError("version resolution did not settle")


def _resolve_once(inp, index, versions: _Versions, members, target: Target, host: Target) -> Resolution:
    packages: dict[PkgId, Package] = {p.id: p for p in inp.locals.values()}
    edges: dict[tuple[PkgId, int], PkgId] = {}
    parents: dict = {}
    skipped: dict[str, None] = {}

    def choose_all_platforms(pkg: Package, i: int, dep: Dep):
        try:
            return versions.choose(dep, lambda: _chain(parents, pkg.id, dep.name))
        except UnknownCrate:
            # A crate absent from the index only matters when some platform we build for uses it.
            if dep.target is not None and not target.matches(dep.target) and not host.matches(dep.target):
                skipped.setdefault(f"{pkg.id.name} → {dep.name} ({dep.target})")
                return None
            raise

    # pass 1: the dependency resolver's view (cargo generate-lockfile: all features, dev deps)
    lock_opts = FeatureOpts.for_resolver("1", True)
    fr = _FeatureResolver(lock_opts, inp, set(members), choose_all_platforms, packages, edges, None, None, parents)
    for pid in inp.members:
        fr.activate_pkg(pid, NORMAL_FK, [("feat", f) for f in packages[pid].features])
    if versions.missing:
        raise NeedCrates(dict(versions.missing))
    lock_edges = dict(edges)

    # pass 2: features for this build
    opts = FeatureOpts.for_resolver(inp.resolver, inp.dev)

    fr2 = _FeatureResolver(opts, inp, set(members), choose_all_platforms, packages, edges, target, host, parents)
    requested = {}
    for pid in inp.selected:
        pkg = packages[pid]
        if inp.resolver == "1" and not inp.virtual:
            fvs = _requested_old(inp, pkg, members)
        else:
            fvs = _requested(inp, pkg, inp.all_features, len(inp.selected))
        requested[pid] = fvs
        fk = NORMAL_FK
        if opts.track_for_host and pkg.proc_macro:
            fr2.activate_pkg(pid, NORMAL_FK, fvs)
            fk = HOST_FK
        fr2.activate_pkg(pid, fk, fvs)

    if versions.missing:
        raise NeedCrates(dict(versions.missing))
    res = Resolution(inp, opts, packages, edges, fr2.features, fr2.activated_deps, fr2.fdeps,
                     requested, set(), set(), list(skipped), lock_edges)
    _units(res, set(members), target, host)
    return res


# ---------------------------------------------------------------------------------------------
# pass 3: units


def _units(res: Resolution, members: set[PkgId], target: Target, host: Target) -> None:
    queue = [(pid, TARGET_SIDE) for pid in res.input.selected]
    res.units.update(queue)
    while queue:
        pid, side = queue.pop()
        key = res.key(side)
        activated = res.activated_deps.get((pid, key), set())
        for i, dep in enumerate(res.deps_of(pid)):
            if dep.kind == DEV and not (pid in members and res.input.dev and side == TARGET_SIDE):
                continue
            child = res.edges.get((pid, i))
            if child is None:
                continue
            platform = host if (side == HOST_SIDE or dep.kind == BUILD) else target
            if dep.target is not None and not platform.matches(dep.target):
                continue
            if dep.optional and dep.name not in activated:
                continue
            dside = HOST_SIDE if (side == HOST_SIDE or dep.kind == BUILD or res.packages[child].proc_macro) else TARGET_SIDE
            res.unit_edges.add((pid, side, i, child, dside))
            if (child, dside) not in res.units:
                res.units.add((child, dside))
                queue.append((child, dside))
