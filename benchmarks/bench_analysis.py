"""Analysis speed: the seed project end to end, and resolution on synthetic graphs.

    python benchmarks/bench_analysis.py [--runs N]

Prints figures; asserts nothing. Goals: the seed analysis (warm, local registry, interpreter
start included) under 0.5 s; resolution time growing linearly with the number of crates.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codemod.analyze import analyze  # noqa: E402
from codemod.model import Dep, Package, PkgId, build_feature_map  # noqa: E402
from codemod.resolve import ResolveInput, resolve  # noqa: E402


class MemoryIndex:
    def __init__(self, crates: dict[str, list[Package]]):
        self.crates = crates

    def loaded(self, name: str, registry: str | None = None) -> bool:
        return True

    def get(self, name: str, registry: str | None = None):
        return self.crates.get(name)


def synthetic(n: int, seed: int = 7) -> tuple[MemoryIndex, ResolveInput]:
    """n crates in layers; each has 2 versions, 1-4 deps on later crates, some optional behind
    features; the last crate is the blocker, reached through a few feature chains."""
    rng = random.Random(seed)
    names = [f"crate{i:04d}" for i in range(n - 1)] + ["openssl-sys"]
    crates: dict[str, list[Package]] = {}
    for i, name in enumerate(names):
        versions = []
        later = names[i + 1:]
        deps_spec = []
        if later:
            for _ in range(rng.randint(1, 4)):
                target = rng.choice(later[: max(8, len(later) // 10)])
                deps_spec.append((target, rng.random() < 0.3))
        for minor in (0, 1):
            deps = tuple(Dep(t, t, "1", optional=opt) for t, opt in deps_spec)
            features = {"default": [d.name for d in deps if d.optional][:1], "extra": [d.name for d in deps if d.optional]}
            fmap, implicit = build_feature_map(features, deps)
            versions.append(Package(PkgId(name, f"1.{minor}.0"), deps, fmap, implicit))
        crates[name] = versions
    root_deps = tuple(Dep(names[k], names[k], "1") for k in range(min(5, n)))
    fmap, implicit = build_feature_map({}, root_deps)
    root = Package(PkgId("app", "0.1.0", "/app"), root_deps, fmap, implicit)
    inp = ResolveInput(locals={"/app": root}, members=(root.id,), selected=(root.id,))
    return MemoryIndex(crates), inp


def bench_seed(runs: int) -> None:
    cmd = [sys.executable, "-m", "codemod", "--explain", "--format", "json", "examples/hello",
           "--index-url", "examples/registry/index"]
    subprocess.run(cmd, cwd=ROOT, capture_output=True, check=True)       # warm the OS caches
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    print(f"seed analysis, warm, local registry, process start included: "
          f"median {statistics.median(times):.3f} s, min {min(times):.3f} s over {runs} runs (goal < 0.5 s)")


def bench_synthetic(runs: int) -> None:
    print("synthetic graphs (resolve + analyze, in process):")
    base = None
    for n in (100, 300, 1000):
        index, inp = synthetic(n)
        rtimes, atimes = [], []
        for _ in range(runs):
            t = time.perf_counter()
            res = resolve(inp, index)
            t1 = time.perf_counter()
            a = analyze(res)
            rtimes.append(t1 - t)
            atimes.append(time.perf_counter() - t1)
        med = statistics.median(rtimes)
        units = len(res.units)
        per = med / units * 1e6
        base = base or per
        chains = sum(len(c.chains) for c in a.culprits)
        print(f"  {n:5d} crates ({units:4d} built units): resolve median {med * 1000:6.1f} ms, "
              f"{per:5.1f} µs per unit ({per / base:4.2f}× the 100-crate figure); "
              f"analyze {statistics.median(atimes) * 1000:6.1f} ms ({chains} chains)")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=10)
    args = p.parse_args()
    bench_seed(args.runs)
    bench_synthetic(max(3, args.runs // 2))


if __name__ == "__main__":
    main()
