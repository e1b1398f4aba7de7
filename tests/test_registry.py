"""The index client against a real HTTP server on 127.0.0.1 (no mocking), and version choice."""

import json
from pathlib import Path

import pytest

from codemod.errors import RegistryError, ResolveError
from codemod.registry import open_index
from codemod.registry.index import index_path
from codemod.run import Options, analyze_manifest
from fixture_registry import C, D, Server, write_registry

MUSL = "x86_64-unknown-linux-musl"


def project(root: Path, deps: str, lock: str | None = None) -> Path:
    (root / "p").mkdir(parents=True, exist_ok=True)
    (root / "p/Cargo.toml").write_text(f'[package]\nname = "p"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n{deps}\n')
    if lock:
        (root / "p/Cargo.lock").write_text(lock)
    return root / "p"


@pytest.mark.parametrize("name,path", [("a", "1/a"), ("cc", "2/cc"), ("syn", "3/s/syn"), ("Serde_JSON", "se/rd/serde_json")])
def test_index_paths(name, path):
    assert index_path(name) == path


def test_seed_over_http_one_request_per_crate_level_by_level(seed_server):
    idx = open_index(seed_server.index_url)
    r = analyze_manifest(Path(__file__).parent.parent / "examples/hello", Options(target=MUSL), idx)
    assert [c.dependency for c in r.analysis.culprits] == ["reqwest"]
    assert idx.requests == len(idx._data)           # each crate file fetched once
    assert idx.round_trips <= 12                    # about one per level of the graph, not one per crate
    assert idx.requests > 3 * idx.round_trips


def test_features2_merged_and_yanked_skipped(tmp_path):
    write_registry(tmp_path / "reg", [
        C("leaf", "1.0.0", features={"x": [], "y": ["dep:opt"]}, deps=[D("opt", "1", optional=True)]),
        C("leaf", "1.1.0", features={"x": []}, yanked=True),
        C("opt", "1.0.0"),
    ])
    line = json.loads((tmp_path / "reg/index/le/af/leaf").read_text().splitlines()[0])
    assert "y" in line["features2"] and "y" not in line["features"]
    srv = Server(tmp_path / "reg")
    try:
        proj = project(tmp_path, 'leaf = { version = "1", features = ["y"] }')
        res = analyze_manifest(proj, Options(target=MUSL, blocker="opt"), open_index(srv.index_url)).analysis
        assert [p.version for p, _ in res.resolution.units if p.name == "leaf"] == ["1.0.0"]
        assert [c.chains for c in res.culprits] == [(("p", "leaf [y]", "opt"),)]   # features2's `dep:opt` counted
        # a locked yanked version is still used
        lock = 'version = 3\n\n[[package]]\nname = "leaf"\nversion = "1.1.0"\nsource = "registry+https://github.com/rust-lang/crates.io-index"\n'
        proj = project(tmp_path / "locked", 'leaf = "1"', lock)
        res = analyze_manifest(proj, Options(target=MUSL), open_index(srv.index_url)).analysis
        assert [p.version for p, _ in res.resolution.units if p.name == "leaf"] == ["1.1.0"]
    finally:
        srv.close()


def test_one_version_per_compatible_line(tmp_path):
    write_registry(tmp_path / "reg", [
        C("x", "1.2.0"), C("x", "1.5.0"), C("x", "2.0.0"), C("x", "0.3.1"), C("x", "0.3.4"), C("x", "0.4.0"),
        C("a", "1.0.0", [D("x", "=1.2.0")]),
    ])
    srv = Server(tmp_path / "reg")
    try:
        proj = project(tmp_path, 'a = "1"\nx1 = { package = "x", version = "1.1" }\nx2 = { package = "x", version = "2" }\nx0 = { package = "x", version = "0.3" }')
        res = analyze_manifest(proj, Options(target=MUSL), open_index(srv.index_url)).analysis.resolution
        # a's `=1.2.0` and the direct `^1.1` share one 1.x version, as cargo requires
        assert sorted(p.version for p, _ in res.units if p.name == "x") == ["0.3.4", "1.2.0", "2.0.0"]
    finally:
        srv.close()


def test_unknown_crate_names_the_chain(tmp_path):
    write_registry(tmp_path / "reg", [C("a", "1.0.0", [D("b", "1")]), C("b", "1.0.0", [D("ghost", "0.1")])])
    srv = Server(tmp_path / "reg")
    try:
        with pytest.raises(ResolveError, match=r"Cargo.toml: no crate named `ghost` in the index \(required by p → a → b → ghost\)"):
            analyze_manifest(project(tmp_path, 'a = "1"'), Options(target=MUSL), open_index(srv.index_url))
        with pytest.raises(ResolveError, match=r"p/Cargo.toml: no version of `a` matches `9` \(required by p → a\)"):
            analyze_manifest(project(tmp_path / "v", 'a = "9"'), Options(target=MUSL), open_index(srv.index_url))
    finally:
        srv.close()


def test_unreachable_index_and_server_errors(tmp_path):
    srv = Server(tmp_path)            # serves an empty directory: every index file is a 404
    port = srv.httpd.server_address[1]
    srv.close()
    with pytest.raises(RegistryError, match=rf"http://127.0.0.1:{port}/index/.*cannot reach the index"):
        analyze_manifest(project(tmp_path, 'a = "1"'), Options(target=MUSL), open_index(f"sparse+http://127.0.0.1:{port}/index/"))


def test_local_directory_index(tmp_path):
    write_registry(tmp_path / "reg", [C("a", "1.0.0")])
    for url in (str(tmp_path / "reg/index"), (tmp_path / "reg/index").as_uri()):
        res = analyze_manifest(project(tmp_path, 'a = "1"'), Options(target=MUSL, blocker="a"), open_index(url)).analysis
        assert [c.crate for c in res.culprits] == ["a"]


def test_bad_index_url():
    with pytest.raises(RegistryError, match="unsupported index URL"):
        open_index("ftp://example.com/index")


@pytest.mark.parametrize("header", [
    "",                                                   # v1: no version key, checksums in [metadata]
    "# It is not intended for manual editing.\n",         # v2
    "version = 3\n",
    "version = 4\n",
])
def test_lockfile_formats_pin_versions(tmp_path, header):
    write_registry(tmp_path / "reg", [C("a", "1.0.0"), C("a", "1.4.0")])
    src = "registry+https://github.com/rust-lang/crates.io-index"
    lock = header + f'\n[[package]]\nname = "a"\nversion = "1.0.0"\nsource = "{src}"\n\n[[package]]\nname = "p"\nversion = "0.1.0"\ndependencies = ["a"]\n'
    if not header:
        lock += f'\n[metadata]\n"checksum a 1.0.0 ({src})" = "00"\n'
    proj = project(tmp_path, 'a = "1"', lock)
    res = analyze_manifest(proj, Options(target=MUSL), open_index(str(tmp_path / "reg/index"))).analysis.resolution
    assert [p.version for p, _ in res.units if p.name == "a"] == ["1.0.0"]
    (proj / "Cargo.lock").unlink()
    res = analyze_manifest(proj, Options(target=MUSL), open_index(str(tmp_path / "reg/index"))).analysis.resolution
    assert [p.version for p, _ in res.units if p.name == "a"] == ["1.4.0"]


def test_resolver3_prefers_versions_supporting_the_msrv(tmp_path):
    write_registry(tmp_path / "reg", [C("a", "1.0.0"), C("a", "1.1.0")])
    idx = tmp_path / "reg/index/1/a"
    lines = [json.loads(x) for x in idx.read_text().splitlines()]
    lines[1]["rust_version"] = "1.80"
    idx.write_text("".join(json.dumps(x) + "\n" for x in lines))
    for edition, msrv, want in [("2024", "1.70", "1.0.0"), ("2024", "1.85", "1.1.0"), ("2021", "1.70", "1.1.0")]:
        (tmp_path / edition).mkdir(exist_ok=True)
        proj = tmp_path / edition / msrv
        proj.mkdir()
        (proj / "Cargo.toml").write_text(f'[package]\nname = "p"\nversion = "0.1.0"\nedition = "{edition}"\nrust-version = "{msrv}"\n\n[dependencies]\na = "1"\n')
        res = analyze_manifest(proj, Options(target=MUSL), open_index(str(tmp_path / "reg/index"))).analysis.resolution
        assert [p.version for p, _ in res.units if p.name == "a"] == [want], (edition, msrv)
