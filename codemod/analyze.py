"""Chains from each selected package's direct dependencies to the blocker (openssl-sys)."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice

import networkx as nx

from .graph import build_graph, pkg_node
from .model import BUILD, PkgId
from .resolve import HOST_SIDE, TARGET_SIDE, Resolution

MAX_CHAINS = 200   # per selected package; real graphs have a handful, this only bounds pathological ones


@dataclass(frozen=True)
class Culprit:
    package: str                       # the workspace package whose dependency it is
    dependency: str                    # name as written in its manifest
    crate: str                         # the real crate name
    kind: str                          # normal | build | dev
    chains: tuple[tuple[str, ...], ...]

    def as_json(self) -> dict:
        return {"package": self.package, "dependency": self.dependency, "crate": self.crate,
                "kind": self.kind, "chains": [list(c) for c in self.chains]}


@dataclass(frozen=True)
class Analysis:
    blocker: str
    target: str
    blocker_versions: tuple[str, ...]     # versions built for the target
    blocker_features: tuple[str, ...]     # features of the blocker as built for the target
    vendored: bool                        # every target build of the blocker has `vendored` on
    culprits: tuple[Culprit, ...]         # paths that put the blocker into the target binary
    host_only: tuple[Culprit, ...]        # paths only through build scripts / proc macros
    resolution: Resolution
    graph: nx.DiGraph

    @property
    def blocked(self) -> bool:
        return bool(self.culprits) and not self.vendored


def step_label(node) -> str:
    if node[0] == "pkg":
        return node[1].name
    return f"{node[1].name} [{node[3]}]"


def analyze(res: Resolution, blocker: str = "openssl-sys") -> Analysis:
    g = build_graph(res)
    built = nx.subgraph_view(g, filter_edge=lambda u, v: g[u][v]["built"])
    target_units = sorted((pid for pid, side in res.units if pid.name == blocker and side == TARGET_SIDE),
                          key=lambda p: p.version)
    feats: set[str] = set()
    for pid in target_units:
        feats |= res.unit_features(pid, TARGET_SIDE)
    vendored = bool(target_units) and all("vendored" in res.unit_features(p, TARGET_SIDE) for p in target_units)
    ends = {n for n in g if n[0] == "pkg" and n[1].name == blocker}

    groups: dict[tuple, set] = {}
    for member in res.input.selected:
        src = pkg_node(member, "normal")
        if src not in g or not ends:
            continue
        for path in islice(_paths(built, src, ends), MAX_CHAINS):
            first = _first_dependency_edge(g, path, member)
            if first is None:
                continue
            dep_name, dep_kind = first
            side = _side(g, res, path)
            if side == TARGET_SIDE and (path[-1][1], TARGET_SIDE) not in res.units:
                side = HOST_SIDE
            key = (member, dep_name, dep_kind, side)
            groups.setdefault(key, set()).add(tuple(step_label(n) for n in path))

    culprits, host_only = [], []
    for (member, dep_name, dep_kind, side), chains in sorted(groups.items(), key=lambda kv: (kv[0][0].name, kv[0][1], kv[0][3])):
        crate = next((d.package for d in res.deps_of(member) if d.name == dep_name), dep_name)
        c = Culprit(member.name, dep_name, crate, dep_kind, tuple(sorted(chains, key=lambda c: (len(c), c))))
        (culprits if side == TARGET_SIDE else host_only).append(c)
    return Analysis(blocker, res.input.target, tuple(p.version for p in target_units), tuple(sorted(feats)),
                    vendored, tuple(culprits), tuple(host_only), res, g)


def _paths(g, src, ends):
    reach = nx.descendants(g, src)
    targets = [e for e in ends if e in reach]
    if not targets:
        return
    keep = {src}
    for e in targets:
        keep |= (nx.ancestors(g, e) & reach) | {e}
    sub = g.subgraph(keep)
    yield from nx.all_simple_paths(sub, src, targets)


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
