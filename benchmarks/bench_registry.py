"""Cold and warm runs against a loopback sparse index with injected latency, next to cargo.

    python benchmarks/bench_registry.py [--latency 0.03] [--runs 5]

Serves the bundled crates.io snapshot (the report's project, with stand-in archives so cargo
accepts it) on 127.0.0.1, each request delayed by --latency seconds, over a server fair to both
tools (HTTP/1.1 keep-alive, TCP_NODELAY: headers and body are separate writes, and without it a
keep-alive request waits for the client's delayed ACK; a listen backlog of 128). The machine's
speed drifts, so every goal is a ratio of figures measured in this run, the two sides of a ratio
taken in turn (A B A B …), each figure the median of --runs:

- cold (empty cache, no Cargo.lock): ours / `cargo generate-lockfile` with an empty CARGO_HOME on
  the same server (goal <= 0.3), and ours / the floor, the chain of index files the closure
  needs (its depth in requests) × latency + the tool's own start (`--version`) (goal <= 1.5);
- warm (index cached, a fresh copy of the project so nothing is remembered): ours /
  `cargo tree -i openssl-sys -e features --offline --target x86_64-unknown-linux-musl` on the same
  project (goal <= 3), and a remembered answer / that cargo tree (goal <= 1.5).

The package is byte-compiled first, as an installed tool is. Prints figures; asserts nothing.
Needs cargo for the ratios to cargo.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from codemod.proc_macros import KNOWN  # noqa: E402
from fixture_registry import _Handler, cargo_home, registry_from_index  # noqa: E402

TARGET = "x86_64-unknown-linux-musl"


class Counting(_Handler):
    latency = 0.0
    count = 0
    paths: list[str] = []
    lock = threading.Lock()

    def do_GET(self):
        time.sleep(self.latency)
        with Counting.lock:
            Counting.count += 1
            Counting.paths.append(self.path)
        super().do_GET()


class FairServer(ThreadingHTTPServer):
    request_queue_size = 128        # listen backlog: 32 connections at once are not refused
    daemon_threads = True


class LatencyServer:
    def __init__(self, root: Path, latency: float):
        Counting.latency = latency
        assert Counting.disable_nagle_algorithm        # TCP_NODELAY on every accepted connection
        self.httpd = FairServer(("127.0.0.1", 0), partial(Counting, directory=str(root)))
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def index_url(self) -> str:
        return f"sparse+http://127.0.0.1:{self.httpd.server_address[1]}/index/"


def timed(cmd, cwd, env) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    return time.perf_counter() - t, r


def ours(proj: Path, url: str, cache: Path, prefetch: str = "features", memo: bool = True):
    env = dict(os.environ, CARGO_STATIC_FIX_CACHE_DIR=str(cache), CARGO_HOME=str(cache / "no-cargo-home"))
    if not memo:
        env["CARGO_STATIC_FIX_NO_MEMO"] = "1"
    cmd = [sys.executable, "-m", "codemod", "--explain", "--format", "json", "-v", "--prefetch", prefetch,
           "--target", TARGET, str(proj), "--index-url", url]
    Counting.count = 0
    Counting.paths = []
    wall, r = timed(cmd, ROOT, env)
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    m = re.search(r"(\d+) files, (\d+) HTTP requests, (\d+) round trips", r.stderr)
    return wall, Counting.count, int(m.group(3)) if m else 0


def chain_depth(index: Path, fetched: list[str], roots: set[str]) -> int:
    """How many requests deep the closure is: breadth-first from the direct dependencies over
    the index lines' dependencies (any version), among the files the run fetched. No client can
    know a file before the one that names it has arrived, so this many latencies is the floor."""
    names = {p.rsplit("/", 1)[1] for p in fetched if "/index/" in p and not p.endswith("config.json")}
    deps: dict[str, set[str]] = {}
    for name in names:
        from codemod.registry.index import index_path

        f = index / index_path(name)
        if not f.is_file():
            continue
        for line in f.read_text().splitlines():
            if line.strip():
                obj = json.loads(line)
                deps.setdefault(name, set()).update((d.get("package") or d["name"]).lower() for d in obj["deps"])
    level = {r: 1 for r in roots if r in names}
    frontier = list(level)
    while frontier:
        nxt = []
        for n in frontier:
            for d in deps.get(n, ()):
                if d in names and d not in level:
                    level[d] = level[n] + 1
                    nxt.append(d)
        frontier = nxt
    return max(level.values(), default=0)


def paired(a, b, runs: int) -> tuple[list[float], list[float]]:
    """Run a and b in turn, `runs` times each: ratios of medians taken under the same drift."""
    xs, ys = [], []
    for _ in range(runs):
        xs.append(a())
        ys.append(b())
    return xs, ys


def med(xs) -> float:
    return statistics.median(xs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=float, default=0.03)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    # compiled bytecode, as an installed tool has (PYTHONDONTWRITEBYTECODE would otherwise make
    # every run compile the package again)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "codemod")], check=True, capture_output=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-registry-"))
    try:
        registry_from_index(ROOT / "examples/registry/index", tmp / "reg", set(KNOWN))
        srv = LatencyServer(tmp / "reg", args.latency)
        proj = tmp / "hello"
        shutil.copytree(ROOT / "examples/hello", proj)
        (proj / "Cargo.lock").unlink()          # a fresh resolution for both tools
        print(f"loopback sparse index, {args.latency * 1000:.0f} ms per request (TCP_NODELAY, backlog 128), "
              f"the report's project (no Cargo.lock), medians of {args.runs} runs, pairs run in turn")
        have_cargo = shutil.which("cargo") is not None
        home = cargo_home(tmp, srv) if have_cargo else None

        # -- cold ---------------------------------------------------------------------------------
        runs = iter(range(10 ** 6))
        for mode in ("off", "normal", "features", "all"):
            wall, reqs, rounds = ours(proj, srv.index_url, tmp / f"cache-{mode}-{next(runs)}", mode)
            print(f"  ours, cold, --prefetch {mode:8s}: {wall:6.3f} s, {reqs:3d} requests, {rounds:2d} round trips")
        ours(proj, srv.index_url, tmp / f"cache-depth-{next(runs)}")
        fetched = list(Counting.paths)
        import tomllib

        roots = {n.lower() for n in tomllib.loads((proj / "Cargo.toml").read_text()).get("dependencies", {})}
        depth = chain_depth(tmp / "reg" / "index", fetched, roots)

        def cold_ours() -> float:
            return ours(proj, srv.index_url, tmp / f"cache-cold-{next(runs)}")[0]

        def start() -> float:
            return timed([sys.executable, "-m", "codemod", "--version"], ROOT, dict(os.environ))[0]

        def cold_cargo() -> float:
            cproj = tmp / f"hello-cargo-{next(runs)}"
            shutil.copytree(proj, cproj)
            chome = tmp / f"cargo-home-{next(runs)}"
            shutil.copytree(home, chome)               # its config only: an empty cache every time
            wall, r = timed(["cargo", "generate-lockfile"], cproj,
                            dict(os.environ, CARGO_HOME=str(chome), CARGO_NET_RETRY="0"))
            if r.returncode != 0:
                raise SystemExit(r.stderr)
            return wall

        mine, starts = paired(cold_ours, start, args.runs)
        floor = depth * args.latency + med(starts)
        print(f"  ours, cold (--prefetch features): median {med(mine):.3f} s (min {min(mine):.3f}); "
              f"the closure is {depth} requests deep: floor {depth} × {args.latency * 1000:.0f} ms + "
              f"start {med(starts):.3f} s = {floor:.3f} s")
        print(f"  ours / floor, cold: {med(mine) / floor:.2f}x (goal <= 1.5x)")
        if have_cargo:
            mine, cargo = paired(cold_ours, cold_cargo, args.runs)
            print(f"  cargo generate-lockfile, cold, empty CARGO_HOME: median {med(cargo):.3f} s; "
                  f"ours {med(mine):.3f} s in the same pairs")
            print(f"  ours / cargo, cold: {med(mine) / med(cargo):.2f}x (goal <= 0.3x)")

        # -- warm ---------------------------------------------------------------------------------
        if not have_cargo:
            print("  cargo is not installed: no warm comparison")
            return
        cproj = tmp / "hello-warm"
        shutil.copytree(proj, cproj)
        env = dict(os.environ, CARGO_HOME=str(home), CARGO_NET_RETRY="0")
        subprocess.run(["cargo", "generate-lockfile"], cwd=cproj, env=env, capture_output=True, check=True)
        tree = ["cargo", "tree", "-i", "openssl-sys", "-e", "features", "--target", TARGET]
        timed(tree, cproj, env)                  # downloads the archives once
        cache = tmp / "cache-warm"
        ours(cproj, srv.index_url, cache)        # fills the index cache

        def cargo_tree() -> float:
            return timed(tree + ["--offline"], cproj, env)[0]

        def warm_fresh() -> float:
            copy = tmp / f"hello-fresh-{next(runs)}"     # a new path: nothing remembered for it
            shutil.copytree(cproj, copy)
            wall, reqs, _ = ours(copy, srv.index_url, cache)
            assert reqs == 0, "the warm run asked the server"
            return wall

        def remembered() -> float:
            return ours(cproj, srv.index_url, cache)[0]

        mine, cargo = paired(warm_fresh, cargo_tree, args.runs)
        print(f"  ours, warm (index cached, fresh copy, analysis run): median {med(mine):.3f} s; "
              f"cargo tree -i openssl-sys -e features --offline --target {TARGET}: median {med(cargo):.3f} s")
        print(f"  ours / cargo tree, warm: {med(mine) / med(cargo):.2f}x (goal <= 3x)")
        remembered()
        mine, cargo = paired(remembered, cargo_tree, args.runs)
        print(f"  ours, remembered answer: median {med(mine):.3f} s; cargo tree: median {med(cargo):.3f} s")
        print(f"  ours / cargo tree, remembered: {med(mine) / med(cargo):.2f}x (goal <= 1.5x)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
