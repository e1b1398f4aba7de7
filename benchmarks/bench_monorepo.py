"""Synthetic monorepos, warm: wall time, CPU time, peak memory and resolutions.

    python benchmarks/bench_monorepo.py [--seed 7] [--sizes 100,250,500] [--big 1000]

1. Trees of workspaces (about 8 manifests each: 60 workspaces for 500 manifests) whose members
   depend on the fixture registry's crates (tests/universe.py) in varied ways — reqwest with and
   without rustls, git2, curl, sqlx, tungstenite, clean crates, some through
   [workspace.dependencies]. Goal: <= 10 s and <= 300 MB for 500 manifests; time growing with
   distinct crates rather than manifests.
2. One workspace of --big members (`members = ["crates/*"]`, an `exclude`, path dependencies
   between members, [workspace.dependencies]) and a directory of --big standalone packages.
   Goal: each <= 10 s and <= 300 MB, and linear: the per-member time at --big close to the one at
   a tenth of it.

Each runs `cargo-static-fix --check` over the whole tree against the registry as a local index
(warm: nothing to download), with compiled bytecode (as an installed tool has). Prints figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import re
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


def one_workspace(root: Path, members: int, seed: int) -> None:
    """One workspace: `crates/*` members, one excluded directory, path dependencies on a few
    shared members, some dependencies inherited from [workspace.dependencies]."""
    rng = random.Random(seed)
    files = {"Cargo.toml": '[workspace]\nmembers = ["crates/*"]\nexclude = ["crates/attic"]\nresolver = "2"\n\n'
                           '[workspace.dependencies]\nreqwest = { version = "0.11", features = ["json"] }\n'}
    for i in range(members):
        deps = list({d.split(" ")[0]: d for d in rng.sample(DEPS, rng.randint(0, 2))}.values())
        if i % 10:
            deps.append(f'm{i - i % 10} = {{ path = "../m{i - i % 10}" }}')      # a shared member
        if rng.random() < 0.2:
            deps = ["reqwest = { workspace = true }"] + [d for d in deps if not d.startswith("reqwest")]
        files[f"crates/m{i}/Cargo.toml"] = (f'[package]\nname = "m{i}"\nversion = "0.1.0"\nedition = "2021"\n\n'
                                            '[features]\nextra = []\n\n[dependencies]\n' + "\n".join(deps) + "\n")
    files["crates/attic/Cargo.toml"] = '[package]\nname = "attic"\nversion = "0.1.0"\n'
    write_project(root, files)


def standalone(root: Path, packages: int, seed: int) -> None:
    rng = random.Random(seed)
    files = {}
    for i in range(packages):
        files[f"p{i}/Cargo.toml"] = (f'[package]\nname = "p{i}"\nversion = "0.1.0"\nedition = "2021"\n\n'
                                     f'[dependencies]\n{rng.choice(DEPS)}\n')
    write_project(root, files)


def measure(repo: Path, index: Path, tmp: Path) -> tuple[float, float, float, int, int]:
    """(wall s, cpu s, peak MB, distinct crates read, resolutions) of one `--check` over `repo`."""
    env = dict(os.environ, CARGO_STATIC_FIX_NO_MEMO="1", CARGO_STATIC_FIX_CACHE_DIR=str(tmp / "cache"),
               CARGO_HOME=str(tmp / "cargo-home"))
    cmd = [sys.executable, "-m", "codemod", "--check", "-v", "--format", "json", str(repo), "--index-url", str(index)]
    with open(tmp / "out", "w") as out, open(tmp / "err", "w") as err:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = (tmp / "err").read_text()
    if proc.returncode not in (0, 1, 3):
        raise SystemExit(stderr[-2000:])
    m = re.search(r"(\d+) files.*?(\d+) resolutions", stderr)
    files, resolutions = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, files, resolutions


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--sizes", default="100,250,500")
    ap.add_argument("--big", type=int, default=1000)
    args = ap.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "codemod")], check=True,
                   capture_output=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-monorepo-"))
    try:
        index = write_registry(tmp / "reg", crates())
        print("synthetic monorepo, warm (local index), `--check` over the whole tree:")
        for n in (int(x) for x in args.sizes.split(",") if x):
            repo = tmp / f"repo{n}"
            workspaces = generate(repo, n, args.seed)
            wall, cpu, peak_mb, files, resolutions = measure(repo, index, tmp)
            print(f"  {n:4d} manifests in {workspaces:3d} workspaces: {wall:6.2f} s (cpu {cpu:6.2f} s), "
                  f"peak {peak_mb:6.1f} MB, {resolutions:4d} resolutions, {files} distinct crates read "
                  f"({wall / n * 1000:5.1f} ms per manifest)")
        print("goals for 500 manifests: <= 10 s, <= 300 MB")
        for kind, make in (("members of one workspace", one_workspace), ("standalone packages", standalone)):
            per = {}
            for n in (args.big // 10, args.big):
                repo = tmp / f"{make.__name__}{n}"
                make(repo, n, args.seed)
                wall, cpu, peak_mb, files, resolutions = measure(repo, index, tmp)
                per[n] = cpu / n
                print(f"  {n:4d} {kind}: {wall:6.2f} s (cpu {cpu:6.2f} s), peak {peak_mb:6.1f} MB, "
                      f"{resolutions:4d} resolutions ({cpu / n * 1000:5.1f} ms cpu per package)")
            small, big = per[args.big // 10], per[args.big]
            print(f"    cpu per package at {args.big} / at {args.big // 10}: {big / small:.2f} (1.0 is linear)")
        print(f"goals for {args.big}: each <= 10 s, <= 300 MB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
