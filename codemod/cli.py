"""Command line: arguments, output format and exit codes; nothing else."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__
from .errors import CodemodError

EXIT_OK, EXIT_ERROR = 0, 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cargo-static-fix",
        description="Find what pulls the system OpenSSL (openssl-sys) into a Rust build for a static target.",
    )
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                   help="a Cargo.toml or the directory holding one (default: .)")
    p.add_argument("--manifest-path", type=Path, action="append", default=[], help="path to Cargo.toml")
    p.add_argument("--explain", action="store_true", help="show who pulls in the blocker, write nothing")
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    p.add_argument("--target", default=None, metavar="TRIPLE", help="target triple (default: x86_64-unknown-linux-musl)")
    p.add_argument("--blocker", default="openssl-sys", metavar="CRATE", help="the crate to keep out (default: openssl-sys)")
    p.add_argument("--features", "-F", action="append", default=[], help="features to activate (comma or space separated)")
    p.add_argument("--all-features", action="store_true", help="activate all features of the selected packages")
    p.add_argument("--no-default-features", action="store_true", help="do not activate the `default` feature")
    p.add_argument("--dev", action="store_true", help="include the selected packages' dev-dependencies (tests, examples)")
    p.add_argument("--workspace", action="store_true", help="analyse every workspace member")
    p.add_argument("-p", "--package", action="append", default=[], metavar="SPEC", help="workspace member(s) to analyse")
    p.add_argument("--index-url", default=None, metavar="URL",
                   help="registry index: https://…, sparse+https://…, or file:///dir (default: https://index.crates.io/)")
    p.add_argument("-j", "--jobs", type=int, default=16, help="parallel index requests (default: 16)")
    p.add_argument("-V", "--version", action="version", version=f"cargo-static-fix {__version__}")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["static-fix"]:      # invoked by cargo as `cargo-static-fix static-fix ARGS`
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except CodemodError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def _run(args) -> int:
    from .registry import open_index
    from .report import explain_text, result_json
    from .run import Options, analyze_manifest
    from .targets import DEFAULT_TARGET, load_target

    target = args.target or DEFAULT_TARGET
    load_target(target)
    features = tuple(f for chunk in args.features for f in chunk.replace(",", " ").split())
    opts = Options(target=target, blocker=args.blocker, features=features, all_features=args.all_features,
                   no_default_features=args.no_default_features, dev=args.dev, workspace=args.workspace,
                   packages=tuple(args.package))
    index = open_index(args.index_url, jobs=args.jobs)
    paths = list(args.paths) + list(args.manifest_path) or [Path(".")]
    results = [analyze_manifest(p, opts, index) for p in paths]
    if args.format == "json":
        docs = [result_json(r) for r in results]
        print(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2))
    else:
        sys.stdout.write("\n".join(explain_text(r) for r in results))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
