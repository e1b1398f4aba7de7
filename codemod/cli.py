"""Command line: arguments, output format and exit codes; nothing else."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from . import __version__
from .errors import CodemodError

EXIT_OK, EXIT_CHECK, EXIT_ERROR, EXIT_UNFIXABLE = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cargo-static-fix",
        description="Find and fix what pulls the system OpenSSL (openssl-sys) into a Rust build for a static target.",
    )
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                   help="a Cargo.toml or the directory holding one (default: .)")
    p.add_argument("--manifest-path", type=Path, action="append", default=[], help="path to Cargo.toml")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--explain", action="store_true", help="show who pulls in the blocker and the plan; write nothing")
    mode.add_argument("--dry-run", action="store_true", help="print the change as a unified diff; write nothing")
    mode.add_argument("--check", action="store_true", help="like --dry-run; exit 1 when a change is needed (for CI)")
    mode.add_argument("--list-rules", action="store_true", help="print the rules in rules/")
    p.add_argument("--plan", type=Path, metavar="FILE", help="apply a plan (JSON from --format json) without resolving")
    p.add_argument("--strategy", choices=("auto", "vendored", "rustls", "openssl-dep"), default="auto",
                   help="force a remedy kind (default: the least invasive that works)")
    p.add_argument("--allow-dirty", action="store_true", help="write manifests that have uncommitted changes")
    p.add_argument("--format", choices=("text", "json", "jsonl"), default="text",
                   help="output format: text, json (one document), jsonl (a line per manifest as each finishes)")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto", help="colour diffs")
    p.add_argument("--target", action="append", default=[], metavar="TRIPLE",
                   help="target triple (default: x86_64-unknown-linux-musl); repeat it: the fix must hold for every target")
    p.add_argument("--blocker", default="openssl-sys", metavar="CRATE", help="the crate to keep out (default: openssl-sys)")
    p.add_argument("--features", "-F", action="append", default=[], help="features to activate (comma or space separated)")
    p.add_argument("--all-features", action="store_true", help="activate all features of the selected packages")
    p.add_argument("--no-default-features", action="store_true", help="do not activate the `default` feature")
    p.add_argument("--dev", action="store_true", help="include the selected packages' dev-dependencies (tests, examples)")
    p.add_argument("--workspace", action="store_true", help="analyse every workspace member")
    p.add_argument("-p", "--package", action="append", default=[], metavar="SPEC", help="workspace member(s) to analyse")
    p.add_argument("--exclude", action="append", default=[], metavar="SPEC", help="members to leave out of --workspace")
    p.add_argument("--scope", choices=("musl",), default=None,
                   help="put the edits under [target.'cfg(target_env = \"musl\")'.dependencies] so other targets keep the system OpenSSL")
    p.add_argument("--verify", action="store_true", help="after writing, ask cargo tree whether the blocker is gone or vendored")
    p.add_argument("--graph", nargs=2, metavar=("dot|mermaid", "FILE"), default=None,
                   help="write the culprit graph (chosen edits highlighted) as Graphviz DOT or Mermaid")
    p.add_argument("--index-url", default=None, metavar="URL",
                   help="registry index: https://…, sparse+https://…, or a directory (default: https://index.crates.io/)")
    p.add_argument("-j", "--jobs", type=int, default=16, help="index requests in flight at once (default: 16)")
    p.add_argument("--offline", action="store_true", help="no network: read cargo's own index cache ($CARGO_HOME/registry/index)")
    p.add_argument("--locked", action="store_true", help="use only versions in Cargo.lock; fail if a crate is not locked")
    p.add_argument("--frozen", action="store_true", help="--offline and --locked")
    p.add_argument("--prefetch", choices=("off", "normal", "features", "all"), default="features",
                   help="fetch what crates will likely need before the resolver asks: off; normal (non-optional "
                        "dependencies); features (also optional ones the asked-for features turn on; default); all")
    p.add_argument("--refresh", action="store_true", help="revalidate cached index files now, even if still fresh")
    p.add_argument("--cache-dir", type=Path, default=None, metavar="DIR",
                   help="where index files are cached (default: $CARGO_STATIC_FIX_CACHE_DIR or the platform cache dir)")
    p.add_argument("-v", "--verbose", action="store_true", help="report each workspace, index requests and timing on stderr")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary line")
    p.add_argument("-V", "--version", action="version", version=f"cargo-static-fix {__version__}")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["static-fix"]:      # invoked by cargo as `cargo-static-fix static-fix ARGS`
        argv = argv[1:]
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.graph and args.graph[0] not in ("dot", "mermaid"):
        parser.error("--graph takes dot or mermaid, then a file")
    try:
        if args.list_rules:
            return _list_rules(args)
        if args.plan is not None:
            return _apply_plan_file(args)
        return _run_remembered(args, argv)
    except CodemodError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        from .registry.http import cancel_all

        cancel_all()            # worker threads blocked on the network end now, not at their timeout
        return 130


def _color(args) -> bool:
    if args.color == "always":
        return True
    if args.color == "never":
        return False
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def _list_rules(args) -> int:
    from .rules import load_rules

    rules = load_rules()
    if args.format == "json":
        print(json.dumps([r.as_json() for r in rules], indent=2))
        return EXIT_OK
    for r in rules:
        kinds = ", ".join(f"{m.kind} (+{', +'.join(m.add_features)})" for m in r.remedies) or "notes only"
        print(f"{r.crate} {r.versions}: {kinds}")
    return EXIT_OK


def _open_registry(args, first: Path):
    from .registry.cache import HttpCache, default_cache_dir
    from .registry.config import open_registry

    offline = args.offline or args.frozen
    cache = None if offline else HttpCache(args.cache_dir or default_cache_dir())
    project = first if first.suffix != ".toml" else first.parent
    return open_registry(project, index_url=args.index_url, offline=offline, cache=cache,
                         refresh=args.refresh, jobs=args.jobs, speculate=args.prefetch)


def _run_remembered(args, argv: list[str]) -> int:
    """Read-only runs reuse a stored answer while nothing it depends on has changed (memo.py)."""
    read_only = args.explain or args.dry_run or args.check
    side_effects = args.graph or args.verify
    if not read_only or side_effects or args.refresh or args.offline or args.frozen or os.environ.get("CARGO_STATIC_FIX_NO_MEMO"):
        return _run(args)
    import contextlib
    import io

    from .memo import Memo, index_dependencies
    from .registry.cache import HttpCache, default_cache_dir
    from .registry.config import config_files
    from .rules import RULES_DIR
    from .workspace import load_workspace

    paths = list(args.paths) + list(args.manifest_path) or [Path(".")]
    from .discover import find_manifests

    try:
        files: list[Path] = []
        for p in paths:
            if p.is_dir():
                # a tree: every manifest below it (and their locks) is an input
                found = find_manifests(p)
                files += found + [m.parent / "Cargo.lock" for m in found]
                if len(found) > 1 or not found:
                    continue
            ws = load_workspace(p, workspace=args.workspace, packages=tuple(args.package))
            files += [m.path for m in ws.manifests.values()] + [ws.root.path, ws.lock_path]
        files += config_files((paths[0] if paths[0].suffix != ".toml" else paths[0].parent).resolve())
        files += sorted(RULES_DIR.glob("*.toml"))
    except CodemodError:
        return _run(args)                 # let the real run report the problem
    cache_dir = args.cache_dir or default_cache_dir()
    memo = Memo(cache_dir, HttpCache(cache_dir))
    extra = json.dumps([sys.stdout.isatty(), os.environ.get("NO_COLOR"), os.environ.get("CARGO_HOME")])
    key = memo.key(argv, files, extra)
    hit = memo.lookup(key)
    if hit is not None:
        sys.stdout.write(hit["stdout"])
        sys.stderr.write(hit["stderr"])
        return hit["code"]
    out, err = io.StringIO(), io.StringIO()
    terminal = sys.stderr                # the progress bar still belongs on the real terminal
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = _run(args, keep_index=True, progress_stream=terminal)
        except CodemodError as e:
            print(f"error: {e}", file=sys.stderr)
            code = EXIT_ERROR
    sys.stdout.write(out.getvalue())
    sys.stderr.write(err.getvalue())
    index = _LAST_INDEX.get("index")
    if code != EXIT_ERROR and index is not None:
        deps = index_dependencies(index)
        if deps is not None:
            memo.store(key, {"stdout": out.getvalue(), "stderr": err.getvalue(), "code": code, "index": deps})
    return code


_LAST_INDEX: dict = {}


def _early_fetch(index, path: Path):
    """Start fetching the direct dependencies' index files while the rest of the tool loads: the
    network waits and the imports overlap. Errors are left for the real resolution to report."""
    import threading

    from .workspace import load_workspace

    def work():
        try:
            ws = load_workspace(path)
            wants: dict[tuple, set[str]] = {}
            for pkg in ws.packages.values():
                for d in pkg.deps:
                    if d.source == "registry":
                        feats = wants.setdefault((d.registry, d.package), set())
                        feats.update(d.features)
                        if d.default_features:
                            feats.add("default")
            index.fetch_many(wants)
        except Exception:
            pass

    t = threading.Thread(target=work, daemon=True)
    t.start()
    return t


def _run(args, keep_index: bool = False, progress_stream=None) -> int:
    from .targets import DEFAULT_TARGET, load_target

    paths = list(args.paths) + list(args.manifest_path) or [Path(".")]
    targets = args.target or [DEFAULT_TARGET]
    for t in targets:
        load_target(t)
    index = _open_registry(args, paths[0])
    if keep_index:
        _LAST_INDEX["index"] = index
    early = _early_fetch(index, paths[0])
    from .report import batch_entries, failure_entries, summary_line
    from .run import Failure, Options, plan_jobs, run_jobs

    features = tuple(f for chunk in args.features for f in chunk.replace(",", " ").split())
    opts = Options(target=targets[0], extra_targets=tuple(targets[1:]), blocker=args.blocker, features=features,
                   all_features=args.all_features, no_default_features=args.no_default_features, dev=args.dev,
                   workspace=args.workspace, packages=tuple(args.package), strategy=args.strategy,
                   locked=args.locked or args.frozen, scope=SCOPES.get(args.scope), exclude=tuple(args.exclude))
    jobs, failures = plan_jobs(paths)
    early.join()
    started = time.perf_counter()

    writing = not (args.explain or args.dry_run or args.check)
    color = _color(args)
    stream = progress_stream or sys.stderr
    progress = _Progress(len(jobs), stream, enabled=not args.quiet and len(jobs) > 1 and stream.isatty())
    entries: list[dict] = []
    results = []
    written_files: set[Path] = set()
    code = EXIT_OK

    def emit(new: list[dict]) -> None:
        entries.extend(new)
        if args.format == "jsonl":
            for e in new:
                progress.clear()
                print(json.dumps(e), flush=True)

    for f in failures:
        emit(failure_entries(f))
    for job, outcome in run_jobs(jobs, opts, index, workers=min(4, max(1, args.jobs // 4))):
        progress.step(job.path)
        if isinstance(outcome, Failure):
            if len(jobs) + len(failures) == 1:
                raise CodemodError(outcome.error)       # one manifest: one line, as before
            progress.clear()
            print(f"error: {outcome.error}", file=sys.stderr)
            emit(failure_entries(outcome))
            continue
        r = outcome
        plan = r.plan
        written = False
        new_entries = None
        if plan.status == "fixable" and writing:
            clash = [p for p in plan.texts if p in written_files]
            if clash:
                emit([{"manifest": str(clash[0]), "status": "error",
                       "error": f"{clash[0]}: already edited by another workspace in this run; run again"}])
                continue
            new_entries = batch_entries(job, r, True)
            _write(plan.texts, args.allow_dirty)
            written_files.update(plan.texts)
            written = True
        results.append(r)
        emit(new_entries or batch_entries(job, r, written))
        if args.format == "text":
            progress.clear()
            text = _text_for(r, args, color, written)
            sys.stdout.write(text)
            sys.stdout.flush()
        if args.verbose:
            progress.clear()
            print(f"{r.manifest}: {plan.status} ({time.perf_counter() - started:.2f} s)", file=sys.stderr)
    progress.clear()

    statuses = {e["status"] for e in entries}
    if "error" in statuses:
        code = EXIT_ERROR
    elif "unfixable" in statuses:
        code = EXIT_UNFIXABLE
    elif args.check and "would-fix" in statuses:
        code = EXIT_CHECK

    if args.verify and writing:
        _verify(results, opts, args, entries)
    if args.graph:
        fmt, dest = args.graph
        Path(dest).write_text(__import__("codemod.report", fromlist=["graph_text"]).graph_text(results, fmt))
    if args.format == "json":
        print(json.dumps(entries[0] if len(entries) == 1 else entries, indent=2))
    if args.verbose:
        from .resolve import RESOLUTIONS

        print(f"index {index.where}: {index.files} files, {index.requests} HTTP requests, "
              f"{index.round_trips} round trips; {RESOLUTIONS[0]} resolutions; "
              f"{time.perf_counter() - started:.3f} s", file=sys.stderr)
    if len(entries) > 1 and not args.quiet:
        print(summary_line(entries), file=sys.stderr)
    return code


SCOPES = {"musl": 'cfg(target_env = "musl")', None: None}


class _Progress:
    """A one-line progress bar on a terminal; nothing at all when piped or quiet."""

    def __init__(self, total: int, stream, enabled: bool):
        self.total, self.done, self.enabled, self.stream = total, 0, enabled, stream

    def step(self, what) -> None:
        self.done += 1
        if self.enabled:
            width = 30
            filled = width * self.done // max(self.total, 1)
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} workspaces")
            self.stream.flush()

    def clear(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _verify(results, opts, args, entries: list[dict]) -> None:
    """Ask cargo whether the blocker is gone (or vendored) in each fixed workspace."""
    import shutil
    import subprocess

    from .run import display_path

    for r in results:
        if not r.plan or r.plan.status != "fixable":
            continue
        verdict, note = None, ""
        if shutil.which("cargo") is None:
            note = "cargo is not installed: not verified"
        else:
            ok = True
            for target in (opts.target, *opts.extra_targets):
                cmd = ["cargo", "tree", "-i", opts.blocker, "-e", "features,normal", "--target", target,
                       "--manifest-path", str(r.workspace.root.path)]
                if opts.workspace or r.workspace.root.package is None or len(r.workspace.members) > 1:
                    cmd.append("--workspace")
                if args.offline or args.frozen:
                    cmd.append("--offline")
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
                if proc.returncode == 101 and "did not match any packages" in proc.stderr:
                    continue
                if proc.returncode != 0:
                    ok, note = None, f"cargo could not resolve ({proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}): not verified"
                    break
                if proc.stdout.strip() and f'{opts.blocker} feature "vendored"' not in proc.stdout:
                    ok, note = False, f"cargo still builds an unvendored {opts.blocker} for {target}"
                    break
            verdict = ok
            if ok:
                note = f"cargo agrees: {opts.blocker} is gone or vendored"
        print(f"{r.manifest}: verify: {note}", file=sys.stderr)
        mine = {display_path(m.path) for m in r.workspace.manifests.values()} | {display_path(r.workspace.root.path),
                                                                                  str(r.manifest)}
        for e in entries:
            if e.get("status") == "fixed" and e["manifest"] in mine:
                e["verified"] = verdict
                e["verify_note"] = note


def _text_for(r, args, color: bool, written: bool) -> str:
    from .report import explain_text, unified_diff

    if args.explain:
        return explain_text(r)
    plan = r.plan
    out = []
    if plan.status == "clean":
        state = "vendored" if r.analysis.vendored else "not in the build"
        out.append(f"{r.manifest}: nothing to do ({r.analysis.blocker} is {state} for {r.analysis.target})\n")
        return "".join(out)
    for w in plan.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if plan.status == "unfixable":
        print(f"{r.manifest}: cannot fix: {plan.reason}", file=sys.stderr)
        return ""
    originals = {}
    for path in plan.texts:
        originals[path] = path.read_text(encoding="utf-8") if not written else None
    if args.dry_run or args.check:
        for path, new in plan.texts.items():
            out.append(unified_diff(path, originals[path], new, color))
        for rem in plan.remedies:
            print(f"{r.manifest}: would fix: {rem.reason}", file=sys.stderr)
    else:
        for rem in plan.remedies:
            out.append(f"{r.manifest}: fixed: {rem.reason}\n")
            out.extend(f"  note: {n}\n" for n in rem.notes)
    return "".join(out)


def _dirty(path: Path) -> bool:
    import subprocess

    try:
        proc = subprocess.run(["git", "status", "--porcelain", "--", path.name], cwd=path.parent,
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and bool(proc.stdout.strip())


def _write(texts: dict[Path, str], allow_dirty: bool) -> None:
    from .edit import EditError, write_atomic

    if not allow_dirty:
        for path in texts:
            if _dirty(path):
                raise EditError(f"{path}: has uncommitted changes; commit or stash them first, or pass --allow-dirty")
    for path, text in texts.items():
        write_atomic(path, text)


def _apply_plan_file(args) -> int:
    from .edit import Edit, EditError, apply_edits, sha256
    from .report import unified_diff

    try:
        doc = json.loads(args.plan.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EditError(f"{args.plan}: no such file") from None
    except (OSError, ValueError) as e:
        raise EditError(f"{args.plan}: not a plan document: {e}") from None
    items = doc if isinstance(doc, list) else [doc]
    by_file: dict[Path, list[Edit]] = {}
    for item in items:
        if not isinstance(item, dict) or "manifest" not in item:
            raise EditError(f"{args.plan}: each plan needs `manifest`, `manifest_sha256` and `plan`")
        manifest = Path(item["manifest"])
        try:
            data = manifest.read_bytes()
        except FileNotFoundError:
            raise EditError(f"{manifest}: no such file (named by {args.plan})") from None
        want = item.get("manifest_sha256")
        if want is not None and sha256(data) != want:
            raise EditError(f"{manifest}: changed since the plan was made (sha256 differs); make the plan again")
        for rem in item.get("plan", []):
            for e in rem.get("edits", []):
                edit = Edit.from_json(e)
                by_file.setdefault(Path(edit.file).resolve(), []).append(edit)
    texts = {}
    for path, edits in by_file.items():
        try:
            old = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise EditError(f"{path}: no such file (named by {args.plan})") from None
        texts[path] = (old, apply_edits(old, edits, str(path)))
    if args.dry_run or args.check:
        color = _color(args)
        sys.stdout.write("".join(unified_diff(p, old, new, color) for p, (old, new) in texts.items()))
        changed = any(old != new for old, new in texts.values())
        return EXIT_CHECK if args.check and changed else EXIT_OK
    _write({p: new for p, (old, new) in texts.items() if old != new}, args.allow_dirty)
    for p in texts:
        print(f"{p}: plan applied")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
