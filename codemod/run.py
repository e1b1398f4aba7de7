"""One run: discover → load → resolve → analyze (→ plan → edit, in later stages) → report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .analyze import Analysis, analyze
from .errors import ResolveError
from .lockfile import load_lock
from .manifest import Unanalysable
from .registry.index import IndexSource
from .resolve import NeedCrates, ResolveInput, resolve
from .workspace import Workspace, load_workspace


@dataclass(frozen=True)
class Options:
    target: str
    blocker: str = "openssl-sys"
    features: tuple[str, ...] = ()
    all_features: bool = False
    no_default_features: bool = False
    dev: bool = False
    workspace: bool = False
    packages: tuple[str, ...] = ()


@dataclass(frozen=True)
class Result:
    manifest: Path
    workspace: Workspace
    analysis: Analysis
    unanalysable: tuple[Unanalysable, ...]


def resolve_with_fetch(inp: ResolveInput, index: IndexSource):
    """Resolve, fetching whatever the resolver asks for one level at a time."""
    for _ in range(1000):
        try:
            return resolve(inp, index)
        except NeedCrates as need:
            index.fetch_many(need.names)
    raise ResolveError("the dependency graph did not close")


def build_input(ws: Workspace, opts: Options) -> ResolveInput:
    return ResolveInput(
        locals={str(d): p for d, p in ws.packages.items()},
        members=tuple(ws.member_ids()),
        selected=tuple(ws.selected_ids()),
        resolver=ws.resolver,
        lock=load_lock(ws.lock_path),
        target=opts.target,
        features=opts.features,
        all_features=opts.all_features,
        no_default_features=opts.no_default_features,
        dev=opts.dev,
        rust_version=ws.rust_version,
    )


def analyze_manifest(path: Path, opts: Options, index: IndexSource) -> Result:
    ws = load_workspace(path, workspace=opts.workspace, packages=opts.packages)
    manifest = path if path.suffix == ".toml" else path / "Cargo.toml"
    try:
        res = resolve_with_fetch(build_input(ws, opts), index)
    except ResolveError as e:
        raise ResolveError(f"{manifest}: {e}") from None
    return Result(manifest, ws, analyze(res, opts.blocker), tuple(ws.unanalysable))
