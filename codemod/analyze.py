"""Chains from each selected package's direct dependencies to the blocker (openssl-sys)."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING

from .errors import CodemodError
from .graph import pkg_node
from .model import BUILD, PkgId
from .resolve import HOST_SIDE, TARGET_SIDE, Resolution

if TYPE_CHECKING:
    import networkx as nx

MAX_CHAINS = 200   # per selected package; real graphs have a handful, this only bounds pathological ones


class AnalysisError(CodemodError):
    """The analysis contradicts itself; never answered with "clean"."""


@dataclass(frozen=True)
class Culprit:
    """A direct dependency through which the blocker is built, and the chains that show how."""

    package: str                       # the workspace package whose dependency it is
    dependency: str                    # name as written in its manifest
    crate: str                         # the real crate name
    kind: str                          # normal | build | dev
    chains: tuple[tuple[str, ...], ...]
    paths: tuple[tuple, ...] = field(default=(), compare=False, repr=False)   # graph nodes of each chain
    traced: bool = True                # False: chains come from the build graph alone (see _unit_chains)

    def as_json(self) -> dict:
        doc = {"package": self.package, "dependency": self.dependency, "crate": self.crate,
               "kind": self.kind, "chains": [list(c) for c in self.chains]}
        if not self.traced:
            doc["traced"] = False
        return doc


@dataclass(frozen=True)
class Analysis:
    """What one resolution builds of the blocker for the target, and who pulls it in."""

    blocker: str
    target: str
    blocker_versions: tuple[str, ...]     # versions built for the target
    blocker_features: tuple[str, ...]     # features of the blocker as built for the target
    vendored: bool                        # every target build of the blocker has `vendored` on
    culprits: tuple[Culprit, ...]         # paths that put the blocker into the target binary
    host_only: tuple[Culprit, ...]        # paths only through build scripts / proc macros
    resolution: Resolution
    graph: nx.DiGraph | None             # None when the blocker is not built at all: nothing to explain

    @property
    def built(self) -> bool:
        """The blocker is compiled into the target build."""
        return bool(self.blocker_versions)

    @property
    def blocked(self) -> bool:
        """Decided by the resolution alone: a target unit of the blocker without `vendored`."""
        return self.built and not self.vendored


def step_label(node) -> str:
    if node[0] == "pkg":
        return node[1].name
    return f"{node[1].name} [{node[3]}]"


def _nx():
    """networkx, imported when a chain is to be traced: a build without the blocker needs none."""
    import networkx

    return networkx


def build_graph(res: Resolution):
    from .graph import build_graph as build

    return build(res)


def analyze(res: Resolution, blocker: str = "openssl-sys") -> Analysis:
    target_units = sorted((pid for pid, side in res.units if pid.name == blocker and side == TARGET_SIDE),
                          key=lambda p: p.version)
    feats: set[str] = set()
    for pid in target_units:
        feats |= res.unit_features(pid, TARGET_SIDE)
    vendored = bool(target_units) and all("vendored" in res.unit_features(p, TARGET_SIDE) for p in target_units)
    if not any(pid.name == blocker for pid, _side in res.units):
        # Not built on either side: no culprit and no chain (the culprits are named by what the
        # build compiles, below), so the activation graph is not needed.
        return Analysis(blocker, res.input.target, (), (), False, (), (), res, None)
    nx = _nx()
    g = build_graph(res)
    built = nx.subgraph_view(g, filter_edge=lambda u, v: g[u][v]["built"])
    ends = {n for n in g if n[0] == "pkg" and n[1].name == blocker}

    groups: dict[tuple, set] = {}
    built_ancestors: dict = {}
    for member in res.input.selected:
        proc_macro = res.packages[member].proc_macro      # built for the host only, with its dependencies
        src = pkg_node(member, res.key(HOST_SIDE) if proc_macro else "normal")
        if src not in g or not ends:
            continue
        for path in islice(_paths(built, src, ends, built_ancestors), MAX_CHAINS):
            first = _first_dependency_edge(g, path, member)
            if first is None:
                continue
            dep_name, dep_kind = first
            side = HOST_SIDE if proc_macro else _side(g, res, path)
            if side == TARGET_SIDE and (path[-1][1], TARGET_SIDE) not in res.units:
                side = HOST_SIDE
            key = (member, dep_name, dep_kind, side)
            groups.setdefault(key, {})[tuple(step_label(n) for n in path)] = tuple(path)

    _unified_chains(g, built, res, ends, blocker, groups)

    # What the build links decides who the culprits are; the feature graph only explains it. Every
    # direct dependency through which a unit of the blocker is built must be named, and nothing else.
    linking = {**_unit_chains(res, blocker, HOST_SIDE), **_unit_chains(res, blocker, TARGET_SIDE)}
    untraced = set()
    explained = groups
    groups = {}
    for key, (chain, nodes) in linking.items():
        if explained.get(key):
            groups[key] = explained[key]
        else:
            groups[key] = {chain: nodes}
            untraced.add(key)

    culprits, host_only = [], []
    for key, chains in sorted(groups.items(), key=lambda kv: (kv[0][0].name, kv[0][1], kv[0][3])):
        member, dep_name, dep_kind, side = key
        crate = next((d.package for d in res.deps_of(member) if d.name == dep_name), dep_name)
        order = sorted(chains, key=lambda c: (len(c), c))
        c = Culprit(member.name, dep_name, crate, dep_kind, tuple(order), tuple(chains[k] for k in order),
                    traced=key not in untraced)
        (culprits if side == TARGET_SIDE else host_only).append(c)
    if target_units and not culprits:
        members = ", ".join(p.name for p in res.input.selected)
        raise AnalysisError(f"internal error: {blocker} {'/'.join(p.version for p in target_units)} is built for "
                            f"{res.input.target}, but no dependency of {members} leads to it; please report this")
    return Analysis(blocker, res.input.target, tuple(p.version for p in target_units), tuple(sorted(feats)),
                    vendored, tuple(culprits), tuple(host_only), res, g)


def _unit_chains(res: Resolution, blocker: str, goal_side: str) -> dict[tuple, tuple[tuple[str, ...], tuple]]:
    """(member, dependency, kind, side) -> the shortest chain of packages the build compiles from
    that direct dependency to a unit of the blocker on ``goal_side`` (names, package nodes):
    cargo tree -i's answer."""
    goals = {u for u in res.units if u[0].name == blocker and u[1] == goal_side}
    if not goals:
        return {}
    children: dict = {}
    for p, s_, _i, c, cs in res.unit_edges:
        children.setdefault((p, s_), set()).add((c, cs))
    # breadth-first from the blocker over reversed edges: the next step towards it from each unit
    parents: dict = {}
    for parent, kids in children.items():
        for kid in kids:
            parents.setdefault(kid, []).append(parent)
    toward: dict = {g: None for g in goals}
    frontier = sorted(goals, key=lambda u: (u[0].name, u[0].version))
    while frontier:
        nxt = []
        for u in frontier:
            for parent in sorted(parents.get(u, ()), key=lambda u: (u[0].name, u[0].version, u[1])):
                if parent not in toward:
                    toward[parent] = u
                    nxt.append(parent)
        frontier = nxt
    selected = set(res.input.selected)
    out: dict = {}
    for member, side, i, child, cside in sorted(res.unit_edges, key=lambda e: (e[0].name, e[2])):
        if member not in selected or (child, cside) not in toward:
            continue
        dep = res.deps_of(member)[i]
        chain, nodes, step = [member.name], [pkg_node(member, res.key(side))], (child, cside)
        while step is not None:
            chain.append(step[0].name)
            nodes.append(pkg_node(step[0], res.key(step[1])))
            step = toward[step]
        key = (member, dep.name, dep.kind, goal_side)
        if key not in out or len(chain) < len(out[key][0]):
            out[key] = (tuple(chain), tuple(nodes))
    return out


def _paths(g, src, ends, cache: dict | None = None):
    """Every simple path from src to an end, within the nodes that lie on some path to an end
    (reachable from src and an ancestor of an end). Those ancestors are the same for every
    member of a workspace: `cache` keeps them across calls on the same graph, so each member
    costs only its own culprit subgraph, not the whole graph."""
    if src not in g:
        return
    cache = {} if cache is None else cache
    towards = cache.get("towards")
    if towards is None:
        nx = _nx()
        towards = set(ends)
        for e in ends:
            if e in g:
                towards |= nx.ancestors(g, e)
        cache["towards"] = towards
    if src not in towards:
        return
    keep = {src}
    todo = [src]
    while todo:
        for v in g.succ[todo.pop()]:
            if v in towards and v not in keep:
                keep.add(v)
                todo.append(v)
    targets = [e for e in ends if e in keep and e != src]
    if not targets:
        return
    sub = g.subgraph(keep)
    yield from _nx().all_simple_paths(sub, src, targets)


def _first_dependency_edge(g, path, member: PkgId):
    for u, v in zip(path, path[1:]):
        if v[1] != member:
            data = g[u][v]
            return data["dep"], data["dep_kind"]
    return None


def _side(g, res: Resolution, path) -> str:
    """Target unless the chain crosses a build-dependency or enters a proc macro."""
    for u, v in zip(path, path[1:]):
        if u[1] == v[1]:
            continue
        if g[u][v].get("dep_kind") == BUILD or res.packages[v[1]].proc_macro or v[2] == "host":
            return HOST_SIDE
    return TARGET_SIDE


def _unified_chains(g, built, res: Resolution, ends, blocker: str, groups: dict) -> None:
    """Dependencies that reach the blocker only because features are unified across the build.

    A member that asks for reqwest with rustls still links native-tls when another member (or
    another dependency) turns reqwest's `default-tls` on: cargo builds one reqwest. The chain
    then goes through the shared package's features, each step naming who enabled it."""
    reaches: set = set()
    parents: dict = {}
    for p, s_, _i, c, cs in res.unit_edges:
        parents.setdefault((c, cs), []).append((p, s_))
    todo = [u for u in res.units if u[0].name == blocker]
    reaches.update(todo)
    while todo:
        u = todo.pop()
        for parent in parents.get(u, ()):
            if parent not in reaches:
                reaches.add(parent)
                todo.append(parent)
    if not reaches:
        return
    selected = set(res.input.selected)
    unified = None
    unified_ancestors: dict = {}
    enablers: dict = {}
    for member, _side, i, child, cside in sorted(res.unit_edges, key=lambda e: (e[0].name, e[2])):
        if member not in selected or (child, cside) not in reaches:
            continue
        dep = res.deps_of(member)[i]
        group_side = HOST_SIDE if cside == HOST_SIDE else TARGET_SIDE
        key = (member, dep.name, dep.kind, group_side)
        if key in groups:
            continue
        if unified is None:
            unified = _with_activation_edges(g, res)
        start = pkg_node(child, res.key(cside))
        chains = {}
        for path in islice(_paths(unified, start, ends, unified_ancestors), MAX_CHAINS):
            label = (member.name,) + tuple(_unified_label(g, n, prev, res, member, enablers)
                                           for prev, n in zip((None,) + tuple(path), path))
            chains[label] = (pkg_node(member, "normal"),) + tuple(path)
        if chains:
            groups[key] = chains


def _with_activation_edges(g, res: Resolution):
    """The built graph plus `package → its own feature` edges for every feature it is built with."""
    h = _nx().DiGraph()
    h.add_edges_from((u, v, d) for u, v, d in g.edges(data=True) if d["built"])
    for node in list(g.nodes):
        if node[0] == "pkg" and node in h:
            pid, key = node[1], node[2]
            for f in res.features.get((pid, key), ()):
                fnode = ("feat", pid, key, f)
                if fnode in g:
                    h.add_edge(node, fnode, kind="activated", built=True)
    return h


def _unified_label(g, node, prev, res: Resolution, member: PkgId, enablers: dict) -> str:
    label = step_label(node)
    if node[0] != "feat" or prev is None or prev[0] != "pkg" or prev[1] != node[1]:
        return label
    # A feature the package is built with because somebody else asked for it: say who (the
    # selected members the feature is reachable from, found once per feature: its ancestors).
    if node not in enablers:
        above = _nx().ancestors(g, node)
        enablers[node] = [m for m in res.input.selected if pkg_node(m, "normal") in above]
    who = sorted({m.name for m in enablers[node] if m != member})
    if not who:
        who = sorted({u[1].name for u in g.predecessors(node) if u[1] != node[1]})
    return f"{label} (enabled by {', '.join(who)})" if who else label
