"""Versions and feature activation for one target, as cargo would build it.

Pure: data in, data out. Three passes, mirroring cargo:

1. versions — cargo's dependency resolver (``codemod/versions.py``): every member, all features,
   dev-dependencies, all platforms; Cargo.lock's edges where it has them, else the newest
   matching version, one per semver-compatible line, with cargo's backtracking.
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
from .lockfile import Lock
from .model import BUILD, DEV, Dep, Package, PkgId, parse_feature_value
from .targets import DEFAULT_TARGET, HOST_TARGET, RustFlags, Target, load_target, probe_target
from .versions import NeedCrates, Patch, Replace, UnknownCrate, VersionGraph, resolve_versions

__all__ = ["NeedCrates", "UnknownCrate", "FeatureOpts", "ResolveInput", "Resolution", "resolve"]

NORMAL_FK, HOST_FK = "normal", "host"
TARGET_SIDE, HOST_SIDE = "target", "host"


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
    """Everything one resolution reads: local packages, members, selection, lock, target."""

    locals: dict[str, Package]          # local packages by directory
    members: tuple[PkgId, ...]
    selected: tuple[PkgId, ...]
    resolver: str = "2"
    lock: Lock = field(default_factory=Lock)     # Cargo.lock: locked packages and their edges
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
    patches: tuple[Patch, ...] = ()     # the root manifest's [patch.*] entries
    replaces: tuple[Replace, ...] = ()  # the root manifest's [replace] entries


@dataclass
class Resolution:
    """Versions and features for one target, as cargo would build them."""

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
    version_pass: object = field(default=None, repr=False, compare=False)   # the VersionGraph it was built on

    def key(self, side: str) -> str:
        return HOST_FK if side == HOST_SIDE and self.opts.decouple_host_deps else NORMAL_FK

    def unit_features(self, pid: PkgId, side: str) -> set[str]:
        return self.features.get((pid, self.key(side)), set())

    def deps_of(self, pid: PkgId) -> tuple[Dep, ...]:
        pkg = self.packages[pid]
        extra = tuple(d for p, d in self.input.extra if p == pid)
        return pkg.deps + extra


# ---------------------------------------------------------------------------------------------
# pass 1: versions — codemod/versions.py


# ---------------------------------------------------------------------------------------------
# pass 2: features


class _FeatureResolver:
    def __init__(self, opts: FeatureOpts, inp: ResolveInput, members: set[PkgId], choose, packages,
                 edges, target: Target | None, host: Target | None, parents: dict, shared: bool = False):
        self.shared = shared            # packages/edges/parents belong to others too: copy before a write
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
            if self.shared:
                self.packages, self.edges, self.parents = dict(self.packages), dict(self.edges), dict(self.parents)
                self.shared = False
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
    names = {p.name for p in inp.selected} if inp.features else set()
    others = {m.name for m in members.values() if m.id != inp.current} if inp.features else set()
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
    # pass 1: the dependency resolver's view (cargo generate-lockfile: all features, dev deps)
    versions = _versions_for(inp, index, target, host)
    try:
        return _resolve_once(inp, index, versions, target, host)
    except NeedCrates:
        # the feature pass needs crates the version pass did not: once fetched, choose again
        _VERSION_PASSES[:] = [e for e in _VERSION_PASSES if e[4] is not versions]
        raise


# The version pass does not depend on which members are built or with which features, so the
# builds a plan is checked against (the workspace, then each member on its own) share one; the
# entries hold the objects they were made from, so an identity check cannot be fooled.
_VERSION_PASSES: list[tuple] = []


def forget_version_passes() -> None:
    """The index's packages changed (a proc-macro guess corrected): no version pass stays valid."""
    _VERSION_PASSES.clear()


def _versions_for(inp: ResolveInput, index, target: Target, host: Target) -> VersionGraph:
    key = (inp.members, inp.resolver, inp.target, inp.host, inp.extra, inp.rust_version, inp.locked,
           repr(inp.rustflags), inp.patches, inp.replaces)
    for locals_, lock, idx, k, graph in _VERSION_PASSES:
        if locals_ is inp.locals and lock is inp.lock and idx is index and k == key:
            return graph
    graph = resolve_versions(inp, index, target, host, _chain)
    _VERSION_PASSES.insert(0, (inp.locals, inp.lock, index, key, graph))
    del _VERSION_PASSES[4:]
    return graph


def _shared_maps(inp: ResolveInput, versions: VersionGraph) -> tuple:
    """(members, packages, edges, parents) of a version pass, made once and shared by every build
    resolved on it (a workspace's builds, each member's on its own): a build's cost then follows
    what it builds, not the size of the workspace. The feature pass copies them before it adds
    anything (an edge the version pass did not follow)."""
    shared = getattr(versions, "shared_maps", None)
    if shared is None or shared[0] is not inp.members and shared[0] != inp.members:
        member_ids = set(inp.members)
        members = {p.id: p for p in inp.locals.values() if p.id in member_ids}
        packages: dict[PkgId, Package] = {p.id: p for p in inp.locals.values()}
        packages.update(versions.packages)
        shared = (inp.members, members, frozenset(members), packages, dict(versions.edges), dict(versions.parents))
        versions.shared_maps = shared
    return shared[1:]


def _resolve_once(inp, index, versions: VersionGraph, target: Target, host: Target) -> Resolution:
    members, member_set, packages, edges, parents = _shared_maps(inp, versions)
    skipped: dict[str, None] = dict.fromkeys(versions.skipped)

    def choose_all_platforms(pkg: Package, i: int, dep: Dep):
        # Every edge the feature pass follows was chosen by pass 1; this only answers for one it did not see.
        return versions.choose(dep, inp.locals)

    # pass 2: features for this build
    opts = FeatureOpts.for_resolver(inp.resolver, inp.dev)

    fr2 = _FeatureResolver(opts, inp, member_set, choose_all_platforms, packages, edges, target, host, parents,
                           shared=True)
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
    old_cli = inp.resolver == "1" and not inp.virtual
    if old_cli and inp.current in members and inp.current not in inp.selected:
        # cargo's members_with_features_old always resolves the current package with the
        # command line's features, even when -p leaves it out of the build
        fr2.activate_pkg(inp.current, NORMAL_FK, _requested_old(inp, packages[inp.current], members))

    if versions.missing:
        raise NeedCrates(dict(versions.missing))
    res = Resolution(inp, opts, fr2.packages, fr2.edges, fr2.features, fr2.activated_deps, fr2.fdeps,
                     requested, set(), set(), list(skipped), versions.edges, versions)
    _units(res, member_set, target, host)
    return res


# ---------------------------------------------------------------------------------------------
# pass 3: units


def _units(res: Resolution, members: set[PkgId], target: Target, host: Target) -> None:
    # A selected proc-macro member is compiled for the host only, and so is everything below it.
    queue = [(pid, HOST_SIDE if res.packages[pid].proc_macro else TARGET_SIDE) for pid in res.input.selected]
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
