"""One run: discover → load → resolve → analyze → plan → edit → report."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .analyze import Analysis, analyze
from .edit import sha256
from .errors import CodemodError, PlanError, ResolveError
from .lockfile import load_lock
from .manifest import Unanalysable
from .registry.index import IndexSource
from .resolve import TARGET_SIDE, NeedCrates, ResolveInput, UnknownCrate, forget_version_passes, resolve
from .targets import host_triple, installed_rust_version, read_rustflags
from .workspace import LoadCache, Workspace, load_workspace


@dataclass(frozen=True)
class Options:
    """How a run analyses each manifest: target, blocker, features, selection, strategy."""

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
    lock: str = "off"                        # Cargo.lock for a fix: "update" it, "keep" it (--no-update-lock), "off"
    lock_writer: str = "auto"                # how: "auto" (cargo when installed), "cargo", "builtin"
    offline: bool = False                    # --offline: git dependencies only from cargo's checkouts; cargo offline too
    cache_dir: Path | None = None            # --cache-dir: where git dependencies are cloned
    locked_flag: str = "--locked"            # the flag named when a lock change is refused (--locked/--frozen)
    partial: bool = False                    # --partial: fix the culprits that can be fixed when one cannot
    blockers: tuple[str, ...] = ()           # --blocker all / a list: the catalog's other crates (catalog.py)
    blockers_named: bool = False             # --blocker named them: an unfixable one makes the run unfixable


@dataclass(frozen=True)
class Result:
    """One manifest analysed: its workspace, the analysis and the plan."""

    manifest: Path
    workspace: Workspace
    analysis: Analysis
    unanalysable: tuple[Unanalysable, ...]
    manifest_sha256: str = ""
    plan: object = None            # plan.Plan when a plan was made
    analyses: tuple = ()           # one per target when several were asked for
    assumed_proc_macros: tuple[tuple[str, str], ...] = ()   # (crate, why): proc-macro status guessed from the name
    lock: object = None            # lockwrite.LockUpdate: Cargo.lock's new text, one more file of the fix
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
        if learn is not None and not _learned(res, index, blocker):
            if learn(proc_macro_candidates(res, blocker)):
                forget_version_passes()         # they hold the packages as guessed
                continue
            _LEARNED.insert(0, (res.version_pass, index, blocker, len(res.edges), len(res.packages)))
            del _LEARNED[4:]
        return res
    raise ResolveError("the dependency graph did not close")


# The builds of one plan check share a version pass, and so the registry crates and edges the
# proc-macro question is asked about: once it has been answered for a pass, the other builds on
# it (unless their feature pass reached an edge or a package it did not choose) skip the question.
_LEARNED: list[tuple] = []


def _learned(res, index, blocker: str | None) -> bool:
    return any(v is res.version_pass and i is index and b == blocker and e == len(res.edges) and n == len(res.packages)
               for v, i, b, e, n in _LEARNED)


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


def build_input(ws: Workspace, opts: Options, rustflags=None) -> ResolveInput:
    """`rustflags`: read_rustflags(ws.root.dir) when the caller has it (one analysis reads it once)."""
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
        rustflags=read_rustflags(ws.root.dir) if rustflags is None else rustflags,
    )


def builds(ws: Workspace, opts: Options, targets, index, before: list | None = None,
           changed: frozenset[Path] = frozenset(), members_only: bool = False, rustflags=None) -> list:
    """Every build a plan must fix, resolved: for each target the selected members together
    (`--workspace`) and, when there are several, each on its own (`-p member`). Versions come
    from the whole workspace either way (one Cargo.lock), so only the feature pass differs.

    `before` (builds resolved for other manifest texts) and `changed` (the manifests whose text
    differs from those): a member built alone whose own manifests, path dependencies' manifests
    and workspace root are all unchanged is built as before, and is not resolved again. (Its feature pass reads nothing
    else; versions are chosen per compatible line, newest first, so requirements an edit adds
    elsewhere pick the versions already chosen.) `members_only`: leave out the build of all the
    selected members together (a pruning trial; plan.py confirms its answer with a complete check)."""
    from dataclasses import replace

    from .plan import Build

    inp = build_input(ws, opts, rustflags)
    previous = {b.label: b for b in before or ()}
    root = ws.root.path.resolve()
    out = []
    for t in targets:
        suffix = f" --target {t}" if len(targets) > 1 else ""
        base = replace(inp, target=t)
        if len(base.selected) == 1:
            out.append(Build(f"-p {base.selected[0].name}{suffix}", resolve_with_fetch(base, index, opts.blocker), base.selected[0]))
            continue
        if not members_only:
            out.append(Build(f"--workspace{suffix}", resolve_with_fetch(base, index, opts.blocker)))
        for pid in base.selected:
            label = f"-p {pid.name}{suffix}"
            old = previous.get(label)
            if old is not None and root not in changed and not old.manifests & changed:
                out.append(old)
                continue
            one = replace(base, selected=(pid,), features=_member_features(opts.features, ws, pid))
            out.append(Build(label, resolve_with_fetch(one, index, opts.blocker), pid))
    return out


def _member_features(features: tuple[str, ...], ws: Workspace, pid) -> tuple[str, ...]:
    """`--features` as they apply to one member built alone: cargo applies a feature to every
    selected member that has it, so a member alone takes the ones it has."""
    if not features:
        return ()
    pkg = next(p for p in ws.packages.values() if p.id == pid)
    keep = []
    for f in features:
        owner, _, rest = f.partition("/")
        if rest and (owner == pkg.name or any(d.name == owner for d in pkg.deps)) or f in pkg.features:
            keep.append(f)
    return tuple(keep)


def _manifest_file(path: Path) -> Path:
    return path if path.suffix == ".toml" else path / "Cargo.toml"


def analyze_manifest(path: Path, opts: Options, index: IndexSource, *, plan: bool = False, rules=None,
                     catalog=None) -> Result:
    from dataclasses import replace

    from .gitdeps import GitSources

    git = GitSources(offline=opts.offline, cache_dir=opts.cache_dir)
    loads = LoadCache()
    ws = load_workspace(path, workspace=opts.workspace, packages=opts.packages, exclude=opts.exclude, git=git,
                        cache=loads)
    manifest = _manifest_file(path)
    targets = (opts.target, *[t for t in opts.extra_targets if t != opts.target])
    flags = read_rustflags(ws.root.dir)           # the root's config files and the environment, read once

    def resolve_all(workspace: Workspace, o: Options = opts) -> list:
        inp = build_input(workspace, o, flags)
        return [resolve_with_fetch(replace(inp, target=t), index, o.blocker) for t in targets]

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
    lock = None
    if plan:
        from .plan import Build, Checker, Plan, make_plan
        from .rules import load_rules

        # Candidates may need crates the lock lacks; --locked refuses the lock change afterwards.
        check_opts = replace(opts, locked=False)

        resolved: list[tuple[frozenset, dict, list]] = []     # (key, texts, complete builds), newest first

        def reload(texts: dict[Path, str], near=None, members_only: bool = False) -> list[Build]:
            """The builds with `texts` in place of the manifests. The same texts asked again (the
            other libraries' planning, the lock update) get the builds already made; without
            `near`, the closest texts resolved before serve as the reference."""
            texts = {p: t for p, t in texts.items() if originals.get(p) != t}
            key = frozenset(texts.items())
            for k, _t, made in resolved:
                if k == key:
                    return made
            if near is None and resolved:
                _k, ref_texts, ref_builds = min(resolved, key=lambda e: len(e[0] ^ key))
                near = (ref_texts, ref_builds)
            if not texts and near is None:
                made = builds(ws, check_opts, targets, index, members_only=members_only, rustflags=flags)
            else:
                w = load_workspace(path, workspace=opts.workspace, packages=opts.packages, texts=texts,
                                   exclude=opts.exclude, git=git, cache=loads) if texts else ws
                ref_texts, ref_builds = near if near is not None else ({}, checker.baseline())
                changed = frozenset(p.resolve() for p in set(texts) | set(ref_texts)
                                    if texts.get(p, originals.get(p)) != ref_texts.get(p, originals.get(p)))
                made = builds(w, check_opts, targets, index, ref_builds, changed, members_only, flags)
            if not members_only:
                resolved.insert(0, (key, texts, made))
                del resolved[4:]
            return made

        originals = {m.path: m.text for m in ws.manifests.values()}
        originals.setdefault(ws.root.path, ws.root.text)
        checker = Checker(originals, reload, opts.blocker, root=ws.root.path.resolve())
        selected = ws.selected_ids()
        if len(selected) == 1:
            # one member: the builds as they stand are the resolutions made above
            suffix = (lambda t: f" --target {t}" if len(targets) > 1 else "")
            checker.seed([Build(f"-p {selected[0].name}{suffix(t)}", r, selected[0]) for t, r in zip(targets, resolutions)])
        rule_set = load_rules() if rules is None else rules

        def versions(name: str, registry: str | None):
            return index.get(name, registry)

        rank = {"clean": 0, "fixable": 0, "partial": 1, "unfixable": 2}
        if not any(pid.name == opts.blocker and side == TARGET_SIDE for r in resolutions for pid, side in r.units):
            # no build of the selection has the blocker: a member alone builds a subset of it
            analyses_to_plan = []
            the_plan = Plan("clean")
        else:
            analyses_to_plan = [primary] + [a for a in analyses if a.blocked and a is not primary]
        for source in analyses_to_plan:
            try:
                candidate = make_plan(source, ws, rule_set, checker, opts.strategy, display_path, opts.scope,
                                      partial=opts.partial, versions=versions)
            except CodemodError as e:
                # not a verdict on a candidate: the check itself could not be made
                raise PlanError(f"{manifest}: checking a candidate fix failed: {e}") from None
            if the_plan is None or rank[candidate.status] < rank[the_plan.status]:
                the_plan = candidate
            if rank[the_plan.status] == 0:
                break
    reports = ()
    if opts.blockers:
        from .catalog import crate_source_dir

        reports, the_plan = _other_blockers(opts, ws, resolutions, the_plan, reload if plan else None,
                                            originals if plan else None, rule_set if plan else None,
                                            lambda name, version: crate_source_dir(index, name, version), catalog)
    if plan and the_plan is not None and the_plan.status in ("fixable", "partial"):
        lock = _lock_update(ws, opts, index, resolutions[0], lambda: reload(the_plan.texts)[0].resolution,
                            the_plan.texts)
    return Result(manifest, ws, primary, tuple(ws.unanalysable), digest, the_plan,
                  tuple(analyses) if len(analyses) > 1 else (), assumed, lock, reports)


def _lock_update(ws: Workspace, opts: Options, index, before, after, texts):
    """Cargo.lock's new text for a fix (lockwrite.py); refused under --locked/--frozen, as cargo does."""
    if opts.lock == "off" or (opts.lock == "keep" and not opts.locked):
        return None
    from .lockwrite import LockError, lock_for_fix

    try:
        update = lock_for_fix(ws, texts, before, after(), index, writer=opts.lock_writer, offline=opts.offline)
    except LockError as e:
        raise ResolveError(f"{ws.lock_path}: {e}") from None
    if update is not None and opts.locked:
        what = f"the fix {update.summary()}" if update.new is not None else update.note
        raise ResolveError(f"the lock file {ws.lock_path} needs to be updated but {opts.locked_flag} was passed to "
                           f"prevent this ({what})")
    return None if opts.lock == "keep" else update


def _other_blockers(opts: Options, ws, resolutions, the_plan, reload, originals, rules, source_dir, catalog=None):
    """The catalog's other libraries, planned one after the other on top of the OpenSSL plan; the
    edits are accepted together only when re-resolution leaves every requested blocker static."""
    from dataclasses import replace

    from .catalog import all_static, blocker_names, load_catalog
    from .plan import Checker, Plan
    from .static_plan import other_blockers

    catalog = load_catalog() if catalog is None else catalog
    crates = tuple(c for c in opts.blockers if c != opts.blocker)
    if reload is None:
        return tuple(other_blockers(resolutions, crates, catalog, source_dir=source_dir)), the_plan
    texts = dict(the_plan.texts) if the_plan is not None and the_plan.status in ("fixable", "partial") else {}
    # the libraries of one pass are planned on the same texts; their edits are then applied together
    # to the texts the pass started from (two plans editing one manifest must not replace each other)
    composer = Checker({**originals, **texts}, reload, opts.blocker)
    edits: list = []

    def make_checker(crate, fixed):
        base = {**originals, **texts}
        return Checker(dict(base), lambda t, near=None: reload({**texts, **t}), crate, fixed)

    def run_pass(names):
        found = other_blockers([b.resolution for b in reload(texts)] if texts else resolutions, names, catalog, ws=ws, rules=rules,
                               make_checker=make_checker, strategy=opts.strategy, display=display_path, scope=opts.scope,
                               source_dir=source_dir)
        for rep in found:
            if rep.plan is not None and rep.plan.status == "fixable":
                edits.extend(e for e in rep.plan.edits if e not in edits)
        texts.update(composer.texts_for(edits))
        return found

    reports = {r.crate: r for r in run_pass(crates)}
    # a static build can bring a blocker back (pq-sys 0.6's bundled libpq needs openssl-sys): plan
    # whatever links the system now, OpenSSL included, until nothing changes
    every = (opts.blocker, *crates) if opts.blocker in blocker_names(catalog) else crates
    for _ in range(3):
        if not texts:
            break
        now = reload(texts)
        again = [c for c in every if not all_static(now[0].resolution, catalog, (c,))]
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
        done = all(all_static(b.resolution, catalog, crates) for b in reload(texts))
        base = the_plan if the_plan is not None and the_plan.status in ("fixable", "partial") else None
        evaluations = (the_plan.evaluations if the_plan is not None else 0) + sum(
            rep.plan.evaluations for rep in reports.values() if rep.plan is not None)
        the_plan = Plan(base.status if base else "fixable", (base.remedies if base else ()) + tuple(extra), dict(texts),
                        reason=base.reason if base else "", warnings=the_plan.warnings if the_plan is not None else (),
                        evaluations=evaluations, candidates=base.candidates if base else (),
                        unfixed=base.unfixed if base else ())
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
    """Manifests that could not be analysed, and the one-line error."""

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
    from dataclasses import replace

    from .errors import CodemodError
    from .rules import load_rules

    catalog = None
    try:
        rules = load_rules() if jobs else []        # read once per run, shared by every workspace
        if jobs and opts.blockers:
            from .catalog import load_catalog

            catalog = load_catalog()
    except CodemodError as e:
        rules = e                                   # each job reports it, as when read per job

    def one(job: Job):
        o = replace(opts, workspace=True) if job.batch and not opts.packages else opts
        try:
            if isinstance(rules, CodemodError):
                raise rules
            return analyze_manifest(job.path, o, index, plan=True, rules=rules, catalog=catalog)
        except CodemodError as e:
            return Failure(job.manifests, str(e))

    if len(jobs) <= 1 or workers <= 1:
        for j in jobs:
            yield j, one(j)
        return
    from concurrent.futures import ThreadPoolExecutor, as_completed

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(one, j): j for j in jobs}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()
