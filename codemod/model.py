"""The data every stage shares: packages, their dependency entries and their feature maps.

A registry crate version (from an index line) and a local package (from a Cargo.toml) become the
same ``Package``, so the resolver never cares where a package came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NORMAL, BUILD, DEV = "normal", "build", "dev"


@dataclass(frozen=True, slots=True)
class Dep:
    """One dependency entry, as cargo's ``Dependency``."""

    name: str                      # name in toml (the rename, if any)
    package: str                   # the real crate name
    req: str                       # version requirement ("*" when none is written)
    kind: str = NORMAL
    target: str | None = None      # None, a triple, or "cfg(...)"
    optional: bool = False
    default_features: bool = True
    features: tuple[str, ...] = ()
    source: str = "registry"       # registry | path | git
    path: str | None = None        # directory of a path dependency
    git: str | None = None
    git_ref: tuple[str, str] | None = None   # ("branch" | "tag" | "rev", value) of a git dependency
    registry: str | None = None    # alternative registry name
    table: tuple[str, ...] = ()    # where a manifest wrote it: ("dependencies",), ("target", "cfg(unix)", "dependencies"), ...
    inherited: bool = False        # `workspace = true`


# A parsed feature value, as cargo's FeatureValue:
#   ("feat", f)  ("dep", d)  ("depfeat", d, f, weak)
FeatureValue = tuple


def parse_feature_value(text: str) -> FeatureValue:
    if text.startswith("dep:"):
        return ("dep", text[4:])
    if "/" in text:
        dep, feat = text.split("/", 1)
        if dep.endswith("?"):
            return ("depfeat", dep[:-1], feat, True)
        return ("depfeat", dep, feat, False)
    return ("feat", text)


def build_feature_map(
    features: dict[str, list[str]], deps: tuple[Dep, ...]
) -> tuple[dict[str, tuple[FeatureValue, ...]], frozenset[str]]:
    """Cargo's Summary feature map: explicit features plus an implicit feature per optional
    dependency that no ``dep:`` value names. Returns (map, names of the implicit features)."""
    fmap = {name: tuple(parse_feature_value(v) for v in values) for name, values in features.items()}
    hidden = {fv[1] for values in fmap.values() for fv in values if fv[0] == "dep"}
    implicit = set()
    for d in deps:
        if d.optional and d.name not in fmap and d.name not in hidden:
            fmap[d.name] = (("dep", d.name),)
            implicit.add(d.name)
    return fmap, frozenset(implicit)


@dataclass(frozen=True, slots=True)
class PkgId:
    """A package's identity: name and version, and a local package's directory."""

    name: str
    version: str
    path: str = ""   # a local package's directory; "" for a registry crate

    def __str__(self) -> str:
        return f"{self.name} v{self.version}" + (f" ({self.path})" if self.path else "")


@dataclass(frozen=True)
class Package:
    """One version of a crate (an index line, or a local manifest): dependencies and features."""

    id: PkgId
    deps: tuple[Dep, ...]
    features: dict[str, tuple[FeatureValue, ...]]
    implicit_features: frozenset[str] = frozenset()
    proc_macro: bool = False
    links: str | None = None
    yanked: bool = False
    raw_features: dict[str, list[str]] = field(default_factory=dict)
    rust_version: str | None = None
    cksum: str | None = None          # the index line's sha256 of the `.crate` archive
    checksum: str | None = None            # the index line's `cksum` (sha256 of the .crate), for Cargo.lock

    @property
    def name(self) -> str:
        return self.id.name


def rustls_features(pkg: Package) -> list[str]:
    """Features of a package that bring in a crate named like rustls, best names first (at most
    two): the planner's rustls candidates, and the features a cold run's wave fetches for them."""
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
