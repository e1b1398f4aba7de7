"""Cargo.lock (formats v1 to v4): the locked packages and the dependency edges between them."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ManifestError

# A locked package: (name, version, source). `source` is "" for path packages (a workspace member,
# a path dependency, a path patch) and the lock's source string otherwise.
LockedId = tuple[str, str, str]


@dataclass(frozen=True)
class Lock:
    """Cargo.lock's packages and the dependency edges between them."""

    packages: tuple[LockedId, ...] = ()
    deps: dict[LockedId, tuple[LockedId, ...]] = field(default_factory=dict)

    @property
    def versions(self) -> dict[str, list[str]]:
        """Crate name -> locked registry versions (path and git packages are not locked versions)."""
        out: dict[str, list[str]] = {}
        for name, version, source in self.packages:
            if is_registry_source(source):
                out.setdefault(name, []).append(version)
        return out

    def __bool__(self) -> bool:
        return bool(self.packages)

    @classmethod
    def from_versions(cls, versions: dict[str, list[str]]) -> Lock:
        """A lock that names registry versions but records no edges."""
        source = "registry+https://github.com/rust-lang/crates.io-index"
        return cls(tuple((n, v, source) for n, vs in versions.items() for v in vs))


def is_registry_source(source: str) -> bool:
    return source.startswith(("registry+", "sparse+"))


def parse_lock(text: str, where: str = "Cargo.lock") -> Lock:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ManifestError(f"{where}: invalid TOML: {e}") from None
    packages: list[LockedId] = []
    raw_deps: dict[LockedId, list[str]] = {}
    for pkg in data.get("package", []):
        try:
            pid = (pkg["name"], pkg["version"], pkg.get("source", ""))
        except (KeyError, TypeError):
            raise ManifestError(f"{where}: a [[package]] without name or version") from None
        packages.append(pid)
        raw_deps[pid] = list(pkg.get("dependencies", ()))
    by_name: dict[str, list[LockedId]] = {}
    for pid in packages:
        by_name.setdefault(pid[0], []).append(pid)
    deps: dict[LockedId, tuple[LockedId, ...]] = {}
    for pid, entries in raw_deps.items():
        out = []
        for entry in entries:
            hit = _lookup(entry, by_name)
            if hit is not None:
                out.append(hit)
        deps[pid] = tuple(out)
    return Lock(tuple(packages), deps)


def _lookup(entry: str, by_name: dict[str, list[LockedId]]) -> LockedId | None:
    """One `dependencies` entry: "name" (the only package of that name), "name version", or
    "name version (source)" (v1 always, later formats when the name and version are ambiguous)."""
    parts = entry.split(" ", 2)
    candidates = by_name.get(parts[0], [])
    if len(parts) >= 2:
        candidates = [c for c in candidates if c[1] == parts[1]]
    if len(parts) == 3:
        source = parts[2].strip().removeprefix("(").removesuffix(")")
        exact = [c for c in candidates if c[2] == source]
        candidates = exact or candidates
    return candidates[0] if candidates else None


_PARSED: list[tuple[str, str, Lock]] = []


def load_lock(path: Path) -> Lock:
    """The lock at `path`, or an empty one when there is none. The same text read again (every
    build of a plan check reads it) gives the same object: nothing modifies a Lock."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Lock()
    for where, seen, lock in _PARSED:
        if where == str(path) and seen == text:
            return lock
    lock = parse_lock(text, str(path))
    _PARSED.insert(0, (str(path), text, lock))
    del _PARSED[4:]
    return lock
