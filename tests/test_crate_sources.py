"""What cargo reads from crates themselves rather than the index: whether a crate is a proc macro
(from the `.crate`'s Cargo.toml), and proc-macro workspace members built for the host. Compared
with cargo where it is installed."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from codemod.registry import open_index
from codemod.registry.crates import CrateManifests, CrateRef, dl_url
from codemod.run import Options, analyze_manifest
from conftest import ROOT, cargo_available
from fixture_registry import C, D, Server, cargo_home, write_project, write_registry
from test_cargo_differential import MUSL, cargo, cargo_blocker_features, cargo_culprits, pkg

needs_cargo = pytest.mark.skipif(not cargo_available(), reason="cargo is not installed: it is the oracle here")

# A proc macro no name list knows, that asks for OpenSSL vendored: built for the host, its
# features must not reach the target's openssl-sys under resolver 2.
TLS_GLUE = C("tls-glue", "0.1.0", [D("openssl", "^0.10", features=["vendored"]), D("proc-macro2", "^1")], proc_macro=True)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    from universe import crates

    root = tmp_path_factory.mktemp("registry")
    write_registry(root, crates() + [TLS_GLUE])
    srv = Server(root)
    yield srv, root
    srv.close()


@pytest.fixture(scope="module")
def home(registry, tmp_path_factory):
    return cargo_home(tmp_path_factory.mktemp("cargo"), registry[0])


def glue_project(tmp_path: Path, edition: str = "2021") -> Path:
    return write_project(tmp_path, {"Cargo.toml": pkg("app", 'tls-glue = "0.1"\nnative-tls = "0.2"', edition=edition)})


def test_proc_macro_read_from_the_crate(registry, tmp_path):
    srv, _ = registry
    glue_project(tmp_path)
    index = open_index(srv.index_url)
    a = analyze_manifest(tmp_path, Options(target=MUSL), index).analysis
    assert {(c.package, c.crate) for c in a.culprits} == {("app", "native-tls")}
    assert ("app", "tls-glue") in {(c.package, c.crate) for c in a.host_only}
    assert not a.vendored and a.blocked
    # only the crates that can change the answer were read: those on a path to openssl-sys
    assert index.crates.downloads <= 4
    assert not index.assumed


def test_answer_is_cached(registry, tmp_path):
    srv, _ = registry
    glue_project(tmp_path)
    first = open_index(srv.index_url)
    analyze_manifest(tmp_path, Options(target=MUSL), first)
    assert first.crates.downloads > 0
    again = open_index(srv.index_url)
    a = analyze_manifest(tmp_path, Options(target=MUSL), again).analysis
    assert again.crates.downloads == 0 and not a.vendored


@needs_cargo
@pytest.mark.cargo
@pytest.mark.parametrize("edition,vendored", [("2021", False), ("2018", True)])
def test_proc_macro_agrees_with_cargo(registry, home, tmp_path, edition, vendored):
    """Resolver 2 keeps the proc macro's `vendored` on the host; resolver 1 unifies it into the target."""
    srv, _ = registry
    glue_project(tmp_path, edition)
    assert cargo(["generate-lockfile"], tmp_path, home).returncode == 0
    a = analyze_manifest(tmp_path, Options(target=MUSL), open_index(srv.index_url)).analysis
    assert {(c.package, c.crate) for c in a.culprits} == cargo_culprits(
        tmp_path, home, MUSL, "features,normal,no-proc-macro", [], {"app"}) == {("app", "native-tls")}
    versions, feats = cargo_blocker_features(tmp_path, home, MUSL, [])
    assert set(a.blocker_versions) == versions
    assert set(a.blocker_features) == feats
    assert a.vendored is vendored and ("vendored" in feats) is vendored


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codemod", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_without_archives_the_guess_is_reported(registry, tmp_path):
    """A directory index with no archives next to it: the name list decides, and the output says so."""
    _, root = registry
    glue_project(tmp_path)
    r = run_cli("--check", str(tmp_path), "--index-url", str(root / "index"))
    assert "whether these are proc macros is guessed from their names" in r.stderr and "tls-glue 0.1.0" in r.stderr
    doc = json.loads(run_cli("--explain", "--format", "json", str(tmp_path), "--index-url", str(root / "index")).stdout)
    assumed = {a["crate"] for a in doc["assumed_proc_macros"]}
    assert "tls-glue 0.1.0" in assumed and "native-tls 0.2.11" in assumed
    text = run_cli("--explain", str(tmp_path), "--index-url", str(root / "index")).stdout
    assert "note:" in text and "tls-glue 0.1.0" in text


def _archive(c: C) -> tuple[bytes, str]:
    data = c.archive()
    return data, hashlib.sha256(data).hexdigest()


def test_cargo_home_sources(tmp_path):
    """cargo's unpacked sources, then its downloaded archives (checksum must match)."""
    data, cksum = _archive(TLS_GLUE)
    home = tmp_path / "cargo-home"
    cache = home / "registry/cache/index.crates.io-6f17d22bba15001f"
    cache.mkdir(parents=True)
    (cache / "tls-glue-0.1.0.crate").write_bytes(data)
    src = home / "registry/src/index.crates.io-6f17d22bba15001f/plain-1.0.0"
    src.mkdir(parents=True)
    (src / "Cargo.toml").write_text('[package]\nname = "plain"\nversion = "1.0.0"\n\n[lib]\nproc_macro = true\n')
    m = CrateManifests("https://index.crates.io/", cargo_home=home, cache_dir=tmp_path / "cache")
    assert m.proc_macro(CrateRef("tls-glue", "0.1.0", cksum)) is True
    assert m.proc_macro(CrateRef("plain", "1.0.0", None)) is True          # `proc_macro` spelling too
    assert CrateManifests("x", cargo_home=home, cache_dir=None).proc_macro(CrateRef("tls-glue", "0.1.0", "0" * 64)) is None
    assert m.proc_macro(CrateRef("absent", "1.0.0", "ab")) is None and "not in cargo's cache" in m.failure
    # the answer was remembered under our cache, keyed by the checksum
    (cache / "tls-glue-0.1.0.crate").unlink()
    assert m.proc_macro(CrateRef("tls-glue", "0.1.0", cksum)) is True


def test_dl_templates():
    assert dl_url("https://static.crates.io/crates", "serde", "1.0.0", None) == "https://static.crates.io/crates/serde/1.0.0/download"
    assert dl_url("https://x/{prefix}/{lowerprefix}/{crate}-{version}.crate?{sha256-checksum}", "Abcd", "0.1.0", "ff") == \
        "https://x/Ab/cd/ab/cd/Abcd-0.1.0.crate?ff"
    assert dl_url("https://x/{prefix}/{crate}", "ab", "1.0.0", None) == "https://x/2/ab"
    assert dl_url("https://x/{prefix}/{crate}", "abc", "1.0.0", None) == "https://x/3/a/abc"


# -- proc-macro workspace members ------------------------------------------------------------------

PM_WORKSPACE = {
    "Cargo.toml": '[workspace]\nmembers = ["app", "pm"]\nresolver = "2"\n',
    "app/Cargo.toml": pkg("app", 'pm = { path = "../pm" }'),
    "pm/Cargo.toml": pkg("pm", 'native-tls = "0.2"', "[lib]\nproc-macro = true\n"),
}


def cargo_target_units(cwd: Path, home: Path, target: str, flags: list[str]) -> set[tuple[str, str | None]]:
    """(package, platform) of every library unit `cargo build` would compile (platform None: the host)."""
    r = subprocess.run(["cargo", "build", "--unit-graph", "-Z", "unstable-options", "--target", target, *flags],
                       cwd=cwd, capture_output=True, text=True, timeout=300,
                       env={**__import__("os").environ, "CARGO_HOME": str(home), "RUSTC_BOOTSTRAP": "1"})
    assert r.returncode == 0, r.stderr
    units = json.loads(r.stdout)["units"]
    return {(u["pkg_id"].split("#")[-1].split("@")[0].rsplit("/", 1)[-1], u["platform"]) for u in units
            if u["target"]["kind"] != ["custom-build"]}


@pytest.mark.parametrize("packages", [(), ("pm",), ("app",)])
def test_proc_macro_member_is_built_for_the_host(registry, tmp_path, packages):
    srv, _ = registry
    write_project(tmp_path, PM_WORKSPACE)
    a = analyze_manifest(tmp_path, Options(target=MUSL, workspace=not packages, packages=packages),
                         open_index(srv.index_url)).analysis
    assert a.culprits == () and not a.blocker_versions
    expected = {("app", "pm"), ("pm", "native-tls")}
    assert {(c.package, c.crate) for c in a.host_only} == {e for e in expected if not packages or e[0] in packages}


@needs_cargo
@pytest.mark.cargo
@pytest.mark.parametrize("packages", [(), ("pm",)])
def test_proc_macro_member_agrees_with_cargo(registry, home, tmp_path, packages):
    srv, _ = registry
    write_project(tmp_path, PM_WORKSPACE)
    assert cargo(["generate-lockfile"], tmp_path, home).returncode == 0
    flags = [f for p in packages for f in ("-p", p)] or ["--workspace"]
    units = cargo_target_units(tmp_path, home, MUSL, flags)
    assert ("openssl-sys", None) in units and ("openssl-sys", MUSL) not in units    # host only
    a = analyze_manifest(tmp_path, Options(target=MUSL, workspace=not packages, packages=packages),
                         open_index(srv.index_url)).analysis
    assert a.culprits == ()
    members = {"app", "pm"} if not packages else set(packages)
    theirs = cargo_culprits(tmp_path, home, MUSL, "features,normal,build", flags, members)
    assert {(c.package, c.crate) for c in a.host_only} == theirs


def test_vendor_directory_manifests_decide(tmp_path):
    """A vendor directory's manifests are the index: nothing is guessed from names there."""
    from codemod.registry.sources import VendorSource

    write_project(tmp_path / "vendor", {
        "looks-derive/Cargo.toml": '[package]\nname = "looks-derive"\nversion = "1.0.0"\n\n[dependencies]\nsyn = "2"\n',
        "tls-glue/Cargo.toml": TLS_GLUE.manifest(),
    })
    src = VendorSource(tmp_path / "vendor")
    assert [p.proc_macro for p in src.fetch("looks-derive")] == [False]
    assert [p.proc_macro for p in src.fetch("tls-glue")] == [True]
