"""A workspace as cargo sees it: the root, its members, path dependencies, and the resolver version."""

from __future__ import annotations

import glob
import os
from collections import deque
from dataclasses import dataclass, field, replace
from functools import lru_cache, partial
from pathlib import Path

from .errors import ManifestError
from .manifest import (Manifest, Unanalysable, inherit, load_manifest, manifest_deps, manifest_file, parse_dep,
                       parse_manifest, read_text)
from .model import NORMAL, Package, PkgId, build_feature_map
from .versions import Patch, Replace

CRATES_IO_URLS = ("https://github.com/rust-lang/crates.io-index", "sparse+https://index.crates.io/")


@dataclass
class Workspace:
    """A workspace as cargo loads it: root, members, selection, resolver, packages, [patch]."""

    root: Manifest
    manifests: dict[Path, Manifest]            # every local package by directory (members and path deps)
    members: list[Path]                         # member directories, in a stable order
    selected: list[Path]                        # what `cargo build` would build from the given manifest
    resolver: str                               # "1" | "2" | "3"
    packages: dict[Path, Package] = field(default_factory=dict)
    unanalysable: list[Unanalysable] = field(default_factory=list)
    current: Path | None = None                 # the package of the given manifest (cargo's "current" package)
    patches: list[Patch] = field(default_factory=list)          # the root's [patch.*] entries
    replaces: list[Replace] = field(default_factory=list)       # the root's [replace] entries

    def package(self, d: Path) -> Package:
        return self.packages[d]

    def member_ids(self) -> list[PkgId]:
        return [self.packages[d].id for d in self.members]

    def selected_ids(self) -> list[PkgId]:
        return [self.packages[d].id for d in self.selected]

    @property
    def rust_version(self) -> str | None:
        """The MSRV resolver 3 honours: the root package's, else `[workspace.package]`'s."""
        for table in ((self.root.package or {}), (self.root.workspace or {}).get("package", {})):
            v = table.get("rust-version")
            if isinstance(v, str):
                return v
        return None

    @property
    def lock_path(self) -> Path:
        return self.root.dir / "Cargo.lock"


class LoadCache:
    """What the loads of one workspace within a run share (a plan's checks load it again with
    edited texts each time): each file is read and each text parsed once, `members` globs are
    expanded once per `[workspace]` table, each manifest's dependency entries parsed once. The
    files on disk are taken not to change during the run (the writer checks them again)."""

    def __init__(self) -> None:
        self._files: dict[Path, tuple[Path, Path]] = {}          # as named -> (manifest file, resolved)
        self._disk: dict[Path, str] = {}
        self._parsed: dict[tuple[Path, str], Manifest] = {}
        self._members: dict[tuple[Path, str], list[Path]] = {}
        self._deps: dict[tuple[Path, str], list] = {}
        self._inherited: dict[tuple, object] = {}

    def load(self, path: Path, texts: dict[Path, str] | None = None) -> Manifest:
        named = self._files.get(path)
        if named is None:
            f = manifest_file(path)
            named = self._files[path] = (f, f.resolve())
        f, real = named
        text = texts.get(real) if texts else None
        if text is None:
            text = self._disk.get(real)
            if text is None:
                try:
                    text = self._disk[real] = read_text(f)
                except FileNotFoundError:
                    raise ManifestError(f"{f}: no such file") from None
                except (OSError, UnicodeDecodeError) as e:
                    raise ManifestError(f"{f}: cannot read: {e}") from None
        m = self._parsed.get((real, text))
        if m is None:
            m = self._parsed[(real, text)] = parse_manifest(f, real, text)
        return m

    def member_dirs(self, root: Manifest) -> list[Path]:
        key = (root.path, root.text)
        if key not in self._members:
            self._members[key] = _member_dirs(root)
        return list(self._members[key])

    def deps(self, m: Manifest) -> list:
        key = (m.path, m.text)
        if key not in self._deps:
            self._deps[key] = manifest_deps(m)
        return self._deps[key]

    def inherit(self, dep, root: Manifest):
        key = (dep, root.path, root.text)
        if key not in self._inherited:
            self._inherited[key] = inherit(dep, root)
        return self._inherited[key]


def _find_root(m: Manifest, load, members_of=None) -> Manifest:
    """The workspace root `m` belongs to. `members_of(root)` gives a root's member directories as
    a set (a scan asks for every manifest's root: it expands each root's `members` once)."""
    if m.workspace is not None:
        return m
    explicit = (m.package or {}).get("workspace")
    if explicit:
        return load(m.dir / explicit)
    for parent in m.dir.parents:
        candidate = parent / "Cargo.toml"
        if candidate.is_file():
            try:
                root = load(candidate)
            except ManifestError:
                continue
            if root.workspace is None:
                continue
            members = members_of(root) if members_of is not None else set(_member_dirs(root, strict=False))
            if m.dir in members:
                return root
    return m


def _normal(path: Path) -> Path:
    """cargo compares lexically normalized paths (`a/../b` is `b`), without resolving symlinks."""
    return Path(os.path.normpath(path))


@lru_cache(maxsize=256)
def _prefixes(root_dir: Path, entries: tuple[str, ...]) -> frozenset[Path]:
    return frozenset(_normal(root_dir / e) for e in entries)


def _strings(value) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def is_excluded(root: Manifest, d: Path) -> bool:
    """cargo's `WorkspaceRootConfig::is_excluded`: `exclude` entries are path prefixes (excluding
    `crates/foo` excludes `crates/foo/bar`), unless a `members` entry is itself a prefix of the
    package's path (an explicit member wins over an exclusion; a glob pattern is compared as
    written, so `crates/*` never counts as explicit). Prefixes are compared as sets of the
    manifest's ancestors, so the test costs the path's depth, not the number of entries."""
    ws = root.workspace or {}
    exclude = _strings(ws.get("exclude", []))
    if not exclude:
        return False
    manifest = d / "Cargo.toml"
    above = {manifest, *manifest.parents}
    if above.isdisjoint(_prefixes(root.dir, exclude)):
        return False
    return above.isdisjoint(_prefixes(root.dir, _strings(ws.get("members", []))))


def _member_dirs(root: Manifest, strict: bool = True) -> list[Path]:
    """The workspace's members as cargo expands `members`: each entry a path or a glob; a glob
    that matches nothing stands for itself; matches that are not directories are ignored (macOS
    litters `.DS_Store`); an excluded match is skipped before it is read; every other entry must
    hold a Cargo.toml, or cargo refuses the workspace (`strict`; membership tests pass False).
    Linear in the number of members: each match is checked and resolved once."""
    ws = root.workspace or {}
    dirs = []
    seen: set[Path] = set()
    if root.package is not None:
        dirs.append(root.dir)
        seen.add(root.dir)
    for pattern in ws.get("members", []):
        path = root.dir / pattern
        hits = sorted(glob.glob(str(path))) if glob.has_magic(str(path)) else []
        if not hits and not glob.has_magic(str(path)) and os.path.lexists(path):
            hits = [str(path)]           # a plain path: what glob would return, without listing a directory
        found = [_normal(Path(h)) for h in hits if os.path.isdir(h)] if hits else [_normal(path)]
        via = pattern if hits and (len(hits) > 1 or _normal(Path(hits[0])) != _normal(path)) else None
        for d in found:
            if is_excluded(root, d):
                continue
            real = d.resolve()
            if real in seen:
                continue
            if not os.path.isfile(d / "Cargo.toml"):
                if strict:
                    referenced = f"referenced via `{via}`" if via else "referenced"
                    raise ManifestError(f"{root.path}: failed to load manifest for workspace member `{d}` "
                                        f"({referenced} by this workspace): {d / 'Cargo.toml'}: no such file")
                continue
            dirs.append(real)
            seen.add(real)
    return dirs


def _resolver_version(root: Manifest) -> str:
    ws = root.workspace or {}
    if "resolver" in ws:
        return str(ws["resolver"])
    pkg = root.package
    if pkg is None:
        return "1"          # a virtual workspace without `resolver` uses resolver 1
    if "resolver" in pkg:
        return str(pkg["resolver"])
    edition = pkg.get("edition", "2015")
    if isinstance(edition, dict):   # edition.workspace = true
        edition = ws.get("package", {}).get("edition", "2015")
    edition = str(edition)
    return "3" if edition >= "2024" else "2" if edition >= "2021" else "1"


def _package_version(m: Manifest, root: Manifest) -> str:
    v = (m.package or {}).get("version", "0.0.0")
    if isinstance(v, dict):
        v = (root.workspace or {}).get("package", {}).get("version", "0.0.0")
    return v


def load_workspace(path: Path, *, workspace: bool = False, packages: tuple[str, ...] = (),
                   texts: dict[Path, str] | None = None, exclude: tuple[str, ...] = (), git=None,
                   cache: LoadCache | None = None) -> Workspace:
    """The workspace `path` belongs to; `texts` overrides file contents (a plan's edited manifests).
    `git` (gitdeps.GitSources) finds git dependencies' sources; by default only cargo's checkouts
    are searched, nothing is cloned. `cache`: shared by loads of the same workspace in one run."""
    from .gitdeps import GitRef, GitSources, GitUnavailable, _canonical, locked_commits

    load = partial(cache.load if cache is not None else load_manifest, texts=texts)
    deps_of = cache.deps if cache is not None else manifest_deps
    inherit_from = cache.inherit if cache is not None else inherit
    start = load(path)
    root = _find_root(start, load)
    members = cache.member_dirs(root) if cache is not None else _member_dirs(root)
    if start.package is not None and start.dir not in set(members):
        members.append(start.dir)     # a package that is not a member is its own workspace
    manifests: dict[Path, Manifest] = {root.dir: root} if root.package is not None else {}
    manifests[start.dir] = start
    ws = Workspace(root, manifests, members, [], _resolver_version(root))

    git = git if git is not None else GitSources(clone=False)
    commits: dict[str, str] | None = None
    from_git: set[Path] = set()          # packages read from a git checkout: analysed, never edited

    member_set = set(members)
    queue = deque(members)
    queue += _patches(ws, root, load)
    seen = set()
    while queue:
        d = queue.popleft()
        if d in seen:
            continue
        seen.add(d)
        m = manifests.get(d) or load(d)
        manifests[d] = m
        if m.package is None:
            raise ManifestError(f"{m.path}: no [package] table (a virtual manifest cannot be a dependency)")
        deps = []
        written = deps_of(m)
        # a package outside the workspace (a path or git dependency) inherits from its own workspace
        own_root = root if d in member_set else _find_root(m, load)
        for dep in written:
            if dep.inherited:
                dep = inherit_from(dep, own_root)
            if dep.source == "git" and not (d not in member_set and dep.kind == "dev"):
                if commits is None:
                    commits = locked_commits(ws.lock_path)
                ref = GitRef(dep.git, **dict([dep.git_ref] if dep.git_ref else []))
                try:
                    found = git.locate(ref, dep.package, commits.get(_canonical(dep.git)))
                except GitUnavailable as e:
                    ws.unanalysable.append(Unanalysable(m.name, dep.name, f"git dependency ({dep.git}) could not be analysed: {e}"))
                    continue
                from_git.add(found)
                dep = replace(dep, path=str(found))
            elif dep.source == "git":
                continue
            if dep.path is not None:
                pd = Path(dep.path)
                if d not in member_set and dep.kind == "dev":
                    continue
                try:
                    dm = manifests.get(pd) or load(pd)
                except ManifestError as e:
                    raise ManifestError(f"{e} (path dependency `{dep.name}` of {m.path})") from None
                manifests[pd] = dm
                if d in from_git:
                    from_git.add(pd)
                # Path dependencies inside the workspace directory are members too.
                if (root.workspace is not None and pd.is_relative_to(root.dir) and pd not in member_set
                        and pd not in from_git and not is_excluded(root, pd)):
                    members.append(pd)
                    member_set.add(pd)
                dep = replace(dep, package=dm.name)
                queue.append(pd)
            deps.append(dep)
        fmap, implicit = build_feature_map(m.features, tuple(deps))
        _check_features(m, fmap, {d.name for d in written})
        # A package from a git checkout has no path in its id: it is nobody's to edit.
        ws.packages[d] = Package(
            PkgId(m.name, _package_version(m, own_root), "" if d in from_git else str(d)), tuple(deps), fmap, implicit,
            proc_macro=m.proc_macro, links=m.links, raw_features=dict(m.features),
        )

    ws.members = [d for d in members if d in ws.packages]
    ws.current = start.dir if start.package is not None else None
    if packages:
        by_name = {ws.packages[d].name: d for d in ws.members}
        missing = [p for p in packages if p not in by_name]
        if missing:
            raise ManifestError(f"{root.path}: package `{missing[0]}` is not a member of this workspace")
        ws.selected = [by_name[p] for p in packages]
    elif workspace or start.package is None:
        default = (root.workspace or {}).get("default-members")
        if default and not workspace:
            dirs = {Path(h).resolve() for p in default for h in glob.glob(str(root.dir / p))}
            ws.selected = [d for d in ws.members if d in dirs]
        else:
            ws.selected = list(ws.members)
    else:
        ws.selected = [start.dir]
    if exclude:
        names = {ws.packages[d].name for d in ws.members}
        unknown = [e for e in exclude if e not in names]
        if unknown:
            raise ManifestError(f"{root.path}: --exclude `{unknown[0]}` is not a member of this workspace")
        ws.selected = [d for d in ws.selected if ws.packages[d].name not in exclude]
    return ws


def _check_features(m: Manifest, fmap, names: set[str]) -> None:
    for feature, values in fmap.items():
        for fv in values:
            if fv[0] == "feat" and fv[1] not in fmap:
                raise ManifestError(f"{m.path}: feature `{feature}` includes `{fv[1]}`, which is neither a feature nor a dependency")
            if fv[0] in ("dep", "depfeat") and fv[1] not in names:
                raise ManifestError(f"{m.path}: feature `{feature}` refers to `{fv[1]}`, which is not a dependency")


def _patches(ws: Workspace, root: Manifest, load) -> list[Path]:
    """Read the root's `[patch.<registry>]` and `[replace]` tables as cargo does (only the root's
    count); returns the directories of path patches and replacements, local packages whose own
    dependencies are analysed like a path dependency's."""
    dirs: list[Path] = []

    def local(dep, what: str) -> Manifest:
        try:
            m = load(Path(dep.path))
        except ManifestError as e:
            raise ManifestError(f"{e} ({what} in {root.path})") from None
        ws.manifests[m.dir] = m
        dirs.append(m.dir)
        return m

    for source, entries in (root.data.get("patch") or {}).items():
        if not isinstance(entries, dict):
            continue
        target = None if source in ("crates-io", *CRATES_IO_URLS) or source.rstrip("/") in CRATES_IO_URLS else source
        for key, spec in entries.items():
            what = f"[patch.{source}] `{key}`"
            dep = parse_dep(key, spec, NORMAL, None, ("patch", source), root.dir, str(root.path))
            if dep.source == "git":
                ws.unanalysable.append(Unanalysable(
                    root.name, dep.package,
                    f"{what} is a git patch ({dep.git}): not in any index, so the registry's `{dep.package}` "
                    "is analysed in its place"))
            elif dep.source == "path":
                m = local(dep, what)
                ws.patches.append(Patch(target, m.name, path=str(m.dir)))
            else:
                if dep.registry == target or (dep.registry in (None, "crates-io") and target is None):
                    raise ManifestError(f"{root.path}: {what} points to the same source it patches; "
                                        "a patch must come from a path, a git repository or another registry")
                ws.patches.append(Patch(target, dep.package, registry=dep.registry, req=dep.req))
    for spec_key, spec in (root.data.get("replace") or {}).items():
        what = f"[replace] `{spec_key}`"
        name, _, version = spec_key.split("#")[-1].replace("@", ":").partition(":")
        if not version:
            raise ManifestError(f"{root.path}: {what} must name a version (`{name}:1.2.3`)")
        dep = parse_dep(name, spec, NORMAL, None, ("replace",), root.dir, str(root.path))
        if dep.source == "git":
            ws.unanalysable.append(Unanalysable(
                root.name, name,
                f"{what} is a git replacement ({dep.git}): not in any index, so the registry's `{name} {version}` "
                "is analysed in its place"))
        elif dep.source == "path":
            m = local(dep, what)
            ws.replaces.append(Replace(name, version, str(m.dir)))
        else:
            raise ManifestError(f"{root.path}: {what} must be a path or git replacement")
    return dirs
