"""The planner for the catalog's other libraries (codemod/catalog.py): the cheapest set of edits
that builds a blocker from source, proved by resolving again with the catalog's predicate.

Remedies: a feature of the culprit that reaches one of the blocker's static features
(`static-feature`; from rules of that kind, or discovered in the graph), else an explicit
dependency on the blocker with that feature (`static-dep`, openssl-dep generalised). OpenSSL keeps
plan.make_plan; the candidates are enumerated and checked the same way (plan._cheapest_first).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .analyze import Analysis, analyze
from .catalog import BlockerStatus, Library, fixed_predicate, stripped, unit_status
from .plan import (STRATEGIES, Checker, Plan, Remedy, _dep_is, _edit_points,
                   _feature_edit, _pkg, _Point, _reaches, _resolver_lookup, _scoped, sys_dep_edits)
from .resolve import TARGET_SIDE, Resolution
from .rules import rules_for

# the OpenSSL names of the two remedy kinds, as --strategy asks for them
GENERAL_KIND = {"vendored-feature": "static-feature", "openssl-dep": "static-dep"}


def make_static_plan(analysis: Analysis, ws, rules, checker: Checker, strategy: str, display, scope, static) -> Plan:
    """make_plan for another catalog library: a feature of the culprit that reaches one of the
    blocker's static features (rules of kind static-feature, or discovered), else an explicit
    dependency on the blocker with it (static-dep)."""
    if not analysis.blocked:
        return Plan("clean")
    res = analysis.resolution
    points = _edit_points(analysis)
    want = STRATEGIES[strategy]
    if analysis.blocker != "openssl-sys":       # OpenSSL keeps its own names
        want = GENERAL_KIND.get(want, want)
    per_point = []
    for p in points:
        cands = _static_candidates(p, res, ws, rules, display, analysis.blocker, static)
        if scope is not None:
            cands = [_scoped(c, p, scope, display) for c in cands]
        per_point.append([c for c in cands if want in (None, c.kind)])
    globals_ = [g for g in _static_dep_candidates(analysis, ws, display, static, scope) if want in (None, g.kind)]
    found = _linear_search(per_point, globals_, checker)
    if found is not None:
        combo, texts = found
        return Plan("fixable", combo, texts, evaluations=checker.evaluations)
    if not any(per_point) and not globals_:
        reason = f"no remedy builds {analysis.blocker} from source: no feature of the culprits reaches " \
                 f"`{'`/`'.join(static)}`" if static else f"{analysis.blocker} has no static build"
    else:
        reason = f"no combination of remedies leaves {analysis.blocker} built from source"
    return Plan("unfixable", reason=reason, evaluations=checker.evaluations)


def _linear_search(per_point: list[list[Remedy]], globals_: list[Remedy], checker: Checker):
    """Candidate sets in a number of checks linear in the candidates: every point at its cheapest
    remedy; then each point moved along its own list while the others stay; then the explicit
    dependency alone and with the points. A set that works is pruned of edits it does not need."""
    def check(combo):
        edits = list(dict.fromkeys(e for r in combo for e in r.edits))
        return checker.fixes(edits) if edits else None

    def pruned(combo, texts):
        combo = list(combo)
        for r in sorted(combo, key=lambda r: r.cost, reverse=True):
            rest = [x for x in combo if x is not r]
            t = check(rest) if rest else None
            if t is not None:
                combo, texts = rest, t
        return tuple(combo), texts

    choice = [c[0] for c in per_point if c]
    texts = check(choice)
    if texts is not None:
        return pruned(choice, texts)
    lists = [c for c in per_point if c]
    for i, cands in enumerate(lists):
        for alt in cands[1:]:
            trial = choice[:i] + [alt] + choice[i + 1:]
            texts = check(trial)
            if texts is not None:
                return pruned(trial, texts)
    for g in globals_:
        for trial in ([g], choice + [g]):
            texts = check(trial)
            if texts is not None:
                return pruned(trial, texts)
    return None


def _static_candidates(p: _Point, res: Resolution, ws, rules, display, blocker: str, static) -> list[Remedy]:
    pkg = _pkg(res, p.crate)
    named: dict[str, tuple[str, str]] = {}
    for rule in rules_for(rules, pkg.name, pkg.id.version):
        for rem in rule.remedies:
            if rem.kind == "static-feature" and rem.blocker == blocker and all(f in pkg.features for f in rem.add_features):
                named.setdefault(rem.add_features[0], ("rule", " ".join(n for n in (rule.notes, rem.notes) if n)))
    lookup = _resolver_lookup(res)
    goal = lambda owner, fv: (owner.name == blocker and fv[0] == "feat" and fv[1] in static) or (  # noqa: E731
        fv[0] == "depfeat" and fv[2] in static and _dep_is(owner, fv[1], blocker))
    if pkg.name == blocker:
        # the sys crate itself: its static feature, not one that also builds more (gssapi-vendored)
        for f in static:
            if f in pkg.features:
                named.setdefault(f, ("discovered", ""))
    else:
        # the feature that does least first: fewest values, then by name
        for f in sorted(pkg.features, key=lambda f: (len(pkg.features.get(f, ())), f)):
            if f in named or f in pkg.implicit_features:
                continue
            if _reaches(res, lookup, pkg, f, goal):
                named[f] = ("discovered", "")
    out = []
    for f, (source, note) in named.items():
        if f in p.dep.features:
            continue
        out.append(Remedy("vendored-feature" if blocker == "openssl-sys" else "static-feature", source,
                          f"enable `{f}` of {pkg.name} {pkg.id.version}: {blocker} builds its library from source",
                          tuple(_feature_edit(p, ws, display, add=(f,))), (note,) if note else ()))
    return out


def _static_dep_candidates(analysis: Analysis, ws, display, static, scope: str | None = None) -> list[Remedy]:
    """openssl-dep generalised: the blocker itself as a dependency of each culprit member, at the
    version the build resolves, with its static feature; features unify into every path."""
    res = analysis.resolution
    choice = next((pid for pid, side in sorted(res.units, key=lambda u: (u[0].name, u[0].version))
                   if side == TARGET_SIDE and pid.name == analysis.blocker), None)
    if choice is None:
        return []
    feats = [f for f in static if f in res.packages[choice].features][:1]
    if not feats:
        return []
    edits = sys_dep_edits(res, sorted({c.package for c in analysis.culprits}), choice, feats[0], display, scope)
    if not edits:
        return []
    return [Remedy("openssl-dep" if analysis.blocker == "openssl-sys" else "static-dep", "discovered",
                   f"add `{choice.name}` {choice.version} with `{feats[0]}`: features unify, so every path to "
                   f"{analysis.blocker} gets the static build", tuple(edits))]


# -- every other blocker of the catalog, one after the other ----------------------------------------


@dataclass(frozen=True)
class BlockerReport:
    """Another catalog library the build links: its status, its chains and the plan for it."""

    crate: str
    library: str
    status: BlockerStatus              # on the first target
    analysis: Analysis | None          # chains: only for a library linked from the system
    plan: Plan | None = None
    unfixable: str = ""                # the catalog's reason when it has no remedy
    needs: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    enabled_by: tuple[tuple[str, tuple[str, ...]], ...] = ()   # (feature a clause needs, the chain that turns it on)

    @property
    def links_system(self) -> bool:
        return self.status.links_system

    def as_json(self) -> dict:
        doc = {"crate": self.crate, "library": self.library, "built": self.status.built,
               "static": not self.status.links_system,
               "versions": [u.version for u in self.status.units],
               "system_libraries": self.status.libraries(),
               "why": [c.why for u in self.status.units for c in u.system if c.why],
               "culprits": [c.as_json() for c in self.analysis.culprits] if self.links_system else [],
               "plan": [r.as_json() for r in self.plan.remedies] if self.plan is not None else []}
        if self.plan is not None and self.links_system:
            doc["status"] = "unfixable" if self.plan.status == "unfixable" else "fixable"
            reason = self.unfixable or self.plan.reason
            if doc["status"] == "unfixable" and reason:
                doc["reason"] = reason
        if self.needs and self.links_system:
            doc["needs"] = list(self.needs)
        if self.enabled_by:
            doc["enabled_by"] = {f: list(chain) for f, chain in self.enabled_by}
        return doc


def other_blockers(resolutions: list[Resolution], crates, catalog: list[Library], *, ws=None, rules=None,
                   make_checker=None, strategy: str = "auto", display=str, scope=None,
                   source_dir=lambda name, version: None) -> list[BlockerReport]:
    """Each catalog crate in `crates` on the given resolutions (one per target; the first reports).
    With `make_checker(blocker, fixed)` each blocker that links a system library gets a plan, checked
    with the catalog's predicate; the caller chains the checkers so the plans build on each other."""
    out = []
    for crate in crates:
        status = unit_status(resolutions[0], crate, catalog)
        links = [unit_status(r, crate, catalog).links_system for r in resolutions]
        # the chains are only drawn for a library the build links from the system: analysing costs a graph
        analysis = replace(analyze(resolutions[0], crate), vendored=not links[0]) if any(links) else None
        entries = [e for e in catalog if e.crate == crate and any(e.covers(u.version) for u in status.units)]
        unfixable = next((e.unfixable for e in entries if e.unfixable), "")
        if not unfixable and any(links):
            # a distribution's copy of the crate may lack what crates.io's has (Debian strips bundled sources)
            res = resolutions[0]
            for u in status.units:
                if u.entry is not None and u.system:
                    pid = next(p for p, _s in res.units if p.name == crate and p.version == u.version)
                    unfixable = stripped(u.entry, u.version, res.packages[pid].features, source_dir(crate, u.version))
                    if unfixable:
                        break
        needs = tuple(dict.fromkeys(n for e in entries for n in e.needs))
        notes = tuple(dict.fromkeys(e.notes for e in entries if e.notes))
        plan = None
        if make_checker is not None and any(links):
            static = tuple(dict.fromkeys(f for e in entries for m in e.remedies for f in m.add_features))
            if unfixable:
                plan = Plan("unfixable", reason=unfixable)
            elif not static:
                # nothing to add (a feature links the system library): the entry's advice is the reason
                plan = Plan("unfixable", reason=" ".join(notes) or f"{crate} has no static build")
            else:
                checker = make_checker(crate, fixed_predicate(crate, catalog))
                base = analysis if analysis is not None else analyze(resolutions[0], crate)
                plan = make_static_plan(replace(base, vendored=False), ws, rules, checker, strategy, display,
                                        scope, static)
                if plan.status == "unfixable" and notes:
                    plan = replace(plan, reason=" ".join((plan.reason, *notes)))
        enabled = tuple((f, chain) for f in dict.fromkeys(f for u in status.units for c in u.system for f in c.when)
                        for chain in [_feature_chain(analysis, crate, f)] if chain) if analysis is not None else ()
        out.append(BlockerReport(crate, status.library, status, analysis, plan, unfixable, needs, notes, enabled))
    return out


def _feature_chain(analysis: Analysis, crate: str, feature: str) -> tuple[str, ...]:
    """The shortest chain from a selected package to `feature` of the blocker on the target: who
    asked for the feature that makes it link the system library (zstd's `pkg-config`)."""
    import networkx as nx

    from .graph import pkg_node
    from .resolve import HOST_SIDE

    res, g = analysis.resolution, analysis.graph
    built = nx.subgraph_view(g, filter_edge=lambda u, v: g[u][v]["built"])
    ends = [n for n in g if n[0] == "feat" and n[1].name == crate and n[3] == feature
            and (n[1], TARGET_SIDE) in res.units and n[2] == res.key(TARGET_SIDE)]
    best = None
    for member in res.input.selected:
        src = pkg_node(member, res.key(HOST_SIDE) if res.packages[member].proc_macro else "normal")
        if src not in built:
            continue
        for end in ends:
            try:
                path = nx.shortest_path(built, src, end)
            except nx.NetworkXNoPath:
                continue
            if best is None or len(path) < len(best):
                best = path
    if best is None:
        return ()
    from .analyze import step_label

    return tuple(step_label(n) for n in best)
