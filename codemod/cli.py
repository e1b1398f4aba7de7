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


class _Parser(argparse.ArgumentParser):
    """cargo's manners: one `error:` line and a pointer to --help, not a usage dump."""

    def error(self, message: str):
        _error(message.replace("unrecognized arguments", "unexpected argument"))
        sys.stderr.write("\nFor more information, try '--help'.\n")
        raise SystemExit(EXIT_ERROR)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="cargo-static-fix",
        usage="cargo-static-fix [OPTIONS] [PATH]...",
        description="Find and fix what pulls the system OpenSSL (openssl-sys) into a Rust build for a static target.",
    )
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                   help="a Cargo.toml or the directory holding one (default: .; searched upwards like cargo)")
    g = p.add_argument_group("Mode")
    mode = g.add_mutually_exclusive_group()
    mode.add_argument("--explain", action="store_true", help="show who pulls in the blocker and the plan; write nothing")
    mode.add_argument("--dry-run", action="store_true", help="print the change as a unified diff; write nothing")
    mode.add_argument("--check", action="store_true", help="like --dry-run; exit 1 when a change is needed (for CI)")
    mode.add_argument("--list-rules", action="store_true", help="print the rules in rules/")
    g.add_argument("--plan", type=Path, metavar="FILE", help="apply a plan (JSON from --format json) without resolving")
    g.add_argument("--verify", action="store_true", help="after writing, ask cargo tree whether the blocker is gone or vendored")
    g.add_argument("--allow-dirty", action="store_true", help="write manifests that have uncommitted changes")

    g = p.add_argument_group("Remedies")
    g.add_argument("--strategy", choices=("auto", "vendored", "rustls", "openssl-dep"), default="auto",
                   help="force a remedy kind (default: the least invasive that works)")
    g.add_argument("--blocker", default="all", metavar="CRATE",
                   help="the crate to keep out: a crate, a comma-separated list, or `all` (default: every library of the catalog)")
    g.add_argument("--partial", action="store_true",
                   help="when a culprit has no remedy, still fix the others (reported as partial; exit 3)")
    g.add_argument("--scope", choices=("musl",), default=None,
                   help="put the edits under [target.'cfg(target_env = \"musl\")'.dependencies] so other targets keep the system OpenSSL")

    g = p.add_argument_group("Package selection")
    g.add_argument("--manifest-path", type=Path, action="append", default=[], metavar="PATH", help="path to Cargo.toml")
    g.add_argument("--workspace", action="store_true", help="analyse every workspace member")
    g.add_argument("-p", "--package", action="append", default=[], metavar="SPEC", help="workspace member(s) to analyse")
    g.add_argument("--exclude", action="append", default=[], metavar="SPEC", help="members to leave out of --workspace")

    g = p.add_argument_group("Feature selection")
    g.add_argument("--features", "-F", action="append", default=[], help="features to activate (comma or space separated)")
    g.add_argument("--all-features", action="store_true", help="activate all features of the selected packages")
    g.add_argument("--no-default-features", action="store_true", help="do not activate the `default` feature")
    g.add_argument("--dev", action="store_true", help="include the selected packages' dev-dependencies (tests, examples)")

    g = p.add_argument_group("Compilation options")
    g.add_argument("--target", action="append", default=[], metavar="TRIPLE",
                   help="target triple (default: x86_64-unknown-linux-musl); repeat it: the fix must hold for every target")

    g = p.add_argument_group("Registry")
    g.add_argument("--index-url", default=None, metavar="URL",
                   help="registry index: https://…, sparse+https://…, or a directory (default: https://index.crates.io/)")
    g.add_argument("-j", "--jobs", type=int, default=32, metavar="N", help="index requests in flight at once (default: 32)")
    g.add_argument("--offline", action="store_true", help="no network: read cargo's own index cache ($CARGO_HOME/registry/index)")
    g.add_argument("--locked", action="store_true", help="use only versions in Cargo.lock; fail if a crate is not locked")
    g.add_argument("--frozen", action="store_true", help="--offline and --locked")
    g.add_argument("--no-update-lock", action="store_true",
                   help="leave Cargo.lock as it is (by default a fix updates it as `cargo add` would)")
    g.add_argument("--prefetch", choices=("off", "normal", "features", "all"), default="features",
                   help="fetch what crates will likely need before the resolver asks: off; normal (non-optional "
                        "dependencies); features (also optional ones the asked-for features turn on; default); all")
    g.add_argument("--refresh", action="store_true", help="revalidate cached index files now, even if still fresh")
    g.add_argument("--cache-dir", type=Path, default=None, metavar="DIR",
                   help="where index files, proc-macro answers and git clones are cached "
                        "(default: $CARGO_STATIC_FIX_CACHE_DIR or the platform cache dir)")

    g = p.add_argument_group("Output")
    g.add_argument("--format", choices=("text", "json", "jsonl"), default="text",
                   help="output format: text, json (one document), jsonl (a line per manifest as each finishes)")
    g.add_argument("--graph", nargs=2, metavar=("dot|mermaid", "FILE"), default=None,
                   help="write the culprit graph (chosen edits highlighted) as Graphviz DOT or Mermaid; FILE - is stdout")
    g.add_argument("--color", choices=("auto", "always", "never"), default=None,
                   help="colouring: auto, always, never (default: $CARGO_TERM_COLOR, else auto)")
    g.add_argument("-v", "--verbose", action="store_true", help="report each workspace, index requests and timing on stderr")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary line")
    g.add_argument("-V", "--version", action="version", version=f"cargo-static-fix {__version__}")
    return p


def _check_args(parser, args) -> None:
    if args.quiet and args.verbose:
        parser.error("the argument '--quiet' cannot be used with '--verbose'")
    if args.jobs < 1:
        parser.error(f"invalid value '{args.jobs}' for '--jobs <N>': jobs may not be less than 1")
    if args.graph:
        fmt, dest = args.graph
        if fmt not in ("dot", "mermaid"):
            parser.error(f"invalid value '{fmt}' for '--graph': takes dot or mermaid, then a file")
        if dest != "-" and not Path(dest).parent.is_dir():
            parser.error(f"--graph: directory `{Path(dest).parent}` does not exist")
        if dest != "-" and Path(dest).is_dir():
            parser.error(f"--graph: `{dest}` is a directory")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _LOADED.clear()                     # what an earlier call in this process read is not this run's
    if argv[:1] == ["static-fix"]:      # invoked by cargo as `cargo-static-fix static-fix ARGS`
        argv = argv[1:]
    parser = build_parser()
    for i, a in enumerate(argv):          # colour argument errors as asked, before parsing succeeds
        if a.startswith("--color="):
            _COLOR_CHOICE[0] = a.split("=", 1)[1]
        elif a == "--color" and i + 1 < len(argv):
            _COLOR_CHOICE[0] = argv[i + 1]
    try:
        args = parser.parse_args(argv)
        _COLOR_CHOICE[0] = args.color
        _check_args(parser, args)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else EXIT_ERROR
    from . import rules

    rules.CACHE_DIR[:] = [args.cache_dir] if getattr(args, "cache_dir", None) else []
    try:
        if args.list_rules:
            return _list_rules(args)
        if args.plan is not None:
            return _apply_plan_file(args)
        from .locate import locate

        args.paths = locate(list(args.paths) or ([] if args.manifest_path else [Path(".")]), list(args.manifest_path))
        args.manifest_path = []
        code = _run_remembered(args, argv)
        return EXIT_OK if args.explain and code in (EXIT_CHECK, EXIT_UNFIXABLE) else code
    except CodemodError as e:
        _error(_relative(str(e)))
        if getattr(args, "format", "text") == "json":
            print(json.dumps({"status": "error", "error": _relative(str(e))}, indent=2))
        return EXIT_ERROR
    except KeyboardInterrupt:
        from .registry.http import cancel_all

        cancel_all()            # worker threads blocked on the network end now, not at their timeout
        return 130
    except BrokenPipeError:
        return _closed_pipe()
    except RecursionError:
        _error("internal error: the dependency graph is too deep to analyse")
        return EXIT_ERROR
    except Exception as e:          # a bug: one line, and the traceback only when asked for
        if os.environ.get("CARGO_STATIC_FIX_TRACEBACK"):
            raise
        _error(f"internal error: {type(e).__name__}: {e} (set CARGO_STATIC_FIX_TRACEBACK=1 for details, and please report it)")
        return EXIT_ERROR


def entry() -> None:
    """The command's entry point: once the answer is out, leave without the interpreter's
    teardown (module and thread cleanup costs a noticeable share of a short run). Only here, never
    in `main`, which tests and other callers run in their own process."""
    _FORK_WAVE[0] = True
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = _closed_pipe()
    except (OSError, ValueError):
        pass
    code = code if isinstance(code, int) else EXIT_ERROR
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)          # a profiler or coverage wants its report written at exit
    os._exit(code)


def _closed_pipe() -> int:
    """`| head` closed stdout: end quietly, as a SIGPIPE-terminated program does."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141


def _relative(message: str) -> str:
    from .run import relative_message

    return relative_message(message)


def _paint(stream, text: str, code: str) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if _color_for(stream) else text


def _error(message: str) -> None:
    print(f"{_paint(sys.stderr, 'error', '1;31')}: {message}", file=sys.stderr)


def _warning(message: str) -> None:
    print(f"{_paint(sys.stderr, 'warning', '1;33')}: {message}", file=sys.stderr)


_COLOR_CHOICE: list = [None]     # --color of this run, for the message helpers


def _color_for(stream, choice: str | None = None) -> bool:
    """cargo's rule: --color, else CARGO_TERM_COLOR, else auto (a terminal, and no non-empty NO_COLOR)."""
    choice = choice or _COLOR_CHOICE[0] or os.environ.get("CARGO_TERM_COLOR") or "auto"
    if choice == "always":
        return True
    if choice == "never":
        return False
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    return tty and not os.environ.get("NO_COLOR")


def _color(args) -> bool:
    _COLOR_CHOICE[0] = args.color
    return _color_for(sys.stdout, args.color)


def _list_rules(args) -> int:
    from .catalog import list_text, load_catalog
    from .rules import load_rules

    rules = load_rules()
    if args.format == "json":
        # the culprit rules, then the catalog's libraries (entries with a `library` key)
        print(json.dumps([r.as_json() for r in rules] + [lib.as_json() for lib in load_catalog()], indent=2))
        return EXIT_OK
    for r in rules:
        kinds = ", ".join(f"{m.kind} (+{', +'.join(m.add_features)})" for m in r.remedies) or "notes only"
        print(f"{r.crate} {r.versions}: {kinds}")
    print("\nlibraries:")
    for line in list_text(load_catalog()):
        print(line)
    return EXIT_OK


def _blockers(value: str) -> tuple[str, tuple[str, ...]]:
    """--blocker → (the crate today's fields describe, the catalog's other crates). One crate
    alone keeps today's behaviour; a list of catalog crates is always checked with OpenSSL, which
    the other libraries' static builds can bring back (pq-sys 0.6, bundled-sqlcipher)."""
    from .catalog import blocker_names, load_catalog, parse_blocker_option

    catalog = load_catalog()
    names = parse_blocker_option(value, catalog)
    if len(names) == 1 and (names[0] == "openssl-sys" or names[0] not in blocker_names(catalog)):
        return names[0], ()
    unknown = [n for n in names if n not in blocker_names(catalog)]
    if unknown:
        raise CodemodError(f"--blocker: {', '.join(unknown)} is not in the catalog; give one crate alone, or "
                           f"choose from {', '.join(blocker_names(catalog))}")
    return "openssl-sys", tuple(n for n in names if n != "openssl-sys")


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

    from .targets import installed_rust_version

    rustc = None
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
            if p == paths[0]:
                _LOADED["workspace"] = (p, ws)      # the early fetch starts from it on a miss
            files += [m.path for m in ws.manifests.values()] + [ws.root.path, ws.lock_path]
            if ws.resolver == "3" and not ws.rust_version:
                rustc = installed_rust_version()      # resolver 3 then prefers what this rustc supports
        files += config_files((paths[0] if paths[0].suffix != ".toml" else paths[0].parent).resolve())
        files += sorted(RULES_DIR.glob("*.toml"))
    except CodemodError:
        return _run(args)                 # let the real run report the problem
    cache_dir = args.cache_dir or default_cache_dir()
    memo = Memo(cache_dir, HttpCache(cache_dir))
    from .targets import is_rustflags_variable

    flag_env = sorted((k, v) for k, v in os.environ.items() if is_rustflags_variable(k))
    extra = json.dumps([sys.stdout.isatty(), os.environ.get("NO_COLOR"), os.environ.get("CARGO_HOME"), flag_env, rustc])
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
            _error(_relative(str(e)))
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
_LOADED: dict = {}
_FORK_WAVE = [False]      # the command (`entry`) may run a cold wave in a child process (wave.py)


def _wave(index, path: Path, targets: list[str], cold: bool, blocker: str, sent=None) -> None:
    """The early fetch: the direct dependencies' index files, and through speculation
    (registry/index.py, with the hints of prefetch.py) what they need, what the planner's remedies
    need and, with a Cargo.lock, only the locked versions' dependencies for the target and the
    host. Errors are left for the real resolution to report."""
    import threading

    try:
        known = _LOADED.get("workspace")
        if known is not None and known[0] == path:
            ws = known[1]
        else:
            from .workspace import load_workspace

            ws = load_workspace(path)
        wants: dict[tuple, set[str]] = {}
        for pkg in ws.packages.values():
            for d in pkg.deps:
                if d.source == "registry":
                    feats = wants.setdefault((d.registry, d.package), set())
                    feats.update(d.features)
                    if d.default_features:
                        feats.add("default")
        _hint(index, ws, wants, targets)
        if cold:
            # A cold cache: the crate archives read for the proc-macro check will be
            # downloaded too; learn where from (config.json) during the wave, and start
            # reading them as soon as the wave shows which matter.
            from .prefetch import ArchivePrefetch

            for idx in _sources(index):
                if idx.crates is not None:
                    threading.Thread(target=idx.crates.prepare, daemon=True).start()
                    if idx.crates.fetcher is not None:
                        idx.on_arrival = ArchivePrefetch(idx.crates, blocker)
        if sent is not None:
            sent.set()
        index.fetch_many(wants)
    except Exception:
        pass
    finally:
        if sent is not None:
            sent.set()


def _early_fetch(index, path: Path, targets: list[str], cold: bool = False, blocker: str = "openssl-sys"):
    """Start the wave (`_wave`) in a thread while the rest of the tool loads, so the network
    waits and the imports overlap."""
    import threading

    sent = threading.Event()
    t = threading.Thread(target=_wave, args=(index, path, targets, cold, blocker, sent), daemon=True)
    t.start()
    # The main thread's imports would compete for the interpreter with the HTTP client's import
    # and the first requests: let those go out first (the rest of the tool loads while the
    # network answers).
    if sent.wait(0.5) and cold:
        from .registry.http import REQUEST_SENT

        deadline = time.perf_counter() + 0.5
        while t.is_alive() and not REQUEST_SENT.wait(0.01) and time.perf_counter() < deadline:
            pass
    return t


def _network_likely(index) -> bool:
    """Whether this run will make HTTP requests: a remote registry whose cached file for a direct
    dependency is missing or stale (a warm run imports no HTTP client)."""
    fetchers = [getattr(i.source, "fetcher", None) for i in _sources(index)]
    fetchers = [f for f in fetchers if f is not None]
    if not fetchers:
        return False
    known = _LOADED.get("workspace")
    fetcher = getattr(index.default.source, "fetcher", None) if hasattr(index, "default") else None
    if known is None or fetcher is None or fetcher.cache is None or fetcher.refresh:
        return True
    names = sorted({d.package for p in known[1].packages.values() for d in p.deps
                    if d.source == "registry" and d.registry is None})
    if not names:
        return False
    from .registry.index import index_path

    seen = fetcher.cache.digest(fetcher.base + index_path(names[0]))
    return seen is None or time.time() - seen[1] >= fetcher.cache.ttl


def _sources(index) -> list:
    return [index.default, *index.named.values()] if hasattr(index, "default") else [index]


def _lock_names_a_blocker(blocker: str, blockers: tuple[str, ...]) -> bool:
    """Whether the first workspace's Cargo.lock lists one of the blockers asked about."""
    known = _LOADED.get("workspace")
    if known is None:
        return False
    from .lockfile import load_lock

    names = load_lock(known[1].lock_path).versions
    return any(b in names for b in (blocker, *blockers))


def _hint(index, ws, wants: dict, targets: list[str]) -> None:
    from .lockfile import load_lock
    from .prefetch import platform_filter, remedy_features
    from .rules import load_rules

    remedies = remedy_features({name for _registry, name in wants}, load_rules)
    for idx in _sources(index):
        idx.remedy_features = remedies
    lock = load_lock(ws.lock_path)
    if lock and ws.resolver != "1":
        from .targets import host_triple, read_rustflags

        flags = read_rustflags(ws.root.dir)
        active = []

        def applies(platform: str) -> bool:      # built on first use: the host comes from rustc -vV
            if not active:
                active.append(platform_filter(targets, host_triple(), flags))
            return active[0](platform)

        index.pin(lock.versions, applies)


def _run(args, keep_index: bool = False, progress_stream=None) -> int:
    from .targets import DEFAULT_TARGET, load_target, probe_host_soon

    paths = list(args.paths) + list(args.manifest_path) or [Path(".")]
    targets = args.target or [DEFAULT_TARGET]
    for t in targets:
        load_target(t)
    fork = False
    if _FORK_WAVE[0]:
        from .wave import may_fork

        fork = may_fork()
        if fork:
            from .registry import http

            http.IMPORT_SOON[0] = False     # the child imports the HTTP client, not this process
    index = _open_registry(args, paths[0])
    if "workspace" not in _LOADED and (paths[0].suffix == ".toml" or (paths[0] / "Cargo.toml").is_file()):
        try:                             # (a remembered-answer check has read it already)
            from .workspace import load_workspace

            _LOADED["workspace"] = (paths[0], load_workspace(paths[0]))
        except CodemodError:
            pass                         # the run itself reports it
    cold = _network_likely(index)
    if keep_index:
        _LAST_INDEX["index"] = index
    early = None
    if cold and fork:
        from .wave import forked_wave

        # (the blockers are read on each side of the fork: the child's import of the HTTP client
        # overlaps its reading of the catalog)
        early = forked_wave(_sources(index), lambda forked: _wave(index, paths[0], targets, forked,
                                                                  _blockers(args.blocker)[0]))
    try:
        probe_host_soon()               # (after a fork: the child starts with this one thread)
        blocker, blockers = _blockers(args.blocker)
        if early is None:
            if cold:
                import threading

                from .registry.http import preload

                threading.Thread(target=preload, daemon=True).start()      # while the fetch is prepared
            early = _early_fetch(index, paths[0], targets, cold, blocker)
        from .report import batch_entries, failure_entries, summary_line
        from .run import Failure, Options, display_path, plan_jobs, run_jobs

        features = tuple(f for chunk in args.features for f in chunk.replace(",", " ").split())
        opts = Options(target=targets[0], extra_targets=tuple(targets[1:]), blocker=blocker, blockers=blockers,
                       blockers_named=bool(blockers) and args.blocker.strip() != "all", features=features,
                       all_features=args.all_features, no_default_features=args.no_default_features, dev=args.dev,
                       workspace=args.workspace, packages=tuple(args.package), strategy=args.strategy,
                       locked=args.locked or args.frozen, scope=SCOPES.get(args.scope), exclude=tuple(args.exclude),
                       lock="off" if args.explain else "keep" if args.no_update_lock else "update",
                       lock_writer=os.environ.get("CARGO_STATIC_FIX_LOCK_WRITER") or ("builtin" if args.index_url else "auto"),
                       offline=args.offline or args.frozen, cache_dir=args.cache_dir,
                       locked_flag="--frozen" if args.frozen else "--locked",
                       partial=args.partial)
        jobs, failures = plan_jobs(paths)
        if not jobs and not failures:
            raise CodemodError(f"no Cargo.toml to analyse in {', '.join(f'`{p}`' for p in paths)}")
        if cold or (early.is_alive() and _lock_names_a_blocker(blocker, blockers)):
            # The network (or, warm, the reading of the cached index files) answers for a while yet:
            # load what the analysis and the planner use now rather than after it. A warm run does
            # so only when Cargo.lock names a blocker, since a project that builds none needs neither.
            import networkx  # noqa: F401
            import tomlkit  # noqa: F401

            from . import plan  # noqa: F401
        early.join()
    except BaseException:
        if early is not None and hasattr(early, "cancel"):
            early.cancel()              # a child process fetching for a run that ends here
        raise
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

    def analysed():
        for job, outcome in run_jobs(jobs, opts, index, workers=min(4, max(1, args.jobs // 4))):
            progress.step(job.path)
            yield job.path, job, outcome

    # jsonl streams each manifest as it finishes; every other output is sorted by path
    items = [(f.manifests[0], None, f) for f in failures]
    if args.format == "jsonl":
        import itertools

        stream_items = itertools.chain(items, analysed())
    else:
        stream_items = sorted([*items, *analysed()], key=lambda item: str(item[0]))
    single = len(jobs) + len(failures) == 1
    for _path, job, outcome in stream_items:
        if isinstance(outcome, Failure):
            if single and args.format == "text":
                raise CodemodError(outcome.error)       # one manifest: one line, as before
            progress.clear()
            _error(_relative(outcome.error))
            emit(failure_entries(outcome))
            continue
        r = outcome
        plan = r.plan
        written = False
        new_entries = None
        if plan.status in ("fixable", "partial") and writing:
            # a file this run already wrote is fine when it already holds this fix's text
            clash = [p for p in plan.texts if p in written_files and p.read_bytes() != plan.texts[p].encode("utf-8")]
            try:
                if clash:
                    raise CodemodError(f"{clash[0]}: already edited by another workspace in this run; run again")
                new_entries = batch_entries(job, r, True)
                _write(r, paths, args.allow_dirty, skip=written_files)
            except CodemodError as e:
                # this workspace is refused as a whole; the others go on
                progress.clear()
                print(f"error: {e}", file=sys.stderr)
                emit([dict(entry, status="error", error=str(e)) if entry["status"] == "fixed" else entry
                      for entry in (new_entries or batch_entries(job, r, True))])
                continue
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
            print(f"{r.manifest}: {plan.status}, {plan.evaluations} candidate check{'s' if plan.evaluations != 1 else ''} "
                  f"({time.perf_counter() - started:.2f} s)", file=sys.stderr)
    progress.clear()

    statuses = {e["status"] for e in entries}
    if args.check:
        # --check vouches for the whole build: a dependency it could not analyse is not a pass
        for r in results:
            if r.unanalysable:
                u = r.unanalysable[0]
                more = f" (and {len(r.unanalysable) - 1} more)" if len(r.unanalysable) > 1 else ""
                print(f"error: {display_path(r.manifest)}: --check cannot pass: {u.package} → {u.dependency}: "
                      f"{u.reason}{more}", file=sys.stderr)
                statuses.add("error")
    if "error" in statuses:
        code = EXIT_ERROR
    elif statuses & {"unfixable", "partially-fixed", "would-partially-fix"}:
        code = EXIT_UNFIXABLE
    elif args.check and "would-fix" in statuses:
        code = EXIT_CHECK

    if args.verify and writing:
        _verify(results, opts, args, entries)
    if args.graph:
        from .report import graph_text

        fmt, dest = args.graph
        if dest == "-":
            sys.stdout.write(graph_text(results, fmt))
        else:
            Path(dest).write_text(graph_text(results, fmt))
    if args.format == "json":
        print(json.dumps(entries[0] if len(entries) == 1 else entries, indent=2))
    if args.verbose:
        from .resolve import RESOLUTIONS

        read, downloaded, guessed = index.proc_macro_stats()
        print(f"index {index.where}: {index.files} files, {index.requests} HTTP requests, "
              f"{index.round_trips} round trips; proc macros: {read} read from crates "
              f"({downloaded} downloaded), {guessed} guessed; {RESOLUTIONS[0]} resolutions; "
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


VERIFY_TIMEOUT = float(os.environ.get("CARGO_STATIC_FIX_VERIFY_TIMEOUT", "300"))   # per cargo tree call


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
            # every build the plan was checked for: each selected member alone, and all together
            selected = [p.name for p in r.workspace.selected_ids()]
            scopes = [["-p", selected[0]]] if len(selected) == 1 else [["--workspace"]] + [["-p", m] for m in selected]
            for target in (opts.target, *opts.extra_targets):
                for scope in scopes:
                    cmd = ["cargo", "tree", "-i", opts.blocker, "-e", "features,normal,no-proc-macro", "--target", target,
                           "--manifest-path", str(r.workspace.root.path), *scope]
                    if args.offline or args.frozen:
                        cmd.append("--offline")
                    try:
                        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=VERIFY_TIMEOUT)
                    except subprocess.TimeoutExpired:
                        ok, note = None, f"cargo did not answer within {VERIFY_TIMEOUT:g} s: not verified"
                        break
                    except OSError as e:
                        ok, note = None, f"cargo could not be run ({e.strerror or e}): not verified"
                        break
                    if proc.returncode == 101 and "did not match any packages" in proc.stderr:
                        continue
                    if proc.returncode != 0:
                        ok, note = None, f"cargo could not resolve ({proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}): not verified"
                        break
                    if proc.stdout.strip() and f'{opts.blocker} feature "vendored"' not in proc.stdout:
                        ok, note = False, f"cargo still builds an unvendored {opts.blocker} for {target} ({' '.join(scope)})"
                        break
                if ok is not True:
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
    from .report import assumed_lines, unanalysable_lines

    from .report import blocker_notes

    for line in unanalysable_lines(r) + assumed_lines(r) + ([] if args.quiet else blocker_notes(r)):
        print(line, file=sys.stderr)
    plan = r.plan
    out = []
    if plan.status == "clean":
        state = "vendored" if r.analysis.vendored else "not in the build"
        out.append(f"{r.manifest}: nothing to do ({r.analysis.blocker} is {state} for {r.analysis.target})\n")
        return "".join(out)
    for w in plan.warnings:
        _warning(w)
    if args.verbose and plan.candidates:
        from .report import candidate_lines

        print("\n".join(candidate_lines(plan)), file=sys.stderr)
    if plan.status == "unfixable":
        print(f"{r.manifest}: cannot fix: {plan.reason}", file=sys.stderr)
        return ""
    if plan.status == "partial":
        print(f"{r.manifest}: partial fix (--partial); left as they are: {', '.join(plan.unfixed)}: {plan.reason}",
              file=sys.stderr)
    analysed = {m.path: m.text for m in r.workspace.manifests.values()}
    analysed.setdefault(r.workspace.root.path, r.workspace.root.text)
    originals = {path: analysed.get(path) if analysed.get(path) is not None else path.read_bytes().decode("utf-8")
                 for path in plan.texts} if not written else {}
    if args.dry_run or args.check:
        for path, new in plan.texts.items():
            out.append(unified_diff(path, originals[path], new, color))
        for rem in plan.remedies:
            print(f"{r.manifest}: would fix: {rem.reason}", file=sys.stderr)
    else:
        from .report import next_steps

        for rem in plan.remedies:
            out.append(f"{r.manifest}: fixed: {rem.reason}\n")
            out.extend(f"  note: {n}\n" for n in rem.notes)
    out.extend(_lock_lines(r, args, written))
    if written and not args.quiet:
        out.extend(line + "\n" for line in next_steps(r, written=True))
    return "".join(out)


def _lock_lines(r, args, written: bool) -> list[str]:
    """What happened to Cargo.lock (stdout when written; stderr, like `would fix`, when not)."""
    from .run import display_path

    lock_path = r.workspace.lock_path
    if args.no_update_lock:
        if lock_path.is_file():
            line = (f"{display_path(lock_path)}: left as it is (--no-update-lock); cargo adds what the fix needs "
                    "on the next build\n")
            if written:
                return [line]
            print(line, end="", file=sys.stderr)
        return []
    if r.lock is None:
        return []
    if r.lock.new is None:
        print(f"warning: {display_path(lock_path)}: {r.lock.summary()}", file=sys.stderr)
        return []
    how = "" if r.lock.via == "cargo" else f" (without cargo: {r.lock.note})" if r.lock.note else ""
    if written:
        return [f"{display_path(lock_path)}: updated: {r.lock.summary()}{how}\n"]
    print(f"{display_path(lock_path)}: would update: {r.lock.summary()}{how}", file=sys.stderr)
    return []


def _write(r, paths: list[Path], allow_dirty: bool, skip: set[Path] = frozenset()) -> None:
    """Write one workspace's fix as a transaction, confined to the project being fixed (files in
    `skip` were written earlier in this run and already hold the text)."""
    from .write import Change, WriteError, allowed_dirs, write_all

    originals = {m.path: m.text for m in r.workspace.manifests.values()}
    originals.setdefault(r.workspace.root.path, r.workspace.root.text)
    changes = []
    for path, text in r.plan.texts.items():
        if path in skip:
            continue
        if path not in originals:
            raise WriteError(f"{path}: edited by the plan but never read; nothing written")
        changes.append(Change(path, originals[path].encode("utf-8"), text.encode("utf-8")))
    lock = r.lock
    if changes and lock is not None and lock.new is not None and lock.new != lock.old:
        # Cargo.lock is one more file of the same transaction: both or neither
        changes.append(Change(lock.path, lock.old.encode("utf-8"), lock.new.encode("utf-8"), derived=True))
    write_all(changes, allowed=allowed_dirs(paths, [r.workspace.root.dir]), allow_dirty=allow_dirty)


_SHA = set("0123456789abcdef")


def _sha_field(value, what: str, plan: Path) -> str:
    from .edit import EditError

    if not isinstance(value, str) or len(value) != 64 or not set(value) <= _SHA:
        raise EditError(f"{plan}: {what} must be a sha256 (64 lowercase hex digits)")
    return value


def _read_plan(plan: Path) -> tuple[dict[Path, str], dict[Path, list]]:
    """The plan document, validated: (sha256 of each file it edits, the edits of each file)."""
    from .edit import Edit, EditError

    try:
        doc = json.loads(plan.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EditError(f"{plan}: no such file") from None
    except (OSError, ValueError) as e:
        raise EditError(f"{plan}: not a plan document: {e}") from None
    items = doc if isinstance(doc, list) else [doc]
    shas: dict[Path, str] = {}
    by_file: dict[Path, list[Edit]] = {}
    for n, item in enumerate(items, 1):
        where = f"{plan}: plan {n}" if len(items) > 1 else f"{plan}"
        if not isinstance(item, dict) or not isinstance(item.get("manifest"), str):
            raise EditError(f"{where}: each plan needs `manifest`, `files` (or `manifest_sha256`) and `plan`")
        declared: dict[Path, str] = {}
        files = item.get("files")
        if files is not None:
            if not isinstance(files, dict):
                raise EditError(f"{where}: `files` must map each file to its sha256")
            for f, digest in files.items():
                declared[Path(f).resolve()] = _sha_field(digest, f"`files.{f}`", plan)
        if "manifest_sha256" in item:
            declared.setdefault(Path(item["manifest"]).resolve(), _sha_field(item["manifest_sha256"], "`manifest_sha256`", plan))
        remedies = item.get("plan", [])
        if not isinstance(remedies, list):
            raise EditError(f"{where}: `plan` must be a list of remedies")
        for k, rem in enumerate(remedies, 1):
            if not isinstance(rem, dict) or not isinstance(rem.get("edits", []), list):
                raise EditError(f"{where}, remedy {k}: must be an object with a list of `edits`")
            for j, e in enumerate(rem.get("edits", []), 1):
                try:
                    edit = Edit.from_json(e)
                except EditError as err:
                    raise EditError(f"{where}, remedy {k}, edit {j}: {err}") from None
                path = Path(edit.file).resolve()
                if path not in declared:
                    raise EditError(f"{where}: edits {edit.file} but gives no sha256 for it "
                                    f"(list every edited file under `files`); nothing written")
                if shas.get(path, declared[path]) != declared[path]:
                    raise EditError(f"{where}: two different sha256 for {edit.file}")
                shas[path] = declared[path]
                edits = by_file.setdefault(path, [])
                if edit.as_json() not in [x.as_json() for x in edits]:     # a shared root edit is listed per member
                    edits.append(edit)
    return shas, by_file


def _apply_plan_file(args) -> int:
    from .edit import EditError, apply_edits, sha256
    from .report import unified_diff
    from .write import Change, allowed_dirs, confine, write_all

    shas, by_file = _read_plan(args.plan)
    allowed = allowed_dirs(list(args.paths) or [Path(".")])
    for path in by_file:
        confine(path, allowed)
    texts: dict[Path, tuple[bytes, str, str]] = {}
    for path, edits in by_file.items():
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise EditError(f"{path}: no such file (named by {args.plan})") from None
        if sha256(data) != shas[path]:
            raise EditError(f"{path}: changed since the plan was made (sha256 differs); make the plan again")
        try:
            old = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise EditError(f"{path}: not UTF-8: {e}") from None
        texts[path] = (data, old, apply_edits(old, edits, str(path)))
    if args.dry_run or args.check:
        color = _color(args)
        sys.stdout.write("".join(unified_diff(p, old, new, color) for p, (_, old, new) in texts.items()))
        changed = any(old != new for _, old, new in texts.values())
        return EXIT_CHECK if args.check and changed else EXIT_OK
    write_all([Change(p, data, new.encode("utf-8")) for p, (data, _, new) in texts.items()],
              allowed=allowed, allow_dirty=args.allow_dirty)
    for p in texts:
        print(f"{p}: plan applied")
    return EXIT_OK


if __name__ == "__main__":
    entry()
