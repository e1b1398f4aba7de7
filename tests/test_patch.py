"""`[patch.<registry>]` and `[replace]` in the workspace root, against `cargo tree -i openssl-sys`
on the fixture universe (and, for registry patches, a second registry of stubs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from codemod.lockfile import parse_lock
from codemod.registry.config import open_registry
from codemod.run import Options, analyze_manifest
from conftest import cargo_available
from fixture_registry import C, Server, cargo_home, write_project, write_registry
from test_cargo_differential import cargo, cargo_culprits

MUSL = "x86_64-unknown-linux-musl"

pytestmark = [
    pytest.mark.cargo,
    pytest.mark.skipif(not cargo_available(), reason="cargo is not installed: these tests compare with it"),
]

APP = '[package]\nname = "app"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\nreqwest = "0.11"\n'


def stub(version: str, deps: str = "") -> str:
    """A native-tls without OpenSSL: the features its dependents ask for, nothing behind them."""
    return (f'[package]\nname = "native-tls"\nversion = "{version}"\nedition = "2021"\n\n'
            f'[features]\nvendored = []\nalpn = []\n\n[dependencies]\n{deps}')


@pytest.fixture(scope="module")
def alt():
    """Another registry whose native-tls has no OpenSSL underneath."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        write_registry(Path(d), [C("native-tls", "0.2.50", features={"vendored": [], "alpn": []})])
        srv = Server(Path(d))
        yield srv
        srv.close()


@pytest.fixture(scope="module")
def home(universe, tmp_path_factory):
    srv, _ = universe
    return cargo_home(tmp_path_factory.mktemp("cargo"), srv)


def config(universe_srv: Server, alt_srv: Server | None = None) -> str:
    """The project's .cargo/config.toml: read by cargo and by the tool alike."""
    text = f'[source.crates-io]\nreplace-with = "fixture"\n\n[source.fixture]\nregistry = "{universe_srv.index_url}"\n'
    if alt_srv is not None:
        text += f'\n[registries.alt]\nindex = "{alt_srv.index_url}"\n'
    return text


def both(proj: Path, home: Path):
    """Our analysis and cargo's answer for the same project."""
    r = cargo(["generate-lockfile"], proj, home)
    assert r.returncode == 0, r.stderr
    result = analyze_manifest(proj, Options(target=MUSL), open_registry(proj))
    theirs = cargo_culprits(proj, home, MUSL, "features,normal,no-proc-macro", [], {"app"})
    ours = {(c.package, c.crate) for c in result.analysis.culprits}
    return result, ours, theirs, r.stderr


def in_graph(result) -> set[tuple[str, str]]:
    return {(p.name, p.version) for p in result.analysis.resolution.packages}


def locked(proj: Path) -> set[tuple[str, str]]:
    return {(n, v) for n, v, _ in parse_lock((proj / "Cargo.lock").read_text()).packages}


def test_path_patch_stubs_native_tls_out(universe, home, tmp_path):
    """The stub (0.2.10) wins over the registry's newer 0.2.11 for every requirement it matches;
    its own dependencies are analysed."""
    srv, _ = universe
    write_project(tmp_path, {
        "Cargo.toml": APP + '\n[patch.crates-io]\nnative-tls = { path = "stubs/native-tls" }\n',
        "stubs/native-tls/Cargo.toml": stub("0.2.10", 'rustls = "0.21"\n'),
        ".cargo/config.toml": config(srv),
    })
    result, ours, theirs, _ = both(tmp_path, home)
    assert ours == theirs == set()
    assert not result.analysis.blocker_versions
    graph = in_graph(result)
    assert ("native-tls", "0.2.10") in graph and ("native-tls", "0.2.11") not in graph
    assert ("rustls", "0.21.6") in graph                      # the stub's own dependency
    assert graph == locked(tmp_path)


def test_unused_patch_changes_nothing(universe, home, tmp_path):
    """A patch whose version matches no requirement is not used (cargo warns)."""
    srv, _ = universe
    write_project(tmp_path, {
        "Cargo.toml": APP + '\n[patch.crates-io]\nnative-tls = { path = "stubs/native-tls" }\n',
        "stubs/native-tls/Cargo.toml": stub("0.3.0"),
        ".cargo/config.toml": config(srv),
    })
    result, ours, theirs, stderr = both(tmp_path, home)
    assert "was not used in the crate graph" in stderr
    assert ours == theirs == {("app", "reqwest")}
    assert ("native-tls", "0.2.11") in in_graph(result)


@pytest.mark.parametrize("entry", [
    'native-tls = { version = "0.2", registry = "alt" }',
    'nt = { package = "native-tls", version = "0.2", registry = "alt" }',
], ids=["registry", "registry-renamed"])
def test_registry_patch(entry, universe, alt, home, tmp_path):
    srv, _ = universe
    write_project(tmp_path, {
        "Cargo.toml": APP + f"\n[patch.crates-io]\n{entry}\n",
        ".cargo/config.toml": config(srv, alt),
    })
    result, ours, theirs, _ = both(tmp_path, home)
    assert ours == theirs == set()
    graph = in_graph(result)
    assert ("native-tls", "0.2.50") in graph and ("native-tls", "0.2.11") not in graph
    assert graph - {("app", "0.1.0")} == locked(tmp_path) - {("app", "0.1.0")}


def test_replace_exact_version(universe, home, tmp_path):
    srv, _ = universe
    write_project(tmp_path, {
        "Cargo.toml": APP + '\n[replace]\n"native-tls:0.2.11" = { path = "stubs/native-tls" }\n',
        "stubs/native-tls/Cargo.toml": stub("0.2.11"),
        ".cargo/config.toml": config(srv),
    })
    result, ours, theirs, _ = both(tmp_path, home)
    assert ours == theirs == set()
    nt = [p for p in result.analysis.resolution.packages if p.name == "native-tls"]
    assert len(nt) == 1 and nt[0].path                         # the local replacement, not the registry's


def test_git_patch_is_reported_unanalysable(universe, tmp_path):
    """Offline, a git patch cannot be read: the registry's crate is analysed and the report says so."""
    srv, _ = universe
    write_project(tmp_path, {
        "Cargo.toml": APP + '\n[patch.crates-io]\nnative-tls = { git = "https://example.invalid/native-tls.git" }\n',
        ".cargo/config.toml": config(srv),
    })
    result = analyze_manifest(tmp_path, Options(target=MUSL), open_registry(tmp_path))
    assert [(u.dependency, u.reason) for u in result.unanalysable] == [
        ("native-tls", "[patch.crates-io] `native-tls` is a git patch (https://example.invalid/native-tls.git): "
                       "not in any index, so the registry's `native-tls` is analysed in its place")]
    assert {(c.package, c.crate) for c in result.analysis.culprits} == {("app", "reqwest")}


def test_replace_must_match_the_version(universe, tmp_path):
    from codemod.errors import ResolveError

    srv, _ = universe
    write_project(tmp_path, {
        "Cargo.toml": APP + '\n[replace]\n"native-tls:0.2.11" = { path = "stubs/native-tls" }\n',
        "stubs/native-tls/Cargo.toml": stub("0.2.10"),
        ".cargo/config.toml": config(srv),
    })
    with pytest.raises(ResolveError, match=r"the package at .* is native-tls 0.2.10; a replacement must have the name and version"):
        analyze_manifest(tmp_path, Options(target=MUSL), open_registry(tmp_path))
