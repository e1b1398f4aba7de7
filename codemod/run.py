"""One run: discover → load → resolve → analyze → plan → edit → report."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .analyze import Analysis, analyze
from .edit import sha256
from .errors import ResolveError
from .lockfile import load_lock
from .manifest import Unanalysable
from .registry.index import IndexSource
from .resolve import NeedCrates, ResolveInput, UnknownCrate, resolve
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
    strategy: str = "auto"
    locked: bool = False


@dataclass(frozen=True)
class Result:
    manifest: Path
    workspace: Workspace
    analysis: Analysis
    unanalysable: tuple[Unanalysable, ...]
    manifest_sha256: str = ""
    plan: object = None            # plan.Plan when a plan was made


def display_path(path: Path) -> str:
    """A path as users wrote it: relative to the working directory when it lies below it."""
    path = Path(path)
    try:
        rel = os.path.relpath(path.resolve(), Path.cwd())
    except ValueError:
        return str(path)
    return rel if not rel.startswith("..") else str(path.resolve())


def resolve_with_fetch(inp: ResolveInput, index: IndexSource):
    """Resolve, fetching whatever the resolver asks for one level at a time."""
    for _ in range(1000):
        try:
            return resolve(inp, index)
        except NeedCrates as need:
            index.fetch_many(need.names)
    raise ResolveError("the dependency graph did not close")


def build_input(ws: Workspace, opts: Options) -> ResolveInput:
    if opts.locked and not ws.lock_path.is_file():
        raise ResolveError(f"{ws.lock_path}: --locked needs a Cargo.lock, and there is none")
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
        locked=opts.locked,
    )


def _manifest_file(path: Path) -> Path:
    return path if path.suffix == ".toml" else path / "Cargo.toml"


def analyze_manifest(path: Path, opts: Options, index: IndexSource, *, plan: bool = False, rules=None) -> Result:
    ws = load_workspace(path, workspace=opts.workspace, packages=opts.packages)
    manifest = _manifest_file(path)
    try:
        res = resolve_with_fetch(build_input(ws, opts), index)
    except UnknownCrate as e:
        if getattr(index, "offline", False):
            missing = ", ".join(f"`{n}`" for n in index.absent())
            raise ResolveError(f"{manifest}: --offline: cargo's index cache ({index.where}) has no data for {missing}; "
                               f"run cargo once with network, or drop --offline ({e})") from None
        raise ResolveError(f"{manifest}: {e}") from None
    except ResolveError as e:
        raise ResolveError(f"{manifest}: {e}") from None
    analysis = analyze(res, opts.blocker)
    digest = sha256(manifest.read_bytes())
    the_plan = None
    if plan:
        from .plan import Checker, make_plan
        from .rules import load_rules

        def reload(texts: dict[Path, str]):
            edited = load_workspace(path, workspace=opts.workspace, packages=opts.packages, texts=texts)
            return resolve_with_fetch(build_input(edited, opts), index)

        originals = {m.path: m.text for m in ws.manifests.values()}
        originals.setdefault(ws.root.path, ws.root.text)
        checker = Checker(originals, reload, opts.blocker)
        the_plan = make_plan(analysis, ws, load_rules() if rules is None else rules, checker, opts.strategy, display_path)
    return Result(manifest, ws, analysis, tuple(ws.unanalysable), digest, the_plan)
