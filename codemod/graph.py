"""The activation graph: a networkx DiGraph of what activates what, built from a Resolution.

Nodes are ``("pkg", PkgId, key)`` and ``("feat", PkgId, key, feature)``, where key is the feature
key (``normal``, or ``host`` when resolver 2 decouples host dependencies). Every edge carries why it
exists: ``kind`` (dep | optional-dep | dep-feature | feature | request), ``dep`` (the dependency
entry's name as written), ``dep_kind`` (normal | build | dev), ``value`` (the feature value) and
``built`` (whether ``cargo build`` compiles along it for the target; resolver 1 also unifies
features through edges it does not build).

A feature value naming an implicit feature of an optional dependency (``foo = ["dep:foo"]``) from
the package's own feature table goes straight to the dependency, as users think of it. A request for
it from outside (a dependency entry's ``features``, ``dep/foo``, ``--features``) reaches its
feature node, which expands to the dependency like any other feature.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .model import Dep, PkgId
from .resolve import Resolution

if TYPE_CHECKING:
    import networkx as nx


def pkg_node(pid: PkgId, key: str) -> tuple:
    return ("pkg", pid, key)


def feat_node(pid: PkgId, key: str, feature: str) -> tuple:
    return ("feat", pid, key, feature)


def build_graph(res: Resolution) -> nx.DiGraph:
    import networkx as nx

    g = nx.DiGraph()
    apply = lambda fk: res.key("host" if fk == "host" else "target")  # noqa: E731
    built_edges = {(p, res.key(s), i) for p, s, i, _c, _cs in res.unit_edges}
    built_pkgs = {(p, res.key(s)) for p, s in res.units}

    def add(u, v, built: bool, **attrs) -> None:
        if g.has_edge(u, v):
            g[u][v]["built"] = g[u][v]["built"] or built
            return
        g.add_edge(u, v, built=built, **attrs)

    def requested(dep: Dep, child: PkgId, ckey: str) -> list[str]:
        feats = [f for f in dep.features if "/" not in f]
        if dep.default_features and "default" in res.packages[child].features:
            feats.append("default")
        active = res.features.get((child, ckey), set())
        return [f for f in feats if f in active]

    def link_dep(src, pid, key, i, dep, child, ckey, kind, value=None):
        built = (pid, key, i) in built_edges
        add(src, pkg_node(child, ckey), built, kind=kind, dep=dep.name, dep_kind=dep.kind, value=value)
        for f in requested(dep, child, ckey):
            add(src, feat_node(child, ckey, f), built, kind=kind, dep=dep.name, dep_kind=dep.kind, value=f)

    def expand(src, pid: PkgId, key: str, fk: str, fv, by_name) -> None:
        pkg = res.packages[pid]
        activated = res.activated_deps.get((pid, key), set())
        kind = fv[0]
        if kind == "feat" and fv[1] in pkg.implicit_features:
            fv = ("dep", fv[1])
            kind = "dep"
        if kind == "feat":
            add(src, feat_node(pid, key, fv[1]), (pid, key) in built_pkgs, kind="feature", dep=None, dep_kind=None, value=fv[1])
            return
        for i, dep, child, dfk in by_name.get(fv[1], ()):
            ckey = apply(dfk)
            if kind == "dep":
                if dep.name in activated:
                    link_dep(src, pid, key, i, dep, child, ckey, "optional-dep", f"dep:{dep.name}")
                continue
            _, dname, dfeat, weak = fv
            if dep.optional and dname not in activated:
                continue
            if dep.optional and not weak:
                link_dep(src, pid, key, i, dep, child, ckey, "optional-dep", f"{dname}/{dfeat}")
                if dname in pkg.features and dname not in pkg.implicit_features:
                    add(src, feat_node(pid, key, dname), (pid, key) in built_pkgs, kind="feature", dep=None, dep_kind=None, value=dname)
            if "/" not in dfeat and dfeat in res.features.get((child, ckey), set()):
                add(src, feat_node(child, ckey, dfeat), (pid, key, i) in built_edges,
                    kind="dep-feature", dep=dep.name, dep_kind=dep.kind, value=f"{dname}{'?' if weak else ''}/{dfeat}")

    def dep_fk(fk: str, dep: Dep, child: PkgId) -> str:
        if fk == "normal" and res.opts.track_for_host and (dep.kind == "build" or res.packages[child].proc_macro):
            return "host"
        return fk

    for (pid, fk), deps in res.fdeps.items():
        key = apply(fk)
        g.add_node(pkg_node(pid, key))
        by_name: dict[str, list] = {}
        for i, dep in deps:
            child = res.edges.get((pid, i))
            if child is None:
                continue
            dfk = dep_fk(fk, dep, child)
            by_name.setdefault(dep.name, []).append((i, dep, child, dfk))
            if not dep.optional:
                link_dep(pkg_node(pid, key), pid, key, i, dep, child, apply(dfk), "dep")
        pkg = res.packages[pid]
        for f in res.features.get((pid, key), ()):
            # An implicit feature's node is reached only by a request for it by name (a dependency
            # entry's `features`, `dep/feat`, `--features`); it expands to its dependency.
            for fv in pkg.features.get(f, ()):
                expand(feat_node(pid, key, f), pid, key, fk, fv, by_name)
        if pid in res.requested and (fk == "normal" or res.packages[pid].proc_macro):
            for fv in res.requested[pid]:
                expand(pkg_node(pid, key), pid, key, fk, fv, by_name)
    return g
