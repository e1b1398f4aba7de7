"""Cold and warm runs against a loopback sparse index with injected latency, next to cargo.

    python benchmarks/bench_registry.py [--latency 0.03] [--runs 5]

Serves the bundled crates.io snapshot (the report's project, with stand-in archives so cargo
accepts it) on 127.0.0.1, each request delayed by --latency seconds, and measures in one run:
- cold: our analysis with an empty cache (for each --prefetch mode) vs `cargo generate-lockfile`
  with an empty CARGO_HOME pointed at the same server by source replacement;
- warm: our analysis with everything cached (process start included) vs
  `cargo tree -i openssl-sys -e features --offline`.
Prints wall times, HTTP requests and round trips. Asserts nothing. Needs cargo for its half.
"""

from __future__ import annotations

import argparse
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


class Counting(_Handler):
    latency = 0.0
    count = 0
    lock = threading.Lock()

    def do_GET(self):
        time.sleep(self.latency)
        with Counting.lock:
            Counting.count += 1
        super().do_GET()


class LatencyServer:
    def __init__(self, root: Path, latency: float):
        Counting.latency = latency
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Counting, directory=str(root)))
        self.httpd.daemon_threads = True
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
           str(proj), "--index-url", url]
    Counting.count = 0
    wall, r = timed(cmd, ROOT, env)
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    m = re.search(r"(\d+) files, (\d+) HTTP requests, (\d+) round trips", r.stderr)
    return wall, Counting.count, int(m.group(3)) if m else 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=float, default=0.03)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-registry-"))
    try:
        registry_from_index(ROOT / "examples/registry/index", tmp / "reg", set(KNOWN))
        srv = LatencyServer(tmp / "reg", args.latency)
        proj = tmp / "hello"
        shutil.copytree(ROOT / "examples/hello", proj)
        (proj / "Cargo.lock").unlink()          # a fresh resolution for both tools
        print(f"loopback sparse index, {args.latency * 1000:.0f} ms per request, the report's project (no Cargo.lock)")

        cold = {}
        for mode in ("off", "normal", "features", "all"):
            cold[mode] = ours(proj, srv.index_url, tmp / f"cache-{mode}", mode)
            wall, reqs, rounds = cold[mode]
            print(f"  ours, cold, --prefetch {mode:6s}: {wall:6.3f} s, {reqs:3d} requests, {rounds:2d} round trips")

        warm = [ours(proj, srv.index_url, tmp / "cache-features", memo=False) for _ in range(args.runs)]
        print(f"  ours, warm (index cached and fresh, analysis run), process start included: "
              f"median {statistics.median(w for w, _, _ in warm):.3f} s, {warm[-1][1]} requests")
        ours(proj, srv.index_url, tmp / "cache-features")           # stores the answer
        hits = [ours(proj, srv.index_url, tmp / "cache-features") for _ in range(args.runs)]
        print(f"  ours, warm (remembered answer, nothing changed), process start included: "
              f"median {statistics.median(w for w, _, _ in hits):.3f} s, {hits[-1][1]} requests (goal <= 0.25 s)")

        if shutil.which("cargo") is None:
            print("  cargo is not installed: no comparison")
            return
        home = cargo_home(tmp, srv)
        env = dict(os.environ, CARGO_HOME=str(home), CARGO_NET_RETRY="0")
        cproj = tmp / "hello-cargo"
        shutil.copytree(proj, cproj)
        Counting.count = 0
        cargo_cold, r = timed(["cargo", "generate-lockfile"], cproj, env)
        if r.returncode != 0:
            raise SystemExit(r.stderr)
        cargo_reqs = Counting.count
        print(f"  cargo generate-lockfile, cold:             {cargo_cold:6.3f} s, {cargo_reqs:3d} requests")
        best = min(cold.values())[0]
        print(f"  ours / cargo, cold: {best / cargo_cold:.2f}x (goal <= 0.3x)")

        tree = ["cargo", "tree", "-i", "openssl-sys", "-e", "features", "--target", "x86_64-unknown-linux-musl"]
        timed(tree, cproj, env)                  # downloads the archives once
        cargo_warm = [timed(tree + ["--offline"], cproj, env)[0] for _ in range(args.runs)]
        print(f"  cargo tree -i openssl-sys -e features --offline: median {statistics.median(cargo_warm):.3f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
