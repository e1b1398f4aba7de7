"""Hints for the registry's speculative fetching, so a cold run has one wave of requests.

Nothing here decides an answer: the resolver still asks for whatever it lacks. These only make
the first wave include what later steps will ask for:

- the planner's candidates: the features a remedy may turn on for a direct dependency of a local
  package (the rules' features, and features that bring in rustls or a vendored OpenSSL), whose
  crates the planner's checks resolve;
- with a Cargo.lock: the locked versions' dependencies, and none for platforms that are neither
  the target nor the host (a locked resolution never reads them);
- the crate archives the proc-macro check will read (ArchivePrefetch), started as soon as the
  blocker's index file arrives rather than after the resolution.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


def remedy_features(direct: Iterable[str], load_rules: Callable) -> Callable:
    """For a package (an index line), the features a remedy might turn on; only for the crates
    named in `direct` (the planner edits direct dependencies only). The rules are read when the
    first of those crates arrives, not before the first request."""
    from .rules import rules_for

    names = {n.lower() for n in direct}
    loaded: list = []

    def features(pkg) -> set[str]:
        if pkg.name.lower() not in names:
            return set()
        if not loaded:
            try:
                loaded.append(load_rules())
            except Exception:            # the run reports broken rules itself; a hint stays quiet
                loaded.append([])
        rules = loaded[0]
        out = {f for rule in rules_for(rules, pkg.name, pkg.id.version) for rem in rule.remedies
               for f in rem.add_features if f in pkg.features}
        return out | _tls_features(pkg)

    return features


def _tls_features(pkg) -> set[str]:
    """The features of one package a remedy would turn on, as the planner finds them: the
    features that bring in a crate named like rustls (model.rustls_features), and `vendored`-like
    features (those asking a dependency for `vendored`, within the package's own feature table)."""
    from .model import rustls_features

    def opens_vendored(name: str) -> bool:
        todo, seen = [name], set()
        while todo:
            f = todo.pop()
            if f in seen:
                continue
            seen.add(f)
            for fv in pkg.features.get(f, ()):
                if fv[0] == "feat":
                    todo.append(fv[1])
                elif fv[0] == "depfeat" and fv[2] == "vendored":
                    return True
        return False

    names = [f for f in pkg.features if f not in pkg.implicit_features and not f.startswith("_")]
    out = set(rustls_features(pkg)) | {f for f in names if opens_vendored(f)}
    if "vendored" in pkg.features:
        out.add("vendored")
    return out


def platform_filter(targets: Iterable[str], host: str, rustflags) -> Callable[[str], bool]:
    """Whether a dependency's platform applies to one of the targets or to the host."""
    from .targets import load_target, probe_target

    facts = [probe_target(t, rustflags) for t in targets] + [load_target(host)]
    return lambda platform: any(t.matches(platform) for t in facts)


class ArchivePrefetch:
    """Told of each index file a cold run's wave follows (IndexSource.on_arrival): once the
    blocker's file has arrived, the crates on the way to it whose proc-macro status the analysis
    will ask for (as run.proc_macro_candidates chooses them: the blocker, and the crates above it
    with normal dependencies) have their archives read in the background, in the versions the
    wave follows. A guess only: what the resolution asks for is asked again, from the cache."""

    def __init__(self, crates, blocker: str):
        import threading

        self.crates = crates                 # registry/crates.py CrateManifests
        self.blocker = blocker.lower()
        self.parents: dict[str, set[str]] = {}
        self.versions: dict[str, list] = {}
        self.reaches: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, name: str, pkgs: list, deps: list[str]) -> None:
        new = []
        with self.lock:
            self.versions[name] = pkgs
            for d in deps:
                self.parents.setdefault(d, set()).add(name)
            if name not in self.reaches and (name == self.blocker or any(d in self.reaches for d in deps)):
                todo = [name]
                while todo:
                    n = todo.pop()
                    if n in self.reaches:
                        continue
                    self.reaches.add(n)
                    new.append(n)
                    todo.extend(self.parents.get(n, ()))
        from .registry.crates import CrateRef

        for n in new:
            for pkg in self.versions.get(n, ()):
                if n == self.blocker or any(d.kind == "normal" for d in pkg.deps):
                    self.crates.prefetch(CrateRef(pkg.id.name, pkg.id.version, pkg.cksum))
