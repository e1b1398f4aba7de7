"""Finding the manifests below directories, as black finds Python files: `.gitignore` respected,
`target/` and vendor directories skipped, symlinks never followed out of the directory; then
grouping them into workspaces, each analysed once."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .errors import ManifestError

SKIP_DIRS = frozenset({"target", "vendor", ".git", ".hg", ".svn", "node_modules", ".cargo"})


def _gitignore(directory: Path):
    p = directory / ".gitignore"
    if not p.is_file():
        return None
    import pathspec

    try:
        return pathspec.GitIgnoreSpec.from_lines(p.read_text(encoding="utf-8", errors="replace").splitlines())
    except (OSError, ValueError):
        return None


def find_manifests(top: Path) -> list[Path]:
    """Every Cargo.toml below `top`, in a stable order (walked once per run and directory)."""
    return list(_find_manifests(Path(top).resolve())[0])


def scan_errors(top: Path) -> list[tuple[Path, str]]:
    """Directories below `top` the walk could not read: (directory, why), to be reported."""
    return list(_find_manifests(Path(top).resolve())[1])


@lru_cache(maxsize=64)
def _find_manifests(top: Path) -> tuple[tuple[Path, ...], tuple[tuple[Path, str], ...]]:
    if top.is_file():
        return (top,), ()
    found: list[Path] = []
    errors: list[tuple[Path, str]] = []
    specs: list[tuple[Path, object]] = []          # (directory, gitignore spec) along the walk

    def unreadable(e: OSError) -> None:
        errors.append((Path(e.filename or top), f"cannot read directory: {e.strerror or e}"))

    for dirpath, dirnames, filenames in os.walk(top, followlinks=False, onerror=unreadable):
        here = Path(dirpath)
        specs = [(d, s) for d, s in specs if here == d or d in here.parents]
        spec = _gitignore(here)
        if spec is not None:
            specs.append((here, spec))

        def ignored(path: Path, is_dir: bool, specs=specs) -> bool:
            for d, s in specs:
                rel = path.relative_to(d).as_posix() + ("/" if is_dir else "")
                if s.match_file(rel):
                    return True
            return False

        keep = []
        for name in sorted(dirnames):
            p = here / name
            if name in SKIP_DIRS or p.is_symlink() or ignored(p, True):
                continue
            keep.append(name)
        dirnames[:] = keep
        if "Cargo.toml" in filenames:
            p = here / "Cargo.toml"
            try:
                real = p.resolve(strict=True)
            except (OSError, RuntimeError) as e:      # a dangling link or a symlink loop
                errors.append((p, f"cannot read: {e}"))
                continue
            if (real == top or top in real.parents) and not ignored(p, False):
                found.append(p)
    return tuple(found), tuple(errors)


@dataclass
class Group:
    """One workspace to analyse: its root manifest and the found manifests that belong to it."""

    root: Path
    manifests: list[Path] = field(default_factory=list)


@dataclass
class Broken:
    """A manifest found while discovering that cannot be read, and why."""

    manifest: Path
    error: str


def _remembered(compute, key):
    """`compute` answered once per key, its ManifestError included (raised again on every ask)."""
    seen: dict = {}

    def ask(*args, **kw):
        k = key(*args, **kw)
        if k not in seen:
            try:
                seen[k] = compute(*args, **kw)
            except ManifestError as e:
                seen[k] = e
        if isinstance(seen[k], ManifestError):
            raise seen[k]
        return seen[k]

    return ask


def group_workspaces(manifests: list[Path]) -> tuple[list[Group], list[Broken]]:
    """Each manifest's workspace. Every manifest and every root's `members` is read once, however
    many manifests share them: linear in the number of manifests."""
    from .manifest import load_manifest
    from .workspace import _find_root, _member_dirs

    load = _remembered(load_manifest, Path)
    members_of = _remembered(lambda root, strict=False: frozenset(_member_dirs(root, strict=strict)),
                             lambda root, strict=False: (root.path, strict))

    groups: dict[Path, Group] = {}
    broken: list[Broken] = []
    for path in manifests:
        try:
            m = load(path)
            root = _find_root(m, load, members_of)
            if root.workspace is None and m.package is None:
                raise ManifestError(f"{path}: neither a [package] nor a [workspace]")
            if root is not m and m.dir not in members_of(root, strict=True):
                root = m
        except ManifestError as e:
            broken.append(Broken(path, str(e)))
            continue
        groups.setdefault(root.path, Group(root.path)).manifests.append(path.resolve())
    return sorted(groups.values(), key=lambda g: str(g.root)), broken
