"""Differential tests: our analysis against `cargo tree` on the same fixture registry.

For every scenario both tools see the same project, the same index (served on 127.0.0.1) and the
same Cargo.lock (made by cargo). We compare:
- which direct dependencies of which workspace package put openssl-sys into the target build
  (`cargo tree -i openssl-sys -e features,normal,no-proc-macro --target T`);
- which reach it only on the build host (add `build` edges and proc macros);
- the versions and features openssl-sys is built with for the target (`-f "{p} [{f}]"`).
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from codemod.registry import open_index
from codemod.run import Options, analyze_manifest
from cargo_oracle import assert_cargo_accepts, tls_by_scope
from conftest import cargo_available
from fixture_registry import cargo_home, write_project

pytestmark = [
    pytest.mark.cargo,
    pytest.mark.skipif(not cargo_available(), reason="cargo is not installed: the differential tests need it as the oracle"),
]

MUSL = "x86_64-unknown-linux-musl"


def pkg(name: str, deps: str = "", extra: str = "", edition: str = "2021") -> str:
    return f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "{edition}"\n\n{extra}\n[dependencies]\n{deps}\n'


@dataclass
class Scenario:
    id: str
    files: dict[str, str]
    expect: set[tuple[str, str]]                  # (package, crate) expected on the target: keeps each scenario honest
    target: str = MUSL
    args: dict = field(default_factory=dict)       # workspace, packages, features, no_default_features, all_features
    expect_host: set[tuple[str, str]] | None = None
    expect_vendored: bool | None = None
    after_lock: list[list[str]] = field(default_factory=list)
    expect_versions: set[str] | None = None
    expect_chain: tuple[str, ...] | None = None     # a prefix one of the chains starts with
    expect_deps: set[tuple[str, str]] | None = None  # (package, dependency name as written) on the target


REQ = 'reqwest = { version = "0.11.18", features = ["json", "blocking"] }'
SCENARIOS = [
    Scenario("seed-reqwest-defaults", {"Cargo.toml": pkg("hello", REQ)}, {("hello", "reqwest")}, expect_vendored=False),
    Scenario("reqwest-rustls-no-defaults",
             {"Cargo.toml": pkg("hello", 'reqwest = { version = "0.11", default-features = false, features = ["json", "rustls-tls"] }')}, set()),
    Scenario("reqwest-native-tls-explicit",
             {"Cargo.toml": pkg("hello", 'reqwest = { version = "0.11", default-features = false, features = ["native-tls"] }')}, {("hello", "reqwest")}),
    Scenario("reqwest-vendored", {"Cargo.toml": pkg("hello", 'reqwest = { version = "0.11", features = ["native-tls-vendored"] }')},
             {("hello", "reqwest")}, expect_vendored=True),
    Scenario("reqwest-rustls-but-defaults-on",
             {"Cargo.toml": pkg("hello", 'reqwest = { version = "0.11", features = ["rustls-tls"] }')}, {("hello", "reqwest")}),
    Scenario("reqwest012-dep-syntax", {"Cargo.toml": pkg("hello", 'reqwest = "0.12"')}, {("hello", "reqwest")}),
    Scenario("reqwest012-rustls", {"Cargo.toml": pkg("hello", 'reqwest = { version = "0.12", default-features = false, features = ["rustls-tls", "http2", "charset"] }')}, set()),
    Scenario("reqwest012-weak-vendored", {"Cargo.toml": pkg("hello", 'reqwest = { version = "0.12", features = ["native-tls-vendored"] }')},
             {("hello", "reqwest")}, expect_vendored=True),
    Scenario("reqwest012-weak-vendored-no-defaults",
             {"Cargo.toml": pkg("hello", 'reqwest = { version = "0.12", default-features = false, features = ["native-tls-vendored"] }')},
             {("hello", "reqwest")}, expect_vendored=True),
    Scenario("member-weak-feature-inactive",
             {"Cargo.toml": pkg("hello", 'reqwest = { version = "0.12", optional = true, default-features = false }',
                                '[features]\ndefault = ["tls"]\ntls = ["reqwest?/native-tls"]\n')}, set()),
    Scenario("member-weak-feature-active",
             {"Cargo.toml": pkg("hello", 'reqwest = { version = "0.12", optional = true, default-features = false }',
                                '[features]\ndefault = ["net", "tls"]\nnet = ["dep:reqwest"]\ntls = ["reqwest?/native-tls"]\n')},
             {("hello", "reqwest")}),
    Scenario("rename-native-tls", {"Cargo.toml": pkg("hello", 'tls = { package = "native-tls", version = "0.2" }')}, {("hello", "native-tls")}),
    Scenario("rename-openssl-vendored",
             {"Cargo.toml": pkg("hello", REQ + '\nossl = { package = "openssl", version = "0.10", features = ["vendored"] }')},
             {("hello", "reqwest"), ("hello", "openssl")}, expect_vendored=True),
    Scenario("git2-defaults", {"Cargo.toml": pkg("hello", 'git2 = "0.17"')}, {("hello", "git2")}),
    Scenario("git2-no-defaults", {"Cargo.toml": pkg("hello", 'git2 = { version = "0.17", default-features = false }')}, set()),
    Scenario("git2-ssh-only", {"Cargo.toml": pkg("hello", 'git2 = { version = "0.17", default-features = false, features = ["ssh"] }')},
             {("hello", "git2")}),
    Scenario("git2-vendored", {"Cargo.toml": pkg("hello", 'git2 = { version = "0.17", features = ["vendored-openssl"] }')},
             {("hello", "git2")}, expect_vendored=True),
    Scenario("curl-defaults", {"Cargo.toml": pkg("hello", 'curl = "0.4"')}, {("hello", "curl")}),
    Scenario("curl-no-defaults", {"Cargo.toml": pkg("hello", 'curl = { version = "0.4", default-features = false }')}, set()),
    Scenario("curl-static-ssl", {"Cargo.toml": pkg("hello", 'curl = { version = "0.4", features = ["static-ssl"] }')},
             {("hello", "curl")}, expect_vendored=True),
    Scenario("target-table-windows-only",
             {"Cargo.toml": pkg("hello", "", "[target.'cfg(windows)'.dependencies]\nnative-tls = \"0.2\"\n")}, set()),
    Scenario("target-table-windows-only-resolver1",
             {"Cargo.toml": pkg("hello", "", "[target.'cfg(windows)'.dependencies]\nnative-tls = \"0.2\"\n", edition="2018")}, set()),
    Scenario("target-table-unix",
             {"Cargo.toml": pkg("hello", "", "[target.'cfg(unix)'.dependencies]\nnative-tls = \"0.2\"\n")}, {("hello", "native-tls")}),
    Scenario("target-triple-table",
             {"Cargo.toml": pkg("hello", "", "[target.x86_64-unknown-linux-musl.dependencies]\nnative-tls = \"0.2\"\n")}, {("hello", "native-tls")}),
    Scenario("target-macos", {"Cargo.toml": pkg("hello", REQ)}, set(), target="aarch64-apple-darwin"),
    Scenario("target-windows", {"Cargo.toml": pkg("hello", REQ)}, set(), target="x86_64-pc-windows-msvc"),
    Scenario("target-aarch64-musl", {"Cargo.toml": pkg("hello", REQ)}, {("hello", "reqwest")}, target="aarch64-unknown-linux-musl"),
    Scenario("build-dependency-only",
             {"Cargo.toml": pkg("hello", "", '[build-dependencies]\nopenssl-build-helper = "1"\n'), "build.rs": "fn main() {}\n"},
             set(), expect_host={("hello", "openssl-build-helper")}),
    Scenario("build-and-normal",
             {"Cargo.toml": pkg("hello", REQ, '[build-dependencies]\nopenssl-build-helper = "1"\n'), "build.rs": "fn main() {}\n"},
             {("hello", "reqwest")}, expect_host={("hello", "openssl-build-helper")}),
    Scenario("resolver2-build-vendored-stays-host",
             {"Cargo.toml": pkg("hello", 'native-tls = "0.2"', '[build-dependencies]\nopenssl = { version = "0.10", features = ["vendored"] }\n'),
              "build.rs": "fn main() {}\n"},
             {("hello", "native-tls")}, expect_vendored=False),
    Scenario("resolver1-build-vendored-unifies",
             {"Cargo.toml": pkg("hello", 'native-tls = "0.2"', '[build-dependencies]\nopenssl = { version = "0.10", features = ["vendored"] }\n', edition="2018"),
              "build.rs": "fn main() {}\n"},
             {("hello", "native-tls")}, expect_vendored=True),
    Scenario("resolver1-dev-vendored-unifies",
             {"Cargo.toml": pkg("hello", 'native-tls = "0.2"', '[dev-dependencies]\nopenssl = { version = "0.10", features = ["vendored"] }\n', edition="2018")},
             {("hello", "native-tls")}, expect_vendored=True),
    Scenario("resolver2-dev-vendored-decoupled",
             {"Cargo.toml": pkg("hello", 'native-tls = "0.2"', '[dev-dependencies]\nopenssl = { version = "0.10", features = ["vendored"] }\n')},
             {("hello", "native-tls")}, expect_vendored=False),
    Scenario("dev-dependency-only", {"Cargo.toml": pkg("hello", "", '[dev-dependencies]\nnative-tls = "0.2"\n')}, set()),
    Scenario("sqlx-proc-macro-host",
             {"Cargo.toml": pkg("hello", 'sqlx = { version = "0.7", features = ["runtime-tokio-native-tls"] }')},
             {("hello", "sqlx")}, expect_host={("hello", "sqlx")}),
    Scenario("sqlx-no-macros-weak",
             {"Cargo.toml": pkg("hello", 'sqlx = { version = "0.7", default-features = false, features = ["runtime-tokio-native-tls"] }')},
             {("hello", "sqlx")}),
    Scenario("sqlx-rustls", {"Cargo.toml": pkg("hello", 'sqlx = { version = "0.7", features = ["runtime-tokio-rustls"] }')}, set()),
    Scenario("workspace-inheritance",
             {"Cargo.toml": '[workspace]\nmembers = ["app"]\nresolver = "2"\n\n[workspace.dependencies]\nreqwest = { version = "0.11", features = ["json"] }\n',
              "app/Cargo.toml": pkg("app", 'reqwest = { workspace = true, features = ["blocking"] }')},
             {("app", "reqwest")}),
    Scenario("workspace-inheritance-rustls-root",
             {"Cargo.toml": '[workspace]\nmembers = ["app"]\nresolver = "2"\n\n[workspace.dependencies]\nreqwest = { version = "0.11", default-features = false, features = ["rustls-tls"] }\n',
              "app/Cargo.toml": pkg("app", 'reqwest = { workspace = true, features = ["json"] }')}, set()),
    Scenario("workspace-inheritance-member-default-false-ignored",
             {"Cargo.toml": '[workspace]\nmembers = ["app"]\nresolver = "2"\n\n[workspace.dependencies]\nreqwest = "0.11"\n',
              "app/Cargo.toml": pkg("app", 'reqwest = { workspace = true, default-features = false, features = ["rustls-tls"] }')},
             {("app", "reqwest")}),
    Scenario("workspace-inheritance-two-members",
             {"Cargo.toml": '[workspace]\nmembers = ["a", "b"]\nresolver = "2"\n\n[workspace.dependencies]\nreqwest = "0.11"\n',
              "a/Cargo.toml": pkg("a", 'reqwest = { workspace = true }'),
              "b/Cargo.toml": pkg("b", 'reqwest = { workspace = true }')},
             {("a", "reqwest"), ("b", "reqwest")}),
    Scenario("path-dependency",
             {"Cargo.toml": pkg("hello", 'netlib = { path = "netlib" }'),
              "netlib/Cargo.toml": pkg("netlib", 'reqwest = "0.11"')},
             {("hello", "netlib")}),
    Scenario("lockfile-pinned-older",
             {"Cargo.toml": pkg("hello", 'openssl = "0.10"')}, {("hello", "openssl")},
             after_lock=[["cargo", "update", "-p", "openssl", "--precise", "0.10.55"],
                         ["cargo", "update", "-p", "openssl-sys", "--precise", "0.9.90"]], expect_versions={"0.9.90"}),
    Scenario("several-culprits",
             {"Cargo.toml": pkg("hello", REQ + '\ngit2 = "0.17"\ncurl = "0.4"\nsqlx = { version = "0.7", default-features = false, features = ["runtime-tokio-rustls"] }')},
             {("hello", "reqwest"), ("hello", "git2"), ("hello", "curl")}),
    Scenario("virtual-workspace-unification",
             {"Cargo.toml": '[workspace]\nmembers = ["a", "b"]\nresolver = "2"\n',
              "a/Cargo.toml": pkg("a", 'reqwest = { version = "0.11", default-features = false, features = ["rustls-tls"] }'),
              "b/Cargo.toml": pkg("b", 'reqwest = "0.11"')},
             {("a", "reqwest"), ("b", "reqwest")}, expect_chain=("a", "reqwest", 'reqwest [default] (enabled by b)')),
    Scenario("virtual-workspace-resolver1-build-unifies",
             {"Cargo.toml": '[workspace]\nmembers = ["a", "b"]\n',
              "a/Cargo.toml": pkg("a", "", '[build-dependencies]\nopenssl = { version = "0.10", features = ["vendored"] }\n', edition="2018"),
              "a/build.rs": "fn main() {}\n",
              "b/Cargo.toml": pkg("b", 'native-tls = "0.2"', edition="2018")},
             {("b", "native-tls")}, expect_vendored=True),
    Scenario("cli-features",
             {"Cargo.toml": pkg("hello", 'reqwest = { version = "0.11", optional = true }', '[features]\nnet = ["dep:reqwest"]\n')},
             {("hello", "reqwest")}, args={"features": ("net",)}),
    Scenario("cli-no-default-features",
             {"Cargo.toml": pkg("hello", 'git2 = { version = "0.17", default-features = false }', '[features]\ndefault = ["https"]\nhttps = ["git2/https"]\n')},
             set(), args={"no_default_features": True}),
    Scenario("member-feature-chain",
             {"Cargo.toml": pkg("hello", 'git2 = { version = "0.17", default-features = false }', '[features]\ndefault = ["https"]\nhttps = ["git2/https"]\n')},
             {("hello", "git2")}),
    # implicit features of optional dependencies, requested by name from every route
    Scenario("implicit-feature-from-entry",
             {"Cargo.toml": pkg("hello", 'reqwest = { version = "0.11", default-features = false, features = ["hyper-tls"] }')},
             {("hello", "reqwest")}, expect_chain=("hello", "reqwest [hyper-tls]", "hyper-tls")),
    Scenario("implicit-feature-renamed-dep",
             {"Cargo.toml": pkg("hello", 'reqwest = { version = "0.11", default-features = false, features = ["native-tls-crate"] }')},
             {("hello", "reqwest")}, expect_chain=("hello", "reqwest [native-tls-crate]", "native-tls")),
    Scenario("implicit-feature-from-package-feature",
             {"Cargo.toml": pkg("hello", 'reqwest = { version = "0.11", default-features = false }',
                                '[features]\ndefault = ["tls"]\ntls = ["reqwest/hyper-tls"]\n')},
             {("hello", "reqwest")}, expect_chain=("hello", "hello [default]", "hello [tls]", "reqwest [hyper-tls]")),
    Scenario("implicit-feature-weak",
             {"Cargo.toml": pkg("hello", 'reqwest = { version = "0.11", default-features = false, optional = true }',
                                '[features]\ndefault = ["net", "tls"]\nnet = ["dep:reqwest"]\ntls = ["reqwest?/hyper-tls"]\n')},
             {("hello", "reqwest")}),
    Scenario("implicit-feature-cli",
             {"Cargo.toml": pkg("hello", 'reqwest = { version = "0.11", default-features = false }')},
             {("hello", "reqwest")}, args={"features": ("reqwest/hyper-tls",)}),
    Scenario("implicit-feature-member-to-member",
             {"Cargo.toml": '[workspace]\nmembers = ["app", "net"]\nresolver = "2"\n',
              "app/Cargo.toml": pkg("app", 'net = { path = "../net", features = ["tls"] }'),
              "net/Cargo.toml": pkg("net", 'reqwest = { version = "0.11", default-features = false }',
                                    '[features]\ntls = ["reqwest/native-tls-crate"]\n')},
             {("app", "net"), ("net", "reqwest")}, args={"workspace": True}),
    Scenario("implicit-feature-resolver1-cfg-unifies",
             {"Cargo.toml": pkg("hello", "",
                                "[target.'cfg(windows)'.dependencies]\n"
                                'reqwest = { version = "0.11", default-features = false, features = ["hyper-tls"] }\n'
                                "[target.'cfg(unix)'.dependencies]\n"
                                'reqwest = { version = "0.11", default-features = false, features = ["rustls-tls"] }\n',
                                edition="2018")},
             {("hello", "reqwest")}),
    Scenario("implicit-feature-resolver2-cfg-decoupled",
             {"Cargo.toml": pkg("hello", "",
                                "[target.'cfg(windows)'.dependencies]\n"
                                'reqwest = { version = "0.11", default-features = false, features = ["hyper-tls"] }\n'
                                "[target.'cfg(unix)'.dependencies]\n"
                                'reqwest = { version = "0.11", default-features = false, features = ["rustls-tls"] }\n')},
             set()),
    # resolver 1 with a non-virtual root: --features and --no-default-features reach the current package only
    *[Scenario(f"old-cli-features-{edition}-{name}",
               {"Cargo.toml": pkg("hello", 'b = { path = "b", default-features = false }', '[workspace]\nmembers = ["b"]\n\n[features]\ntls = []\n', edition=edition),
                "b/Cargo.toml": pkg("b", 'reqwest = { version = "0.11", default-features = false }',
                                    f'[features]\ndefault = {default}\ntls = ["reqwest/hyper-tls"]\n', edition=edition)},
               expect, args=dict(workspace=True, **args))
      for edition, name, default, args, expect in [
          ("2018", "plain", "[]", {"features": ("tls",)}, set()),
          ("2021", "plain", "[]", {"features": ("tls",)}, {("b", "reqwest"), ("hello", "b")}),
          ("2018", "member-slash", "[]", {"features": ("b/tls",)}, {("b", "reqwest"), ("hello", "b")}),
          ("2018", "no-default", '["tls"]', {"no_default_features": True}, {("b", "reqwest"), ("hello", "b")}),
          ("2021", "no-default", '["tls"]', {"no_default_features": True}, set()),
      ]],
    *[Scenario(f"two-entries-active-one-{edition}",
               {"Cargo.toml": pkg("hello", "", "[target.'cfg(windows)'.dependencies]\nnative-tls = \"0.2\"\n"
                                  "[target.'cfg(unix)'.dependencies]\ntls = { package = \"native-tls\", version = \"0.2\" }\n",
                                  edition=edition)},
               {("hello", "native-tls")}, expect_deps={("hello", "tls")}) for edition in ("2018", "2021")],
    Scenario("cli-all-features",
             {"Cargo.toml": pkg("hello", 'curl = { version = "0.4", default-features = false }', '[features]\nssl = ["curl/ssl"]\n')},
             {("hello", "curl")}, args={"all_features": True}),
]


# -- reading cargo's answers -------------------------------------------------------------------

_LINE = re.compile(r"^(\d+)(.*)$")
_NODE = re.compile(r'^(?P<name>[A-Za-z0-9_\-]+) (?:v(?P<ver>\S+)|feature "(?P<feat>[^"]+)")')


def cargo(args: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, CARGO_HOME=str(home), CARGO_TERM_COLOR="never")
    return subprocess.run(["cargo", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def cargo_culprits(cwd: Path, home: Path, target: str, edges: str, flags: list[str], members: set[str]) -> set[tuple[str, str]]:
    r = cargo(["tree", "-i", "openssl-sys", "-e", edges, "--target", target, "--prefix", "depth", *flags], cwd, home)
    if r.returncode == 101 and "did not match any packages" in r.stderr:
        return set()
    assert r.returncode == 0, r.stderr
    out, stack = set(), []
    for line in r.stdout.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        depth, rest = int(m.group(1)), m.group(2)
        node = _NODE.match(rest)
        if not node:
            continue
        del stack[depth:]
        stack.append(node.group("name"))
        name = node.group("name")
        if name in members and depth > 0 and stack[depth - 1] != name:
            out.add((name, stack[depth - 1]))
    return out


def cargo_blocker_features(cwd: Path, home: Path, target: str, flags: list[str]) -> tuple[set[str], set[str]]:
    r = cargo(["tree", "-e", "normal,no-proc-macro", "-f", "{p} [{f}]", "--target", target, "--prefix", "none", *flags], cwd, home)
    assert r.returncode == 0, r.stderr
    versions, feats = set(), set()
    for line in r.stdout.splitlines():
        m = re.match(r"^openssl-sys v(\S+) \[([^\]]*)\]", line)
        if m:
            versions.add(m.group(1))
            feats |= {f for f in m.group(2).split(",") if f}
    return versions, feats


def cargo_flags(args: dict) -> list[str]:
    flags = []
    if args.get("workspace"):
        flags.append("--workspace")
    for p in args.get("packages", ()):
        flags += ["-p", p]
    if args.get("features"):
        flags += ["--features", ",".join(args["features"])]
    if args.get("no_default_features"):
        flags.append("--no-default-features")
    if args.get("all_features"):
        flags.append("--all-features")
    return flags


@pytest.fixture(scope="module")
def home(universe, tmp_path_factory):
    srv, _root = universe
    return cargo_home(tmp_path_factory.mktemp("cargo"), srv)


@pytest.mark.parametrize("sc", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_agrees_with_cargo_tree(sc: Scenario, universe, home, tmp_path):
    srv, _ = universe
    write_project(tmp_path, sc.files)
    r = cargo(["generate-lockfile"], tmp_path, home)
    assert r.returncode == 0, r.stderr
    for cmd in sc.after_lock:
        r = cargo(cmd[1:], tmp_path, home)
        assert r.returncode == 0, r.stderr

    opts = Options(target=sc.target, **{k: v for k, v in sc.args.items() if k != "packages"},
                   packages=tuple(sc.args.get("packages", ())))
    result = analyze_manifest(tmp_path, opts, open_index(srv.index_url))
    a = result.analysis
    # culprits are reported for the packages cargo would build from this manifest
    members = {p.name for p in result.workspace.selected_ids()}
    flags = cargo_flags(sc.args)
    cargo_target = cargo_culprits(tmp_path, home, sc.target, "features,normal,no-proc-macro", flags, members)
    cargo_all = cargo_culprits(tmp_path, home, sc.target, "features,normal,build", flags, members)
    versions, feats = cargo_blocker_features(tmp_path, home, sc.target, flags)

    ours_target = {(c.package, c.crate) for c in a.culprits}
    ours_all = ours_target | {(c.package, c.crate) for c in a.host_only}

    assert ours_target == cargo_target
    assert ours_all == cargo_all
    assert set(a.blocker_versions) == versions
    assert set(a.blocker_features) == feats
    # and the scenario tests what it says it does
    assert ours_target == sc.expect
    if sc.expect_host is not None:
        assert {(c.package, c.crate) for c in a.host_only} == sc.expect_host
    if sc.expect_versions is not None:
        assert set(a.blocker_versions) == sc.expect_versions
    if sc.expect_vendored is not None:
        assert a.vendored is sc.expect_vendored
    if sc.expect_deps is not None:
        assert {(c.package, c.dependency) for c in a.culprits} == sc.expect_deps
    if sc.expect_chain is not None:
        chains = [c for cul in a.culprits for c in cul.chains]
        assert any(c[:len(sc.expect_chain)] == sc.expect_chain for c in chains), chains
    for c in a.culprits:
        assert c.chains and all(chain[0] == c.package and chain[-1] == "openssl-sys" for chain in c.chains)
        assert c.traced, f"{c.package} → {c.dependency}: no feature chain explains what the build links"
    # never "clean" while cargo builds an unvendored blocker
    assert a.blocked == (bool(versions) and "vendored" not in feats)


def test_seed_project_agrees_with_cargo(tmp_path):
    """The report's project on the real crates.io lines of the bundled snapshot."""
    from conftest import ROOT, SNAPSHOT_REGISTRY
    from codemod.proc_macros import KNOWN
    from fixture_registry import Server, registry_from_index

    registry_from_index(SNAPSHOT_REGISTRY, tmp_path / "reg", set(KNOWN))
    srv = Server(tmp_path / "reg")
    try:
        home = cargo_home(tmp_path, srv)
        proj = tmp_path / "hello"
        (proj / "src").mkdir(parents=True)
        (proj / "Cargo.toml").write_text((ROOT / "examples/hello/Cargo.toml").read_text())
        (proj / "src/main.rs").write_text((ROOT / "examples/hello/src/main.rs").read_text())
        r = cargo(["generate-lockfile"], proj, home)
        assert r.returncode == 0, r.stderr
        result = analyze_manifest(proj, Options(target=MUSL), open_index(srv.index_url))
        a = result.analysis
        assert {(c.package, c.crate) for c in a.culprits} == cargo_culprits(proj, home, MUSL, "features,normal,no-proc-macro", [], {"hello"}) == {("hello", "reqwest")}
        versions, feats = cargo_blocker_features(proj, home, MUSL, [])
        assert set(a.blocker_versions) == versions == {"0.9.91"}
        assert set(a.blocker_features) == feats
        assert not a.vendored
        # the bundled (unmodified) snapshot and its Cargo.lock give the same answer
        bundled = analyze_manifest(ROOT / "examples/hello", Options(target=MUSL), open_index(str(SNAPSHOT_REGISTRY)))
        assert [c.as_json() for c in bundled.analysis.culprits] == [c.as_json() for c in a.culprits]
    finally:
        srv.close()


FIX_SCENARIOS = [s for s in SCENARIOS if s.expect and s.expect_vendored is not True and not s.after_lock]


@pytest.mark.parametrize("strategy", ["auto", "rustls", "openssl-dep"])
@pytest.mark.parametrize("sc", FIX_SCENARIOS, ids=[s.id for s in FIX_SCENARIOS])
def test_cargo_confirms_the_fix(sc: Scenario, strategy, universe, home, tmp_path):
    """Apply the plan, then ask cargo: openssl-sys must be gone from the target build or vendored."""
    srv, _ = universe
    write_project(tmp_path, sc.files)
    assert cargo(["generate-lockfile"], tmp_path, home).returncode == 0
    opts = Options(target=sc.target, strategy=strategy, **{k: v for k, v in sc.args.items() if k != "packages"})
    result = analyze_manifest(tmp_path, opts, open_index(srv.index_url), plan=True)
    plan = result.plan
    if plan.status == "unfixable":
        assert strategy == "rustls", plan.reason          # only a forced rustls switch may be impossible (git2, curl 0.4.44)
        return
    assert plan.status == "fixable"
    members = sorted(p.name for p in result.workspace.selected_ids())
    feature_flags = [f for f in cargo_flags(sc.args) if f not in ("--workspace", "-p", *sc.args.get("packages", ()))]
    before = tls_by_scope(tmp_path, home, sc.target, members, feature_flags)
    for path, text in plan.texts.items():
        path.write_text(text)
    flags = cargo_flags(sc.args)
    versions, feats = cargo_blocker_features(tmp_path, home, sc.target, flags)
    assert not versions or "vendored" in feats, (plan.edits, versions, feats)
    # every member on its own and all together, and no member loses its TLS backend
    assert_cargo_accepts(tmp_path, home, sc.target, members, before, feature_flags)
    if strategy == "rustls":
        assert cargo_culprits(tmp_path, home, sc.target, "features,normal,no-proc-macro", flags, set(members)) == set()
