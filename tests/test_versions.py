"""Version choice against `cargo generate-lockfile` on a small registry of its own: backtracking,
`links`, yanked versions, resolver 3's rust-version preference, two compatible lines of one crate,
missing features, weak dependency features, and a Cargo.lock's edges."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from codemod.lockfile import parse_lock
from codemod.registry import open_index
from codemod.registry.index import index_path
from codemod.run import Options, analyze_manifest
from conftest import cargo_available
from fixture_registry import C, D, Server, cargo_home, write_project, write_registry
from test_cargo_differential import cargo

MUSL = "x86_64-unknown-linux-musl"
RUST_VERSIONS = {("msrv", "1.0.0"): "1.60", ("msrv", "1.1.0"): "1.99"}   # 1.99: newer than any installed rustc


def crates() -> list[C]:
    out: list[C] = []
    # sqlx's shape: every sqlx 0.7.x pins its own sqlx-core exactly
    for p in range(5):
        out += [C("sqlx-core", f"0.7.{p}"), C("sqlx", f"0.7.{p}", [D("sqlx-core", f"=0.7.{p}")])]
    # two libgit2-sys lines that both link `git2`
    out += [C("libgit2-sys", "0.14.2+1.5.1", links="git2"), C("libgit2-sys", "0.15.2+1.6.4", links="git2"),
            C("git2", "0.16.1", [D("libgit2-sys", "^0.14.2")]), C("git2", "0.17.2", [D("libgit2-sys", "^0.15.2")]),
            C("oldgit", "1.0.0", [D("libgit2-sys", "^0.14")])]
    out += [C("yk", "1.0.0"), C("yk", "1.1.0", yanked=True)]
    # one crate, two semver-compatible lines
    out += [C("tc", "1.5.0"), C("tc", "1.9.0"), C("tc", "2.3.0"),
            C("pin15", "1.0.0", [D("tc", "=1.5.0")]), C("uses1", "1.0.0", [D("tc", "^1.2")]),
            C("uses2", "1.0.0", [D("tc", "2")])]
    out += [C("msrv", "1.0.0"), C("msrv", "1.1.0")]
    # the newest version lacks a feature the dependency asks for
    out += [C("feat", "1.0.0", features={"x": []}), C("feat", "1.1.0", features={"y": []})]
    # a weak dependency feature: the version resolver follows the optional dependency anyway
    out += [C("wkdep", "1.0.0", features={"g": []}),
            C("wk", "1.0.0", [D("wkdep", "1", optional=True)], features={"f": ["wkdep?/g"]})]
    return out


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("versions-registry")
    index = write_registry(root, crates())
    for (name, version), rv in RUST_VERSIONS.items():
        f = index / index_path(name)
        lines = [json.loads(x) for x in f.read_text().splitlines()]
        for obj in lines:
            if obj["vers"] == version:
                obj["rust_version"] = rv
        f.write_text("".join(json.dumps(x) + "\n" for x in lines))
    srv = Server(root)
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def home(registry, tmp_path_factory):
    return cargo_home(tmp_path_factory.mktemp("cargo"), registry)


def pkg(deps: str, edition: str = "2021", extra: str = "") -> str:
    return f'[package]\nname = "app"\nversion = "0.1.0"\nedition = "{edition}"\n{extra}\n[dependencies]\n{deps}\n'


def ours(proj: Path, registry: Server) -> set[tuple[str, str]]:
    res = analyze_manifest(proj, Options(target=MUSL), open_index(registry.index_url)).analysis.resolution
    return {(p.name, p.version) for p in res.packages if not p.path}


def cargo_lock(proj: Path) -> set[tuple[str, str]]:
    lock = parse_lock((proj / "Cargo.lock").read_text())
    return {(n, v) for n, v, s in lock.packages if s}


@dataclass
class Case:
    id: str
    deps: str
    expect: set[tuple[str, str]]
    edition: str = "2021"
    extra: str = ""


CASES = [
    Case("backtrack-sqlx-core-pinned", 'sqlx = "0.7"\nsqlx-core = "=0.7.1"\n',
         {("sqlx", "0.7.1"), ("sqlx-core", "0.7.1")}),
    Case("newest-without-conflict", 'sqlx = "0.7"\n', {("sqlx", "0.7.4"), ("sqlx-core", "0.7.4")}),
    Case("links-conflict-backtracks", 'git2 = ">=0.16"\noldgit = "1"\n',
         {("git2", "0.16.1"), ("libgit2-sys", "0.14.2+1.5.1"), ("oldgit", "1.0.0")}),
    Case("yanked-skipped", 'yk = "1"\n', {("yk", "1.0.0")}),
    Case("two-compatible-lines", 'pin15 = "1"\nuses1 = "1"\ntc = ">=1.0"\n',
         {("pin15", "1.0.0"), ("uses1", "1.0.0"), ("tc", "1.5.0"), ("tc", "2.3.0")}),
    Case("one-version-per-line", 'pin15 = "1"\ntc = "1"\n', {("pin15", "1.0.0"), ("tc", "1.5.0")}),
    Case("resolver3-falls-back-to-rustc", 'msrv = "1"\n', {("msrv", "1.0.0")}, edition="2024"),
    Case("resolver3-rust-version", 'msrv = "1"\n', {("msrv", "1.0.0")}, extra='rust-version = "1.70"\nresolver = "3"\n'),
    Case("resolver2-ignores-rust-version", 'msrv = "1"\n', {("msrv", "1.1.0")}, extra='rust-version = "1.70"\n'),
    Case("missing-feature-rejects-newest", 'feat = { version = "1", features = ["x"] }\n', {("feat", "1.0.0")}),
    Case("weak-feature-counts-for-versions", 'wk = { version = "1", features = ["f"] }\n',
         {("wk", "1.0.0"), ("wkdep", "1.0.0")}),
]

needs_cargo = pytest.mark.skipif(not cargo_available(), reason="cargo is not installed: these tests compare with it")


@needs_cargo
@pytest.mark.cargo
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_versions_as_a_fresh_lock(case: Case, registry, home, tmp_path):
    write_project(tmp_path, {"Cargo.toml": pkg(case.deps, case.edition, case.extra)})
    r = cargo(["generate-lockfile"], tmp_path, home)
    assert r.returncode == 0, r.stderr
    cargo_versions = cargo_lock(tmp_path)
    (tmp_path / "Cargo.lock").unlink()            # ours chooses without a lock
    assert ours(tmp_path, registry) == cargo_versions
    assert cargo_versions == case.expect


def direct(res) -> set[tuple[str, str]]:
    root = res.input.members[0]
    return {(res.edges[(root, i)].name, res.edges[(root, i)].version) for i, _ in enumerate(res.packages[root].deps)}


@needs_cargo
@pytest.mark.cargo
def test_lock_edges_reproduce_the_locked_graph(registry, home, tmp_path):
    """Two versions of tc in the lock; the root's edge goes to the older one although its
    requirement now admits both: only the lock's edges say which."""
    write_project(tmp_path, {"Cargo.toml": pkg('tc = ">=1.0, <2"\nuses2 = "1"\n')})
    assert cargo(["generate-lockfile"], tmp_path, home).returncode == 0
    (tmp_path / "Cargo.toml").write_text(pkg('tc = ">=1.0"\nuses2 = "1"\n'))
    r = cargo(["tree", "-e", "normal", "--prefix", "depth", "--locked"], tmp_path, home)
    assert r.returncode == 0, r.stderr
    assert "1tc v1.9.0" in r.stdout.splitlines()
    res = analyze_manifest(tmp_path, Options(target=MUSL, locked=True), open_index(registry.index_url)).analysis.resolution
    assert direct(res) == {("tc", "1.9.0"), ("uses2", "1.0.0")}
    assert {(p.name, p.version) for p in res.packages if not p.path} == cargo_lock(tmp_path) == {
        ("tc", "1.9.0"), ("tc", "2.3.0"), ("uses2", "1.0.0")}


@needs_cargo
@pytest.mark.cargo
def test_a_new_dependency_unlocks_the_edges_but_keeps_locked_versions_preferred(registry, home, tmp_path):
    write_project(tmp_path, {"Cargo.toml": pkg('tc = ">=1.0, <2"\nuses2 = "1"\nsqlx = "=0.7.2"\n')})
    assert cargo(["generate-lockfile"], tmp_path, home).returncode == 0
    (tmp_path / "Cargo.toml").write_text(pkg('tc = ">=1.0"\nuses2 = "1"\nsqlx = "0.7"\nyk = "1"\n'))
    res = analyze_manifest(tmp_path, Options(target=MUSL), open_index(registry.index_url)).analysis.resolution
    r = cargo(["tree", "-e", "normal", "--prefix", "depth"], tmp_path, home)      # updates the lock as cargo build would
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "1tc v2.3.0" in lines and "1sqlx v0.7.2" in lines
    assert direct(res) == {("tc", "2.3.0"), ("uses2", "1.0.0"), ("sqlx", "0.7.2"), ("yk", "1.0.0")}
    assert {(p.name, p.version) for p in res.packages if not p.path} == cargo_lock(tmp_path)


def test_lock_formats_and_edges(tmp_path):
    """`dependencies` entries: "name", "name version", "name version (source)"."""
    src = "registry+https://github.com/rust-lang/crates.io-index"
    lock = parse_lock(
        'version = 3\n\n'
        f'[[package]]\nname = "a"\nversion = "1.0.0"\nsource = "{src}"\ndependencies = ["tc 1.5.0", "tc 2.3.0 ({src})", "b"]\n\n'
        f'[[package]]\nname = "b"\nversion = "0.1.0"\n\n'
        f'[[package]]\nname = "tc"\nversion = "1.5.0"\nsource = "{src}"\n\n'
        f'[[package]]\nname = "tc"\nversion = "2.3.0"\nsource = "{src}"\n')
    assert lock.deps[("a", "1.0.0", src)] == (("tc", "1.5.0", src), ("tc", "2.3.0", src), ("b", "0.1.0", ""))
    assert lock.versions == {"a": ["1.0.0"], "tc": ["1.5.0", "2.3.0"]}


def test_no_solution_names_the_conflict(registry, tmp_path):
    from codemod.errors import ResolveError

    write_project(tmp_path, {"Cargo.toml": pkg('sqlx = "=0.7.4"\nsqlx-core = "=0.7.1"\n')})
    with pytest.raises(ResolveError, match=r"failed to select a version for `sqlx-core`"):
        ours(tmp_path, registry)


# -- the search itself, on an in-memory index ----------------------------------------------------

class LazyIndex:
    """Index data in memory; a crate is loaded only once asked for, as over HTTP."""

    def __init__(self, crates: list[C]):
        from codemod.registry.index import parse_index_line

        self.all: dict[str, list] = {}
        for c in crates:
            self.all.setdefault(c.name, []).append(parse_index_line(c.line("0" * 64)))
        self.data: dict[str, list | None] = {}
        self.round_trips = 0

    def loaded(self, name, registry=None):
        return name in self.data

    def get(self, name, registry=None):
        return self.data[name]

    def fetch_many(self, names):
        self.round_trips += 1
        for _, name in names:
            self.data[name] = self.all.get(name)


def resolve_in_memory(deps: str, crates: list[C], tmp_path: Path):
    from codemod.run import resolve_with_fetch
    from codemod.resolve import ResolveInput
    from codemod.workspace import load_workspace

    write_project(tmp_path, {"Cargo.toml": pkg(deps)})
    ws = load_workspace(tmp_path)
    inp = ResolveInput(locals={str(d): p for d, p in ws.packages.items()}, members=tuple(ws.member_ids()),
                       selected=tuple(ws.selected_ids()), resolver=ws.resolver)
    index = LazyIndex(crates)
    return resolve_with_fetch(inp, index), index


def test_backjumping_skips_unrelated_decisions(tmp_path):
    """The `links` conflict shows up only after ten unrelated dependencies were chosen, each with
    twenty candidates: the search jumps straight back to the decision that caused it (x), where
    chronological backtracking would try 20^10 combinations first."""
    crates = [C("sys", "0.1.0", links="s"), C("sys", "0.2.0", links="s"),
              C("x", "1.0.0", [D("sys", "0.1")]), C("x", "2.0.0", [D("sys", "0.2")])]
    crates += [C(f"m{i}", f"1.{v}.0") for i in range(10) for v in range(20)]
    crates += [C("y", f"1.{v}.0", [D("sys", "0.1")]) for v in range(25)]
    deps = 'x = ">=1"\n' + "".join(f'm{i} = "1"\n' for i in range(10)) + 'y = "1"\n'
    res, _ = resolve_in_memory(deps, crates, tmp_path)
    got = {(p.name, p.version) for p in res.packages if not p.path}
    assert ("x", "1.0.0") in got and ("sys", "0.1.0") in got and ("y", "1.24.0") in got
    assert {v for n, v in got if n.startswith("m")} == {"1.19.0"}


def test_one_round_trip_per_level(tmp_path):
    crates = [C("a", "1.0.0", [D("b", "1")]), C("b", "1.0.0", [D("c", "1")]), C("c", "1.0.0"),
              C("d", "1.0.0", [D("c", "1")])]
    res, index = resolve_in_memory('a = "1"\nd = "1"\n', crates, tmp_path)
    assert {p.name for p in res.packages if not p.path} == {"a", "b", "c", "d"}
    assert index.round_trips == 2            # {a, d}, then {b, c}: c is already there when b asks for it


def random_case(rng) -> tuple[list[C], str]:
    """Eight crates, a few versions each over three compatible lines, random requirements drawn
    from existing versions (caret, tilde, exact, `>=`, `*`), some `links`, yanked versions,
    optional dependencies behind `dep:` and weak features, a feature some versions lack."""
    names = [f"k{i}" for i in range(8)]
    versions = {n: sorted({(rng.choice([0, 1, 2]), rng.randint(1, 3), rng.randint(0, 2)) for _ in range(rng.randint(1, 5))})
                for n in names}
    forms = ["{M}", "{M}.{m}", "={M}.{m}.{p}", ">={M}", "~{M}.{m}", "*", "{M}.{m}.{p}"]
    out = []
    for i, n in enumerate(names):
        link = f"L{i % 3}" if rng.random() < 0.25 else None
        for M, m, p in versions[n]:
            deps = []
            for t in names[i + 1:]:
                if rng.random() < 0.3:
                    tM, tm, tp = rng.choice(versions[t])
                    deps.append(D(t, rng.choice(forms).format(M=tM, m=tm, p=tp), optional=rng.random() < 0.2))
            feats = {"x": []} if rng.random() < 0.3 else {}
            opt = [d.name for d in deps if d.optional]
            if opt:
                feats["o"] = [f"dep:{opt[0]}"] if rng.random() < 0.5 else [f"{opt[0]}?/x"]
            out.append(C(n, f"{M}.{m}.{p}", deps, feats, links=link, yanked=rng.random() < 0.1))
    root = []
    for n in rng.sample(names, 3):
        M, m, p = rng.choice(versions[n])
        req = rng.choice(["{M}", "{M}.{m}", ">=0.1", "*", "={M}.{m}.{p}"]).format(M=M, m=m, p=p)
        feats = ', features = ["x"]' if rng.random() < 0.2 else ""
        root.append(f'{n} = {{ version = "{req}"{feats} }}')
    return out, "\n".join(root)


@needs_cargo
@pytest.mark.cargo
@pytest.mark.parametrize("seed", range(20))
def test_random_registries_agree_with_cargo(seed, tmp_path):
    """Same versions as `cargo generate-lockfile`, or no resolution when cargo finds none
    (300 seeds agreed when this was written; 20 run here)."""
    import random

    from codemod.errors import ResolveError

    crates_, deps = random_case(random.Random(seed))
    write_registry(tmp_path / "reg", crates_)
    srv = Server(tmp_path / "reg")
    try:
        home_ = cargo_home(tmp_path, srv)
        proj = write_project(tmp_path / "p", {"Cargo.toml": pkg(deps)})
        r = cargo(["generate-lockfile"], proj, home_)
        theirs = cargo_lock(proj) if r.returncode == 0 else None
        if theirs is not None:
            (proj / "Cargo.lock").unlink()
        try:
            got = ours(proj, srv)
        except ResolveError:
            got = None
        assert got == theirs, r.stderr
    finally:
        srv.close()


@needs_cargo
@pytest.mark.cargo
@pytest.mark.parametrize("seed", range(10))
def test_random_lock_then_manifest_change_agrees_with_cargo(seed, tmp_path):
    """A lock for two dependencies, then the manifest changes (a third dependency, or the first
    requirement loses its bound): the versions match the lock cargo writes on its next run
    (150 seeds agreed when this was written; 10 run here)."""
    import random

    from codemod.errors import ResolveError

    rng = random.Random(seed)
    crates_, deps = random_case(rng)
    write_registry(tmp_path / "reg", crates_)
    srv = Server(tmp_path / "reg")
    try:
        home_ = cargo_home(tmp_path, srv)
        lines = deps.splitlines()
        proj = write_project(tmp_path / "p", {"Cargo.toml": pkg("\n".join(lines[:2]))})
        if cargo(["generate-lockfile"], proj, home_).returncode != 0:
            return                          # no first lock to start from
        changed = lines if rng.random() < 0.5 else [lines[0].split("version")[0] + 'version = ">=0.1" }', lines[1]]
        (proj / "Cargo.toml").write_text(pkg("\n".join(changed)))
        try:
            got = ours(proj, srv)
        except ResolveError:
            got = None
        r = cargo(["tree"], proj, home_)   # updates the lock as a build would
        assert got == (cargo_lock(proj) if r.returncode == 0 else None), r.stderr
    finally:
        srv.close()
