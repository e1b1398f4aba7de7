"""The planner: candidate remedies from rules/ and from the graph, each checked by resolving the
edited manifests again; the cheapest set of edits that leaves no unvendored blocker wins.

Cost (DESIGN §3): a feature on an existing dependency (vendored) < a rustls switch < a new
`openssl`/`openssl-sys` dependency with `vendored`. Ties go to fewer edits, then to rules over
discoveries.
"""

from __future__ import annotations

import heapq
import itertools
from itertools import islice
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from .analyze import Analysis
from .edit import Edit, EditError, apply_edits, table_name
from .errors import CodemodError
from .model import Dep, Package, PkgId
from .resolve import TARGET_SIDE, Resolution
from .rules import Rule, rules_for
from .semver import parse_req, parse_version

COST = {"vendored-feature": 1, "rustls": 2, "openssl-dep": 3,
        "static-feature": 1, "static-dep": 3}     # the same for the other libraries (static_plan.py)
STRATEGIES = {"auto": None, "vendored": "vendored-feature", "rustls": "rustls", "openssl-dep": "openssl-dep"}
VENDORED_NOTE = "vendored OpenSSL is compiled from source: the build needs perl, make and a C compiler for the target"
MAX_EVALUATIONS = 64


@dataclass(frozen=True)
class Remedy:
    kind: str                      # vendored-feature | rustls | openssl-dep
    source: str                    # rule | discovered
    reason: str
    edits: tuple[Edit, ...]
    notes: tuple[str, ...] = ()
    misfit: int = 0                # 1 when a rule's switch does not name a feature the entry has

    def as_json(self) -> dict:
        return {"remedy": self.kind, "source": self.source, "reason": self.reason,
                "edits": [e.as_json() for e in self.edits], "notes": list(self.notes)}

    @property
    def cost(self) -> tuple[int, int, int, int]:
        return (COST[self.kind], len(self.edits), self.misfit, self.source != "rule")


@dataclass
class Plan:
    status: str                                    # clean | fixable | unfixable
    remedies: tuple[Remedy, ...] = ()
    texts: dict[Path, str] = field(default_factory=dict)     # new contents of each changed file
    reason: str = ""                               # why unfixable
    warnings: tuple[str, ...] = ()
    evaluations: int = 0

    @property
    def edits(self) -> list[Edit]:
        return [e for r in self.remedies for e in r.edits]


@dataclass(frozen=True)
class _Point:
    """Where a path can be cut: a local package's dependency entry on a registry crate."""

    local: PkgId
    dep: Dep
    crate: PkgId
    opening: frozenset[str]        # features of the crate that open the path


class Checker:
    """Applies edits in memory and resolves again: does the blocker leave the target build?"""

    def __init__(self, originals: dict[Path, str], reload: Callable[[dict[Path, str]], list[Resolution]], blocker: str,
                 fixed: Callable[[Resolution, str], bool] | None = None):
        self.originals = originals
        self.reload = reload
        self.blocker = blocker
        self.fixed = fixed or blocker_fixed        # the catalog's predicate for other libraries
        self.evaluations = 0

    def texts_for(self, edits: list[Edit]) -> dict[Path, str]:
        by_file: dict[Path, list[Edit]] = {}
        for e in edits:
            by_file.setdefault(Path(e.file).resolve(), []).append(e)
        out = {}
        for path, es in by_file.items():
            original = self.originals.get(path)
            if original is None:
                original = path.read_text(encoding="utf-8")
                self.originals[path] = original
            out[path] = apply_edits(original, es, str(path))
        return out

    def fixes(self, edits: list[Edit]) -> dict[Path, str] | None:
        try:
            texts = self.texts_for(edits)
        except EditError:
            return None
        self.evaluations += 1
        try:
            resolutions = self.reload(texts)
        except CodemodError:
            return None
        return texts if all(self.fixed(r, self.blocker) for r in resolutions) else None


def blocker_fixed(res: Resolution, blocker: str) -> bool:
    units = [pid for pid, side in res.units if pid.name == blocker and side == TARGET_SIDE]
    return all("vendored" in res.unit_features(pid, TARGET_SIDE) for pid in units)


def make_plan(analysis: Analysis, ws, rules: list[Rule], checker: Checker, strategy: str = "auto",
              display: Callable[[Path], str] = str, scope: str | None = None) -> Plan:
    """`scope` (a cfg expression) puts the edits under `[target.'<scope>'.dependencies]` instead,
    so builds for other targets keep what they had; only additive remedies can be scoped."""
    if not analysis.blocked:
        return Plan("clean")
    res = analysis.resolution
    points = _edit_points(analysis)
    warnings = tuple(w for p in points for w in _mistakes(p, res, rules))
    want = STRATEGIES[strategy]
    per_point: list[list[Remedy]] = []
    for p in points:
        cands = _vendored_candidates(p, res, ws, rules, display, analysis.blocker)
        if scope is None:
            cands += _rustls_candidates(p, res, ws, rules, display)
        else:
            cands = [_scoped(c, p, scope, display) for c in cands]
        per_point.append([c for c in cands if want in (None, c.kind)])
    globals_ = [g for g in _openssl_dep_candidates(analysis, ws, display, scope) if want in (None, g.kind)]

    advice = tuple(dict.fromkeys(
        rule.notes for p in points for rule in rules_for(rules, p.crate.name, p.crate.version)
        if not rule.remedies and rule.notes))
    for combo in islice(_cheapest_first(per_point, globals_), MAX_EVALUATIONS):
        edits = list(dict.fromkeys(e for r in combo for e in r.edits))
        texts = checker.fixes(edits)
        if texts is not None:
            combo = tuple(replace(r, notes=tuple(dict.fromkeys(r.notes + advice))) for r in combo)
            return Plan("fixable", combo, texts, warnings=warnings, evaluations=checker.evaluations)
    reason = _why_unfixable(points, per_point, globals_, strategy, res)
    if scope is not None and want in (None, "rustls"):
        reason += "; under --scope only additive remedies apply (a rustls switch turns default features off for every target)"
    return Plan("unfixable", reason=" ".join((reason, *advice)), warnings=warnings, evaluations=checker.evaluations)


def _total(remedies) -> tuple:
    return tuple(map(sum, zip(*(r.cost for r in remedies)))) if remedies else (0, 0, 0, 0)


def _cheapest_first(per_point: list[list[Remedy]], globals_: list[Remedy]):
    """Sets of remedies (at most one per edit point, or one global remedy) in order of total
    cost, enumerated lazily: a workspace with many culprits has too many combinations to list."""
    lists = [sorted(c, key=lambda r: r.cost) for c in per_point if c]
    heap: list = []
    start = tuple(-1 for _ in lists)           # -1: no remedy at this point
    seen = {start}
    order = itertools.count()

    def push(vec, extra=None):
        picked = tuple(lists[i][j] for i, j in enumerate(vec) if j >= 0) if extra is None else (extra,)
        heapq.heappush(heap, (_total(picked), next(order), vec, picked))

    for g in globals_:
        push(None, g)
    for i in range(len(lists)):
        vec = tuple(0 if k == i else -1 for k in range(len(lists)))
        seen.add(vec)
        push(vec)
    while heap:
        _, _, vec, picked = heapq.heappop(heap)
        yield picked
        if vec is None:
            continue
        for i, j in enumerate(vec):
            if j + 1 < len(lists[i]):
                nxt = vec[:i] + (j + 1,) + vec[i + 1:]
                if nxt not in seen:
                    seen.add(nxt)
                    push(nxt)


# -- where to cut -------------------------------------------------------------------------------


def _edit_points(analysis: Analysis) -> list[_Point]:
    g = analysis.graph
    res = analysis.resolution
    found: dict[tuple, set[str]] = {}
    for culprit in analysis.culprits:
        for path in culprit.paths:
            last_local = max(i for i, n in enumerate(path) if n[1].path)
            if last_local + 1 >= len(path):
                continue
            local = path[last_local][1]
            data = g.get_edge_data(path[last_local], path[last_local + 1]) or {}
            name = data.get("dep")
            if name is None:
                continue
            crate = path[last_local + 1][1]
            opening = {n[3] for n in path[last_local + 1:] if n[0] == "feat" and n[1] == crate}
            found.setdefault((local, name, crate), set()).update(opening)
    points = []
    for (local, name, crate), opening in found.items():
        dep = next((d for d in res.deps_of(local) if d.name == name), None)
        if dep is not None and dep.source == "registry":
            points.append(_Point(local, dep, crate, frozenset(opening)))
    return sorted(points, key=lambda p: (p.local.name, p.dep.name))


def _entry_file(p: _Point, ws) -> Path:
    return Path(p.local.path) / "Cargo.toml"


def _feature_edit(p: _Point, ws, display, add=(), remove=(), default_features=None) -> list[Edit]:
    """Edits to one dependency entry; a `workspace = true` entry is split as cargo requires:
    default-features and the root's own features live in `[workspace.dependencies]`."""
    member_file = display(_entry_file(p, ws))
    table = table_name(p.dep.table)
    if not p.dep.inherited:
        return [Edit(member_file, table, p.dep.name, tuple(add), tuple(remove), default_features)]
    root_spec = ((ws.root.workspace or {}).get("dependencies") or {}).get(p.dep.name, {})
    root_feats = set(root_spec.get("features", [])) if isinstance(root_spec, dict) else set()
    member_spec = _member_spec(ws, p)
    member_feats = set(member_spec.get("features", [])) if isinstance(member_spec, dict) else set()
    edits = []
    root_remove = tuple(f for f in remove if f in root_feats)
    if root_remove or default_features is not None:
        edits.append(Edit(display(ws.root.path), "workspace.dependencies", p.dep.name, (), root_remove, default_features))
    member_remove = tuple(f for f in remove if f in member_feats)
    if add or member_remove:
        edits.append(Edit(member_file, table, p.dep.name, tuple(add), member_remove, None))
    return edits


def _member_spec(ws, p: _Point):
    m = ws.manifests[Path(p.local.path)]
    node = m.data
    for part in p.dep.table:
        node = node.get(part, {})
    return node.get(p.dep.name, {})


# -- candidates ----------------------------------------------------------------------------------


def _pkg(res: Resolution, pid: PkgId) -> Package:
    return res.packages[pid]


def _reaches(res: Resolution, index_pkg, pkg: Package, feature: str, goal, seen=None) -> bool:
    """Does turning `feature` of `pkg` on reach `goal(pkg, value)`? Walks feature values through
    dependency features, picking each dependency's resolved version (or the newest matching)."""
    seen = seen if seen is not None else set()
    key = (pkg.id, feature)
    if key in seen:
        return False
    seen.add(key)
    for fv in pkg.features.get(feature, ()):
        if goal(pkg, fv):
            return True
        if fv[0] == "feat" and _reaches(res, index_pkg, pkg, fv[1], goal, seen):
            return True
        if fv[0] == "depfeat":
            for i, d in enumerate(pkg.deps):
                if d.name != fv[1] or d.kind == "dev":
                    continue
                child = index_pkg(pkg, i, d)
                if child is not None and _reaches(res, index_pkg, child, fv[2], goal, seen):
                    return True
    return False


def _resolver_lookup(res: Resolution):
    by_name: dict[str, list[Package]] = {}
    for p in res.packages.values():
        by_name.setdefault(p.name, []).append(p)

    def lookup(pkg: Package, i: int, dep: Dep) -> Package | None:
        pid = res.edges.get((pkg.id, i))
        if pid is not None:
            return res.packages[pid]
        req = parse_req(dep.req)
        ok = [p for p in by_name.get(dep.package, ()) if req.matches(parse_version(p.id.version))]
        return max(ok, key=lambda p: parse_version(p.id.version)) if ok else None
    return lookup


def _vendored_candidates(p: _Point, res: Resolution, ws, rules, display, blocker: str) -> list[Remedy]:
    pkg = _pkg(res, p.crate)
    out: list[Remedy] = []
    named: dict[str, tuple[str, str]] = {}
    for rule in rules_for(rules, pkg.name, pkg.id.version):
        for rem in rule.remedies:
            if rem.kind == "vendored-feature" and all(f in pkg.features for f in rem.add_features):
                note = " ".join(n for n in (rule.notes, rem.notes or VENDORED_NOTE) if n)
                named.setdefault(rem.add_features[0], ("rule", note))
    lookup = _resolver_lookup(res)
    goal = lambda owner, fv: owner.name == blocker and fv == ("feat", "vendored")  # noqa: E731
    goal_dep = lambda owner, fv: fv[0] == "depfeat" and fv[2] == "vendored" and _dep_is(owner, fv[1], blocker)  # noqa: E731
    for f in sorted(pkg.features):
        if f in named or f in pkg.implicit_features:
            continue
        if _reaches(res, lookup, pkg, f, lambda o, fv: goal(o, fv) or goal_dep(o, fv)):
            named[f] = ("discovered", VENDORED_NOTE)
    if pkg.name == blocker and "vendored" in pkg.features:
        named.setdefault("vendored", ("discovered", VENDORED_NOTE))
    for f, (source, note) in named.items():
        if f in p.dep.features:
            continue
        out.append(Remedy("vendored-feature", source,
                          f"enable `{f}` of {pkg.name} {pkg.id.version}: OpenSSL is compiled from source and linked statically",
                          tuple(_feature_edit(p, ws, display, add=(f,))), (note,)))
    return out


def _dep_is(owner: Package, dep_name: str, crate: str) -> bool:
    return any(d.name == dep_name and d.package == crate for d in owner.deps)


def _rustls_features(pkg: Package) -> list[str]:
    """Features of a package that bring in a crate named like rustls, best names first."""
    def brings_rustls(name: str, seen=None) -> bool:
        seen = seen or set()
        if name in seen:
            return False
        seen.add(name)
        for fv in pkg.features.get(name, ()):
            if fv[0] in ("dep", "depfeat") and any(d.name == fv[1] and "rustls" in d.package for d in pkg.deps):
                if fv[0] == "dep" or not fv[3]:
                    return True
            if fv[0] == "feat" and brings_rustls(fv[1], seen):
                return True
        return False

    names = [f for f in pkg.features if f not in pkg.implicit_features and not f.startswith("_") and brings_rustls(f)]
    rank = {"rustls-tls": 0, "rustls": 1}
    return sorted(names, key=lambda n: (rank.get(n, 2), len(n), n))[:2]


def _rustls_candidates(p: _Point, res: Resolution, ws, rules, display) -> list[Remedy]:
    pkg = _pkg(res, p.crate)
    specs: list[tuple[str, tuple[str, ...], tuple[str, ...], bool | None, str]] = []
    for rule in rules_for(rules, pkg.name, pkg.id.version):
        for rem in rule.remedies:
            if rem.kind == "rustls" and all(f in pkg.features for f in rem.add_features):
                note = " ".join(n for n in (rule.notes, rem.notes) if n)
                specs.append(("rule", rem.add_features, rem.remove_features, rem.default_features, note))
    if not specs:
        for f in _rustls_features(pkg):
            specs.append(("discovered", (f,), (), None, ""))
    out = []
    for source, add, remove_extra, df_rule, note in specs:
        needs_off = df_rule is False or ("default" in p.opening and p.dep.default_features)
        remove = [f for f in p.dep.features if (f in p.opening or f in remove_extra) and f not in add]
        readd: list[str] = []
        if needs_off and p.dep.default_features:
            for f in pkg.raw_features.get("default", []):
                if f.startswith("dep:") or f in p.opening or f in remove_extra or f in add:
                    continue
                readd.append(f)
        kept = [f for f in p.dep.features if f not in remove]
        adds = tuple(dict.fromkeys(f for f in (*add, *readd) if f not in kept))
        if not adds and not remove and not needs_off:
            continue
        edits = _feature_edit(p, ws, display, add=adds, remove=tuple(remove),
                              default_features=False if needs_off and p.dep.default_features else None)
        kept_defaults = f"; keeps the other default features ({', '.join(readd)})" if readd else ""
        # a rule's switch that replaces a feature the entry names fits better than one that does not
        misfit = int(bool(remove_extra) and not set(remove_extra) & set(p.dep.features))
        out.append(Remedy("rustls", source,
                          f"switch {pkg.name} {pkg.id.version} to rustls with `{'`, `'.join(add)}`"
                          + (", default features off" if needs_off else "") + kept_defaults,
                          tuple(edits), (note,) if note else (), misfit))
    return out


def _scoped(rem: Remedy, p: _Point, scope: str, display) -> Remedy:
    """A vendored feature for one target family: a target-specific entry for the same dependency
    (cargo merges it with the plain one on matching targets)."""
    table = f"target.{scope}.dependencies"
    file = display(Path(p.local.path) / "Cargo.toml")
    feats = [f for e in rem.edits for f in e.add_features]
    if p.dep.inherited:
        add = {"workspace": True, "features": feats}
    else:
        add = {"version": p.dep.req, "package": p.dep.package if p.dep.package != p.dep.name else None,
               "default-features": False if not p.dep.default_features else None, "features": feats}
    return replace(rem, edits=(Edit(file, table, p.dep.name, add=add),),
                   reason=rem.reason + f", only where {scope} holds")


def _openssl_dep_candidates(analysis: Analysis, ws, display, scope: str | None = None) -> list[Remedy]:
    res = analysis.resolution
    target_units = {pid.name: pid for pid, side in res.units if side == TARGET_SIDE}
    choice = target_units.get("openssl") if analysis.blocker == "openssl-sys" else None
    if choice is None or "vendored" not in res.packages[choice].features:
        choice = target_units.get(analysis.blocker)
    if choice is None or "vendored" not in res.packages[choice].features:
        return []
    edits = []
    members = sorted({c.package for c in analysis.culprits})
    by_name = {pid.name: pid for pid in res.input.selected}
    for name in members:
        member = by_name.get(name)
        if member is None:
            continue
        file = display(Path(member.path) / "Cargo.toml")
        existing = [d for d in res.deps_of(member) if d.kind == "normal" and d.target is None
                    and d.package == choice.name and scope is None]
        if existing:
            d = existing[0]
            if "vendored" not in d.features:
                edits.append(Edit(file, table_name(d.table), d.name, ("vendored",)))
            continue
        if any(d.name == choice.name and d.table == ("dependencies",) for d in res.deps_of(member)):
            continue     # [dependencies] already uses the key for another crate; leave it to the user
        table = "dependencies" if scope is None else f"target.{scope}.dependencies"
        edits.append(Edit(file, table, choice.name, add={"version": choice.version, "features": ["vendored"]}))
    if not edits:
        return []
    return [Remedy("openssl-dep", "discovered",
                   f"add `{choice.name}` {choice.version} with `vendored`: features unify, so every path to "
                   f"{analysis.blocker} gets the vendored build",
                   tuple(edits), (VENDORED_NOTE,))]


def _mistakes(p: _Point, res: Resolution, rules) -> list[str]:
    """The common mistake: a rustls feature asked for while default features keep native-tls."""
    pkg = _pkg(res, p.crate)
    rustls_names = set(_rustls_features(pkg))
    for rule in rules_for(rules, pkg.name, pkg.id.version):
        rustls_names |= {f for rem in rule.remedies if rem.kind == "rustls" for f in rem.add_features}
    asked = [f for f in p.dep.features if f in rustls_names or "rustls" in f]
    if asked and p.dep.default_features and "default" in p.opening:
        return [f"{p.local.name}: `{p.dep.name}` asks for `{asked[0]}` but keeps default features on, so "
                f"{pkg.name}'s default TLS (native-tls, OpenSSL) is still built; set `default-features = false`"]
    return []


def _why_unfixable(points, per_point, globals_, strategy, res) -> str:
    if strategy != "auto":
        kind = STRATEGIES[strategy]
        if not any(per_point) and not globals_:
            names = ", ".join(f"{p.crate.name} {p.crate.version}" for p in points) or "the culprits"
            return f"no `{kind}` remedy exists for {names}"
        return f"no combination of `{kind}` remedies removes the unvendored OpenSSL from the build"
    return "no remedy removes the unvendored OpenSSL from the build (no vendored or rustls feature, and no openssl dependency can be added)"
