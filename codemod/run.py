"""One run: discover → load → resolve → analyze → plan → edit → report."""

from __future__ import annotations

import functools
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .analyze import Analysis, analyze
from .edit import sha256
from .errors import ResolveError
from .lockfile import load_lock
from .manifest import Unanalysable
from .registry.index import IndexSource
from .resolve import NeedCrates, ResolveInput, UnknownCrate, resolve
from .targets import host_triple, read_rustflags
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
    extra_targets: tuple[str, ...] = ()      # --target given more than once: the fix must hold for all
    scope: str | None = None                 # --scope: a cfg expression the edits are limited to
    exclude: tuple[str, ...] = ()            # --exclude: members left out of --workspace
    offline: bool = False                    # --offline: git dependencies only from cargo's checkouts
    cache_dir: Path | None = None            # --cache-dir: where git dependencies are cloned
    blockers: tuple[str, ...] = ()           # --blocker all / a list: the catalog's other crates (catalog.py)
    blockers_named: bool = False             # --blocker named them: an unfixable one makes the run unfixable


@dataclass(frozen=True)
class Result:
    manifest: Path
    workspace: Workspace
    analysis: Analysis
    unanalysable: tuple[Unanalysable, ...]
    manifest_sha256: str = ""
    plan: object = None            # plan.Plan when a plan was made
    analyses: tuple = ()           # one per target when several were asked for
    assumed_proc_macros: tuple[tuple[str, str], ...] = ()   # (crate, why): proc-macro status guessed from the name
    blockers: tuple = ()           # static_plan.BlockerReport for each crate of Options.blockers


def display_path(path: Path) -> str:
    """A path as users see it: relative to the working directory (``../x`` above it)."""
    path = Path(path)
    try:
        try:
            real = path.resolve()
        except (OSError, RuntimeError):           # a symlink loop: name the link itself
            real = Path(os.path.abspath(path))
        return os.path.relpath(real, Path.cwd())
    except (ValueError, OSError):
        return str(path)


def relative_message(message: str) -> str:
    """Messages name files relative to the working directory, as every other output does."""
    cwd = str(Path.cwd())
    return message.replace(cwd + os.sep, "") if cwd != os.sep else message


def resolve_with_fetch(inp: ResolveInput, index: IndexSource, blocker: str | None = None):
    """Resolve, fetching whatever the resolver asks for one level at a time. Then learn from the
    crates' own manifests which of the resolved crates that could matter are proc macros (one
    parallel round of reads or downloads) and, when that corrects the index's guess, resolve again."""
    for _ in range(1000):
        try:
            res = resolve(inp, index)
        except NeedCrates as need:
            index.fetch_many(need.names)
            continue
        learn = getattr(index, "learn_proc_macros", None)
        if learn is not None and learn(proc_macro_candidates(res, blocker)):
            continue
        return res
    raise ResolveError("the dependency graph did not close")


@functools.cache
def installed_rust_version() -> str | None:
    """The installed rustc's version: resolver 3 prefers versions it supports when the workspace
    declares no rust-version (cargo's `incompatible-rust-versions = "fallback"`)."""
    try:
        out = subprocess.run(["rustc", "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.match(r"rustc (\d+\.\d+\.\d+)", out)
    return m.group(1) if m else None


def proc_macro_candidates(res, blocker: str | None) -> list[tuple[str | None, object]]:
    """The registry crates whose being a proc macro can change the answer: those with normal
    dependencies (a proc macro moves them to the host) that depend, directly or not, on the
    blocker (no other crate's status can change how the blocker is built), and the blocker."""
    registry_of: dict = {}
    parents: dict = {}
    for (pid, i), cid in res.edges.items():
        dep = res.deps_of(pid)[i]
        parents.setdefault(cid, set()).add(pid)
        if dep.source == "registry":
            registry_of.setdefault(cid, dep.registry)
    if blocker is None:
        wanted = set(registry_of)
    else:
        todo = [p for p in res.packages if p.name == blocker]
        wanted = set(todo)
        while todo:
            for parent in parents.get(todo.pop(), ()):
                if parent not in wanted:
                    wanted.add(parent)
                    todo.append(parent)
    out = []
    for pid in sorted(wanted, key=lambda p: (p.name, p.version)):
        pkg = res.packages[pid]
        if pid in registry_of and (pid.name == blocker or any(d.kind == "normal" for d in pkg.deps)):
            out.append((registry_of[pid], pkg))
    return out


def assumed_proc_macros(res, index, blocker: str | None) -> tuple[tuple[str, str], ...]:
    """(crate, why) for the crates that matter whose proc-macro status is a guess from their name."""
    ask = getattr(index, "assumed_proc_macro", None)
    if ask is None:
        return ()
    out = []
    for registry, pkg in proc_macro_candidates(res, blocker):
        why = ask(registry, pkg.id)
        if why is not None:
            out.append((f"{pkg.id.name} {pkg.id.version}", why))
    return tuple(out)


def build_input(ws: Workspace, opts: Options) -> ResolveInput:
    if opts.locked and not ws.lock_path.is_file():
        raise ResolveError(f"{ws.lock_path}: --locked needs a Cargo.lock, and there is none")
    return ResolveInput(
        locals={str(d): p for d, p in ws.packages.items()},
        members=tuple(ws.member_ids()),
        selected=tuple(ws.selected_ids()),
        resolver=ws.resolver,
        lock=load_lock(ws.lock_path),
        patches=tuple(ws.patches),
        replaces=tuple(ws.replaces),
        target=opts.target,
        features=opts.features,
        all_features=opts.all_features,
        no_default_features=opts.no_default_features,
        dev=opts.dev,
        rust_version=ws.rust_version or (installed_rust_version() if ws.resolver == "3" else None),
        locked=opts.locked,
        current=ws.packages[ws.current].id if ws.current in ws.packages else None,
        virtual=ws.root.package is None,
        host=host_triple(),
        rustflags=read_rustflags(ws.root.dir),
    )


def _manifest_file(path: Path) -> Path:
    return path if path.suffix == ".toml" else path / "Cargo.toml"


def analyze_manifest(path: Path, opts: Options, index: IndexSource, *, plan: bool = False, rules=None) -> Result:
    from dataclasses import replace

    from .gitdeps import GitSources

    git = GitSources(offline=opts.offline, cache_dir=opts.cache_dir)
    ws = load_workspace(path, workspace=opts.workspace, packages=opts.packages, exclude=opts.exclude, git=git)
    manifest = _manifest_file(path)
    targets = (opts.target, *[t for t in opts.extra_targets if t != opts.target])

    def resolve_all(workspace: Workspace) -> list:
        inp = build_input(workspace, opts)
        return [resolve_with_fetch(replace(inp, target=t), index, opts.blocker) for t in targets]

    try:
        resolutions = resolve_all(ws)
    except UnknownCrate as e:
        if getattr(index, "offline", False):
            missing = ", ".join(f"`{n}`" for n in index.absent())
            raise ResolveError(f"{manifest}: --offline: cargo's index cache ({index.where}) has no data for {missing}; "
                               f"run cargo once with network, or drop --offline ({e})") from None
        raise ResolveError(f"{manifest}: {e}") from None
    except ResolveError as e:
        raise ResolveError(f"{manifest}: {e}") from None
    analyses = [analyze(r, opts.blocker) for r in resolutions]
    assumed = tuple(dict.fromkeys(a for r in resolutions for a in assumed_proc_macros(r, index, opts.blocker)))
    primary = next((a for a in analyses if a.blocked), analyses[0])
    digest = sha256(manifest.read_bytes())
    the_plan = None
    if plan:
        from .plan import Checker, make_plan
        from .rules import load_rules

        def reload(texts: dict[Path, str]):
            return resolve_all(load_workspace(path, workspace=opts.workspace, packages=opts.packages, texts=texts,
                                              exclude=opts.exclude, git=git))

        originals = {m.path: m.text for m in ws.manifests.values()}
        originals.setdefault(ws.root.path, ws.root.text)
        checker = Checker(originals, reload, opts.blocker)
        rule_set = load_rules() if rules is None else rules
        for source in [primary] + [a for a in analyses if a.blocked and a is not primary]:
            the_plan = make_plan(source, ws, rule_set, checker, opts.strategy, display_path, opts.scope)
            if the_plan.status != "unfixable":
                break
    reports = ()
    if opts.blockers:
        from .catalog import crate_source_dir

        reports, the_plan = _other_blockers(opts, ws, resolutions, the_plan, reload if plan else None,
                                            originals if plan else None, rule_set if plan else None,
                                            lambda name, version: crate_source_dir(index, name, version))
    return Result(manifest, ws, primary, tuple(ws.unanalysable), digest, the_plan,
                  tuple(analyses) if len(analyses) > 1 else (), assumed, reports)


def _other_blockers(opts: Options, ws, resolutions, the_plan, reload, originals, rules, source_dir):
    """The catalog's other libraries, planned one after the other on top of the OpenSSL plan; the
    edits are accepted together only when re-resolution leaves every requested blocker static."""
    from dataclasses import replace

    from .catalog import all_static, blocker_names, load_catalog
    from .plan import Checker, Plan
    from .static_plan import other_blockers

    catalog = load_catalog()
    crates = tuple(c for c in opts.blockers if c != opts.blocker)
    if reload is None:
        return tuple(other_blockers(resolutions, crates, catalog, source_dir=source_dir)), the_plan
    texts = dict(the_plan.texts) if the_plan is not None and the_plan.status == "fixable" else {}

    def make_checker(crate, fixed):
        base = {**originals, **texts}
        return Checker(dict(base), lambda t: reload({**texts, **t}), crate, fixed)

    def run_pass(names):
        found = other_blockers(reload(texts) if texts else resolutions, names, catalog, ws=ws, rules=rules,
                               make_checker=make_checker, strategy=opts.strategy, display=display_path, scope=opts.scope,
                               source_dir=source_dir)
        for rep in found:
            if rep.plan is not None and rep.plan.status == "fixable":
                texts.update(rep.plan.texts)
        return found

    reports = {r.crate: r for r in run_pass(crates)}
    # a static build can bring a blocker back (pq-sys 0.6's bundled libpq needs openssl-sys): plan
    # whatever links the system now, OpenSSL included, until nothing changes
    every = (opts.blocker, *crates) if opts.blocker in blocker_names(catalog) else crates
    for _ in range(3):
        if not texts:
            break
        now = reload(texts)
        again = [c for c in every if not all_static(now[0], catalog, (c,))]
        if not again:
            break
        for rep in run_pass(tuple(again)):
            if rep.plan is not None and rep.plan.remedies:
                old = reports.get(rep.crate)
                merged = rep if old is None or old.plan is None else replace(
                    old, plan=replace(old.plan, remedies=old.plan.remedies + rep.plan.remedies))
                reports[rep.crate] = merged
    extra = [r for rep in reports.values() if rep.plan is not None and rep.plan.status == "fixable" for r in rep.plan.remedies]
    if extra:
        done = all(all_static(res, catalog, crates) for res in reload(texts))
        base = the_plan if the_plan is not None and the_plan.status == "fixable" else None
        evaluations = (the_plan.evaluations if the_plan is not None else 0) + sum(
            rep.plan.evaluations for rep in reports.values() if rep.plan is not None)
        the_plan = Plan("fixable", (base.remedies if base else ()) + tuple(extra), dict(texts),
                        warnings=the_plan.warnings if the_plan is not None else (), evaluations=evaluations)
        if not done:
            the_plan = replace(the_plan, warnings=the_plan.warnings + (
                "re-resolution still finds a library linked from the system; see `blockers`",))
    out = tuple(reports[c] for c in crates if c in reports)
    if opts.blockers_named:
        stuck = [r for r in out if r.links_system and r.plan is not None and r.plan.status == "unfixable"]
        if stuck:
            reason = "; ".join(f"{r.crate}: {r.plan.reason}" for r in stuck)
            the_plan = Plan("unfixable", reason=reason, warnings=the_plan.warnings if the_plan is not None else (),
                            evaluations=the_plan.evaluations if the_plan is not None else 0)
    return out, the_plan


# -- many manifests at once ---------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One analysis: a manifest as given (`batch=False`), or a workspace found below a directory,
    analysed with all its members (`batch=True`), reporting on the manifests found in it."""

    path: Path
    manifests: tuple[Path, ...]
    batch: bool


@dataclass(frozen=True)
class Failure:
    manifests: tuple[Path, ...]
    error: str


def plan_jobs(paths: list[Path]) -> tuple[list[Job], list[Failure]]:
    from .discover import find_manifests, group_workspaces

    from .discover import scan_errors

    jobs: list[Job] = []
    failures: list[Failure] = []
    for p in paths:
        p = Path(p)
        if p.is_dir() and not (p / "Cargo.toml").is_file() or p.is_dir() and _has_nested(p):
            groups, broken = group_workspaces(find_manifests(p))
            failures += [Failure((b.manifest,), b.error) for b in broken]
            failures += [Failure((d,), f"{display_path(d)}: {why}") for d, why in scan_errors(p)]
            jobs += [Job(g.root, tuple(g.manifests), True) for g in groups]
        else:
            jobs.append(Job(p, (_manifest_file(p),), False))
    seen: set[Path] = set()
    unique = []
    for j in jobs:                       # a workspace reached from two directories runs once
        key = _manifest_file(j.path).resolve()
        if key not in seen:
            seen.add(key)
            unique.append(j)
    return unique, failures


def _has_nested(d: Path) -> bool:
    """A directory whose Cargo.toml is not the only one below it is a tree to search."""
    from .discover import find_manifests

    return len(find_manifests(d)) > 1


def run_jobs(jobs: list[Job], opts: Options, index, workers: int = 4):
    """Analyse (and plan) each job, several at once; yields (job, Result | Failure) as each ends.
    The registry data is shared: each crate is fetched and parsed once for the whole run."""
    from concurrent.futures import ThreadPoolExecutor, as_completed
    from dataclasses import replace

    from .errors import CodemodError

    def one(job: Job):
        o = replace(opts, workspace=True) if job.batch and not opts.packages else opts
        try:
            return analyze_manifest(job.path, o, index, plan=True)
        except CodemodError as e:
            return Failure(job.manifests, str(e))

    if len(jobs) <= 1 or workers <= 1:
        for j in jobs:
            yield j, one(j)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(one, j): j for j in jobs}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()
