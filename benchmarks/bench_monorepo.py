"""A synthetic monorepo, warm: wall time, peak memory and resolutions for 100, 250 and 500 manifests.

    python benchmarks/bench_monorepo.py [--seed 7]

Generates workspaces (about 8 manifests each: 60 workspaces for 500 manifests) whose members
depend on the fixture registry's crates (tests/universe.py) in varied ways — reqwest with and
without rustls, git2, curl, sqlx, tungstenite, clean crates, some through [workspace.dependencies]
— and runs `cargo-static-fix --check` over the whole tree against the registry as a local index
(warm: nothing to download). Prints figures; asserts nothing. Goals: <= 10 s and <= 300 MB for 500
manifests; time growing with distinct crates rather than manifests.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from fixture_registry import write_project, write_registry  # noqa: E402
from universe import crates  # noqa: E402

DEPS = [
    'reqwest = "0.11"', 'reqwest = { version = "0.11", default-features = false, features = ["rustls-tls"] }',
    'reqwest = { version = "0.12", features = ["json"] }', 'git2 = "0.17"', 'curl = "0.4.46"',
    'sqlx = { version = "0.8.6", features = ["runtime-tokio-native-tls"] }', 'serde_json = "1"',
    'tungstenite = { version = "0.21", features = ["native-tls"] }', 'ureq = "2.12"', 'mongodb = "3.9"',
    'redis = { version = "0.25.3", features = ["tokio-native-tls-comp"] }', 'openssl = "0.10"',
]


def generate(root: Path, manifests: int, seed: int) -> int:
    rng = random.Random(seed)
    files: dict[str, str] = {}
    count, w = 0, 0
    while count < manifests:
        size = min(rng.randint(5, 11), manifests - count)
        if size >= 2:
            members = [f"m{i}" for i in range(size - 1)]
            files[f"ws{w}/Cargo.toml"] = (f'[workspace]\nmembers = {members!r}\nresolver = "2"\n\n'
                                          '[workspace.dependencies]\nreqwest = { version = "0.11", features = ["json"] }\n'
                                          ).replace("'", '"')
            for m in members:
                deps = list({d.split(" ")[0]: d for d in rng.sample(DEPS, rng.randint(1, 3))}.values())
                if rng.random() < 0.3:
                    deps = ["reqwest = { workspace = true }"] + [d for d in deps if not d.startswith("reqwest")]
                files[f"ws{w}/{m}/Cargo.toml"] = (f'[package]\nname = "{m}-{w}"\nversion = "0.1.0"\nedition = "2021"\n\n'
                                                 f'[dependencies]\n' + "\n".join(deps) + "\n")
            count += size
        else:
            files[f"solo{w}/Cargo.toml"] = (f'[package]\nname = "solo-{w}"\nversion = "0.1.0"\nedition = "2021"\n\n'
                                           f'[dependencies]\n{rng.choice(DEPS)}\n')
            count += 1
        w += 1
    write_project(root, files)
    return w


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-monorepo-"))
    try:
        index = write_registry(tmp / "reg", crates())
        print("synthetic monorepo, warm (local index), `--check` over the whole tree:")
        for n in (100, 250, 500):
            repo = tmp / f"repo{n}"
            workspaces = generate(repo, n, args.seed)
            env = dict(os.environ, CARGO_STATIC_FIX_NO_MEMO="1", CARGO_STATIC_FIX_CACHE_DIR=str(tmp / "cache"),
                       CARGO_HOME=str(tmp / "cargo-home"))
            cmd = [sys.executable, "-m", "codemod", "--check", "-q", "-v", "--format", "json", str(repo),
                   "--index-url", str(index)]
            t = time.perf_counter()
            r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - t
            peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            m = re.search(r"(\d+) files.*?(\d+) resolutions", r.stderr)
            files, resolutions = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
            if r.returncode not in (0, 1, 3):
                raise SystemExit(r.stderr)
            print(f"  {n:4d} manifests in {workspaces:3d} workspaces: {wall:6.2f} s, peak {peak_mb:6.1f} MB, "
                  f"{resolutions:4d} resolutions, {files} distinct crates read "
                  f"({wall / n * 1000:5.1f} ms per manifest)")
        print("goals for 500 manifests: <= 10 s, <= 300 MB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
